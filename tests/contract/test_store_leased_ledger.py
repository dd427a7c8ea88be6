"""Lease mode's LeasedLedger port (domain/stores.py), on DynamoDB (moto) and SQLite alike: a key's own windows and
its rooms in each window of its chain reserved in one step and settled in another, with the roll-overs the fold into
the key's budget item brings (the key's UTC month ending while a team week runs on, a team day ending mid-month), the
reclaim of a sibling's unused room held in its budget item, and the remaining budget per scope."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.domain.answers import Usage
from llm_gateway.domain.budget import Demand, Limits, Reservation, Settlement, plan_reservation
from llm_gateway.domain.budget_lease import LeaseState, room_tag
from llm_gateway.domain.budget_tree import (
    BudgetNode,
    ChainRefused,
    ChainReservation,
    NodeCap,
    Period,
    plan_chain,
    remaining_by_scope,
    window_bounds,
)
from llm_gateway.domain.registry import Prices
from llm_gateway.domain.stores import LeasedReserved, Refused
from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree, budget_item_key
from llm_gateway.store.budget_tree import lease_state
from llm_gateway.store.sqlite.budget_lease import SqliteLeaseBudgetTree
from llm_gateway.store.sqlite.budget_tree import _load
from tests.contract.store_backends import BACKENDS, OneCallAtATime, sqlite_database

Tree = DynamoLeaseBudgetTree | SqliteLeaseBudgetTree
NOON = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
NO_LIMITS = Limits(None, None, None, None)


@pytest.fixture(params=BACKENDS)
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Tree:
    if request.param == "sqlite":
        return SqliteLeaseBudgetTree(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    return DynamoLeaseBudgetTree(OneCallAtATime(stack.dynamodb), stack.outputs["UsageTableName"])  # type: ignore[arg-type]


def nodes(
    key: str = "key_a",
    *,
    key_cap: tuple[Period, int] | None = None,
    team_cap: tuple[Period, int] | None = None,
    team_tz: str = "UTC",
) -> tuple[BudgetNode, ...]:
    def caps(cap: tuple[Period, int] | None) -> tuple[NodeCap, ...]:
        return (NodeCap(cap[0], cap[1]),) if cap else ()

    return (
        BudgetNode("key", key, "platform", "UTC", caps(key_cap)),
        BudgetNode("team", "platform", "acme", team_tz, caps(team_cap)),
    )


def ask(
    tree: Tree, chain_nodes: tuple[BudgetNode, ...], tokens: int, at: datetime, limits: Limits = NO_LIMITS
) -> tuple[Reservation, ChainReservation, LeasedReserved | Refused | ChainRefused]:
    key_id = chain_nodes[0].node_id
    reservation, caps = plan_reservation(
        key_id=key_id,
        tenant="acme",
        plan="standard",
        model="echo",
        demand=Demand(tokens, 0),
        prices=Prices(),
        limits=limits,
        now=at,
    )
    chain = plan_chain(chain_nodes, tokens, Decimal(0), at, f"key#{key_id}")
    return reservation, chain, tree.reserve_leased(reservation, caps, chain)


def served(tree: Tree, chain_nodes: tuple[BudgetNode, ...], tokens: int, at: datetime, used: int) -> LeasedReserved:
    """A request reserved and settled to `used` tokens."""
    reservation, chain, outcome = ask(tree, chain_nodes, tokens, at)
    assert isinstance(outcome, LeasedReserved) and outcome.key is not None
    settlement = Settlement(reservation, Usage(used, 0), Decimal(0))
    tree.settle_leased(settlement, outcome.key.stale, chain, used, 0)
    return outcome


def rooms(tree: Tree, key_id: str, at: datetime) -> LeaseState:
    """The key's rooms as its budget item (its row locally) holds them for the month of `at`."""
    chain = plan_chain((), 0, Decimal(0), at, f"key#{key_id}")
    if isinstance(tree, DynamoLeaseBudgetTree):
        client: Any = tree._client
        item = client.get_item(TableName=tree._table, Key=budget_item_key(chain), ConsistentRead=True).get("Item", {})
        return lease_state(item)
    with tree._db.connection() as connection:
        row = connection.execute(
            "SELECT state FROM budget_leases WHERE holder = ? AND windows = ?",
            (f"key#{key_id}", at.strftime("%Y-%m")),
        ).fetchone()
    return _load(row)


