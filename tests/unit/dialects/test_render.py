from __future__ import annotations

import json
from collections.abc import Iterator

from openai.types.chat import ChatCompletionChunk

from llm_gateway.dialects.openai_chat.stream import ChunkProducer, sse_events
from llm_gateway.domain.answers import (
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.errors import ProviderError


def frames(body: str) -> list[str]:
    assert body.endswith("\n\n")
    return [frame.removeprefix("data: ") for frame in body.strip().split("\n\n")]


def produce(events: list[StreamEvent], include_usage: bool = False) -> tuple[ChunkProducer, list[str]]:
    producer = ChunkProducer(completion_id="chatcmpl-1", created=7, model="m", include_usage=include_usage)
    return producer, frames("".join(sse_events(producer.chunks(iter(events)))))


def test_text_stream_is_role_chunk_then_deltas_then_finish_then_done() -> None:
    producer, data = produce([TextDelta("Hel"), TextDelta("lo"), Finish("end_turn"), UsageReport(Usage(3, 2))])
    assert data[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]
    assert {c.id for c in chunks} == {"chatcmpl-1"}
    # Usage is remembered for metering even when the client did not ask for the usage chunk.
    assert producer.usage == Usage(3, 2)
    assert all(c.usage is None for c in chunks)


def test_usage_chunk_when_requested() -> None:
    _, data = produce([TextDelta("x"), Finish("max_tokens"), UsageReport(Usage(4, 1, cached_tokens=2))], True)
    last = json.loads(data[-2])
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 1,
        "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 2},
    }
    assert all("usage" in json.loads(d) for d in data[:-1])


def test_tool_call_deltas_carry_indexes_ids_and_argument_fragments() -> None:
    _, data = produce(
        [
            ToolCallStart(0, "call_a", "first"),
            ToolCallArgumentsDelta(0, '{"x":'),
            ToolCallArgumentsDelta(0, "1}"),
            ToolCallStart(1, "call_b", "second"),
            ToolCallArgumentsDelta(1, "{}"),
            Finish("tool_use"),
        ]
    )
    chunks = [ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function and call.function.name) or ""
            entry["arguments"] += (call.function and call.function.arguments) or ""
    assert calls == {
        0: {"id": "call_a", "name": "first", "arguments": '{"x":1}'},
        1: {"id": "call_b", "name": "second", "arguments": "{}"},
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_error_after_the_stream_began_is_an_error_frame_not_a_cut_stream() -> None:
    def failing() -> Iterator[StreamEvent]:
        yield TextDelta("partial")
        raise ProviderError("upstream dropped the connection")

    producer = ChunkProducer(completion_id="c", created=1, model="m", include_usage=False)
    data = frames("".join(sse_events(producer.chunks(failing()))))
    assert json.loads(data[-1]) == {
        "error": {
            "message": "upstream dropped the connection",
            "type": "api_error",
            "param": None,
            "code": "upstream_error",
        }
    }
    assert "[DONE]" not in data


def test_unexpected_exception_mid_stream_is_an_internal_error_frame() -> None:
    def broken() -> Iterator[StreamEvent]:
        yield TextDelta("partial")
        raise RuntimeError("bug")

    producer = ChunkProducer(completion_id="c", created=1, model="m", include_usage=False)
    data = frames("".join(sse_events(producer.chunks(broken()))))
    error = json.loads(data[-1])["error"]
    assert (error["type"], error["code"]) == ("api_error", "internal_error")
    assert "bug" not in error["message"]
