"""Converse's settings of a request: inference configuration, and thinking as each model family takes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.registry import ModelTraits

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.type_defs import (
        InferenceConfigurationTypeDef,
    )
from llm_gateway.providers.bedrock.errors import refused

# Thinking budgets for OpenAI's reasoning_effort on Anthropic's models (Anthropic's minimum budget is 1,024):
# the levels LiteLLM uses for the same translation, so clients moving between gateways see the same behaviour.
# https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
MIN_THINKING_BUDGET = 1024


THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}


# OpenAI's reasoning efforts as output_config.effort for models with adaptive thinking (Claude 4.6 and later),
# https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html
ADAPTIVE_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}


def inference_config(request: ChatRequest) -> InferenceConfigurationTypeDef:
    config: InferenceConfigurationTypeDef = {}
    if request.max_output_tokens is not None:
        config["maxTokens"] = request.max_output_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    return config


def thinking_budget(request: ChatRequest) -> int | None:
    """The thinking budget for an Anthropic model, or None when the request asks for no reasoning: the caller's
    budget, or its effort level's, within the output cap (the budget counts inside max_tokens, and Anthropic's
    models need max_tokens above it)."""
    reasoning = request.reasoning
    if reasoning is None or not reasoning.enabled:
        return None
    budget = reasoning.budget_tokens or THINKING_BUDGETS.get(reasoning.effort or "medium", THINKING_BUDGETS["medium"])
    cap = request.max_output_tokens
    if cap is not None:
        budget = min(budget, cap - 1)
    if budget < MIN_THINKING_BUDGET:
        raise refused(
            f"Reasoning needs a thinking budget of at least {MIN_THINKING_BUDGET} tokens below the output cap; "
            f"raise max_tokens above {MIN_THINKING_BUDGET}.",
            "max_tokens",
            "output_cap_too_small_for_reasoning",
        )
    return budget


def additional_fields(request: ChatRequest, traits: ModelTraits) -> dict[str, Any]:
    """Anthropic's own settings, which Converse passes through to the model."""
    fields: dict[str, Any] = {}
    if not traits.bedrock.anthropic_messages:
        if request.reasoning is not None and request.reasoning.enabled:
            raise refused(
                "This model has no reasoning setting on Bedrock; leave reasoning_effort out.",
                "reasoning_effort",
                "unsupported_parameter",
            )
        return fields
    reasoning = request.reasoning
    if traits.bedrock.adaptive_thinking and reasoning is not None and reasoning.enabled:
        # Claude 4.6 and later decide how much to think; the effort level guides them.
        fields["thinking"] = {"type": "adaptive"}
        fields["output_config"] = {"effort": ADAPTIVE_EFFORTS.get(reasoning.effort or "high", "high")}
    else:
        budget = thinking_budget(request)
        if budget is not None:
            fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if request.top_k is not None:
        fields["top_k"] = request.top_k
    return fields
