"""An upstream's stream of chat.completion.chunk events read into stream events: SSE decoding, then assembly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
from llm_gateway.domain.registry import Target
from llm_gateway.providers.openai.answer import (
    arguments_of,
    reasoning_of,
    stop_reason,
    text_of,
    usage_of,
)
from llm_gateway.providers.openai.errors import malformed, upstream_failure


class SSEDecoder:
    """An incremental Server-Sent Events parser: bytes in (split anywhere), (event, data) pairs out.

    Lines end in LF or CRLF (every OpenAI-compatible server uses one of them); comment lines and fields
    other than `event` and `data` are ignored, as the SSE specification says.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        events: list[tuple[str, str]] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            # Decoding whole lines only, so a UTF-8 character split across reads is reassembled first.
            line = bytes(self._buffer[:end]).rstrip(b"\r").decode("utf-8")
            del self._buffer[: end + 1]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[tuple[str, str]]:
        """Events still pending at the end of the body: servers may omit the final blank line."""
        events = self.feed(b"\n") if self._buffer else []
        event = self._line("")
        return events if event is None else [*events, event]

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            event, self._event = self._event or "message", ""
            data, self._data = self._data, []
            return (event, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


class StreamAssembler:
    """Turns upstream `chat.completion.chunk` objects into stream events, keeping what the end needs; each chunk
    is also passed on whole (`NativeChunk`) when the caller speaks OpenAI's dialect."""

    def __init__(self, target: Target, key: str | None, *, native: bool) -> None:
        self._target = target
        self._key = key
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
            raise malformed(self._target, "a stream chunk is not an object")
        if chunk.get("error"):
            raise upstream_failure(self._target, chunk, self._key)
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
            raise malformed(self._target, "choices is not a list")
        if not choices:
            return
        choice = choices[0]
        if not isinstance(choice, dict):
            raise malformed(self._target, "a choice is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise malformed(self._target, "a delta is not an object")
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
            raise malformed(self._target, "tool_calls is not a list")
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
            raise malformed(self._target, "a tool call delta is not an object")
        function = entry.get("function") or {}
        if not isinstance(function, dict):
            raise malformed(self._target, "a tool call function is not an object")
        raw_id, raw_index = entry.get("id"), entry.get("index")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        upstream = raw_index if isinstance(raw_index, int) else None
        index = self._index_for(call_id, upstream)
        self._assigned.append(index)
        if index not in self._names:
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise malformed(self._target, "tool call arguments arrived before the call's name")
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
