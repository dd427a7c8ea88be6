"""The model list and model objects in Anthropic's shape (https://docs.anthropic.com/en/api/models-list)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from llm_gateway.domain.registry import ModelEntry


def _created_at(entry: ModelEntry) -> str:
    return datetime.fromtimestamp(entry.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_info(name: str, entry: ModelEntry) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": _created_at(entry),
        # Every model the registry serves can be called.
        "lifecycle": "active",
    }
    limits = entry.traits.limits
    if limits.context_window is not None:
        info["max_input_tokens"] = limits.context_window
    if limits.max_output_tokens is not None:
        info["max_tokens"] = limits.max_output_tokens
    return info


def model_page(
    models: Sequence[tuple[str, ModelEntry]], *, limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """One page of the model list in Anthropic's shape, in the registry's order; after_id/before_id are ids
    of the list (an unknown id pages from the start, or the end)."""
    names = [name for name, _ in models]
    start, stop = 0, len(models)
    if after_id is not None:
        start = names.index(after_id) + 1 if after_id in names else len(names)
    if before_id is not None:
        stop = names.index(before_id) if before_id in names else 0
        start = max(start, stop - limit)
    selected = list(models[start:stop])
    page = selected[:limit]
    data = [model_info(name, entry) for name, entry in page]
    return {
        "data": data,
        "has_more": len(selected) > limit or (before_id is not None and start > 0),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
