"""The model registry's traits: the shipped data, where it comes from, and what the registry refuses to load."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.config import shipped_registry_text
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.chat import ChatService
from llm_gateway.domain.registry import ModelEntry, ModelRegistry, is_inference_profile_or_arn
from llm_gateway.domain.routing import Router
from llm_gateway.errors import ModelNotFoundError, PermissionDeniedError

SHIPPED = ModelRegistry.model_validate_json(shipped_registry_text())
ECHO: dict[str, Any] = {"targets": [{"provider": "echo", "model_id": "echo"}]}
CLAUDE_4 = re.compile(r"anthropic\.claude-(?:[a-z]+-4|4)")


def bedrock_targets() -> list[Any]:
    return [
        pytest.param(name, target.model_id, id=f"{name}-{target.model_id}")
        for name, entry in SHIPPED.models.items()
        for target in entry.targets
        if target.provider == "bedrock"
    ]


@pytest.mark.parametrize(("name", "model_id"), bedrock_targets())
def test_every_shipped_claude_4_target_is_an_inference_profile_or_an_arn(name: str, model_id: str) -> None:
    # Bedrock refuses Claude 4.x model ids on demand ("on-demand throughput isn't supported"); this check reads
    # the ids themselves, so it holds even for an entry whose traits forget to say so.
    if CLAUDE_4.search(model_id):
        assert is_inference_profile_or_arn(model_id), f"{name}: {model_id} cannot be invoked on demand"


def test_there_are_claude_4_targets_to_check() -> None:
    assert sum(bool(CLAUDE_4.search(p.values[1])) for p in bedrock_targets()) >= 3


CHAT_MODELS = sorted(name for name, entry in SHIPPED.models.items() if entry.kind == "chat")
EMBEDDING_MODELS = sorted(name for name, entry in SHIPPED.models.items() if entry.kind == "embedding")


@pytest.mark.parametrize("name", sorted(set(CHAT_MODELS) - {"echo"}))
def test_every_shipped_model_states_its_traits_with_sources(name: str) -> None:
    traits = SHIPPED.models[name].traits
    assert traits.limits.context_window and traits.limits.max_output_tokens
    assert traits.limits.max_output_tokens < traits.limits.context_window
    sampling = traits.sampling
    for parameter in ("temperature", "top_p"):
        stated = getattr(sampling, parameter) is not None or parameter in sampling.unsupported
        assert stated, f"{parameter}: a range, or listed as unsupported"
    capabilities = traits.capabilities.model_dump(exclude={"source"})
    assert None not in capabilities.values(), "every capability is stated for a shipped model"
    for group in (traits.limits, traits.sampling, traits.capabilities, traits.bedrock):
        assert group.source and "https://" in group.source, "every group names where it comes from"


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_every_shipped_embedding_model_states_its_sizes_limits_and_prices_with_sources(name: str) -> None:
    entry = SHIPPED.models[name]
    embedding = entry.traits.embedding
    assert embedding.dimensions and embedding.max_inputs, "the vector size and the inputs per request are stated"
    assert not embedding.supported_dimensions or embedding.dimensions in embedding.supported_dimensions
    assert embedding.source
    if any(target.provider == "bedrock" for target in entry.targets):
        assert entry.traits.bedrock.embedding_schema, "the InvokeModel body the model takes"
        assert embedding.batch_size and embedding.max_input_characters and embedding.max_input_tokens
        assert entry.prices.input_per_1k > 0 and entry.prices.output_per_1k == 0
        for group in (embedding, entry.traits.bedrock, entry.prices):
            assert group.source and "https://" in group.source, "every group names where it comes from"


def test_a_bedrock_embedding_model_must_name_its_body() -> None:
    with pytest.raises(ValueError, match="embedding_schema"):
        ModelRegistry.model_validate(
            {"models": {"e": {"kind": "embedding", "targets": [{"provider": "bedrock", "model_id": "amazon.x"}]}}}
        )


def test_claude_4_5_models_keep_temperature_when_top_p_is_sent_too() -> None:
    for name in ("claude-sonnet-4-5", "claude-haiku-4-5"):
        (rule,) = SHIPPED.models[name].traits.sampling.exclusive
        assert (set(rule.parameters), rule.keep) == ({"temperature", "top_p"}, "temperature")


def entry(model_id: str, **traits: Any) -> dict[str, Any]:
    return {"targets": [{"provider": "bedrock", "model_id": model_id}], "traits": traits}


@pytest.mark.parametrize(
    ("model_id", "loads"),
    [
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", False),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", True),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", True),
        ("arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc123", True),
    ],
)
def test_a_plain_model_id_is_refused_where_an_inference_profile_is_required(model_id: str, loads: bool) -> None:
    data = entry(model_id, bedrock={"inference_profile_required": True})
    if loads:
        ModelEntry.model_validate(data)
    else:
        with pytest.raises(ValidationError, match="inference profile"):
            ModelEntry.model_validate(data)


@pytest.mark.parametrize(
    ("sampling", "error"),
    [
        ({"temperature": {"min": 1, "max": 0}}, "above max"),
        ({"exclusive": [{"parameters": ["temperature", "top_p"], "keep": "top_k"}]}, "keep"),
        ({"exclusive": [{"parameters": ["temperature"], "keep": "temperature"}]}, "at least 2"),
        ({"temperature": {"min": 0, "max": 1}, "typo": True}, "typo"),
    ],
)
def test_malformed_traits_are_refused_when_the_registry_loads(sampling: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ModelEntry.model_validate(entry("us.amazon.nova-lite-v1:0", sampling=sampling))


def test_aliases_name_the_same_entry_and_unknown_names_are_a_404() -> None:
    registry = SHIPPED
    assert registry.canonical_name("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert registry.get("claude-haiku-4-5-20251001") is registry.models["claude-haiku-4-5"]
    assert registry.canonical_name("claude-sonnet-4-5") == "claude-sonnet-4-5"
    with pytest.raises(ModelNotFoundError):
        registry.get("claude-sonnet-4-5-20990101")


@pytest.mark.parametrize(
    "models",
    [
        pytest.param({"a": {**ECHO, "aliases": ["b"]}, "b": ECHO}, id="alias-is-another-models-name"),
        pytest.param({"a": {**ECHO, "aliases": ["x"]}, "b": {**ECHO, "aliases": ["x"]}}, id="alias-given-twice"),
        pytest.param({"a": {**ECHO, "aliases": [" x"]}}, id="alias-with-spaces"),
    ],
)
def test_a_name_given_to_two_models_is_refused_when_the_registry_loads(models: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelRegistry.model_validate({"models": models})


def test_a_keys_allow_list_applies_to_the_model_an_alias_names() -> None:
    chat = ChatService(lambda: SHIPPED, Router({}))
    allowed = Caller(tenant="t", key_id="k", plan="p", allowed_models=frozenset({"claude-haiku-4-5"}))
    assert chat.resolve("claude-haiku-4-5-20251001", allowed)[0] == "claude-haiku-4-5"
    with pytest.raises(PermissionDeniedError):
        chat.resolve("claude-sonnet-4-5-20250929", allowed)
    with pytest.raises(PermissionDeniedError):
        chat.resolve("no-such-model", allowed)
