from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from llm_gateway.config import Settings, get_registry, get_settings
from llm_gateway.errors import ConfigurationError, ModelNotFoundError

REGISTRY = {
    "models": {
        "small": {
            "targets": [{"provider": "echo", "model_id": "echo"}],
            "prices": {"input_per_1k": "0.25", "output_per_1k": "1.25"},
        }
    }
}


def test_defaults_ship_echo_and_the_bedrock_models_the_template_allows() -> None:
    assert get_registry().names() == (
        [
            "claude-haiku-4-5",
            "claude-haiku-5-5",
            "claude-opus-5-5",
            "claude-sonnet-4-5",
            "claude-sonnet-5-5",
            "cohere-embed-english-v3",
            "cohere-embed-multilingual-v3",
            "echo",
            "echo-embedding",
            "nova-lite",
            "titan-embed-text-v2",
        ]
    )
    assert get_settings().default_model == "echo"
    assert get_settings().log_prompts is False


def test_settings_come_from_gateway_environment_variables() -> None:
    settings = Settings.from_environ({"GATEWAY_MAX_REQUEST_BYTES": "1024", "GATEWAY_LOG_PROMPTS": "true"})
    assert (settings.max_request_bytes, settings.log_prompts) == (1024, True)


def test_invalid_settings_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_request_bytes"):
        Settings.from_environ({"GATEWAY_MAX_REQUEST_BYTES": "lots"})


def test_registry_from_inline_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps(REGISTRY))
    entry = get_registry().get("small")
    assert entry.prices.cost(1000, 2000) == Decimal("2.75")
    with pytest.raises(ModelNotFoundError):
        get_registry().get("echo")


def test_registry_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(REGISTRY))
    monkeypatch.setenv("GATEWAY_MODELS_FILE", str(path))
    assert get_registry().names() == ["small"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"models": {}}),
        json.dumps({"models": {"x": {"targets": []}}}),
        json.dumps({"models": {"x": {"targets": [{"provider": "carrier-pigeon", "model_id": "x"}]}}}),
        json.dumps(
            {"models": {"x": {"targets": [{"provider": "echo", "model_id": "x"}], "prices": {"input_per_1k": -1}}}}
        ),
    ],
)
def test_invalid_registries_are_configuration_errors(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("GATEWAY_MODELS_JSON", text)
    with pytest.raises(ConfigurationError, match="Invalid model registry in GATEWAY_MODELS_JSON"):
        get_registry()
