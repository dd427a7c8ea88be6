"""Stream events written as OpenAI's chat.completion.chunk objects in SSE frames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llm_gateway.dialects.openai_chat.answer import finish_reason, usage_body
from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.dialects.openai_chat.schemas import (
    FinishReason,
)
from llm_gateway.dialects.sse import guarded_frames
from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.ports import closed_after


class ChunkProducer:
    """Turns stream events into OpenAI `chat.completion.chunk` objects.

    When the provider streams in OpenAI's own dialect (its first event is a `NativeChunk`), its chunks are
    forwarded as they are; otherwise chunks are built from the events. Either way the usage and finish reason
    seen are remembered, so streamed calls are metered like the others.
    """

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._model = model
        self._include_usage = include_usage
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None

    def _chunk(self, delta: dict[str, Any], finish: FinishReason | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self, events: Iterable[StreamEvent]) -> Iterator[dict[str, Any]]:
        with closed_after(events):
            iterator = iter(events)
            first = next(iterator, None)
            if isinstance(first, NativeChunk) and first.dialect == "openai":
                yield from self._forwarded(first, iterator)
                return
            yield self._chunk({"role": "assistant", "content": ""})
            if first is not None:
                yield from self._built(first)
            for event in iterator:
                yield from self._built(event)
        if self._include_usage and self.usage is not None:
            yield {**self._base, "choices": [], "usage": usage_body(self.usage).model_dump(exclude_none=True)}

    def _built(self, event: StreamEvent) -> Iterator[dict[str, Any]]:
        if isinstance(event, TextDelta):
            yield self._chunk({"content": event.text})
        elif isinstance(event, ReasoningDelta):
            yield self._chunk({"reasoning_content": event.text})
        elif isinstance(event, ToolCallStart):
            function = {"name": event.name, "arguments": ""}
            yield self._chunk(
                {"tool_calls": [{"index": event.index, "id": event.id, "type": "function", "function": function}]}
            )
        elif isinstance(event, ToolCallArgumentsDelta):
            yield self._chunk({"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]})
        elif isinstance(event, Finish):
            self.finish_reason = finish_reason(event.reason)
            yield self._chunk({}, self.finish_reason)
        elif isinstance(event, UsageReport):
            self.usage = event.usage

    def _forwarded(self, first: NativeChunk, events: Iterator[StreamEvent]) -> Iterator[dict[str, Any]]:
        chunk = self._native(first.data)
        if chunk is not None:
            yield chunk
        for event in events:
            if isinstance(event, NativeChunk):
                chunk = self._native(event.data)
                if chunk is not None:
                    yield chunk
            elif isinstance(event, Finish):
                self.finish_reason = finish_reason(event.reason)
            elif isinstance(event, UsageReport):
                self.usage = event.usage

    def _native(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """An upstream chunk as the caller gets it: under the public model name, and without the usage the
        gateway asked for on its own account (a usage-only chunk is dropped, a null `usage` key removed)."""
        chunk = {**data, "model": self._model} if "model" in data else dict(data)
        if not self._include_usage and "usage" in chunk:
            if not chunk.get("choices"):
                return None
            del chunk["usage"]
        return chunk


def sse_frame(data: Mapping[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {payload}\n\n"


def sse_events(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    """SSE frames ending in `data: [DONE]`; an error after the stream began becomes an error frame instead."""
    if (yield from guarded_frames(chunks, sse_frame, lambda error: sse_frame(error_body(error)))):
        yield sse_frame("[DONE]")
