"""Unions of request parts told apart by their `type`, as both OpenAI's and Anthropic's APIs tag content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OTHER = "other"


def kind_of(known: frozenset[str]) -> Callable[[Any], str]:
    """A pydantic discriminator: a part's `type` when the gateway interprets that kind, else OTHER (a part kept
    whole). A `type` that is not a string is OTHER too, so validation names it instead of failing on it."""

    def kind(value: Any) -> str:
        tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return tag if isinstance(tag, str) and tag in known else OTHER

    return kind
