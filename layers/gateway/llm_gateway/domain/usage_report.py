"""Usage grouped by day, tenant, team, key, plan, model, session, end user or tag (`GET /admin/usage?group_by=team`,
`gatewayctl usage --group-by team,model --csv`), as rows or CSV.

A grouping of day, tenant, team, key and plan alone reads the budgets' daily usage (store/usage.py), where a key's
team is read from its key record, so a key that moved team reports its whole history under its current team. A
grouping naming model, session, end_user or a tag reads the usage events (domain/attribution.py), which carry the
team each request had: stored breakdowns for the days the rollup has done, the events themselves after them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from llm_gateway.domain.attribution import breakdown
from llm_gateway.domain.budget_tree import MICROS_PER_USD
from llm_gateway.domain.stores import (
    EVENT_FIGURES,
    SETTLEMENT_WINDOW,
    USAGE_FIELDS,
    DailyUsage,
    EventGroup,
    UsageEvents,
)
from llm_gateway.errors import InvalidRequestError

# Columns of the budgets' daily usage; the usage events have these and EVENT_GROUPS, and a column per tag name.
GROUPS = ("day", "tenant", "team", "key", "plan")
EVENT_GROUPS = ("model", "session", "end_user")
TAG_PREFIX = "tag:"
# A group's value where the attribute is absent (no team, no session, no end user, a tag not given).
NO_TEAM = "-"
NONE = NO_TEAM


def parse_groups(value: str, tag_names: Sequence[str] = ()) -> tuple[str, ...]:
    """`team,model` -> ("team", "model"): any of day, tenant, team, key, plan, model, session, end_user, `tag:NAME`
    (a column of tag NAME's values), or `tag` (a column per allowed tag name, `tag_names`). InvalidRequestError
    (param group_by) for anything else."""
    names: list[str] = []
    unknown = []
    for name in (part.strip() for part in value.split(",")):
        if name == "tag":
            names.extend(TAG_PREFIX + tag for tag in tag_names)
        elif name in GROUPS or name in EVENT_GROUPS or (name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX)):
            names.append(name)
        elif name:
            unknown.append(name)
    if not names or unknown:
        raise InvalidRequestError(
            f"group_by takes a comma-separated list of {', '.join(GROUPS + EVENT_GROUPS)}, tag (a column per allowed "
            f"tag) or tag:NAME; not {', '.join(unknown) or 'nothing'}",
            param="group_by",
        )
    return tuple(dict.fromkeys(names))


def needs_events(groups: Sequence[str]) -> bool:
    """Whether the grouping names an attribute only the usage events carry."""
    return any(name in EVENT_GROUPS or name.startswith(TAG_PREFIX) for name in groups)


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


@dataclass(frozen=True)
class KeyDay:
    """A key's event groups of one day."""

    key_id: str
    day: date
    groups: list[EventGroup]


def _days(first: date, last: date) -> Iterable[date]:
    return (first + timedelta(days=offset) for offset in range((last - first).days + 1))


def key_days(store: UsageEvents, key_ids: Iterable[str], since: date, until: date) -> list[KeyDay]:
    """Every key's event groups of the days `since`..`until`: stored breakdowns up to the day the rollup has done,
    the events of each later day summed as the rollup would (one read per key, and one per key and recent day)."""
    through = store.rolled_up_through()
    found: list[KeyDay] = []
    for key_id in key_ids:
        if through is not None and through >= since:
            stored = store.breakdowns(key_id, since, min(until, through))
            found.extend(KeyDay(key_id, day, groups) for day, groups in sorted(stored.items()))
        first = since if through is None else max(since, through + timedelta(days=1))
        for day in _days(first, until):
            groups = breakdown(store.events(key_id, day))
            if groups:
                found.append(KeyDay(key_id, day, groups))
    return found


def _event_value(found: KeyDay, group: EventGroup, name: str) -> str:
    if name.startswith(TAG_PREFIX):
        return dict(group.tags).get(name[len(TAG_PREFIX) :]) or NONE
    value = {
        "day": found.day.isoformat(),
        "tenant": group.tenant,
        "team": group.team,
        "key": found.key_id,
        "plan": group.plan,
        "model": group.model,
        "session": group.session_id,
        "end_user": group.end_user,
    }[name]
    return value or NONE


def grouped_events(found: Iterable[KeyDay], groups: Sequence[str], team: str | None = None) -> list[Group]:
    """Event groups summed per report group, sorted by the group's values; `team` keeps only that team's
    requests. Costs are summed in micro-dollars and given in USD."""
    sums: dict[tuple[str, ...], Group] = {}
    for key_day in found:
        for group in key_day.groups:
            if team is not None and group.team != team:
                continue
            key = tuple(_event_value(key_day, group, name) for name in groups)
            target = sums.setdefault(key, Group(key))
            figures = dict(zip(EVENT_FIGURES, group.figures, strict=True))
            cost = Decimal(figures.pop("cost_micro_usd")) / MICROS_PER_USD
            for name, amount in figures.items():
                target.figures[name] = target.figures[name] + amount
            target.figures["cost_usd"] = target.figures["cost_usd"] + cost
    return [sums[key] for key in sorted(sums)]


def roll_up_events(
    store: UsageEvents, key_ids: Callable[[date], Iterable[str]], first_day: date | None, now: datetime
) -> int:
    """Store the breakdown of each key's events for every finished day after the last one rolled up (from
    `first_day` when none was), then mark the day done; returns how many key-days got a breakdown.

    A day is finished SETTLEMENT_WINDOW after it ends: no request can finish into it any more. `key_ids(day)` names
    the keys that may have events that day. Storing a breakdown replaces it, so a run cut short and run again
    counts nothing twice; reports read a day's events until its mark is set."""
    last = (now.astimezone(UTC) - SETTLEMENT_WINDOW).date() - timedelta(days=1)
    through = store.rolled_up_through()
    first = first_day if through is None else through + timedelta(days=1)
    if first is None:
        return 0
    stored = 0
    for day in _days(first, last):
        for key_id in dict.fromkeys(key_ids(day)):
            groups = breakdown(store.events(key_id, day))
            if groups:
                store.put_breakdown(key_id, day, groups)
                stored += 1
        store.set_rolled_up_through(day)
    return stored
