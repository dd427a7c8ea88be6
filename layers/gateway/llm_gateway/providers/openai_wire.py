"""OpenAI's chat completions dialect as upstreams speak it: the request body an upstream gets, and its answers
(whole, or as a stream of chunks) read into the gateway's conversation model.

A request that came in OpenAI's own dialect is forwarded as the caller sent it, every field and explicit null
included, with only the gateway's decisions applied; its answer is kept whole (`native`) for the caller. A
request from another dialect is rendered from the conversation model, and what OpenAI's API cannot express is
refused with a 400 naming it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llm_gateway.domain.budget import estimate_prompt_tokens, estimated_usage
from llm_gateway.domain.conversation import (
    ChatRequest,
    Completion,
    ContentBlock,
    DocumentBlock,
    Finish,
    ImageBlock,
    Native,
    NativeChunk,
    OpaqueBlock,
    ReasoningBlock,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallBlock,
    ToolCallStart,
    ToolResultBlock,
    Usage,
)
from llm_gateway.domain.registry import Target
from llm_gateway.errors import ProviderRequestError
from llm_gateway.observability import logger
from llm_gateway.providers.openai_errors import malformed, upstream_failure

_STOP_REASONS: Mapping[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    # The legacy function calling's reason.
    "function_call": "tool_use",
    "content_filter": "content_filter",
}
# Where reasoning comes in answers: vLLM and DeepSeek say reasoning_content, newer vLLM and OpenRouter reasoning.
_REASONING_FIELDS = ("reasoning_content", "reasoning")
# Anthropic's request metadata names the end user (user_id); OpenAI's `user` field does the same.
_EXTRA_FIELDS = frozenset({"metadata"})


def _stop_reason(value: object, refused: bool) -> StopReason:
    """OpenAI's finish reasons in the gateway's terms; an answer that is a refusal stops as one."""
    reason = _STOP_REASONS.get(value, "end_turn") if isinstance(value, str) else "end_turn"
    return "refusal" if refused and reason == "end_turn" else reason


def is_native(request: ChatRequest) -> bool:
    return request.native is not None and request.native.dialect == "openai"


def request_body(request: ChatRequest, model_id: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body for an upstream's /chat/completions."""
    native = request.native
    body = native_body(request, native) if native is not None and native.dialect == "openai" else rendered_body(request)
    body["model"] = model_id
    body["stream"] = stream
    if stream:
        # Always asked for, so that streamed calls are metered even when the caller did not ask.
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        # OpenAI refuses stream_options on a request that does not stream.
        body.pop("stream_options", None)
    return body


def native_body(request: ChatRequest, native: Native) -> dict[str, Any]:
    """The caller's own body, every field and explicit null as sent, with the gateway's decisions applied: the
    output cap (in the fields the caller used, else max_completion_tokens) and the sampling parameters the
    model does not take (which the conversation model no longer carries) removed."""
    body = copy.deepcopy(dict(native.body))
    cap = request.max_output_tokens
    if cap is not None:
        named = [name for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
        for name in named or ["max_completion_tokens"]:
            body[name] = cap
    for name in ("temperature", "top_p"):
        if getattr(request, name) is None and body.get(name) is not None:
            del body[name]
    return body


def rendered_body(request: ChatRequest) -> dict[str, Any]:
    """The request of another dialect in OpenAI's terms; a 400 naming what OpenAI's API cannot express."""
    messages: list[dict[str, Any]] = []
    system = [_part(block) for block in request.system]
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "user":
            parts: list[dict[str, Any]] = []
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    messages.append({"role": "tool", "tool_call_id": block.tool_call_id, "content": _result(block)})
                else:
                    parts.append(_part(block))
            if parts:
                messages.append({"role": "user", "content": parts})
        else:
            messages.append(_assistant(message.content))
    body: dict[str, Any] = {"messages": messages}
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": dict(tool.parameters or {"type": "object", "properties": {}}),
                },
            }
            for tool in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
        )
        if choice.parallel is not None and request.tools:
            body["parallel_tool_calls"] = choice.parallel
    reasoning = request.reasoning
    if reasoning is not None and reasoning.enabled:
        body["reasoning_effort"] = reasoning.effort or _effort(reasoning.budget_tokens)
    for name, value in request.extra.items():
        if value is None:
            continue
        if name in _EXTRA_FIELDS and isinstance(value, dict) and set(value) <= {"user_id"}:
            if isinstance(value.get("user_id"), str):
                body["user"] = value["user_id"]
            continue
        raise ProviderRequestError(
            f"OpenAI-compatible upstreams take no '{name}'; leave it out for this model.",
            param=name,
            code="unsupported_parameter",
        )
    return body


def _effort(budget: int | None) -> str:
    """A thinking budget as OpenAI's coarser effort levels (Anthropic's minimum budget is 1,024 tokens)."""
    if budget is None or budget >= 16_384:
        return "high"
    return "medium" if budget >= 4_096 else "low"


