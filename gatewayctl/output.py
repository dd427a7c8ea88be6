"""How gatewayctl prints what the admin API answers: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def short_time(value: str | None) -> str | None:
    return None if value is None else datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%MZ")


def record_dict(key: Mapping[str, Any]) -> dict[str, Any]:
    """The admin API's key as gatewayctl prints it: its limits beside its other fields (never a hash or usage
    identifier: the API sends neither)."""
    flat = {name: value for name, value in key.items() if name != "limits"}
    flat.update(key.get("limits") or {})
    return flat


KEY_COLUMNS = ("KEY ID", "TENANT", "PLAN", "MODELS", "STATUS", "CREATED", "EXPIRES", "KEY")


def key_row(key: Mapping[str, Any]) -> list[Any]:
    models = key["models"] if isinstance(key["models"], str) else ",".join(key["models"])
    return [
        key["key_id"],
        key["tenant"],
        key["plan"],
        models,
        key["status"],
        short_time(key["created_at"]),
        short_time(key["expires_at"]),
        key["key_hint"],
    ]


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, default=str), file=stream or sys.stdout)


def print_details(key: Mapping[str, Any], stream: TextIO | None = None) -> None:
    details = record_dict(key)
    width = max(len(name) for name in details)
    for name, value in details.items():
        shown = ",".join(value) if isinstance(value, list) else ("-" if value is None else value)
        print(f"{name.ljust(width)}  {shown}", file=stream or sys.stdout)


# PROMPT counts every input token; CACHE READ and CACHE WRITE are the parts of it read from and written to a
# prompt cache (billed at the model's cache prices).
USAGE_COLUMNS = (
    "DAY",
    "TENANT",
    "KEY ID",
    "PLAN",
    "REQUESTS",
    "FAILED",
    "PROMPT",
    "CACHE READ",
    "CACHE WRITE",
    "COMPLETION",
    "COST USD",
)
COUNTS = ("requests", "failed", "prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens")


def usage_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """A usage row of the admin API grouped by day, tenant, key and plan, as `gatewayctl usage --json` prints it."""
    return {
        "day": row["day"],
        "tenant": row["tenant"],
        "key_id": row["key"],
        "plan": row["plan"],
        **{name: row[name] for name in COUNTS},
        "cost_usd": row["cost_usd"],
    }


def usage_row(row: Mapping[str, Any]) -> list[Any]:
    return [
        row["day"],
        row["tenant"],
        row["key_id"],
        row["plan"],
        *(row[name] for name in COUNTS),
        f"{Decimal(row['cost_usd']):.6f}",
    ]


def usage_total(rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [
        "TOTAL",
        "",
        "",
        "",
        *(sum(int(r[name]) for r in rows) for name in COUNTS),
        f"{sum((Decimal(r['cost_usd']) for r in rows), Decimal(0)):.6f}",
    ]
