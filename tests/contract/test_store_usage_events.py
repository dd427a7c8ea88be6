"""The usage events port on both backends (DynamoDB on moto from template.yaml, the embedded SQLite database): events
written once, breakdowns stored and replaced, the rollup's mark; the rollup and the reports over them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from llm_gateway.domain.attribution import breakdown
from llm_gateway.domain.stores import EventGroup, UsageEvent, UsageEvents
from llm_gateway.domain.usage_report import as_csv, grouped_events, key_days, parse_groups, roll_up_events
from llm_gateway.store.sqlite.usage_events import SqliteUsageEvents
from llm_gateway.store.usage_events import GROUPS_PER_ITEM, DynamoUsageEvents
from tests.contract.store_backends import BACKENDS, sqlite_database

DAY = date(2026, 11, 22)
NEXT = DAY + timedelta(days=1)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UsageEvents:
    if request.param == "sqlite":
        return SqliteUsageEvents(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    return DynamoUsageEvents(stack.dynamodb, stack.outputs["UsageEventsTableName"])


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def event(request_id: str, when: datetime, key_id: str = "key_a", **fields: object) -> UsageEvent:
    values: dict[str, object] = {
        "tenant": "acme",
        "plan": "standard",
        "model": "echo",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_micro_usd": 20,
    }
    values.update(fields)
    return UsageEvent(request_id, when, key_id, **values)  # type: ignore[arg-type]


def test_an_event_is_written_once_and_read_back_whole(store: UsageEvents) -> None:
    whole = event(
        "req-1",
        at(DAY, 9, 30),
        team="platform",
        failed=True,
        status=502,
        cached_tokens=3,
        cache_write_tokens=2,
        session_id="session-1",
        end_user="user-42",
        tags=(("env", "dev"), ("project", "alpha")),
    )
    store.record(whole)
    store.record(whole)
    bare = event("req-2", at(DAY, 10), prompt_tokens=0, completion_tokens=0, cost_micro_usd=0)
    store.record(bare)
    store.record(event("req-3", at(NEXT, 0, 1)))
    store.record(event("req-4", at(DAY, 11), key_id="key_b"))
    assert store.events("key_a", DAY) == [whole, bare]
    assert [e.request_id for e in store.events("key_a", NEXT)] == ["req-3"]
    assert store.events("key_c", DAY) == []


def test_breakdowns_are_stored_by_day_and_replaced(store: UsageEvents) -> None:
    groups = [
        EventGroup("acme", None, "standard", f"model-{i:04d}", None, None, (), (1, 0, 1, 0, 0, 1, 1))
        for i in range(GROUPS_PER_ITEM + 3)
    ]
    store.put_breakdown("key_a", DAY, groups)
    store.put_breakdown("key_a", NEXT, groups[:1])
    store.put_breakdown("key_b", DAY, groups[:2])
    assert store.breakdowns("key_a", DAY, NEXT) == {DAY: groups, NEXT: groups[:1]}
    assert store.breakdowns("key_a", NEXT, NEXT + timedelta(days=5)) == {NEXT: groups[:1]}
    # A rollup run again over a day replaces its breakdown whole.
    store.put_breakdown("key_a", DAY, groups[:2])
    assert store.breakdowns("key_a", DAY, DAY) == {DAY: groups[:2]}
    assert store.rolled_up_through() is None
    store.set_rolled_up_through(DAY)
    assert store.rolled_up_through() == DAY


def _requests(store: UsageEvents) -> None:
    """Two keys over two days: models, sessions, end users and tags that a report groups by."""
    store.record(event("r1", at(DAY, 9), model="echo", session_id="s1", end_user="u1", tags=(("project", "alpha"),)))
    store.record(event("r2", at(DAY, 10), model="echo", session_id="s1", end_user="u1", tags=(("project", "alpha"),)))
    store.record(event("r3", at(DAY, 11), model="claude", team="platform", failed=True, status=502))
    store.record(event("r4", at(DAY, 12), key_id="key_b", tenant="globex", model="claude", end_user="u2"))
    store.record(event("r5", at(NEXT, 8), model="echo", session_id="s2", tags=(("env", "dev"), ("project", "beta"))))


def test_the_rollup_breaks_down_finished_days_and_reports_read_the_same(store: UsageEvents) -> None:
    _requests(store)
    keys = ["key_a", "key_b"]
    before = grouped_events(key_days(store, keys, DAY, NEXT), ("day", "key", "model"))
    # At 00:10 on the 23rd the 22nd is not finished (requests may still end into it): nothing is rolled up.
    assert roll_up_events(store, lambda day: keys, DAY, at(NEXT, 0, 10)) == 0
    assert store.rolled_up_through() is None
    assert roll_up_events(store, lambda day: keys, DAY, at(NEXT, 0, 30)) == 2
    assert store.rolled_up_through() == DAY
    assert store.breakdowns("key_a", DAY, DAY) == {DAY: breakdown(store.events("key_a", DAY))}
    # A second run has nothing left to do.
    assert roll_up_events(store, lambda day: keys, DAY, at(NEXT, 0, 30)) == 0
    after = grouped_events(key_days(store, keys, DAY, NEXT), ("day", "key", "model"))
    assert after == before
    assert [(g.key, g.figures["requests"]) for g in after] == [
        (("2026-11-22", "key_a", "claude"), 1),
        (("2026-11-22", "key_a", "echo"), 2),
        (("2026-11-22", "key_b", "claude"), 1),
        (("2026-11-23", "key_a", "echo"), 1),
    ]


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("day", {("2026-11-22",): 4, ("2026-11-23",): 1}),
        ("tenant", {("acme",): 4, ("globex",): 1}),
        ("team", {("-",): 4, ("platform",): 1}),
        ("key", {("key_a",): 4, ("key_b",): 1}),
        ("plan", {("standard",): 5}),
        ("model", {("claude",): 2, ("echo",): 3}),
        ("session", {("-",): 2, ("s1",): 2, ("s2",): 1}),
        ("end_user", {("-",): 2, ("u1",): 2, ("u2",): 1}),
        ("tag:project", {("-",): 2, ("alpha",): 2, ("beta",): 1}),
        ("tag", {("-", "-"): 2, ("-", "alpha"): 2, ("dev", "beta"): 1}),
        ("team,model", {("-", "claude"): 1, ("-", "echo"): 3, ("platform", "claude"): 1}),
    ],
)
def test_reports_group_by_each_column(store: UsageEvents, group_by: str, expected: dict[tuple[str, ...], int]) -> None:
    _requests(store)
    # The 22nd rolled up, the 23rd read from its events: a report spans both.
    roll_up_events(store, lambda day: ["key_a", "key_b"], DAY, at(NEXT, 12))
    groups = parse_groups(group_by, ("env", "project"))
    found = grouped_events(key_days(store, ["key_a", "key_b"], DAY, NEXT), groups)
    assert {g.key: g.figures["requests"] for g in found} == expected


def test_a_report_as_csv(store: UsageEvents) -> None:
    _requests(store)
    groups = parse_groups("model,session")
    text = as_csv(groups, grouped_events(key_days(store, ["key_a", "key_b"], DAY, NEXT), groups))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "model", "session", "requests", "failed", "prompt_tokens", "cached_tokens", "cache_write_tokens",
        "completion_tokens", "cost_usd",
    ]  # fmt: skip
    claude = [row for row in rows if row["model"] == "claude"]
    assert claude == [
        {"model": "claude", "session": "-", "requests": "2", "failed": "1", "prompt_tokens": "20", "cached_tokens": "0",
         "cache_write_tokens": "0", "completion_tokens": "10", "cost_usd": "0.000040"},
    ]  # fmt: skip
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal("0.000100")
    team = grouped_events(key_days(store, ["key_a", "key_b"], DAY, NEXT), ("model",), team="platform")
    assert [(g.key, g.figures["failed"]) for g in team] == [(("claude",), 1)]
