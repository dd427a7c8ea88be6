"""The Anthropic Messages route on Claude in Bedrock, driven by the official anthropic SDK through the API handler:
the body reaches InvokeModel as the caller wrote it (thinking blocks, signatures, cache_control), the answer and
the stream come back as the model gave them, and usage (cache reads and writes, thinking) is metered and priced.

Bedrock is offline: the production botocore client with its HTTP exchanges answered by FakeBedrockTransport.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from tests.conftest import Handler
from tests.contract.conftest import Stack
from tests.fakes.bedrock_transport import FakeBedrockTransport, invoke_chunk
from tests.fakes.handler_client import CALLER, STAGE, HandlerTransport

PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SYSTEM = [{"type": "text", "text": "You are a careful assistant. " * 200, "cache_control": {"type": "ephemeral"}}]
THINKING = {"type": "thinking", "thinking": "The user asks about Paris.", "signature": "EqQBCkgIARABGAIiQL+sig=="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"}
TOOL = {"name": "get_weather", "description": "Weather now", "input_schema": {"type": "object"}}
USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1500, "output_tokens": 40}


def sdk(handler: Handler) -> anthropic.Anthropic:
    """The SDK as Claude Code uses it: the host as base URL (the SDK adds /v1/messages; v1 is the stage)."""
    transport = HandlerTransport(handler, CALLER)
    return anthropic.Anthropic(
        base_url=f"https://{STAGE.domain}",
        api_key="sk-llmgw-unused-the-authorizer-already-ran",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
        default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14,claude-code-20250219"},
    )


def usage_of(stack: Stack) -> dict[str, Any]:
    items = stack.dynamodb.scan(TableName=stack.outputs["UsageTableName"])["Items"]
    (item,) = items
    return {name: value.get("N") or value.get("S") for name, value in item.items()}


def figure(item: dict[str, Any], prefix: str) -> str:
    (value,) = [value for name, value in item.items() if name.startswith(prefix)]
    return str(value)


def test_a_tool_round_with_thinking_goes_to_invoke_model_unchanged_and_is_priced_with_the_cache(
    api_handler: Handler, bedrock: FakeBedrockTransport, stack: Stack
) -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                THINKING,
                REDACTED,
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny, 21 C"}]},
    ]
    answer = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Sunny and 21 C.", "citations": None}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": USAGE,
    }
    bedrock.reply_json(200, answer)

    message = sdk(api_handler).messages.create(
        model="claude-sonnet-4-5-20250929",
        max_tokens=2048,
        system=SYSTEM,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[TOOL],  # type: ignore[list-item]
        messages=history,  # type: ignore[arg-type]
        metadata={"user_id": "dev-42"},
    )

    assert (message.content[0].text, message.model, message.id) == (
        "Sunny and 21 C.",
        "claude-sonnet-4-5-20250929",
        "msg_bdrk_01",
    )  # type: ignore[union-attr]
    assert message.usage.cache_read_input_tokens == 1500
    sent = bedrock.sent[-1]
    assert sent.url.endswith(f"/model/{PROFILE.replace(':', '%3A')}/invoke")
    body = sent.json()
    assert body["messages"] == history, "thinking, its signature and redacted thinking go back byte for byte"
    assert body["system"] == SYSTEM, "cache_control reaches the model"
    assert (body["anthropic_version"], body["anthropic_beta"]) == (
        "bedrock-2023-05-31",
        ["interleaved-thinking-2025-05-14"],
    )
    assert "model" not in body and "stream" not in body and "metadata" not in body
    item = usage_of(stack)
    assert (figure(item, "prompt_tokens_"), figure(item, "cached_tokens_"), figure(item, "completion_tokens_")) == (
        "1512",
        "1500",
        "40",
    )
    # claude-sonnet-4-5's registry prices per 1K: input 0.0033, cache read 0.00033, output 0.0165.
    expected = (Decimal("0.0033") * 12 + Decimal("0.00033") * 1500 + Decimal("0.0165") * 40) / 1000
    assert Decimal(figure(item, "cost_usd_")) == expected


def test_a_stream_comes_back_as_the_model_sent_it_with_the_public_name(
    api_handler: Handler, bedrock: FakeBedrockTransport, stack: Stack
) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bdrk_02",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 1500,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    }
    events = [
        start,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Short answer."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-2"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Bonjour"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 12,
                "outputTokenCount": 30,
                "invocationLatency": 900,
                "firstByteLatency": 300,
            },
        },
    ]
    bedrock.reply_stream(*(invoke_chunk(event) for event in events))

    with sdk(api_handler).messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=4096,
        system=SYSTEM,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Say hello in French."}],
    ) as stream:
        final = stream.get_final_message()

    thinking, text = final.content
    assert (thinking.thinking, thinking.signature, text.text) == ("Short answer.", "sig-2", "Bonjour")  # type: ignore[union-attr]
    assert (final.model, final.usage.cache_creation_input_tokens, final.usage.output_tokens) == (
        "claude-sonnet-4-5",
        1500,
        30,
    )
    assert bedrock.sent[-1].url.endswith("/invoke-with-response-stream")
    item = usage_of(stack)
    assert (
        figure(item, "prompt_tokens_"),
        figure(item, "cache_write_tokens_"),
        figure(item, "completion_tokens_"),
    ) == (
        "1512",
        "1500",
        "30",
    )
    expected = (Decimal("0.0033") * 12 + Decimal("0.004125") * 1500 + Decimal("0.0165") * 30) / 1000
    assert Decimal(figure(item, "cost_usd_")) == expected


def test_bedrocks_refusal_keeps_its_message_in_anthropics_error_shape(
    api_handler: Handler, bedrock: FakeBedrockTransport, stack: Stack
) -> None:
    bedrock.reply_error(400, "ValidationException", "messages.1.content.0.thinking.signature: Invalid signature")
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(api_handler).messages.create(
            model="claude-sonnet-4-5", max_tokens=2048, messages=[{"role": "user", "content": "hi"}]
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "Invalid signature" in body["error"]["message"]
    assert json.loads(json.dumps(body))["request_id"]
