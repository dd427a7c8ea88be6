"""The local gateway's model registry: echo always, Bedrock and OpenAI-compatible models when configured.

Deployed, the registry is the layer's models.json (or an SSM parameter). Locally its Bedrock models would
need AWS credentials and model access, so they are opt-in:

- GATEWAY_LOCAL_BEDROCK=1: add the shipped registry's Bedrock models (your AWS credentials and region).
- GATEWAY_LOCAL_OPENAI_BASE_URL=https://host/v1 and GATEWAY_LOCAL_OPENAI_MODELS=name[=upstream-model],...:
  add models served by that OpenAI-compatible endpoint, with the key in GATEWAY_LOCAL_OPENAI_API_KEY if set;
  GATEWAY_LOCAL_OPENAI_EMBEDDING_MODELS=name[=upstream-model],... adds its embedding models (POST /embeddings).
- --models FILE (or GATEWAY_LOCAL_MODELS_FILE): a registry file in the models.json format, merged last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_gateway.config import shipped_catalog, shipped_registry_text
from llm_gateway.domain.model_catalog import resolve_registry
from llm_gateway.domain.registry import ModelRegistry

TRUE = {"1", "true", "yes", "on"}
OPENAI_KEY_VARIABLE = "GATEWAY_LOCAL_OPENAI_API_KEY"


def local_registry(environ: Mapping[str, str], models_file: Path | None = None) -> dict[str, Any]:
    shipped: dict[str, Any] = json.loads(shipped_registry_text())["models"]
    models = {name: entry for name, entry in shipped.items() if all(t["provider"] == "echo" for t in entry["targets"])}
    if environ.get("GATEWAY_LOCAL_BEDROCK", "").lower() in TRUE:
        models.update(shipped)
    base_url = environ.get("GATEWAY_LOCAL_OPENAI_BASE_URL")
    if base_url:
        for variable, kind in (
            ("GATEWAY_LOCAL_OPENAI_MODELS", "chat"),
            ("GATEWAY_LOCAL_OPENAI_EMBEDDING_MODELS", "embedding"),
        ):
            for spec in environ.get(variable, "").split(","):
                name, _, upstream = spec.strip().partition("=")
                if not name:
                    continue
                target: dict[str, Any] = {"provider": "openai", "model_id": upstream or name, "base_url": base_url}
                if environ.get(OPENAI_KEY_VARIABLE):
                    target["api_key_env"] = OPENAI_KEY_VARIABLE
                models[name] = {"owned_by": "openai-compatible", "targets": [target]}
                if kind == "embedding":
                    models[name]["kind"] = kind
    path = models_file or (
        Path(environ["GATEWAY_LOCAL_MODELS_FILE"]) if environ.get("GATEWAY_LOCAL_MODELS_FILE") else None
    )
    if path is not None:
        models.update(json.loads(path.read_text(encoding="utf-8"))["models"])
    registry = {"models": models}
    # Fail at start, not at the first request (the catalog's traits included: a plain id of a profile-only model).
    resolve_registry(ModelRegistry.model_validate(registry), shipped_catalog())
    return registry
