"""Converse's settings: OpenAI's reasoning_effort as each Claude family's thinking, signed reasoning sent back."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.conversation import ChatRequest, Message, ReasoningBlock, TextBlock
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import BedrockTraits, ModelTraits
from llm_gateway.errors import ProviderRequestError
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.unit.providers.bedrock.converse_bodies import (
    TARGET,
    USER_HI,
    assistant,
    chat,
    converse_response,
    expected_request,
    text,
    user,
)

# --- reasoning through Converse (OpenAI's reasoning_effort on Anthropic's models) ----------------------------

CLAUDE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True))
ADAPTIVE_CLAUDE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True, adaptive_thinking=True))


@pytest.mark.parametrize(
    ("effort", "max_tokens", "thinking"),
    [
        pytest.param("low", 8000, {"type": "enabled", "budget_tokens": 1024}, id="low"),
        pytest.param("medium", 8000, {"type": "enabled", "budget_tokens": 2048}, id="medium"),
        pytest.param("high", 8000, {"type": "enabled", "budget_tokens": 4096}, id="high"),
        pytest.param("high", 3000, {"type": "enabled", "budget_tokens": 2999}, id="budget-below-the-output-cap"),
    ],
)
def test_reasoning_effort_becomes_claudes_thinking_budget(
    provider: BedrockProvider, stubber: Stubber, effort: str, max_tokens: int, thinking: dict[str, Any]
) -> None:
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [user(text("hi"))],
            inferenceConfig={"maxTokens": max_tokens},
            additionalModelRequestFields={"thinking": thinking},
        ),
    )
    request = chat(messages=USER_HI, reasoning_effort=effort, max_tokens=max_tokens)
    assert provider.complete(request, TARGET, Deadline.after(10), CLAUDE).text == "ok"


def test_reasoning_effort_on_a_model_with_adaptive_thinking_is_its_effort_level(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [user(text("hi"))],
            inferenceConfig={"maxTokens": 8000},
            additionalModelRequestFields={"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
        ),
    )
    request = chat(messages=USER_HI, reasoning_effort="minimal", max_tokens=8000)
    assert provider.complete(request, TARGET, Deadline.after(10), ADAPTIVE_CLAUDE).text == "ok"


def test_an_output_cap_too_small_for_a_thinking_budget_is_a_400(provider: BedrockProvider) -> None:
    with pytest.raises(ProviderRequestError) as refused:
        provider.complete(
            chat(messages=USER_HI, reasoning_effort="low", max_tokens=800), TARGET, Deadline.after(10), CLAUDE
        )
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        400,
        "output_cap_too_small_for_reasoning",
        "max_tokens",
    )


def test_signed_reasoning_goes_back_and_unsigned_reasoning_does_not(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    signed = ChatRequest(
        model="claude",
        messages=(
            Message("user", (TextBlock("Weather?"),)),
            Message(
                "assistant",
                (ReasoningBlock("Think.", signature="sig"), ReasoningBlock("Unsigned."), TextBlock("Sunny.")),
            ),
            Message("user", (TextBlock("Sure?"),)),
        ),
    )
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [
                user(text("Weather?")),
                assistant(
                    {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "sig"}}}, text("Sunny.")
                ),
                user(text("Sure?")),
            ]
        ),
    )
    assert provider.complete(signed, TARGET, Deadline.after(10), CLAUDE).text == "ok"