def test_the_key_and_its_chain_are_reserved_and_settled_together(tree: Tree) -> None:
    chain_nodes = nodes(team_cap=("day", 1_000))
    served(tree, chain_nodes, 100, NOON, used=30)
    reserved = ask(tree, chain_nodes, 100, NOON)[2]
    assert isinstance(reserved, LeasedReserved) and reserved.key is not None
    assert reserved.key.totals.day_tokens == 130  # the first request settled to 30, this one reserved 100
    window, _ = window_bounds("day", "UTC", NOON)
    assert tree.spent("team#platform", window, NOON).tokens == 130


def test_the_keys_own_cap_refuses_first_and_charges_nothing_in_the_chain(tree: Tree) -> None:
    limits = Limits(None, 150, None, None)  # 150 tokens a day for the key itself
    chain_nodes = nodes(team_cap=("day", 1_000))
    _, _, first = ask(tree, chain_nodes, 100, NOON, limits)
    assert isinstance(first, LeasedReserved)
    _, _, second = ask(tree, chain_nodes, 100, NOON, limits)
    assert isinstance(second, Refused) and second.current["day"] == 100
    window, _ = window_bounds("day", "UTC", NOON)
    assert tree.spent("team#platform", window, NOON).tokens == 100


def test_a_chain_refusal_leaves_the_keys_own_windows_as_they_were(tree: Tree) -> None:
    limits = Limits(None, 10_000, None, None)
    chain_nodes = nodes(team_cap=("day", 150))
    assert isinstance(ask(tree, chain_nodes, 100, NOON, limits)[2], LeasedReserved)
    refused = ask(tree, chain_nodes, 100, NOON, limits)[2]
    assert isinstance(refused, ChainRefused) and refused.spent.tokens == 100
    third = ask(tree, chain_nodes, 50, NOON, limits)[2]
    assert isinstance(third, LeasedReserved) and third.key is not None
    assert third.key.totals.day_tokens == 150  # the refused request left no trace in the key's day


def test_one_hundred_callers_on_twenty_keys_never_take_the_team_or_a_key_past_its_cap(tree: Tree) -> None:
    taken: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    def caller(number: int) -> None:
        key = f"key_{number % 20:02d}"
        barrier.wait()
        for _ in range(3):
            outcome = ask(tree, nodes(key, key_cap=("day", 20), team_cap=("day", 300)), 10, NOON)[2]
            if isinstance(outcome, LeasedReserved):
                with lock:
                    taken.append(key)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    window, _ = window_bounds("day", "UTC", NOON)
    assert len(taken) == 30 and tree.spent("team#platform", window, NOON).tokens == 300
    assert max(taken.count(f"key_{n:02d}") for n in range(20)) <= 2


def test_the_keys_utc_month_rolls_over_while_the_teams_week_runs_on(tree: Tree) -> None:
    chain_nodes = nodes(team_cap=("week", 1_000))  # the week of Monday 2026-11-30, UTC
    before = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
    after = datetime(2026, 12, 1, 0, 10, tzinfo=UTC)  # a new budget item for the key
    served(tree, chain_nodes, 100, before, used=60)
    served(tree, chain_nodes, 100, after, used=70)
    week, _ = window_bounds("week", "UTC", after)
    # The old month's item keeps its room of the week; both count, neither is counted twice.
    assert tree.spent("team#platform", week, after).tokens == 130
    tag = room_tag(plan_chain(chain_nodes, 1, Decimal(0), after).charges[0])
    assert tag in rooms(tree, "key_a", before).rooms and tag in rooms(tree, "key_a", after).rooms
    # The week's whole cap is still there to spend, the old item's unused room included.
    sibling = nodes("key_b", team_cap=("week", 1_000))
    count = 0
    while isinstance(ask(tree, sibling, 100, after)[2], LeasedReserved):
        count += 1
    assert count == 8 and tree.spent("team#platform", week, after).tokens == 930


