"""The provider's paths for Anthropic's models: CountTokens on the foundation model, Converse for every request
that is not a native Anthropic body."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.answers import Finish, TextDelta, Usage, UsageReport
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.errors import ProviderRateLimitError
from llm_gateway.providers.bedrock.anthropic import ANTHROPIC_VERSION, anthropic_traits, foundation_model_id
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.conftest import LogOutput
from tests.fakes.bedrock_transport import FakeBedrockTransport, JsonBody, stream_event
from tests.fakes.requests import openai_chat
from tests.unit.providers.bedrock.anthropic_bodies import (
    NOVA,
    SONNET,
    SONNET_MODEL,
    TARGET,
    USER_HI,
    anthropic_request,
    bedrock_body,
    messages_body,
)

# --- CountTokens --------------------------------------------------------------------------------------------


def test_count_tokens_asks_bedrock_for_the_foundation_model(provider: BedrockProvider, stubber: Stubber) -> None:
    # An Anthropic count_tokens body: no max_tokens, betas, a field Bedrock refuses.
    body = {"model": "claude-sonnet-4-5", "messages": USER_HI, "system": "Be brief.", "metadata": {"user_id": "u"}}
    expected = {
        "messages": USER_HI,
        "system": "Be brief.",
        "anthropic_beta": ["context-1m-2025-08-07"],
        "max_tokens": 1,
        "anthropic_version": ANTHROPIC_VERSION,
    }
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 17},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(expected)}}},
    )
    request = anthropic_request(body, betas=("claude-code-20250219", "context-1m-2025-08-07"))
    assert provider.count_tokens(request, TARGET, Deadline.after(10), SONNET) == 17


def test_count_tokens_keeps_a_thinking_budget_below_max_tokens(provider: BedrockProvider, stubber: Stubber) -> None:
    body = {"model": "claude-sonnet-4-5", "messages": USER_HI, "thinking": {"type": "enabled", "budget_tokens": 4000}}
    expected = {
        "messages": USER_HI,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "max_tokens": 4001,
        "anthropic_version": ANTHROPIC_VERSION,
    }
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 9},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(expected)}}},
    )
    assert provider.count_tokens(anthropic_request(body), TARGET, Deadline.after(10), SONNET) == 9


@pytest.mark.parametrize(
    ("model_id", "foundation"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("au.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        (
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", None),
    ],
)
def test_count_tokens_takes_the_foundation_model_behind_a_profile(model_id: str, foundation: str | None) -> None:
    assert foundation_model_id(model_id) == foundation


def test_count_tokens_strips_the_profile_prefix_on_the_wire(provider: BedrockProvider, stubber: Stubber) -> None:
    target = Target(provider="bedrock", model_id="global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 3},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(bedrock_body())}}},
    )
    assert provider.count_tokens(anthropic_request(messages_body()), target, Deadline.after(10), SONNET) == 3


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 403),
        ("ValidationException", 400),
        ("ResourceNotFoundException", 404),
    ],
)
def test_count_tokens_leaves_it_to_the_gateways_estimate_when_bedrock_cannot_count(
    provider: BedrockProvider, stubber: Stubber, code: str, status: int, log_output: LogOutput
) -> None:
    stubber.add_client_error("count_tokens", service_error_code=code, service_message="no", http_status_code=status)
    assert provider.count_tokens(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET) is None
    assert [
        line
        for line in log_output()
        if line["message"] == "Bedrock did not count the tokens; the gateway estimates them"
    ]


def test_count_tokens_raises_throttling_for_the_router(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "1"})
    with pytest.raises(ProviderRateLimitError):
        provider.count_tokens(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)


@pytest.mark.parametrize(
    ("request_", "traits", "target"),
    [
        pytest.param(openai_chat({"model": "claude", "messages": USER_HI}), SONNET, TARGET, id="openai-dialect"),
        pytest.param(anthropic_request(messages_body()), NOVA, TARGET, id="not-an-anthropic-model"),
        pytest.param(anthropic_request(messages_body()), None, TARGET, id="no-traits"),
        pytest.param(
            anthropic_request(messages_body()),
            SONNET,
            Target(
                provider="bedrock", model_id="arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x"
            ),
            id="no-foundation-model",
        ),
    ],
)
def test_count_tokens_has_no_count_for_other_requests(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    request_: ChatRequest,
    traits: ModelTraits | None,
    target: Target,
) -> None:
    assert provider.count_tokens(request_, target, Deadline.after(10), traits) is None
    assert transport.sent == []


# --- Converse for everything else -----------------------------------------------------------------------------


def converse_response(value: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": value}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6},
        "metrics": {"latencyMs": 100},
    }


@pytest.mark.parametrize(
    ("request_", "traits"),
    [
        pytest.param(openai_chat({"model": "claude", "messages": USER_HI}), SONNET, id="openai-dialect-on-claude"),
        pytest.param(anthropic_request(messages_body()), NOVA, id="anthropic-dialect-on-nova"),
        pytest.param(anthropic_request(messages_body()), None, id="anthropic-dialect-without-traits"),
    ],
)
def test_converse_serves_every_other_request(
    provider: BedrockProvider, stubber: Stubber, request_: ChatRequest, traits: ModelTraits | None
) -> None:
    assert anthropic_traits(request_, traits) is None
    stubber.add_response("converse", converse_response("ok"))
    completion = provider.complete(request_, TARGET, Deadline.after(10), traits)
    assert completion.text == "ok" and completion.native is None


def test_converse_stream_serves_openai_dialect_requests_on_claude(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ok"}}),
        stream_event("messageStop", {"stopReason": "end_turn"}),
        stream_event(
            "metadata", {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}, "metrics": {"latencyMs": 1}}
        ),
    )
    request = openai_chat({"model": "claude", "messages": USER_HI, "stream": True})
    assert list(provider.stream(request, TARGET, Deadline.after(10), SONNET)) == [
        TextDelta("ok"),
        Finish("end_turn"),
        UsageReport(Usage(5, 1)),
    ]
    assert transport.sent[0].url.endswith("/converse-stream")
