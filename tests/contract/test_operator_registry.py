"""An operator's own registry entry for a shipped provider model, through the API handler with Bedrock offline: it
inherits the shipped catalog's traits (sampling rules, reasoning, limits) by provider model id, whatever profile or
ARN names the model, and `GET /models` shows the traits in force."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from llm_gateway.config import shipped_registry_text
from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport
from tests.fakes.handler_client import handler_client

QUESTION = [{"role": "user", "content": "Is 91 prime?"}]
SONNET_4_5 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "No."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
}


@pytest.fixture(autouse=True)
def operator_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = json.loads(shipped_registry_text())["models"]
    models = {
        "claude-sonnet-4-5": shipped["claude-sonnet-4-5"],
        "team-sonnet": {"targets": [{"provider": "bedrock", "model_id": f"us.{SONNET_4_5}"}]},
        "arn-sonnet": {
            "targets": [
                {
                    "provider": "bedrock",
                    "model_id": f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{SONNET_4_5}",
                }
            ]
        },
        "tuned-sonnet": {
            "targets": [{"provider": "bedrock", "model_id": f"global.{SONNET_4_5}"}],
            "traits": {"sampling": {"temperature": {"min": 0, "max": 0.5}}},
        },
    }
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))


def converse_body(bedrock: FakeBedrockTransport, model: str, api_handler: Handler, **params: Any) -> dict[str, Any]:
    bedrock.reply_json(200, ANSWER)
    sdk, _ = handler_client(api_handler)
    sdk.chat.completions.create(model=model, messages=QUESTION, **params)  # type: ignore[call-overload]
    body = bedrock.sent[-1].json()
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("model", ["team-sonnet", "arn-sonnet"])
@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0.7, "top_p": 0.9},
        {"reasoning_effort": "medium"},
        {"max_completion_tokens": 100_000},
        {},
    ],
    ids=["temperature-and-top_p", "reasoning_effort", "limit-above-the-model", "no-limit"],
)
def test_an_operator_entry_naming_only_targets_is_sent_as_the_shipped_entry(
    api_handler: Handler, bedrock: FakeBedrockTransport, model: str, params: dict[str, Any]
) -> None:
    shipped = converse_body(bedrock, "claude-sonnet-4-5", api_handler, **params)
    operator = converse_body(bedrock, model, api_handler, **params)
    assert operator == shipped
    if "top_p" in params:
        assert (operator["inferenceConfig"]["temperature"], "topP" in operator["inferenceConfig"]) == (0.7, False)
    if "max_completion_tokens" in params:
        assert operator["inferenceConfig"]["maxTokens"] == 64_000
    if "reasoning_effort" in params:
        assert operator["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "team-sonnet", "arn-sonnet"])
def test_a_temperature_beyond_the_shipped_range_is_refused_before_bedrock(
    api_handler: Handler, bedrock: FakeBedrockTransport, model: str
) -> None:
    sdk, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=model, messages=QUESTION, temperature=1.5)  # type: ignore[arg-type]
    assert refused.value.code == "unsupported_value"
    assert refused.value.param == "temperature"
    assert bedrock.sent == []


def test_the_entrys_own_traits_override_the_catalogs_field_by_field(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    sdk, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="tuned-sonnet", messages=QUESTION, temperature=0.8)  # type: ignore[arg-type]
    assert refused.value.param == "temperature"
    body = converse_body(bedrock, "tuned-sonnet", api_handler, temperature=0.4, top_p=0.5)
    # The top_p range and the exclusive rule still come from the catalog.
    assert (body["inferenceConfig"]["temperature"], "topP" in body["inferenceConfig"]) == (0.4, False)


def test_get_models_shows_the_traits_in_force(api_handler: Handler) -> None:
    sdk, _ = handler_client(api_handler)
    cards = {card.id: card.model_dump() for card in sdk.models.list()}
    for name in ("team-sonnet", "arn-sonnet"):
        card = cards[name]
        assert (card["context_window"], card["max_output_tokens"]) == (200_000, 64_000)
        assert card["capabilities"] == cards["claude-sonnet-4-5"]["capabilities"]
        assert card["capabilities"]["reasoning"] is True
        assert card["sampling"] == cards["claude-sonnet-4-5"]["sampling"]
    assert cards["tuned-sonnet"]["sampling"]["temperature"] == {"min": 0, "max": 0.5}
    assert cards["tuned-sonnet"]["sampling"]["exclusive"] == [
        {"parameters": ["temperature", "top_p"], "keep": "temperature"}
    ]
