"""What the round-trip properties compare and generate: values of the conversation model without the places a reader
notes (`path`) or the body it keeps (`native`), and the pieces both chat formats carry alike."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import strategies as st

from llm_gateway.domain.answers import Usage


def bare(value: Any) -> Any:
    """`value` with every `path` emptied and every `native` dropped, at every level: what a reader adds beside the
    conversation itself."""
    if isinstance(value, tuple):
        return tuple(bare(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {field.name: bare(getattr(value, field.name)) for field in dataclasses.fields(value)}
        if "path" in changes:
            changes["path"] = ""
        if "native" in changes:
            changes["native"] = None
        return dataclasses.replace(value, **changes)
    return value


# Text a model or caller could send: any characters, surrogates aside (JSON cannot carry them alone).
text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
identifier = st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(identifier, inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(identifier, json_value, max_size=3).map(json.dumps)
counts = st.integers(0, 100_000)


@st.composite
def usages(draw: st.DrawFn, *, cache_writes: bool, reasoning: bool) -> Usage:
    """Usage as a format can say it: cache writes and reasoning tokens only where it has a field for them."""
    cached, written = draw(counts), draw(counts) if cache_writes else 0
    return Usage(
        prompt_tokens=cached + written + draw(counts),
        completion_tokens=draw(counts),
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=draw(counts) if reasoning else 0,
    )
