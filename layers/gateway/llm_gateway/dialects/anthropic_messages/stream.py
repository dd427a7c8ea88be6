"""Stream events written as Anthropic's named server-sent events
(https://docs.anthropic.com/en/api/messages-streaming)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llm_gateway.dialects.anthropic_messages.answer import BEDROCK_METRICS, stop_reason, usage_json
from llm_gateway.dialects.anthropic_messages.errors import error_body
from llm_gateway.dialects.sse import guarded_frames
from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.ports import closed_after
from llm_gateway.observability import logger


class EventProducer:
    """Turns stream events into Anthropic's server-sent events as (event name, data) pairs.

    When the provider streams in Anthropic's own dialect (its first event is a `NativeChunk`), its events are
    forwarded as they are (model name replaced, Bedrock's invocation metrics removed); otherwise the events are
    built: message_start, a ping, each content block's start, deltas and stop, then message_delta with the stop
    reason and the whole usage, and message_stop.
    """

    def __init__(self, *, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        self._index = -1
        self._open: str | None = None
        self._tool_blocks: dict[int, int] = {}
        self._finish: Finish | None = None
        self.usage: Usage | None = None

    def events(self, events: Iterable[StreamEvent]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        with closed_after(events):
            iterator = iter(events)
            first = next(iterator, None)
            if isinstance(first, NativeChunk) and first.dialect == "anthropic":
                yield from self._forwarded(first, iterator)
                return
            yield "message_start", self._message_start()
            yield "ping", {"type": "ping"}
            if first is not None:
                yield from self._built(first)
            for event in iterator:
                yield from self._built(event)
        yield from self._close_block()
        finish = self._finish
        delta = {
            "stop_reason": stop_reason(finish.reason) if finish else "end_turn",
            "stop_sequence": finish.stop_sequence if finish else None,
        }
        usage = usage_json(self.usage or Usage(0, 0))
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": usage}
        yield "message_stop", {"type": "message_stop"}

    def _message_start(self) -> dict[str, Any]:
        return {
            "type": "message_start",
            "message": {
                "id": self._id,
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                # Input usage is known only when the model finishes; message_delta carries all of it.
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        }

    def _start(self, kind: str, block: dict[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        yield from self._close_block()
        self._index += 1
        self._open = kind
        yield "content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}

    def _delta(self, delta: dict[str, Any]) -> tuple[str, Mapping[str, Any]]:
        return "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close_block(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if self._open is not None:
            self._open = None
            yield "content_block_stop", {"type": "content_block_stop", "index": self._index}

    def _built(self, event: StreamEvent) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if isinstance(event, TextDelta):
            if self._open != "text":
                yield from self._start("text", {"type": "text", "text": ""})
            yield self._delta({"type": "text_delta", "text": event.text})
        elif isinstance(event, ReasoningDelta):
            if self._open != "thinking":
                yield from self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            yield self._delta({"type": "thinking_delta", "thinking": event.text})
        elif isinstance(event, ReasoningSignature):
            if self._open != "thinking":
                yield from self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            yield self._delta({"type": "signature_delta", "signature": event.signature})
            yield from self._close_block()
        elif isinstance(event, RedactedReasoning):
            yield from self._start("redacted_thinking", {"type": "redacted_thinking", "data": event.data})
            yield from self._close_block()
        elif isinstance(event, ToolCallStart):
            yield from self._start("tool_use", {"type": "tool_use", "id": event.id, "name": event.name, "input": {}})
            self._tool_blocks[event.index] = self._index
        elif isinstance(event, ToolCallArgumentsDelta):
            index = self._tool_blocks.get(event.index)
            if index is not None and index == self._index and self._open == "tool_use":
                yield self._delta({"type": "input_json_delta", "partial_json": event.arguments})
            else:
                logger.warning("tool call arguments for a block already closed were dropped")
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, UsageReport):
            self.usage = event.usage

    def _forwarded(self, first: NativeChunk, events: Iterator[StreamEvent]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        yield self._native(first)
        for event in events:
            if isinstance(event, NativeChunk):
                yield self._native(event)
            elif isinstance(event, Finish):
                self._finish = event
            elif isinstance(event, UsageReport):
                self.usage = event.usage

    def _native(self, chunk: NativeChunk) -> tuple[str, Mapping[str, Any]]:
        data = chunk.data
        kind = chunk.event or str(data.get("type", "message"))
        if kind == "message_start" and isinstance(data.get("message"), dict):
            data = {**data, "message": {**data["message"], "model": self._model}}
        elif BEDROCK_METRICS in data:
            data = {name: value for name, value in data.items() if name != BEDROCK_METRICS}
        return kind, data


def sse_frame(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def sse_events(events: Iterator[tuple[str, Mapping[str, Any]]]) -> Iterator[str]:
    """SSE frames with event names (Anthropic's SDKs skip unnamed events); an error after the stream began
    becomes an `error` event."""
    yield from guarded_frames(
        events, lambda event: sse_frame(*event), lambda error: sse_frame("error", error_body(error))
    )
