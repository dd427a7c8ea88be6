"""Seeding the registry from litellm's model catalog: matching, filling, overwriting, sources, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatewayctl.catalog import _per_1k, catalog_entry, import_catalog, report
from gatewayctl.cli import main
from llm_gateway.domain.registry import ModelRegistry

CATALOG: dict[str, Any] = {
    "sample_spec": {"mode": "one of: chat, embedding"},
    "bedrock/us.example.model-v1:0": {
        "mode": "chat",
        "max_input_tokens": 200000,
        "max_output_tokens": 64000,
        "input_cost_per_token": 3.3e-06,
        "output_cost_per_token": 1.65e-05,
        "supports_function_calling": True,
        "supports_vision": True,
        "supports_pdf_input": False,
        "source": "https://aws.amazon.com/bedrock/pricing/",
    },
    "text-embedding-x": {"mode": "embedding", "max_input_tokens": 8191},
}
LABEL = "litellm 9.9 model catalog"


def registry(**entry: Any) -> dict[str, Any]:
    targets = [
        {"provider": "bedrock", "model_id": "us.unknown.model-v1:0"},
        {"provider": "bedrock", "model_id": "us.example.model-v1:0"},
    ]
    return {"models": {"example": {"targets": targets, **entry}}}


def test_an_entry_is_matched_by_its_first_target_the_catalog_knows_with_its_prefix() -> None:
    key, _ = catalog_entry(CATALOG, registry()["models"]["example"]["targets"]) or ("", {})
    assert key == "bedrock/us.example.model-v1:0"
    assert catalog_entry(CATALOG, [{"provider": "openai", "model_id": "text-embedding-x"}]) is None, "chat only"


def test_missing_values_are_filled_and_sourced_to_the_catalog() -> None:
    updated, changes = import_catalog(registry(), CATALOG, LABEL)
    example = updated["models"]["example"]
    assert example["traits"]["limits"] == {
        "context_window": 200000,
        "max_output_tokens": 64000,
        "source": f"{LABEL}: bedrock/us.example.model-v1:0 (its source: https://aws.amazon.com/bedrock/pricing/)",
    }
    assert {k: v for k, v in example["traits"]["capabilities"].items() if k != "source"} == {
        "tools": True,
        "images": True,
        "documents": False,
    }
    assert (example["prices"]["input_per_1k"], example["prices"]["output_per_1k"]) == ("0.0033", "0.0165")
    assert all(change.applied for change in changes)
    ModelRegistry.model_validate(updated)


def test_stated_values_are_kept_unless_overwritten() -> None:
    stated = registry(
        traits={"limits": {"context_window": 200000, "max_output_tokens": 5000, "source": "https://docs.aws/x"}}
    )
    kept, changes = import_catalog(stated, CATALOG, LABEL, groups=["limits"])
    assert kept["models"]["example"]["traits"]["limits"] == stated["models"]["example"]["traits"]["limits"]
    assert [(c.field, c.registry, c.catalog, c.applied) for c in changes] == [
        ("limits.max_output_tokens", 5000, 64000, False)
    ]
    assert "--overwrite" in report(changes, written=False)
    replaced, _ = import_catalog(stated, CATALOG, LABEL, groups=["limits"], overwrite=True)
    limits = replaced["models"]["example"]["traits"]["limits"]
    assert limits["max_output_tokens"] == 64000 and limits["source"].startswith(LABEL)
    assert "prices" not in replaced["models"]["example"], "only the chosen groups"


@pytest.mark.parametrize(
    ("per_token", "per_1k"), [(3e-06, "0.003"), (6e-08, "0.00006"), (1.65e-05, "0.0165"), (0.01, "10"), (0.0, "0")]
)
def test_prices_are_exact_decimals_per_1k(per_token: float, per_1k: str) -> None:
    assert _per_1k(per_token) == per_1k


def test_the_cli_reports_then_writes_a_registry_the_gateway_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, path = tmp_path / "catalog.json", tmp_path / "models.json"
    catalog.write_text(json.dumps(CATALOG))
    path.write_text(json.dumps(registry()))
    command = ["models", "import-litellm", "--catalog", str(catalog), "--registry", str(path)]
    assert main(command) == 0
    assert json.loads(path.read_text()) == registry(), "without --write nothing changes"
    assert "(taken with --write)" in capsys.readouterr().out
    assert main([*command, "--write"]) == 0
    assert "(written)" in capsys.readouterr().out
    loaded = ModelRegistry.model_validate_json(path.read_text())
    assert loaded.models["example"].traits.limits.context_window == 200000
