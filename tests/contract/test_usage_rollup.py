"""The daily rollup: finished days move from the keys' budget items into rollup items, exactly, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from emulator.lambda_context import LocalLambdaContext
from emulator.template import load_handler
from llm_gateway.config import Settings
from llm_gateway.domain.answers import Usage
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import Prices
from llm_gateway.domain.stores import SETTLEMENT_WINDOW, UsageEvent
from llm_gateway.metering import UsageMeter
from llm_gateway.store.usage import UsageStore
from llm_gateway.store.usage_events import DynamoUsageEvents
from tests.conftest import reset_caches
from tests.contract.conftest import Stack
from tests.fakes.requests import openai_chat

PRICES = Prices(input_per_1k=Decimal("0.001"), output_per_1k=Decimal("0.002"))
NOON_22 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REQUEST = openai_chat({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def store(stack: Stack) -> UsageStore:
    return UsageStore(stack.dynamodb, stack.outputs["UsageTableName"])


def serve(stack: Stack, at: datetime, usage: Usage | None, key_id: str = "key_a", tenant: str = "acme") -> None:
    meter = UsageMeter(store(stack), Settings(), Clock(at))
    caller = Caller(tenant=tenant, key_id=key_id, plan="standard", limits=TokenLimits(tokens_per_day=10_000))
    meter.settle(meter.reserve(caller, "echo", PRICES, REQUEST), usage, failed=usage is None)


def item(stack: Stack, period: str, key_id: str = "key_a") -> dict[str, Any]:
    found = stack.dynamodb.get_item(
        TableName=stack.outputs["UsageTableName"], Key={"key_id": {"S": key_id}, "period": {"S": period}}
    ).get("Item", {})
    return {name: (value.get("N") or value.get("S")) for name, value in found.items()}


def report(stack: Stack, **filters: Any) -> list[tuple[str, date, int, int, int, int, Decimal, int, int]]:
    return [
        (
            r.key_id,
            r.day,
            r.requests,
            r.failed,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_usd,
            r.cached_tokens,
            r.cache_write_tokens,
        )
        for r in store(stack).daily_usage(**filters)
    ]


def test_a_finished_day_moves_into_its_rollup_and_the_report_is_unchanged(stack: Stack) -> None:
    serve(stack, NOON_22, Usage(100, 50, cached_tokens=60, cache_write_tokens=30))
    serve(stack, NOON_22, Usage(10, 5))
    serve(stack, NOON_22, None)
    serve(stack, NOON_22 + timedelta(days=1), Usage(1, 1))
    before = report(stack)
    assert before[0] == ("key_a", date(2026, 11, 22), 2, 1, 110, 55, Decimal("0.22") / 1000, 60, 30)
    moved = store(stack).roll_up_finished_days(datetime(2026, 11, 23, 0, 0, tzinfo=UTC) + SETTLEMENT_WINDOW)
    assert moved == 1, "the 23rd is not over"
    assert report(stack) == before
    budget = item(stack, "2026-11")
    assert not [name for name in budget if name.endswith("_22") and not name.startswith("budget_")]
    assert "requests_23" in budget
    rollup = item(stack, "2026-11-22")
    assert (rollup["day"], rollup["tenant"], rollup["requests"], rollup["failed"], rollup["prompt_tokens"]) == (
        "2026-11-22",
        "acme",
        "2",
        "1",
        "110",
    )
    assert (rollup["cached_tokens"], rollup["cache_write_tokens"]) == ("60", "30")
    assert int(rollup["expires_at"]) == int(budget["expires_at"]), "kept as long as its month's budget item"
    assert store(stack).roll_up_finished_days(datetime(2026, 11, 24, 1, 0, tzinfo=UTC)) == 1, "the 23rd, once"
    assert report(stack) == before


def test_a_day_still_receiving_settlements_is_not_moved(stack: Stack) -> None:
    serve(stack, NOON_22, Usage(1, 1))
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    assert store(stack).roll_up_finished_days(midnight + SETTLEMENT_WINDOW - timedelta(seconds=1)) == 0
    assert "requests_22" in item(stack, "2026-11")


def test_a_settlement_between_read_and_move_cancels_the_move(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(stack, NOON_22, Usage(1, 1))
    rollups = store(stack)
    original = rollups._move

    def late_settlement_first(item: dict[str, Any], row: Any) -> bool:
        serve(stack, NOON_22, Usage(2, 2))  # lands after the scan read the item
        return original(item, row)

    monkeypatch.setattr(rollups, "_move", late_settlement_first)
    assert rollups.roll_up_finished_days(datetime(2026, 11, 24, tzinfo=UTC)) == 0
    assert item(stack, "2026-11-22") == {}
    assert report(stack)[0][2:5] == (2, 0, 3)
    assert store(stack).roll_up_finished_days(datetime(2026, 11, 24, tzinfo=UTC)) == 1
    assert report(stack)[0][2:5] == (2, 0, 3)


def test_reports_by_key_and_by_tenant_add_rollups_and_budget_items(stack: Stack) -> None:
    serve(stack, NOON_22, Usage(5, 5), "key_a", "acme")
    serve(stack, NOON_22, Usage(7, 3), "key_b", "beta")
    store(stack).roll_up_finished_days(datetime(2026, 11, 24, tzinfo=UTC))
    serve(stack, NOON_22, Usage(1, 1), "key_a", "acme")  # a settlement after the roll-up
    serve(stack, NOON_22 + timedelta(days=2), Usage(3, 3), "key_a", "acme")
    acme = report(stack, tenant="acme")
    assert [(r[0], r[1], r[2], r[4]) for r in acme] == [
        ("key_a", date(2026, 11, 22), 2, 6),
        ("key_a", date(2026, 11, 24), 1, 3),
    ]
    assert report(stack, key_id="key_a") == acme
    assert [r[0] for r in report(stack, tenant="beta")] == ["key_b"]
    assert report(stack, since=date(2026, 11, 23)) == acme[1:]


def test_the_scheduled_function_rolls_up(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    serve(stack, NOON_22, Usage(1, 1))
    monkeypatch.setattr("llm_gateway.rollup.utcnow", lambda: datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    handler = load_handler("UsageRollupFunction")
    event = {"id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", "detail-type": "Scheduled Event", "source": "aws.events"}
    # The key's usage event of that day, as the API function records it: broken down by the same run.
    monkeypatch.setenv("GATEWAY_USAGE_EVENTS_TABLE", stack.outputs["UsageEventsTableName"])
    reset_caches()
    DynamoUsageEvents(stack.dynamodb, stack.outputs["UsageEventsTableName"]).record(
        UsageEvent("req-1", NOON_22, "key_a", "acme", "standard", "echo", 200, prompt_tokens=1, completion_tokens=1)
    )
    result = handler(event, LocalLambdaContext(function_name="UsageRollupFunction"))
    assert result == {"days": 1, "breakdowns": 1}
    assert item(stack, "2026-11-22")["requests"] == "1"