def test_a_team_day_rolls_over_mid_month_and_its_past_room_is_pruned(tree: Tree) -> None:
    chain_nodes = nodes(key_cap=("month", 100_000), team_cap=("day", 1_000), team_tz="Asia/Tokyo")
    before = datetime(2026, 11, 22, 14, 50, tzinfo=UTC)  # 23:50 in Tokyo
    after = datetime(2026, 11, 22, 15, 10, tzinfo=UTC)  # the next day there
    served(tree, chain_nodes, 100, before, used=40)
    key_tag, old_day = (room_tag(c) for c in plan_chain(chain_nodes, 1, Decimal(0), before).charges)
    new_day = room_tag(plan_chain(chain_nodes, 1, Decimal(0), after).charges[1])
    key_room = rooms(tree, "key_a", before).rooms[key_tag]
    served(tree, chain_nodes, 100, after, used=50)
    served(tree, chain_nodes, 100, after + timedelta(minutes=1), used=10)
    state = rooms(tree, "key_a", after)
    assert set(state.rooms) == {key_tag, new_day} and old_day not in state.rooms  # pruned at settlement
    # The key's month room carried on through the team's new day (a refill tops it up only to the team's chunk).
    assert state.rooms[key_tag].ends_at == key_room.ends_at and state.rooms[key_tag].tokens >= key_room.tokens - 60
    month, _ = window_bounds("month", "UTC", after)
    day, _ = window_bounds("day", "Asia/Tokyo", after)
    assert tree.spent("key#key_a", month, after).tokens == 100
    assert tree.spent("team#platform", day, after).tokens == 60


def test_a_siblings_unused_room_in_its_budget_item_is_reclaimed_at_the_cap(tree: Tree) -> None:
    served(tree, nodes("key_idle", team_cap=("day", 1_000)), 100, NOON, used=100)
    assert rooms(tree, "key_idle", NOON).rooms  # it holds a chunk of the team's day, unused
    busy = nodes("key_busy", team_cap=("day", 1_000))
    count = 0
    while isinstance(ask(tree, busy, 100, NOON)[2], LeasedReserved):
        count += 1
    window, _ = window_bounds("day", "UTC", NOON)
    assert count == 9 and tree.spent("team#platform", window, NOON).tokens == 1_000
    assert tree.committed("team#platform", window).tokens == 1_000


def test_the_remaining_budget_per_scope_follows_the_keys_spend(tree: Tree) -> None:
    chain_nodes = nodes(key_cap=("month", 5_000), team_cap=("day", 1_000))
    for number in range(1, 6):
        _, chain, outcome = ask(tree, chain_nodes, 100, NOON)
        assert isinstance(outcome, LeasedReserved)
        assert remaining_by_scope(chain, outcome.chain) == {"key": 5_000 - 100 * number, "team": 1_000 - 100 * number}


def test_a_chain_request_through_the_meter_is_one_step_each_way_and_settled_once(tree: Tree) -> None:
    from llm_gateway.config import Settings
    from llm_gateway.domain.caller import Caller
    from llm_gateway.metering import UsageMeter
    from llm_gateway.store.sqlite.usage import SqliteUsageStore
    from llm_gateway.store.usage import UsageStore

    ledger = (
        UsageStore(tree._client, tree._table) if isinstance(tree, DynamoLeaseBudgetTree) else SqliteUsageStore(tree._db)
    )
    tree.put_node(BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", 10_000),)))
    meter = UsageMeter(ledger, Settings(), lambda: NOON, tree=tree)
    caller = Caller(tenant="acme", key_id="key_a", plan="standard", team="platform")
    metered = meter.reserve_demand(caller, "echo", Prices(), Demand(prompt_tokens=10, output_tokens=20))
    assert metered is not None and metered.leased and metered.chain is not None
    meter.settle(metered, Usage(prompt_tokens=3, completion_tokens=4))
    meter.settle(metered, Usage(prompt_tokens=3, completion_tokens=4))  # a second settlement does nothing
    meter.settle(metered, None, failed=True)  # nor does the release owed at the end of the response
    window, _ = window_bounds("day", "UTC", NOON)
    assert tree.spent("team#platform", window, NOON).tokens == 7
    [row] = ledger.daily_usage(key_id="key_a")
    assert (row.requests, row.failed, row.prompt_tokens, row.completion_tokens) == (1, 0, 3, 4)
