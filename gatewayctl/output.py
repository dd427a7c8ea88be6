"""How gatewayctl prints: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from llm_gateway.domain.keys import KeyRecord
from llm_gateway.domain.stores import DailyUsage


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def short_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%MZ")


def record_dict(record: KeyRecord) -> dict[str, Any]:
    """A key record as shown to operators: never the hash, never the usage identifier."""
    limits = record.limits
    return {
        "key_id": record.key_id,
        "key_hint": record.key_hint,
        "tenant": record.tenant,
        "team": record.team,
        "plan": record.plan,
        "models": list(record.models) if record.models is not None else "*",
        "status": record.status,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "rotated_from": record.rotated_from,
        "api_key_id": record.api_key_id,
        "tokens_per_minute": limits.tokens_per_minute,
        "tokens_per_day": limits.tokens_per_day,
        "usd_per_month": str(limits.usd_per_month) if limits.usd_per_month is not None else None,
    }


KEY_COLUMNS = ("KEY ID", "TENANT", "PLAN", "MODELS", "STATUS", "CREATED", "EXPIRES", "KEY")


def key_row(record: KeyRecord) -> list[Any]:
    models = ",".join(record.models) if record.models is not None else "*"
    return [
        record.key_id,
        record.tenant,
        record.plan,
        models,
        record.status,
        short_time(record.created_at),
        short_time(record.expires_at),
        record.key_hint,
    ]


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, default=str), file=stream or sys.stdout)


def print_details(record: KeyRecord, stream: TextIO | None = None) -> None:
    details = record_dict(record)
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


def usage_row(row: DailyUsage) -> list[Any]:
    return [
        row.day.isoformat(),
        row.tenant,
        row.key_id,
        row.plan,
        row.requests,
        row.failed,
        row.prompt_tokens,
        row.cached_tokens,
        row.cache_write_tokens,
        row.completion_tokens,
        f"{row.cost_usd:.6f}",
    ]


def usage_total(rows: Sequence[DailyUsage]) -> list[Any]:
    return [
        "TOTAL",
        "",
        "",
        "",
        sum(r.requests for r in rows),
        sum(r.failed for r in rows),
        sum(r.prompt_tokens for r in rows),
        sum(r.cached_tokens for r in rows),
        sum(r.cache_write_tokens for r in rows),
        sum(r.completion_tokens for r in rows),
        f"{sum((r.cost_usd for r in rows), Decimal(0)):.6f}",
    ]


def usage_dict(row: DailyUsage) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "tenant": row.tenant,
        "key_id": row.key_id,
        "plan": row.plan,
        "requests": row.requests,
        "failed": row.failed,
        "prompt_tokens": row.prompt_tokens,
        "cached_tokens": row.cached_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_usd": str(row.cost_usd),
    }
