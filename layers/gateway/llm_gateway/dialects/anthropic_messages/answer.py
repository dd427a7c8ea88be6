"""Completions written as Anthropic's message objects.

A message that Bedrock's InvokeModel gave in Anthropic's own format (`native`) goes back as the model sent it,
every block and field included, under the public model name. Others are built from the conversation model.
Shape: https://docs.anthropic.com/en/api/messages"""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import (
    ContentBlock,
    OpaqueBlock,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolCallBlock,
)

# Stop reasons in Anthropic's terms: the same names, but a content filter reads as a refusal.
_STOP_REASONS: dict[StopReason, str] = {"content_filter": "refusal"}
# Bedrock adds its invocation metrics to the last event and the message: no part of Anthropic's format.
BEDROCK_METRICS = "amazon-bedrock-invocationMetrics"


def stop_reason(reason: StopReason) -> str:
    return _STOP_REASONS.get(reason, reason)


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic's usage: input_tokens counts only the tokens neither read from nor written to the cache."""
    return {
        "input_tokens": usage.uncached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def block_json(block: ContentBlock) -> dict[str, Any] | None:
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
        body = {name: value for name, value in native.body.items() if name != BEDROCK_METRICS}
        return json.dumps({**body, "model": model}, separators=(",", ":"), ensure_ascii=False)
    content = [part for block in completion.content if (part := block_json(block)) is not None]
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
