"""Anthropic's Messages format, both directions, as one property each: what the gateway writes for a caller reads
back, as an upstream's (Bedrock's InvokeModel speaks the same format), to what it was written from. Answers: a message
object. Streams: the server-sent events, each event's data as InvokeModelWithResponseStream carries it.

The gateway reads Anthropic requests but writes none of its own (a caller's body goes to Bedrock as sent), so the
format's requests have no round trip. What the format has no field for (reasoning tokens) is left out, and tool
arguments are generated as the reader writes JSON, since the format carries them as an object."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.dialects.anthropic_messages.answer import message_json
from llm_gateway.dialects.anthropic_messages.stream import EventProducer
from llm_gateway.domain.answers import (
    Completion,
    Finish,
    NativeChunk,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    UsageReport,
)
from llm_gateway.domain.conversation import ContentBlock, ReasoningBlock, TextBlock, ToolCallBlock
from llm_gateway.providers.bedrock.anthropic_answer import completion_of
from llm_gateway.providers.bedrock.anthropic_stream import StreamReader
from tests.unit.dialects.round_trip import arguments, bare, identifier, text, usages

# Anthropic's stop reasons; a content filter is written as a refusal, so only the refusal comes back.
STOP_REASONS = st.sampled_from(["end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal", "pause_turn"])

block = st.one_of(
    text.map(TextBlock),
    st.builds(lambda thought, signature: ReasoningBlock(thought, signature=signature), text, identifier),
    identifier.map(lambda data: ReasoningBlock(redacted=data)),
    st.builds(ToolCallBlock, identifier, identifier, arguments.map(lambda given: json.dumps(json.loads(given)))),
)


@st.composite
def completions(draw: st.DrawFn) -> Completion:
    reason = draw(STOP_REASONS)
    blocks: tuple[ContentBlock, ...] = tuple(draw(st.lists(block, max_size=5)))
    return Completion(
        blocks,
        reason,
        draw(usages(cache_writes=True, reasoning=False)),
        stop_sequence=draw(text) if reason == "stop_sequence" else None,
    )


@given(completions())
def test_a_written_message_reads_back_to_the_answer(completion: Completion) -> None:
    read = completion_of(json.loads(message_json(completion, message_id="msg_1", model="m")), "m")
    assert bare(read) == completion


@st.composite
def streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for kind in draw(st.lists(st.sampled_from(["text", "thinking", "redacted", "tool"]), max_size=6)):
        if kind == "text":
            events += [TextDelta(piece) for piece in draw(st.lists(text, min_size=1, max_size=3))]
        elif kind == "thinking":
            events += [ReasoningDelta(piece) for piece in draw(st.lists(text, min_size=1, max_size=3))]
            events.append(ReasoningSignature(draw(identifier)))
        elif kind == "redacted":
            events.append(RedactedReasoning(draw(identifier)))
        else:
            index = sum(isinstance(event, ToolCallStart) for event in events)
            events.append(ToolCallStart(index, draw(identifier), draw(identifier)))
            pieces = draw(st.lists(text, min_size=1, max_size=3))
            events += [ToolCallArgumentsDelta(index, piece) for piece in pieces]
    reason = draw(STOP_REASONS)
    finish = Finish(reason, draw(text) if reason == "stop_sequence" else None)
    return [*events, finish, UsageReport(draw(usages(cache_writes=True, reasoning=False)))]


@given(streams())
def test_written_events_read_back_to_the_stream_events(events: list[StreamEvent]) -> None:
    reader = StreamReader("m")
    read = [
        event
        for _, data in EventProducer(message_id="msg_1", model="m").events(iter(events))
        for event in reader.read(json.dumps(data).encode())
        if not isinstance(event, NativeChunk)
    ]
    assert reader.finished and reader.usage is not None
    assert [*read, UsageReport(reader.usage)] == events
