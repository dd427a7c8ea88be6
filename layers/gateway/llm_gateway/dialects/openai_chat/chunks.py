"""The chat.completion.chunk objects an OpenAI-compatible upstream streams, read into stream events (the SSE frames
around them are decoded by dialects/sse.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llm_gateway.dialects.openai_chat.completion import (
    UpstreamFaults,
    arguments_of,
    reasoning_of,
    stop_reason,
    text_of,
    usage_of,
)
from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
)
from llm_gateway.domain.conversation import StopReason


class StreamAssembler:
    """Turns upstream `chat.completion.chunk` objects into stream events, keeping what the end needs; each chunk
    is also passed on whole (`NativeChunk`) when the caller speaks OpenAI's dialect. What breaks the format raises
    `faults.malformed`, an error the upstream reported in a chunk `faults.reported`."""

    def __init__(self, faults: UpstreamFaults, *, native: bool) -> None:
        self._faults = faults
        self._native = native
        self.stop_reason: StopReason | None = None
        self.usage: Usage | None = None
        # What the model produced (text, reasoning, tool names and arguments), for an estimate when no usage comes.
        self.produced: list[str] = []
        self._refused = False
        self._names: dict[int, str] = {}
        self._by_id: dict[str, int] = {}
        self._by_upstream: dict[int, int] = {}
        self._last: int | None = None
        # The index given to each tool call entry of the chunk being read, in order.
        self._assigned: list[int] = []

    def events(self, chunk: object) -> Iterator[StreamEvent]:
        if not isinstance(chunk, dict):
            raise self._faults.malformed("a stream chunk is not an object")
        if chunk.get("error"):
            raise self._faults.reported(chunk)
        if not self._native:
            yield from self._read(chunk)
            return
        self._assigned = []
        events = list(self._read(chunk))
        yield NativeChunk("openai", with_tool_call_indexes(chunk, self._assigned))
        yield from events

    def _read(self, chunk: dict[str, Any]) -> Iterator[StreamEvent]:
        # Servers differ on where usage comes (a final chunk, or every chunk with running totals), so
        # the latest one wins and is reported once at the end.
        self.usage = usage_of(chunk.get("usage")) or self.usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise self._faults.malformed("choices is not a list")
        if not choices:
            return
        choice = choices[0]
        if not isinstance(choice, dict):
            raise self._faults.malformed("a choice is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise self._faults.malformed("a delta is not an object")
        reasoning = reasoning_of(delta)
        if reasoning:
            self.produced.append(reasoning)
            yield ReasoningDelta(reasoning)
        content = text_of(delta.get("content"))
        refusal = delta.get("refusal")
        if not content and isinstance(refusal, str) and refusal:
            self._refused = True
            content = refusal
        if content:
            self.produced.append(content)
            yield TextDelta(content)
        tool_calls = delta.get("tool_calls") or []
        if not isinstance(tool_calls, list):
            raise self._faults.malformed("tool_calls is not a list")
        for entry in tool_calls:
            yield from self._tool_call(entry)
        reason = choice.get("finish_reason")
        if reason is not None and self.stop_reason is None:
            self.stop_reason = stop_reason(reason, self._refused)
            yield Finish(self.stop_reason)

    @property
    def called_tools(self) -> bool:
        return bool(self._names)

    def _tool_call(self, entry: object) -> Iterator[StreamEvent]:
        if not isinstance(entry, dict):
            raise self._faults.malformed("a tool call delta is not an object")
        function = entry.get("function") or {}
        if not isinstance(function, dict):
            raise self._faults.malformed("a tool call function is not an object")
        raw_id, raw_index = entry.get("id"), entry.get("index")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        upstream = raw_index if isinstance(raw_index, int) else None
        index = self._index_for(call_id, upstream)
        self._assigned.append(index)
        if index not in self._names:
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise self._faults.malformed("tool call arguments arrived before the call's name")
            self._names[index] = name
            if call_id is not None:
                self._by_id[call_id] = index
            self.produced.append(name)
            yield ToolCallStart(index, call_id or f"call_{index}", name)
        self._last = index
        arguments = arguments_of(function.get("arguments"))
        if arguments:
            self.produced.append(arguments)
            yield ToolCallArgumentsDelta(index, arguments)

    def _index_for(self, call_id: str | None, upstream: int | None) -> int:
        """The call an entry belongs to: its id, else its upstream index, else the latest call.

        A new call keeps its upstream index unless that is taken (some servers send every call with
        index 0) or missing (some omit it); then it gets the next free index, in order of appearance.
        """
        if call_id is not None and call_id in self._by_id:
            return self._by_id[call_id]
        if call_id is None and upstream is not None and upstream in self._by_upstream:
            return self._by_upstream[upstream]
        if call_id is None and upstream is None and self._last is not None:
            return self._last
        index = upstream if upstream is not None and upstream not in self._names else max(self._names, default=-1) + 1
        if upstream is not None:
            self._by_upstream[upstream] = index
        return index


def with_tool_call_indexes(chunk: dict[str, Any], indexes: list[int]) -> dict[str, Any]:
    """The chunk with its tool call entries (`choices[0].delta.tool_calls`) renumbered to `indexes`, the one
    correction pass-through makes: some upstreams stream parallel calls with distinct ids under one `index`
    (BerriAI/litellm#33678), which OpenAI's SDKs merge into one call. The chunk itself when nothing changes;
    otherwise a copy in which only those `index` values differ."""
    try:
        entries = chunk["choices"][0]["delta"]["tool_calls"]
    except (KeyError, IndexError, TypeError):
        return chunk
    if not isinstance(entries, list) or all(
        not isinstance(entry, dict) or entry.get("index") == index
        for entry, index in zip(entries, indexes, strict=False)
    ):
        return chunk
    repaired = [
        {**entry, "index": index} if isinstance(entry, dict) and entry.get("index") != index else entry
        for entry, index in zip(entries, indexes, strict=False)
    ]
    choice = chunk["choices"][0]
    delta = {**choice["delta"], "tool_calls": repaired + entries[len(repaired) :]}
    return {**chunk, "choices": [{**choice, "delta": delta}, *chunk["choices"][1:]]}
