"""Converse answers read into the conversation model: content, stop reasons, usage."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import ContentBlock, ReasoningBlock, StopReason, TextBlock, ToolCallBlock
from llm_gateway.errors import GatewayError, ProviderError
from llm_gateway.providers.error_table import BEDROCK_ERROR_STOP_REASONS, bedrock_rule

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseResponseTypeDef,
        TokenUsageTypeDef,
    )


# Every documented stop reason. A reason added later is read as a plain end of turn. The malformed_* reasons are
# no answer at all: they are errors (the error table's stop-reason row), so a non-streamed call is retried and a
# stream ends in an error event.
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    # The answer was cut because the context window filled up: a length stop for every client.
    "model_context_window_exceeded": "max_tokens",
    "tool_use": "tool_use",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def completion(response: ConverseResponseTypeDef, model_id: str) -> Completion:
    message = response.get("output", {}).get("message")
    blocks: list[ContentBlock] = []
    for block in message["content"] if message else []:
        if "text" in block:
            blocks.append(TextBlock(block["text"]))
        elif "toolUse" in block:
            tool_use = block["toolUse"]
            blocks.append(ToolCallBlock(tool_use["toolUseId"], tool_use["name"], json.dumps(tool_use["input"])))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "redactedContent" in reasoning:
                blocks.append(ReasoningBlock(redacted=base64.b64encode(reasoning["redactedContent"]).decode()))
            else:
                text = reasoning.get("reasoningText", {})
                blocks.append(ReasoningBlock(text.get("text", ""), signature=text.get("signature")))
    if "usage" not in response:
        raise ProviderError("Bedrock answered without token usage, so the call cannot be metered.")
    stop_reason = response.get("stopReason", "")
    if stop_reason in BEDROCK_ERROR_STOP_REASONS:
        raise malformed_output(stop_reason, model_id)
    return Completion(tuple(blocks), stop_reason_of(stop_reason), usage_of(response["usage"]))


def stop_reason_of(stop_reason: str) -> StopReason:
    return STOP_REASONS.get(stop_reason, "end_turn")


def malformed_output(stop_reason: str, model_id: str) -> GatewayError:
    rule = bedrock_rule(stop_reason, "", kind="stop reason")
    return rule.build(rule.message.format(model=model_id, said=stop_reason))


def usage_of(usage: TokenUsageTypeDef) -> Usage:
    # Bedrock's inputTokens leaves out cached tokens; the gateway's prompt_tokens counts them, as OpenAI's does.
    cache_read = usage.get("cacheReadInputTokens", 0)
    cache_write = usage.get("cacheWriteInputTokens", 0)
    return Usage(
        prompt_tokens=usage.get("inputTokens", 0) + cache_read + cache_write,
        completion_tokens=usage.get("outputTokens", 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
