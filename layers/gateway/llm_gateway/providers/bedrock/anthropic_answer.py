"""Anthropic's message answers on InvokeModel read into the conversation model, the message kept whole (`native`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import (
    ContentBlock,
    Native,
    OpaqueBlock,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolCallBlock,
)
from llm_gateway.errors import ProviderError

# Anthropic's stop reasons in the gateway's terms; a reason added later reads as a plain end of turn (the native
# answer keeps the original for the caller either way).
STOP_REASONS: Mapping[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "pause_turn": "pause_turn",
    # The answer was cut because the context window filled up: a length stop for every client.
    "model_context_window_exceeded": "max_tokens",
}


# The Bedrock-only key of a stream's message_stop event: token counts and latencies of the invocation.
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"


# Its token counts, by the name of the Anthropic usage field each stands in for.
METRIC_COUNTS: Mapping[str, str] = {
    "input_tokens": "inputTokenCount",
    "output_tokens": "outputTokenCount",
    "cache_read_input_tokens": "cacheReadInputTokenCount",
    "cache_creation_input_tokens": "cacheWriteInputTokenCount",
}


USAGE_FIELDS = tuple(METRIC_COUNTS)


def stop_reason_of(value: object) -> StopReason:
    return STOP_REASONS.get(value, "end_turn") if isinstance(value, str) else "end_turn"


def usage_of(counts: Mapping[str, Any]) -> Usage:
    """Anthropic's usage in the gateway's terms: input_tokens leaves out the cache reads and writes, which the
    gateway's prompt_tokens counts, as OpenAI's does."""

    def count(name: str) -> int:
        value = counts.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    cache_read, cache_write = count("cache_read_input_tokens"), count("cache_creation_input_tokens")
    return Usage(
        prompt_tokens=count("input_tokens") + cache_read + cache_write,
        completion_tokens=count("output_tokens"),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _extra(block: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in block.items() if name not in known}


def content_block(block: Mapping[str, Any], path: str = "") -> ContentBlock:
    """One content block of Anthropic's message in the conversation model; a kind the gateway does not interpret
    (server tool use and results, ...) whole, as an OpaqueBlock."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return TextBlock(block["text"], extra=_extra(block, ("type", "text")), path=path)
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        signature = block.get("signature")
        return ReasoningBlock(
            block["thinking"],
            signature=signature if isinstance(signature, str) else None,
            extra=_extra(block, ("type", "thinking", "signature")),
            path=path,
        )
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        return ReasoningBlock(redacted=block["data"], extra=_extra(block, ("type", "data")), path=path)
    if kind == "tool_use" and isinstance(block.get("id"), str) and isinstance(block.get("name"), str):
        return ToolCallBlock(
            block["id"],
            block["name"],
            json.dumps(block.get("input", {})),
            extra=_extra(block, ("type", "id", "name", "input")),
            path=path,
        )
    return OpaqueBlock("anthropic", kind if isinstance(kind, str) else "unknown", dict(block), path=path)


def completion_of(payload: Any, model_id: str) -> Completion:
    """InvokeModel's answer, Anthropic's message object, in the conversation model, the message itself kept as
    the native answer.

    Raises ProviderError (502) for an answer that is not a message or has no usage (the call cannot be metered).
    """
    content = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise ProviderError(f"Bedrock model '{model_id}' answered with something other than an Anthropic message.")
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        raise ProviderError(f"Bedrock model '{model_id}' answered without token usage, so the call cannot be metered.")
    blocks = tuple(content_block(block, f"content[{number}]") for number, block in enumerate(content))
    stop_sequence = payload.get("stop_sequence")
    return Completion(
        blocks,
        stop_reason_of(payload.get("stop_reason")),
        usage_of(usage),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        native=Native("anthropic", payload),
    )
