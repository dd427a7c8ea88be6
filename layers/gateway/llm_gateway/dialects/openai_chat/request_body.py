"""Chat completions requests written from the conversation model: the body an OpenAI-compatible upstream gets.

A request that came in OpenAI's own format is forwarded as the caller sent it, every field and explicit null
included, with only the gateway's decisions applied. A request from another format is rendered from the
conversation model, and what OpenAI's API cannot express is refused with a 400 naming it.
"""

from __future__ import annotations

import copy
from typing import Any

from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Native,
    OpaqueBlock,
    OutputFormat,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from llm_gateway.errors import ProviderRequestError
from llm_gateway.observability import logger

# Anthropic's request metadata names the end user (user_id); OpenAI's `user` field does the same.
_EXTRA_FIELDS = frozenset({"metadata"})
# Fields of OpenAI's Responses API that chat completions takes under the same name and meaning.
# https://platform.openai.com/docs/api-reference/responses/create, .../chat/create
_SAME_IN_CHAT = frozenset(
    {"user", "prompt_cache_key", "safety_identifier", "service_tier", "verbosity", "top_logprobs"}
)
# Responses API fields whose value here changes nothing a chat completion could do: no truncation (the default),
# and a cap on hosted tools' calls, of which a chat completion makes none.
_NEUTRAL_RESPONSES_FIELDS: dict[str, tuple[object, ...] | None] = {"truncation": ("disabled",), "max_tool_calls": None}


def is_native(request: ChatRequest) -> bool:
    """Whether the caller spoke this very format, so its own body goes upstream (`native_body`)."""
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
    output_format = request.output_format
    if output_format is not None:
        body["response_format"] = _response_format(output_format)
    responses = request.native is not None and request.native.dialect == "openai_responses"
    for name, value in request.extra.items():
        if value is None:
            continue
        if responses and name in _SAME_IN_CHAT:
            body[name] = value
            continue
        neutral = _NEUTRAL_RESPONSES_FIELDS.get(name, ()) if responses else ()
        if responses and name in _NEUTRAL_RESPONSES_FIELDS and (neutral is None or value in neutral):
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


def _response_format(output_format: OutputFormat) -> dict[str, Any]:
    """Structured output as chat completions' response_format."""
    if output_format.kind == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": output_format.name, "schema": dict(output_format.schema or {})}
    if output_format.strict is not None:
        schema["strict"] = output_format.strict
    if output_format.description is not None:
        schema["description"] = output_format.description
    return {"type": "json_schema", "json_schema": schema}


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
