"""The usage ledger port's contract (domain/stores.py UsageLedger), run against DynamoDB (moto) and SQLite alike:
a reservation refused at the limit and nothing changed, settled exactly once, windows rolling over, reports."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from llm_gateway.config import Settings
from llm_gateway.domain.answers import Usage
from llm_gateway.domain.budget import Caps, Reservation, Settlement, Windows, WindowTotals, quota_counter
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import Prices
from llm_gateway.domain.stores import DailyUsage, Refused, Reserved, UsageLedger
from llm_gateway.metering import UsageMeter
from tests.contract.store_backends import usage_ledger

__all__ = ["usage_ledger"]

NOON = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
PRICES = Prices(input_per_1k=Decimal("0.001"), output_per_1k=Decimal("0.002"))


def reservation(
    at: datetime = NOON, tokens: int = 10, usd: str = "0.01", key_id: str = "key_a", tenant: str = "acme"
) -> Reservation:
    return Reservation(
        key_id=key_id,
        tenant=tenant,
        plan="standard",
        model="echo",
        windows=Windows.at(at),
        made_at=at,
        tokens=tokens,
        usd=Decimal(usd),
        prompt_estimate=4,
        quota_counter=quota_counter("DAY", at),
    )


def caps(r: Reservation, minute: int | None = None, day: int | None = None, usd: str | None = None) -> Caps:
    """The caps of limits `minute`, `day`, `usd` for this reservation, as plan_reservation computes them."""
    return Caps(
        minute=None if minute is None else minute - r.tokens,
        day=None if day is None else day - r.tokens,
        usd=None if usd is None else Decimal(usd) - r.usd,
    )


def reserve(ledger: UsageLedger, r: Reservation, **limits: int | str | None) -> Reserved | Refused:
    return ledger.reserve(r, caps(r, **limits))  # type: ignore[arg-type]


def settle(
    ledger: UsageLedger, r: Reservation, outcome: Reserved | Refused, usage: Usage | None, failed: bool = False
) -> None:
    assert isinstance(outcome, Reserved)
    cost = Decimal("0.004") if usage else Decimal(0)
    ledger.settle(Settlement(r, usage, cost, failed), outcome.stale)


def test_reservations_count_in_every_window_until_one_is_full(usage_ledger: UsageLedger) -> None:
    first = reserve(usage_ledger, reservation(), day=25)
    assert first == Reserved(first.stale, WindowTotals(minute_tokens=10, day_tokens=10, period_requests=1))  # type: ignore[union-attr]
    second = reserve(usage_ledger, reservation(), day=25)
    assert isinstance(second, Reserved) and second.totals == WindowTotals(20, 20, 2)
    refused = reserve(usage_ledger, reservation(), day=25)
    assert isinstance(refused, Refused)
    assert refused.current == {"minute": 20, "day": 20, "month": Decimal("0.02")}
    assert refused.totals == WindowTotals(20, 20, 2)
    # A refusal changes nothing: a reservation that fits still sees the same totals.
    fits = reserve(usage_ledger, reservation(tokens=5), day=25)
    assert isinstance(fits, Reserved) and fits.totals == WindowTotals(25, 25, 3)


def test_each_window_refuses_on_its_own_limit(usage_ledger: UsageLedger) -> None:
    reserve(usage_ledger, reservation(tokens=8, usd="0.5"))
    assert isinstance(reserve(usage_ledger, reservation(tokens=3), minute=10), Refused)
    assert isinstance(reserve(usage_ledger, reservation(tokens=3), day=10), Refused)
    assert isinstance(reserve(usage_ledger, reservation(tokens=1, usd="0.6"), usd="1.0"), Refused)
    assert isinstance(reserve(usage_ledger, reservation(tokens=2, usd="0.5"), minute=10, day=10, usd="1.0"), Reserved)
    # At exactly the limit the window is full.
    assert isinstance(reserve(usage_ledger, reservation(tokens=1), minute=10), Refused)


def test_settlement_replaces_the_reservation_by_the_real_usage(usage_ledger: UsageLedger) -> None:
    r = reservation(tokens=100)
    settle(usage_ledger, r, reserve(usage_ledger, r, day=1000), Usage(prompt_tokens=7, completion_tokens=5))
    after = reserve(usage_ledger, reservation(tokens=1), day=1000)
    assert isinstance(after, Reserved) and after.totals.day_tokens == 12 + 1
    failed = reservation(tokens=50)
    settle(usage_ledger, failed, reserve(usage_ledger, failed), None, failed=True)
    again = reserve(usage_ledger, reservation(tokens=1))
    assert isinstance(again, Reserved) and again.totals.day_tokens == 12 + 1 + 1, "a failed call releases its tokens"
    [row] = usage_ledger.daily_usage(key_id="key_a")
    assert (row.requests, row.failed, row.prompt_tokens, row.completion_tokens) == (1, 1, 7, 5)
    assert row.cost_usd == Decimal("0.004")


def test_windows_roll_over_minute_day_and_month(usage_ledger: UsageLedger) -> None:
    minute = datetime(2026, 11, 30, 23, 58, 10, tzinfo=UTC)
    r = reservation(at=minute, tokens=40, usd="0.9")
    settle(usage_ledger, r, reserve(usage_ledger, r), Usage(prompt_tokens=20, completion_tokens=20))
    assert isinstance(reserve(usage_ledger, reservation(at=minute, tokens=20), minute=50), Refused)
    next_minute = reserve(usage_ledger, reservation(at=minute + timedelta(minutes=1), tokens=20), minute=50)
    assert isinstance(next_minute, Reserved)
    assert next_minute.totals == WindowTotals(minute_tokens=20, day_tokens=60, period_requests=2)
    # November's spend is 0.004 settled + 0.01 reserved: another 0.9 does not fit in 0.9.
    assert isinstance(reserve(usage_ledger, reservation(at=minute, tokens=1, usd="0.9"), usd="0.9"), Refused)
    next_day = minute + timedelta(minutes=2)  # 2026-12-01 00:00:10: a new minute, day, month and quota day
    december = reserve(usage_ledger, reservation(at=next_day, tokens=20, usd="0.9"), day=50, usd="0.9")
    assert isinstance(december, Reserved)
    assert december.totals == WindowTotals(minute_tokens=20, day_tokens=20, period_requests=1)


def test_fifty_threads_against_a_budget_for_ten_never_exceed_it(usage_ledger: UsageLedger) -> None:
    meter = UsageMeter(usage_ledger, Settings(), lambda: NOON)
    key = Caller(tenant="acme", key_id="key_busy", plan="standard", limits=TokenLimits(tokens_per_day=10 * 30))
    served: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def one_request() -> None:
        from llm_gateway.domain.budget import BudgetExceededError, Demand

        barrier.wait()
        try:
            metered = meter.reserve_demand(key, "echo", PRICES, Demand(prompt_tokens=10, output_tokens=20))
        except BudgetExceededError:
            return
        meter.settle(metered, Usage(prompt_tokens=10, completion_tokens=20))
        meter.settle(metered, Usage(prompt_tokens=10, completion_tokens=20))  # a second settlement does nothing
        with lock:
            served.append(30)

    threads = [threading.Thread(target=one_request) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(served) == 10, "exactly ten reservations fit, whatever the interleaving"
    [row] = usage_ledger.daily_usage(key_id="key_busy")
    assert (row.requests, row.prompt_tokens + row.completion_tokens) == (10, 300), "each settled exactly once"


def test_reports_per_key_and_day_are_the_same_before_and_after_the_roll_up(usage_ledger: UsageLedger) -> None:
    days = [datetime(2026, 11, d, 10, tzinfo=UTC) for d in (20, 21, 22)]
    for at in days:
        for key_id, tenant in (("key_a", "acme"), ("key_b", "beta")):
            r = reservation(at=at, key_id=key_id, tenant=tenant)
            settle(usage_ledger, r, reserve(usage_ledger, r), Usage(prompt_tokens=3, completion_tokens=2))
    before = usage_ledger.daily_usage()
    assert [(row.day.day, row.key_id) for row in before] == [(d, k) for d in (20, 21, 22) for k in ("key_a", "key_b")]
    usage_ledger.roll_up_finished_days(datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert usage_ledger.daily_usage() == before
    assert [row.day for row in usage_ledger.daily_usage(tenant="beta", since=date(2026, 11, 21))] == [
        date(2026, 11, 21),
        date(2026, 11, 22),
    ]
    assert usage_ledger.daily_usage(key_id="key_a", since=date(2026, 11, 22)) == [
        DailyUsage("key_a", "acme", "standard", date(2026, 11, 22), 1, 0, 3, 2, Decimal("0.004"))
    ]
