"""Anthropic's stream events on InvokeModelWithResponseStream, each passed on whole and read into stream events."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

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
)
from llm_gateway.domain.conversation import StopReason
from llm_gateway.errors import ProviderError
from llm_gateway.providers.bedrock.anthropic_answer import (
    INVOCATION_METRICS,
    METRIC_COUNTS,
    USAGE_FIELDS,
    stop_reason_of,
    usage_of,
)


class StreamReader:
    """Reads InvokeModelWithResponseStream's chunks, each one of Anthropic's stream events as JSON.

    Each event is passed on as it came (a NativeChunk named by its type, without Bedrock's invocation metrics on
    message_stop), followed by what it means in the gateway's terms: text, reasoning and its signature, redacted
    reasoning, tool calls numbered from 0, the stop reason. Usage is gathered from message_start and message_delta
    (cumulative counts), Bedrock's invocation metrics standing in for counts the events lack; the provider reports
    it once the stream has ended.
    """

    def __init__(self, model_id: str) -> None:
        self._model_id = model_id
        self._tool_index_by_block: dict[int, int] = {}
        self._tools_with_arguments: set[int] = set()
        self._counts: dict[str, int] = {}
        self._metrics: dict[str, int] = {}
        self.stop_reason: StopReason | None = None
        self.finished = False

    def read(self, chunk: bytes) -> Iterator[StreamEvent]:
        """The events of one chunk's bytes; ProviderError for a chunk that is not one of Anthropic's events."""
        try:
            data = json.loads(chunk)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ProviderError(f"Bedrock streamed something other than an Anthropic event for '{self._model_id}'.")
        kind: str = data["type"]
        if kind == "error":
            error = data.get("error")
            said = error.get("message") if isinstance(error, dict) else None
            raise ProviderError(f"Bedrock model '{self._model_id}' failed mid-answer: {said or 'no details'}")
        if kind == "message_stop" and INVOCATION_METRICS in data:
            data = dict(data)
            metrics = data.pop(INVOCATION_METRICS)
            if isinstance(metrics, dict):
                self._metrics = {
                    name: metrics[key] for name, key in METRIC_COUNTS.items() if isinstance(metrics.get(key), int)
                }
        yield NativeChunk("anthropic", data, event=kind)
        yield from self._meaning(kind, data)

    @property
    def usage(self) -> Usage | None:
        """The usage so far; None when neither the events nor Bedrock's metrics gave any count."""
        if not self._counts and not self._metrics:
            return None
        return usage_of({**self._metrics, **self._counts})

    def _meaning(self, kind: str, data: Mapping[str, Any]) -> Iterator[StreamEvent]:
        if kind == "message_start":
            message = data.get("message")
            self._count(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "content_block_start":
            yield from self._block_start(data.get("index"), data.get("content_block"))
        elif kind == "content_block_delta":
            yield from self._delta(data.get("index"), data.get("delta"))
        elif kind == "content_block_stop":
            index = data.get("index")
            tool_index = self._tool_index_by_block.get(index) if isinstance(index, int) else None
            # A call without arguments must still carry valid JSON, as the non-streamed answer does.
            if tool_index is not None and tool_index not in self._tools_with_arguments:
                self._tools_with_arguments.add(tool_index)
                yield ToolCallArgumentsDelta(tool_index, "{}")
        elif kind == "message_delta":
            self._count(data.get("usage"))
            delta = data.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if reason is not None and self.stop_reason is None:
                self.stop_reason = stop_reason_of(reason)
                stop_sequence = delta.get("stop_sequence") if isinstance(delta, dict) else None
                yield Finish(self.stop_reason, stop_sequence if isinstance(stop_sequence, str) else None)
        elif kind == "message_stop":
            self.finished = True

    def _count(self, usage: object) -> None:
        if isinstance(usage, dict):
            for name in USAGE_FIELDS:
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    self._counts[name] = value

    def _block_start(self, index: object, block: object) -> Iterator[StreamEvent]:
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            yield TextDelta(block["text"])
        elif kind == "thinking" and block.get("thinking"):
            yield ReasoningDelta(block["thinking"])
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            yield RedactedReasoning(block["data"])
        elif kind == "tool_use" and isinstance(index, int):
            tool_index = self._tool_index_by_block[index] = len(self._tool_index_by_block)
            yield ToolCallStart(tool_index, str(block.get("id", "")), str(block.get("name", "")))
            given = block.get("input")
            if isinstance(given, dict) and given:
                self._tools_with_arguments.add(tool_index)
                yield ToolCallArgumentsDelta(tool_index, json.dumps(given))

    def _delta(self, index: object, delta: object) -> Iterator[StreamEvent]:
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            yield TextDelta(delta["text"])
        elif kind == "thinking_delta" and delta.get("thinking"):
            yield ReasoningDelta(delta["thinking"])
        elif kind == "signature_delta" and delta.get("signature"):
            yield ReasoningSignature(delta["signature"])
        elif kind == "input_json_delta" and delta.get("partial_json"):
            # Server tools (web search...) stream their input too; only the caller's tool calls are events.
            tool_index = self._tool_index_by_block.get(index) if isinstance(index, int) else None
            if tool_index is not None:
                self._tools_with_arguments.add(tool_index)
                yield ToolCallArgumentsDelta(tool_index, delta["partial_json"])
