"""Seed the model registry from litellm's model catalog: context windows, output limits, capabilities, prices.

A development-time tool (`gatewayctl models import-litellm`): it reads the catalog JSON litellm ships
(`model_prices_and_context_window.json`, also in the litellm wheel as `..._backup.json`) and never becomes a
dependency of the Lambda functions. Each registry entry is matched by its first target found in the catalog;
values the registry already states are kept unless `overwrite` is set, and every value taken from the catalog
names the catalog entry as its source.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

CATALOG_FILE = "model_prices_and_context_window_backup.json"
CATALOG_URL = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
GROUPS = ("limits", "capabilities", "prices")

# registry group -> registry field -> catalog field (embedding: for entries of kind "embedding", the catalog's
# mode "embedding"; chat entries take limits and capabilities)
_TRAIT_FIELDS: dict[str, dict[str, str]] = {
    "embedding": {"max_input_tokens": "max_input_tokens", "dimensions": "output_vector_size"},
    "limits": {"context_window": "max_input_tokens", "max_output_tokens": "max_output_tokens"},
    "capabilities": {
        "tools": "supports_function_calling",
        "tool_choice": "supports_tool_choice",
        "images": "supports_vision",
        "documents": "supports_pdf_input",
        "reasoning": "supports_reasoning",
        "prompt_caching": "supports_prompt_caching",
        "assistant_prefill": "supports_assistant_prefill",
    },
}
_PRICE_FIELDS = {"input_per_1k": "input_cost_per_token", "output_per_1k": "output_cost_per_token"}
# How the catalog prefixes the model ids of each registry provider (tried after the bare id).
_CATALOG_PREFIXES = {"bedrock": ("bedrock/", "bedrock_converse/"), "openai": ("openai/",), "echo": ()}


@dataclass(frozen=True)
class Change:
    """One value where the registry and the catalog differ; `applied` when it was written to the registry."""

    model: str
    field: str
    registry: object
    catalog: object
    applied: bool


def load_catalog(path: Path | None) -> tuple[dict[str, Any], str]:
    """The catalog and a label naming it: the given file, else the copy inside an installed litellm package."""
    if path is None:
        spec = importlib.util.find_spec("litellm")
        if spec is None or spec.origin is None:
            raise ValueError(
                "No catalog: pass --catalog FILE (e.g. the litellm wheel's litellm/" + CATALOG_FILE + ", from "
                "'pip download litellm --no-deps' in a scratch directory), or run with litellm installed."
            )
        path = Path(spec.origin).parent / CATALOG_FILE
    catalog = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(catalog, dict):
        raise ValueError(f"{path} is not a litellm model catalog")
    version = _litellm_version(path)
    return catalog, f"litellm{' ' + version if version else ''} model catalog ({CATALOG_URL})"


def _litellm_version(path: Path) -> str | None:
    """The version of the litellm package a catalog file belongs to, when it sits inside one."""
    for info in path.parent.parent.glob("litellm-*.dist-info/METADATA"):
        for line in info.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return None


def catalog_entry(
    catalog: Mapping[str, Any], targets: Iterable[Mapping[str, Any]], kind: str = "chat"
) -> tuple[str, dict[str, Any]] | None:
    """The catalog key and entry of the first target the catalog knows as a model of the same kind (the
    catalog's `mode`: chat, embedding)."""
    for target in targets:
        model_id = str(target.get("model_id", ""))
        for prefix in ("", *_CATALOG_PREFIXES.get(str(target.get("provider")), ())):
            entry = catalog.get(prefix + model_id)
            if isinstance(entry, dict) and entry.get("mode", "chat") == kind:
                return prefix + model_id, entry
    return None


def import_catalog(
    registry: Mapping[str, Any],
    catalog: Mapping[str, Any],
    label: str,
    *,
    groups: Iterable[str] = GROUPS,
    overwrite: bool = False,
) -> tuple[dict[str, Any], list[Change]]:
    """The registry with the catalog's values filled in (or, with `overwrite`, replacing its own), and every
    value where the two differ."""
    updated = copy.deepcopy(dict(registry))
    changes: list[Change] = []
    wanted = set(groups)
    for name, entry in updated.get("models", {}).items():
        kind = str(entry.get("kind", "chat"))
        found = catalog_entry(catalog, entry.get("targets", []), kind)
        if found is None:
            continue
        key, item = found
        source = f"{label}: {key}" + (f" (its source: {item['source']})" if item.get("source") else "")
        trait_groups = ("embedding",) if kind == "embedding" else ("limits", "capabilities")
        for group in trait_groups:
            if group in wanted or (group == "embedding" and "limits" in wanted):
                section = entry.setdefault("traits", {}).setdefault(group, {})
                changes += _merge(
                    name,
                    group=group,
                    section=section,
                    fields=_TRAIT_FIELDS[group],
                    item=item,
                    source=source,
                    overwrite=overwrite,
                )
        if "prices" in wanted:
            prices = entry.setdefault("prices", {})
            catalog_prices = {
                field: _per_1k(item[catalog_field])
                for field, catalog_field in _PRICE_FIELDS.items()
                if isinstance(item.get(catalog_field), int | float)
            }
            changes += _merge(
                name,
                group="prices",
                section=prices,
                fields={field: field for field in catalog_prices},
                item=catalog_prices,
                source=source,
                overwrite=overwrite,
            )
    return updated, changes


def _merge(
    model: str,
    *,
    group: str,
    section: dict[str, Any],
    fields: Mapping[str, str],
    item: Mapping[str, Any],
    source: str,
    overwrite: bool,
) -> list[Change]:
    changes = []
    applied_any = agreed = False
    for field, catalog_field in fields.items():
        if catalog_field not in item:
            continue
        ours, theirs = section.get(field), item[catalog_field]
        if _same(ours, theirs):
            agreed = True
            continue
        applied = ours is None or overwrite
        if applied:
            section[field] = theirs
            applied_any = True
        changes.append(Change(model, f"{group}.{field}", ours, theirs, applied))
    # Values written from the catalog, or stated without a source and confirmed by it, are sourced to it.
    if applied_any or (agreed and not section.get("source")):
        section["source"] = source
    return changes


def _same(ours: object, theirs: object) -> bool:
    if ours is None:
        return False
    try:
        return Decimal(str(ours)) == Decimal(str(theirs))
    except ArithmeticError:
        return ours == theirs


def _per_1k(per_token: float) -> str:
    """A per-token price as the registry's per-1K decimal string, without float noise (3e-06 -> "0.003")."""
    text = format(Decimal(repr(per_token)) * 1000, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def report(changes: Iterable[Change], *, written: bool) -> str:
    """One line per difference: the registry's value, the catalog's, and which one the registry keeps."""
    taken = "  (written)" if written else "  (taken with --write)"
    lines = [
        f"{c.model:<22} {c.field:<32} registry={json.dumps(c.registry)!s:<12} catalog={json.dumps(c.catalog)}"
        + (taken if c.applied else "  (kept; --overwrite takes the catalog's)")
        for c in changes
    ]
    return "\n".join(lines) if lines else "The registry agrees with the catalog."
