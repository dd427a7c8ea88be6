"""Converse answers read into completions: blocks, stop reasons, usage; an answer without usage cannot be metered."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import ReasoningBlock, TextBlock, ToolCallBlock
from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import ProviderError
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.fakes.bedrock_transport import FakeBedrockTransport
from tests.unit.providers.bedrock.converse_bodies import (
    TARGET,
    USER_HI,
    chat,
    converse_response,
    expected_request,
    text,
    tool_use,
    user,
)

# --- response translation -----------------------------------------------------------------------------------

RESPONSE_CASES = [
    pytest.param(
        converse_response(
            {"reasoningContent": {"reasoningText": {"text": "The user greets me.", "signature": "sig"}}},
            text("Hello"),
            text(" there"),
        ),
        Completion(
            (ReasoningBlock("The user greets me.", signature="sig"), TextBlock("Hello"), TextBlock(" there")),
            "end_turn",
            Usage(12, 3),
        ),
        id="reasoning-with-its-signature-then-text-blocks",
    ),
    pytest.param(
        converse_response({"reasoningContent": {"redactedContent": b"\x00opaque"}}, text("ok")),
        Completion(
            (ReasoningBlock(redacted=base64.b64encode(b"\x00opaque").decode()), TextBlock("ok")),
            "end_turn",
            Usage(12, 3),
        ),
        id="redacted-reasoning-kept-as-base64",
    ),
    pytest.param(
        converse_response(
            tool_use("tooluse_1", "get_weather", {"city": "Paris"}),
            tool_use("tooluse_2", "get_time", {}),
            stop_reason="tool_use",
        ),
        Completion(
            (
                ToolCallBlock("tooluse_1", "get_weather", '{"city": "Paris"}'),
                ToolCallBlock("tooluse_2", "get_time", "{}"),
            ),
            "tool_use",
            Usage(12, 3),
        ),
        id="tool-calls-only-have-no-text",
    ),
    pytest.param(
        converse_response(
            text("Let me check."), tool_use("tooluse_1", "get_time", {"tz": "UTC"}), stop_reason="tool_use"
        ),
        Completion(
            (TextBlock("Let me check."), ToolCallBlock("tooluse_1", "get_time", '{"tz": "UTC"}')),
            "tool_use",
            Usage(12, 3),
        ),
        id="text-and-tool-call",
    ),
    pytest.param(converse_response(), Completion((), "end_turn", Usage(12, 3)), id="no-content-at-all"),
    pytest.param(
        converse_response(
            text("cached"),
            usage={
                "inputTokens": 20,
                "outputTokens": 7,
                "totalTokens": 1327,
                "cacheReadInputTokens": 1000,
                "cacheWriteInputTokens": 300,
            },
        ),
        Completion((TextBlock("cached"),), "end_turn", Usage(1320, 7, cached_tokens=1000, cache_write_tokens=300)),
        id="usage-counts-cache-reads-and-writes-as-prompt",
    ),
    pytest.param(
        converse_response(
            text("x"), usage={"inputTokens": 5, "outputTokens": 1, "totalTokens": 6, "cacheReadInputTokens": 40}
        ),
        Completion((TextBlock("x"),), "end_turn", Usage(45, 1, cached_tokens=40)),
        id="usage-with-cache-read-only",
    ),
]


@pytest.mark.parametrize(("response", "completion"), RESPONSE_CASES)
def test_translates_the_response(
    provider: BedrockProvider, stubber: Stubber, response: dict[str, Any], completion: Completion
) -> None:
    stubber.add_response("converse", response, expected_request([user(text("hi"))]))
    assert provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10)) == completion


# Stop reasons are walked, streamed and not, in test_error_table.py.


def test_a_response_without_usage_cannot_be_metered(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    # Stubber would refuse this response as invalid, so it comes over the fake HTTP transport instead.
    transport.reply_json(
        200, {"output": {"message": {"role": "assistant", "content": [text("hi")]}}, "stopReason": "end_turn"}
    )
    with pytest.raises(ProviderError, match="metered") as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.status == 502
