from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gatewayctl.local.models import local_registry


def test_echo_only_by_default() -> None:
    assert list(local_registry({})["models"]) == ["echo", "echo-embedding"]


def test_bedrock_models_when_asked() -> None:
    models = local_registry({"GATEWAY_LOCAL_BEDROCK": "1"})["models"]
    assert sorted(models) == (
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


def test_openai_compatible_models_from_the_environment() -> None:
    models = local_registry(
        {
            "GATEWAY_LOCAL_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "GATEWAY_LOCAL_OPENAI_MODELS": "llama=llama3.2:3b, qwen",
        }
    )["models"]
    assert models["llama"]["targets"] == [
        {"provider": "openai", "model_id": "llama3.2:3b", "base_url": "http://127.0.0.1:11434/v1"}
    ]
    assert models["qwen"]["targets"][0]["model_id"] == "qwen"
    keyed = local_registry(
        {
            "GATEWAY_LOCAL_OPENAI_BASE_URL": "https://api.openai.com/v1",
            "GATEWAY_LOCAL_OPENAI_MODELS": "gpt-4o-mini",
            "GATEWAY_LOCAL_OPENAI_API_KEY": "sk-x",
        }
    )["models"]
    assert keyed["gpt-4o-mini"]["targets"][0]["api_key_env"] == "GATEWAY_LOCAL_OPENAI_API_KEY"


def test_a_models_file_is_merged_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"mine": {"targets": [{"provider": "echo", "model_id": "echo"}]}}}))
    assert sorted(local_registry({}, path)["models"]) == ["echo", "echo-embedding", "mine"]
    path.write_text(json.dumps({"models": {"bad": {"targets": [{"provider": "openai", "model_id": "x"}]}}}))
    with pytest.raises(ValidationError, match="base_url"):
        local_registry({"GATEWAY_LOCAL_MODELS_FILE": str(path)})


def test_openai_compatible_embedding_models_from_the_environment() -> None:
    models = local_registry(
        {
            "GATEWAY_LOCAL_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "GATEWAY_LOCAL_OPENAI_EMBEDDING_MODELS": "nomic=nomic-embed-text",
        }
    )["models"]
    assert models["nomic"]["kind"] == "embedding"
    assert models["nomic"]["targets"][0]["model_id"] == "nomic-embed-text"