def _part(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        url = block.url or f"data:{block.media_type};base64,{block.base64}"
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block, DocumentBlock) and block.text is not None:
        return {"type": "text", "text": block.text}
    if isinstance(block, DocumentBlock) and block.base64 is not None:
        data = f"data:{block.media_type};base64,{block.base64}"
        return {"type": "file", "file": {"file_data": data, "filename": block.name or "document"}}
    if isinstance(block, OpaqueBlock) and block.dialect == "openai":
        return dict(block.data)
    raise _cannot_express(block)


def _result(block: ToolResultBlock) -> str:
    texts = []
    for inner in block.content:
        if not isinstance(inner, TextBlock):
            raise _cannot_express(inner)
        texts.append(inner.text)
    return "\n".join(texts)


def _assistant(content: tuple[ContentBlock, ...]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolCallBlock):
            calls.append(
                {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": block.arguments}}
            )
        elif isinstance(block, ReasoningBlock):
            # Reasoning of earlier turns is not input for OpenAI-compatible models (DeepSeek refuses it).
            logger.info("reasoning of an earlier turn not sent", extra={"path": block.path})
        else:
            raise _cannot_express(block)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _cannot_express(block: ContentBlock) -> ProviderRequestError:
    kind = block.type if isinstance(block, OpaqueBlock) else type(block).__name__.removesuffix("Block").lower()
    return ProviderRequestError(
        f"OpenAI-compatible upstreams take no {kind} content here; leave it out for this model.",
        param=block.path or None,
        code="unsupported_content",
    )


# --- answers ----------------------------------------------------------------------------------------------


def usage_of(value: object) -> Usage | None:
    """The usage object of an upstream answer, or None when it is absent or unusable."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(
        max(0, prompt),
        max(0, completion),
        cached_tokens=_detail(value, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(value, "completion_tokens_details", "reasoning_tokens"),
    )


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int:
    details = usage.get(group)
    count = details.get(name) if isinstance(details, dict) else None
    return count if isinstance(count, int) and count > 0 else 0


def _text(content: object) -> str | None:
    """Message content as text; a few servers send a list of parts instead of a string."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return None


def _arguments(value: object) -> str:
    """Tool call arguments as the JSON string OpenAI defines; some servers send the object itself."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


def _reasoning(container: Mapping[str, Any]) -> str | None:
    for name in _REASONING_FIELDS:
        value = container.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def completion_of(payload: Any, request: ChatRequest, target: Target, key: str | None) -> Completion:
    """An upstream's chat.completion in the conversation model; the payload itself kept when the caller speaks
    OpenAI's dialect."""
    if isinstance(payload, dict) and payload.get("error"):
        raise upstream_failure(target, payload, key)
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed(target, "no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise malformed(target, "the choice has no message")
    blocks: list[ContentBlock] = []
    reasoning = _reasoning(message)
    if reasoning:
        blocks.append(ReasoningBlock(reasoning))
    content = _text(message.get("content"))
    refusal = message.get("refusal")
    if content:
        blocks.append(TextBlock(content))
    elif isinstance(refusal, str) and refusal:
        blocks.append(TextBlock(refusal, extra={"refusal": True}))
    for number, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(name, str):
            raise malformed(target, "a tool call has no function name")
        call_id = call.get("id")
        blocks.append(
            ToolCallBlock(
                call_id if isinstance(call_id, str) and call_id else f"call_{number}",
                name,
                _arguments(function.get("arguments")),
            )
        )
    usage = usage_of(payload.get("usage"))
    if usage is None:
        produced = [block.text for block in blocks if isinstance(block, TextBlock | ReasoningBlock)]
        produced += [text for b in blocks if isinstance(b, ToolCallBlock) for text in (b.name, b.arguments)]
        usage = unmetered_usage(request, produced, target, streamed=False)
    refused = not content and isinstance(refusal, str) and bool(refusal)
    return Completion(
        tuple(blocks),
        _stop_reason(choice.get("finish_reason"), refused),
        usage,
        native=Native("openai", payload) if is_native(request) else None,
    )


def unmetered_usage(request: ChatRequest, produced: Iterable[str], target: Target, *, streamed: bool) -> Usage:
    """The gateway's own estimate of a call the upstream did not meter (`estimated_usage`), logged as such."""
    usage = estimated_usage(estimate_prompt_tokens(request), produced)
    logger.warning(
        "The provider reported no token usage; it was estimated",
        extra={
            "target": target.label,
            "streamed": streamed,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
    )
    return usage


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
        reasoning = _reasoning(delta)
        if reasoning:
            self.produced.append(reasoning)
            yield ReasoningDelta(reasoning)
        content = _text(delta.get("content"))
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
            self.stop_reason = _stop_reason(reason, self._refused)
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
        arguments = _arguments(function.get("arguments"))
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
