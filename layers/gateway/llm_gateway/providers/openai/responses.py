"""OpenAI's Responses API passed through to an upstream that serves it (a target with `responses_api: true`): a
request of the Responses surface goes to {base_url}/responses as the caller sent it, with only the gateway's
decisions applied (the target's model id, the output cap, sampling parameters the model does not take, streaming,
nothing stored upstream: the gateway keeps the conversation), and the upstream's answer and events come back as it
sent them (NativeChunk), metered from the usage it reports.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from llm_gateway.dialects.sse import SSEDecoder
from llm_gateway.domain.answers import (
    Completion,
    Finish,
    NativeChunk,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    Dialect,
    Native,
    StopReason,
    TextBlock,
    ToolCallBlock,
)
from llm_gateway.domain.estimate import estimate_prompt_tokens, estimated_usage
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.errors import ProviderError, ProviderTimeoutError
from llm_gateway.observability import logger
from llm_gateway.providers.openai.errors import loads_redacted, malformed, transport_errors, upstream_failure

DIALECT: Dialect = "openai_responses"
PATH = "/responses"
# The events that end a Responses API stream (no [DONE] follows them).
_TERMINAL = frozenset({"response.completed", "response.incomplete"})
_INCOMPLETE: dict[str, StopReason] = {"max_output_tokens": "max_tokens", "content_filter": "content_filter"}


def serves_natively(request: ChatRequest, target: Target) -> bool:
    """Whether the request goes to the target's own Responses API: it came in that format and the target serves it."""
    return target.responses_api and request.native is not None and request.native.dialect == DIALECT


def responses_body(request: ChatRequest, model_id: str, *, stream: bool) -> bytes:
    """The caller's body with the gateway's decisions: the target's model id, the output cap, the sampling
    parameters fitting removed, `stream` as the call needs, `store: false` (the gateway stores the response, and has
    resolved `previous_response_id` into the input already)."""
    native = request.native
    if native is None:
        raise ValueError("only a request of the Responses surface is passed through (serves_natively)")
    body = copy.deepcopy(dict(native.body))
    body["model"] = model_id
    body["stream"] = stream
    body["store"] = False
    body.pop("previous_response_id", None)
    if request.max_output_tokens is not None:
        body["max_output_tokens"] = request.max_output_tokens
    for name in ("temperature", "top_p"):
        if getattr(request, name) is None and body.get(name) is not None:
            del body[name]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def usage_of(response: Mapping[str, Any]) -> Usage | None:
    """The usage of a response object, in the gateway's terms; None when it has none."""
    usage = response.get("usage")
    if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
        return None
    details = usage.get("input_tokens_details") or {}
    output = usage.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=usage["input_tokens"],
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        reasoning_tokens=int(output.get("reasoning_tokens") or 0),
    )


def stop_reason_of(response: Mapping[str, Any]) -> StopReason:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE.get(str(reason), "max_tokens")
    calls = any(item.get("type") in ("function_call", "custom_tool_call") for item in _output(response))
    return "tool_use" if calls else "end_turn"


def completion_of(response: Any, request: ChatRequest, target: Target) -> Completion:
    """The upstream's response object as a completion: its text and calls for the gateway's records, its usage
    (the gateway's estimate when it reports none), and the object itself to forward."""
    if not isinstance(response, dict) or response.get("object") != "response":
        raise malformed(target, "the body is not a response object")
    if response.get("status") == "failed" or isinstance(response.get("error"), dict):
        raise upstream_failure(target, {"error": response.get("error") or {}}, None)
    content: list[ContentBlock] = []
    for item in _output(response):
        if item.get("type") == "message":
            text = "".join(str(part.get("text", "")) for part in item.get("content") or [] if isinstance(part, dict))
            content.append(TextBlock(text))
        elif item.get("type") in ("function_call", "custom_tool_call"):
            arguments = item.get("arguments", item.get("input", ""))
            content.append(ToolCallBlock(str(item.get("call_id", "")), str(item.get("name", "")), str(arguments)))
    usage = usage_of(response) or _estimated(request, [_said(block) for block in content], target)
    return Completion(tuple(content), stop_reason_of(response), usage, native=Native(DIALECT, response))


def stream_events(
    read: Callable[[], bytes], request: ChatRequest, target: Target, key: str | None, deadline: Deadline
) -> Iterator[StreamEvent]:
    """The upstream's events, each forwarded as it was sent (NativeChunk), with what the gateway meters from them:
    text and argument deltas (an estimate if the stream is cut), the stop reason and usage of its terminal
    event. An `error` event or response.failed raises the upstream's error; a stream that ends before its terminal
    event is a provider error."""
    decoder = SSEDecoder()
    produced: list[str] = []
    while True:
        if deadline.expired:
            raise ProviderTimeoutError(f"The provider behind {target.label} streamed past the deadline.")
        with transport_errors(target):
            data = read()
        try:
            frames = decoder.feed(data) if data else decoder.close()
        except UnicodeDecodeError:
            raise malformed(target, "a stream frame is not UTF-8") from None
        for _, payload in frames:
            try:
                event = loads_redacted(payload, key)
            except ValueError:
                raise malformed(target, "a stream frame is not JSON") from None
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise malformed(target, "a stream event has no type")
            kind = event["type"]
            if kind in {"error", "response.failed"}:
                failure = event.get("error") or (event.get("response") or {}).get("error") or {}
                raise upstream_failure(target, {"error": failure}, key)
            yield NativeChunk(DIALECT, event, kind)
            if kind == "response.output_text.delta":
                produced.append(str(event.get("delta", "")))
                yield TextDelta(str(event.get("delta", "")))
            elif kind == "response.function_call_arguments.delta":
                produced.append(str(event.get("delta", "")))
                yield ToolCallArgumentsDelta(int(event.get("output_index") or 0), str(event.get("delta", "")))
            elif kind in _TERMINAL:
                response = event.get("response") or {}
                yield Finish(stop_reason_of(response))
                usage = usage_of(response)
                if usage is None:
                    usage = _estimated(request, produced, target)
                yield UsageReport(usage)
                return
        if not data:
            logger.warning("The provider's stream ended early", extra={"target": target.label})
            raise ProviderError(f"The provider behind {target.label} stopped mid-answer: stream ended early.")


def _said(block: ContentBlock) -> str:
    if isinstance(block, ToolCallBlock):
        return block.name + block.arguments
    return block.text if isinstance(block, TextBlock) else ""


def _output(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [item for item in response.get("output") or [] if isinstance(item, dict)]


def _estimated(request: ChatRequest, produced: list[str], target: Target) -> Usage:
    """The gateway's estimate for an answer the upstream did not meter, logged as such."""
    usage = estimated_usage(estimate_prompt_tokens(request), produced)
    logger.warning(
        "The provider reported no token usage; it was estimated",
        extra={"target": target.label, "prompt_tokens": usage.prompt_tokens},
    )
    return usage
