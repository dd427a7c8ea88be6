"""The gateway's answers in Anthropic's shapes: messages, server-sent events, model lists, errors.

A message that Bedrock's InvokeModel gave in Anthropic's own dialect (`native`) goes back as the model sent it,
every block and field included, under the public model name. Others are built from the conversation model.
Shapes: https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/messages-streaming,
https://docs.anthropic.com/en/api/errors, https://docs.anthropic.com/en/api/models-list
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from llm_gateway.api.http import guarded_frames
from llm_gateway.domain.conversation import (
    Completion,
    ContentBlock,
    Finish,
    NativeChunk,
    OpaqueBlock,
    ReasoningBlock,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallBlock,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.ports import closed_after
from llm_gateway.domain.registry import ModelEntry
from llm_gateway.errors import GatewayError
from llm_gateway.observability import logger

# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors); the SDKs pick their
# exception class by status, Claude Code reads the type.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Stop reasons in Anthropic's terms: the same names, but a content filter reads as a refusal.
_STOP_REASONS: dict[StopReason, str] = {"content_filter": "refusal"}
_BEDROCK_ONLY = "amazon-bedrock-invocationMetrics"


def stop_reason(reason: StopReason) -> str:
    return _STOP_REASONS.get(reason, reason)


def error_body(error: GatewayError, request_id: str = "") -> dict[str, Any]:
    """{"type": "error", "error": {"type", "message"}, "request_id"}; the gateway's own error code is kept as
    `code` (and the parameter at fault as `param`) for callers that read them."""
    detail: dict[str, Any] = {"type": ERROR_TYPES.get(error.status, "api_error"), "message": error.message}
    if error.code:
        detail["code"] = error.code
    if error.param:
        detail["param"] = error.param
    body: dict[str, Any] = {"type": "error", "error": detail}
    if request_id:
        body["request_id"] = request_id
    return body


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic's usage: input_tokens counts only the tokens neither read from nor written to the cache."""
    return {
        "input_tokens": usage.uncached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def _block_json(block: ContentBlock) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ReasoningBlock):
        if block.redacted is not None:
            return {"type": "redacted_thinking", "data": block.redacted}
        return {"type": "thinking", "thinking": block.text, "signature": block.signature or ""}
    if isinstance(block, ToolCallBlock):
        parsed = block.parsed_arguments()
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": parsed if parsed is not None else {}}
    if isinstance(block, OpaqueBlock) and block.dialect == "anthropic":
        return dict(block.data)
    return None


def message_json(completion: Completion, *, message_id: str, model: str) -> str:
    """The message JSON for an answer: the model's own when it answered in Anthropic's dialect."""
    native = completion.native
    if native is not None and native.dialect == "anthropic":
        body = {name: value for name, value in native.body.items() if name != _BEDROCK_ONLY}
        return json.dumps({**body, "model": model}, separators=(",", ":"), ensure_ascii=False)
    content = [part for block in completion.content if (part := _block_json(block)) is not None]
    return json.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason(completion.stop_reason),
            "stop_sequence": completion.stop_sequence,
            "usage": usage_json(completion.usage),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


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
        elif _BEDROCK_ONLY in data:
            data = {name: value for name, value in data.items() if name != _BEDROCK_ONLY}
        return kind, data


def sse_frame(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def sse_events(events: Iterator[tuple[str, Mapping[str, Any]]]) -> Iterator[str]:
    """SSE frames with event names (Anthropic's SDKs skip unnamed events); an error after the stream began
    becomes an `error` event."""
    yield from guarded_frames(
        events, lambda event: sse_frame(*event), lambda error: sse_frame("error", error_body(error))
    )


def _created_at(entry: ModelEntry) -> str:
    return datetime.fromtimestamp(entry.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_info(name: str, entry: ModelEntry) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": _created_at(entry),
        # Every model the registry serves can be called.
        "lifecycle": "active",
    }
    limits = entry.traits.limits
    if limits.context_window is not None:
        info["max_input_tokens"] = limits.context_window
    if limits.max_output_tokens is not None:
        info["max_tokens"] = limits.max_output_tokens
    return info


def model_page(
    models: Sequence[tuple[str, ModelEntry]], *, limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """One page of the model list in Anthropic's shape, in the registry's order; after_id/before_id are ids
    of the list (an unknown id pages from the start, or the end)."""
    names = [name for name, _ in models]
    start, stop = 0, len(models)
    if after_id is not None:
        start = names.index(after_id) + 1 if after_id in names else len(names)
    if before_id is not None:
        stop = names.index(before_id) if before_id in names else 0
        start = max(start, stop - limit)
    selected = list(models[start:stop])
    page = selected[:limit]
    data = [model_info(name, entry) for name, entry in page]
    return {
        "data": data,
        "has_more": len(selected) > limit or (before_id is not None and start > 0),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
