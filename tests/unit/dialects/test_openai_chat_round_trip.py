"""The chat completions format, both directions, as one property each: what the gateway writes reads back to what it
was written from. Requests: the body an upstream gets for a conversation from another format, read as a caller's
request. Answers: a chat.completion written for a caller, read as an upstream's. Streams: the chunks written for a
caller, read as an upstream's.

The conversations generated are those the format can say once: a tool result is its own message, an assistant turn
one text before its calls, images by URL, documents as named files; what the format has no field for (cache points,
top_k, cache writes) is left out, as the request writer refuses it or the reader keeps it as an extra field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.dialects.openai_chat.answer import chat_completion
from llm_gateway.dialects.openai_chat.chunks import StreamAssembler
from llm_gateway.dialects.openai_chat.completion import completion_of
from llm_gateway.dialects.openai_chat.request import conversation
from llm_gateway.dialects.openai_chat.request_body import request_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest
from llm_gateway.dialects.openai_chat.stream import ChunkProducer
from llm_gateway.domain.answers import (
    Completion,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Reasoning,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolChoice,
    ToolResultBlock,
    ToolSpec,
)
from llm_gateway.errors import GatewayError
from tests.unit.dialects.round_trip import arguments, bare, identifier, text, usages

# The stop reasons chat completions can tell apart: stop, length, tool_calls, content_filter.
STOP_REASONS = st.sampled_from(["end_turn", "max_tokens", "tool_use", "content_filter"])


class Faults:
    """Readers' errors that fail the property: nothing the gateway writes is malformed."""

    def malformed(self, detail: str) -> GatewayError:
        raise AssertionError(f"the reader found a written answer malformed: {detail}")

    def reported(self, payload: Mapping[str, Any]) -> GatewayError:
        raise AssertionError(f"the reader found an error in a written answer: {payload}")


def unmetered(produced: Any) -> Usage:
    raise AssertionError("a written answer always carries its usage")


# --- requests ---------------------------------------------------------------------------------------------------

image = st.builds(
    lambda url: ImageBlock(url=url),
    st.one_of(
        identifier.map(lambda name: f"https://images.example/{name}.png"),
        identifier.map(lambda data: f"data:image/png;base64,{data}"),
    ),
)
document = st.builds(
    lambda media_type, data, name: DocumentBlock(media_type=media_type, base64=data, name=name),
    st.sampled_from(["application/pdf", "text/csv"]),
    identifier,
    identifier,
)
user_turn = st.lists(st.one_of(text.map(TextBlock), image, document), min_size=1, max_size=3).map(
    lambda blocks: Message("user", tuple(blocks))
)
tool_result_turn = st.builds(
    lambda call_id, said: Message("user", (ToolResultBlock(call_id, (TextBlock(said),)),)), identifier, text
)


@st.composite
def assistant_turn(draw: st.DrawFn) -> Message:
    said = draw(st.none() | text)
    calls = draw(st.lists(st.builds(ToolCallBlock, identifier, identifier, arguments), max_size=2))
    blocks: list[ContentBlock] = [TextBlock(said)] if said is not None else []
    return Message("assistant", (*blocks, *calls) or (TextBlock(draw(text)),))


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    tools = tuple(
        ToolSpec(name, draw(st.none() | text), {"type": "object", "properties": {}})
        for name in draw(st.lists(identifier, max_size=3, unique=True))
    )
    modes = ["auto", "none", *(["required", "tool"] if tools else [])]
    mode = draw(st.none() | st.sampled_from(modes))
    choice = None
    if mode is not None:
        name = draw(st.sampled_from([tool.name for tool in tools])) if mode == "tool" else None
        choice = ToolChoice(mode, name, draw(st.none() | st.booleans()) if tools else None)  # type: ignore[arg-type]
    stream = draw(st.booleans())
    return ChatRequest(
        model=draw(identifier),
        messages=tuple(
            draw(st.lists(st.one_of(user_turn, tool_result_turn, assistant_turn()), min_size=1, max_size=5))
        ),
        system=tuple(TextBlock(said) for said in draw(st.lists(text, max_size=2))),
        max_output_tokens=draw(st.none() | st.integers(1, 100_000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        stop=tuple(draw(st.lists(text, max_size=4))),
        tools=tools,
        tool_choice=choice,
        reasoning=draw(st.none() | st.sampled_from(["low", "medium", "high"]).map(lambda e: Reasoning(effort=e))),
        stream=stream,
        include_usage=stream,
    )


@given(requests())
def test_a_written_request_body_reads_back_to_the_conversation(request: ChatRequest) -> None:
    body = json.loads(json.dumps(request_body(request, request.model, stream=request.stream)))
    read = conversation(ChatCompletionRequest.model_validate(body), body)
    assert bare(read) == bare(request)


# --- answers ----------------------------------------------------------------------------------------------------


@st.composite
def completions(draw: st.DrawFn) -> Completion:
    calls = draw(st.lists(st.builds(ToolCallBlock, identifier, identifier, arguments), max_size=3))
    said = draw(text) if not calls else draw(st.none() | text)
    thought = draw(st.none() | text)
    blocks = (
        *([ReasoningBlock(thought)] if thought is not None else []),
        *([TextBlock(said)] if said is not None else []),
        *calls,
    )
    return Completion(blocks, draw(STOP_REASONS), draw(usages(cache_writes=False, reasoning=True)))


@given(completions())
def test_a_written_chat_completion_reads_back_to_the_answer(completion: Completion) -> None:
    body = json.loads(chat_completion(completion, completion_id="chatcmpl-1", created=0, model="m"))
    read = completion_of(body, native=False, faults=Faults(), unmetered=unmetered)
    assert bare(read) == completion


# --- streams ----------------------------------------------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for kind in draw(st.lists(st.sampled_from(["text", "reasoning", "tool"]), max_size=6)):
        if kind == "text":
            events += [TextDelta(piece) for piece in draw(st.lists(text, min_size=1, max_size=3))]
        elif kind == "reasoning":
            events += [ReasoningDelta(piece) for piece in draw(st.lists(text, min_size=1, max_size=3))]
        else:
            index = sum(isinstance(event, ToolCallStart) for event in events)
            # Each call its own id: a reader takes a known id for more of that call's arguments.
            events.append(ToolCallStart(index, f"{draw(identifier)}-{index}", draw(identifier)))
            pieces = draw(st.lists(text, min_size=1, max_size=3))
            events += [ToolCallArgumentsDelta(index, piece) for piece in pieces]
    return [*events, Finish(draw(STOP_REASONS)), UsageReport(draw(usages(cache_writes=False, reasoning=True)))]


@given(streams())
def test_written_chunks_read_back_to_the_stream_events(events: list[StreamEvent]) -> None:
    producer = ChunkProducer(completion_id="chatcmpl-1", created=0, model="m", include_usage=True)
    reader = StreamAssembler(Faults(), native=False)
    read = [event for chunk in producer.chunks(iter(events)) for event in reader.events(json.loads(json.dumps(chunk)))]
    assert reader.usage is not None
    assert [*read, UsageReport(reader.usage)] == events
