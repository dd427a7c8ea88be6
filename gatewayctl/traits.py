"""`gatewayctl models traits`: each model's traits in force and where each came from (its entry or the catalog)."""

from __future__ import annotations

import json
from typing import Any

from gatewayctl.output import render_table
from llm_gateway.domain.model_catalog import TraitCatalog, resolve_traits
from llm_gateway.domain.registry import ModelRegistry

TRAIT_COLUMNS = ("MODEL", "TRAIT", "VALUE", "FROM")


def trait_rows(registry: ModelRegistry, catalog: TraitCatalog, names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per stated trait field of each model (all, or `names`): model, trait ("group.field"), the value in
    force (JSON) and its origin ("entry" or "catalog: <shipped entry> (<provider>/<model id>)")."""
    rows: list[dict[str, Any]] = []
    for name in names or registry.names():
        entry = registry.get(name)
        resolved = resolve_traits(entry, catalog)
        values = resolved.traits.model_dump(mode="json")
        for trait, origin in sorted(resolved.origins.items()):
            group, field = trait.split(".")
            rows.append(
                {"model": registry.canonical_name(name), "trait": trait, "value": values[group][field], "from": origin}
            )
    return rows


def trait_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        TRAIT_COLUMNS,
        [(row["model"], row["trait"], json.dumps(row["value"], separators=(",", ":")), row["from"]) for row in rows],
    )
