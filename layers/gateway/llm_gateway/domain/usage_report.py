"""Usage grouped by tenant, team, key, plan or day (`GET /admin/usage?group_by=team`, `gatewayctl usage --group-by
team`), as rows or CSV.

A key's team is read from its key record (the chain it carries), so a key that moved team reports its whole history
under its current team.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from llm_gateway.domain.stores import USAGE_FIELDS, DailyUsage
from llm_gateway.errors import InvalidRequestError

GROUPS = ("day", "tenant", "team", "key", "plan")
NO_TEAM = "-"


def parse_groups(value: str) -> tuple[str, ...]:
    """`team,day` -> ("team", "day"); InvalidRequestError (param group_by) for anything else. The usage rows are
    kept per key and day, so `model` is refused by name rather than answered with a column of blanks."""
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in GROUPS]
    if not names or unknown:
        hint = " (usage is recorded per key and day, not per model)" if "model" in unknown else ""
        raise InvalidRequestError(
            f"group_by takes a comma-separated list of {', '.join(GROUPS)}; not {', '.join(unknown) or 'nothing'}"
            + hint,
            param="group_by",
        )
    return names


@dataclass
class Group:
    key: tuple[str, ...]
    figures: dict[str, int | Decimal] = field(default_factory=lambda: dict.fromkeys(USAGE_FIELDS, 0))


def grouped(rows: Sequence[DailyUsage], groups: Sequence[str], teams: Mapping[str, str | None]) -> list[Group]:
    """Rows summed per group, sorted by the group's values; `teams` maps key ids to their team."""

    def value(row: DailyUsage, name: str) -> str:
        if name == "day":
            return row.day.isoformat()
        if name == "tenant":
            return row.tenant
        if name == "team":
            return teams.get(row.key_id) or NO_TEAM
        if name == "plan":
            return row.plan
        return row.key_id

    found: dict[tuple[str, ...], Group] = {}
    for row in rows:
        key = tuple(value(row, name) for name in groups)
        group = found.setdefault(key, Group(key))
        for name, amount in row.figures().items():
            group.figures[name] = group.figures[name] + amount
    return [found[key] for key in sorted(found)]


def header(groups: Sequence[str]) -> list[str]:
    return [
        *groups,
        "requests",
        "failed",
        "prompt_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "completion_tokens",
        "cost_usd",
    ]


def row_values(group: Group) -> list[str]:
    f = group.figures
    names = ("requests", "failed", "prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens")
    return [*group.key, *(str(f[name]) for name in names), f"{Decimal(f['cost_usd']):.6f}"]


def as_csv(groups: Sequence[str], found: Sequence[Group]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header(groups))
    writer.writerows(row_values(group) for group in found)
    return out.getvalue()
