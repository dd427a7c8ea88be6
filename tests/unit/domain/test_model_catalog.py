"""The trait catalog by provider model id and how an entry's traits resolve from it (domain/model_catalog.py), and
`gatewayctl models traits`, which shows where each trait came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatewayctl.cli import main
from llm_gateway.config import parse_registry, shipped_catalog
from llm_gateway.domain.model_catalog import provider_model_key, resolve_traits
from llm_gateway.domain.registry import ModelEntry, Target
from llm_gateway.errors import ConfigurationError

SONNET_4_5 = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def entry(*model_ids: str, **fields: Any) -> ModelEntry:
    targets = [{"provider": "bedrock", "model_id": model_id} for model_id in model_ids]
    return ModelEntry.model_validate({"targets": targets, **fields})


@pytest.mark.parametrize(
    "model_id",
    [
        SONNET_4_5,
        f"us.{SONNET_4_5}",
        f"global.{SONNET_4_5}",
        f"eu.{SONNET_4_5}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_4_5}",
        f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET_4_5}",
    ],
)
def test_profiles_and_arns_name_the_model_behind_them(model_id: str) -> None:
    assert provider_model_key(Target(provider="bedrock", model_id=model_id)) == ("bedrock", SONNET_4_5)


def test_an_application_profile_arn_names_no_catalog_model() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    assert provider_model_key(Target(provider="bedrock", model_id=arn)) == ("bedrock", arn)
    assert shipped_catalog().lookup(Target(provider="bedrock", model_id=arn)) is None


def test_an_entry_naming_only_targets_gets_the_shipped_entrys_traits() -> None:
    shipped = parse_registry(
        "shipped", json.dumps({"models": {"x": {"targets": [{"provider": "echo", "model_id": "e"}]}}})
    )
    assert shipped.get("x").traits.limits.context_window is None  # unknown models keep what they state
    resolved = resolve_traits(entry(f"us.{SONNET_4_5}"), shipped_catalog())
    assert resolved.traits.limits.context_window == 200_000
    assert resolved.traits.sampling.exclusive[0].keep == "temperature"
    assert resolved.traits.bedrock.anthropic_messages is True
    assert resolved.origins["limits.context_window"] == f"catalog: claude-sonnet-4-5 (bedrock/{SONNET_4_5})"


def test_the_entrys_own_fields_override_the_catalog_field_by_field() -> None:
    resolved = resolve_traits(
        entry(f"us.{SONNET_4_5}", traits={"limits": {"context_window": 100_000, "source": "our contract"}}),
        shipped_catalog(),
    )
    assert (resolved.traits.limits.context_window, resolved.traits.limits.max_output_tokens) == (100_000, 64_000)
    assert resolved.origins["limits.context_window"] == "entry"
    assert resolved.origins["limits.max_output_tokens"].startswith("catalog: claude-sonnet-4-5")
    assert resolved.traits.limits.source is not None and resolved.traits.limits.source.startswith("our contract; ")


def test_targets_that_disagree_take_the_stricter_trait() -> None:
    mixed = entry(f"us.{SONNET_4_5}", "us.anthropic.claude-opus-5-5", "us.amazon.nova-lite-v1:0")
    traits = resolve_traits(mixed, shipped_catalog()).traits
    assert (traits.limits.context_window, traits.limits.max_output_tokens) == (200_000, 5_000)
    assert set(traits.sampling.unsupported) == {"temperature", "top_p"}  # Claude 5.5 takes neither
    assert traits.capabilities.reasoning is False  # Nova does not reason
    assert traits.capabilities.assistant_prefill is False  # Claude 5.5 refuses prefill
    assert traits.bedrock.inference_profile_required is True  # Claude 4.5 and 5.5 require a profile


def test_each_target_is_called_with_its_own_models_traits() -> None:
    registry = parse_registry(
        "test",
        json.dumps(
            {
                "models": {
                    "mixed": {
                        "targets": [
                            {"provider": "bedrock", "model_id": f"us.{SONNET_4_5}"},
                            {"provider": "bedrock", "model_id": "us.amazon.nova-lite-v1:0"},
                        ]
                    }
                }
            }
        ),
    )
    claude, nova = registry.get("mixed").targets
    assert registry.get("mixed").traits_for(claude).bedrock.anthropic_messages is True
    assert registry.get("mixed").traits_for(nova).bedrock.anthropic_messages is False


def test_a_plain_id_the_catalog_knows_needs_a_profile_still_loads_and_is_left_to_fall_over() -> None:
    # A registry that loaded before keeps loading: Bedrock's on-demand refusal of that target is a target fault.
    text = json.dumps({"models": {"plain": {"targets": [{"provider": "bedrock", "model_id": SONNET_4_5}]}}})
    assert parse_registry("GATEWAY_MODELS_JSON", text).get("plain").traits.bedrock.inference_profile_required
    text = json.dumps(
        {
            "models": {
                "plain": {
                    "targets": [{"provider": "bedrock", "model_id": SONNET_4_5}],
                    "traits": {"bedrock": {"inference_profile_required": True}},
                }
            }
        }
    )
    with pytest.raises(ConfigurationError, match="inference profile"):
        parse_registry("GATEWAY_MODELS_JSON", text)


def test_gatewayctl_models_traits_shows_where_each_trait_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "models.json"
    team = {"targets": [{"provider": "bedrock", "model_id": f"global.{SONNET_4_5}"}]}
    path.write_text(json.dumps({"models": {"team": {**team, "traits": {"limits": {"context_window": 100_000}}}}}))
    assert main(["models", "traits", "--registry", str(path), "--json"]) == 0
    rows = {row["trait"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["limits.context_window"] == {
        "model": "team",
        "trait": "limits.context_window",
        "value": 100_000,
        "from": "entry",
    }
    assert rows["limits.max_output_tokens"]["value"] == 64_000
    assert rows["limits.max_output_tokens"]["from"] == f"catalog: claude-sonnet-4-5 (bedrock/{SONNET_4_5})"
    assert rows["sampling.temperature"]["value"] == {"min": 0.0, "max": 1.0}
    assert main(["models", "traits", "--registry", str(path), "team"]) == 0
    assert "limits.context_window" in capsys.readouterr().out
