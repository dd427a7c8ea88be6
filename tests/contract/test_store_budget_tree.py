"""The budget tree port's contract (domain/stores.py BudgetTree), on DynamoDB (moto) and SQLite alike: every cap of
the chain holds under 100 concurrent callers, spend equal to a cap refuses at every level alike, windows roll over
at midnight in the node's own time zone with nothing scheduled, a lowered cap and a key moving team."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from llm_gateway.domain.budget_lease import RESERVATION_TTL
from llm_gateway.domain.budget_tree import (
    BudgetNode,
    ChainRefused,
    ChainReserved,
    NodeCap,
    Scope,
    chain_refusal,
    plan_chain,
    remaining_by_scope,
    window_bounds,
)
from llm_gateway.domain.stores import BudgetTree
from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree
from llm_gateway.store.sqlite.budget_lease import SqliteLeaseBudgetTree
from tests.contract.store_backends import budget_tree

__all__ = ["budget_tree"]

NOON = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
USD = Decimal("0.000100")  # 100 micro-dollars a request


def chain(
    key_cap: int | None = None,
    team_cap: int | None = None,
    tenant_cap: int | None = None,
    *,
    key: str = "key_a",
    team: str = "platform",
    tz: str = "UTC",
    micro: int | None = None,
) -> tuple[BudgetNode, ...]:
    def node(scope: Scope, node_id: str, parent: str | None, tokens: int | None) -> BudgetNode:
        caps = (NodeCap("day", tokens, micro if scope == "tenant" else None),) if tokens or micro else ()
        return BudgetNode(scope, node_id, parent, tz, caps)

    return (
        node("key", key, team, key_cap),
        node("team", team, "acme", team_cap),
        node("tenant", "acme", None, tenant_cap),
    )


def reserve(
    tree: BudgetTree, nodes: tuple[BudgetNode, ...], tokens: int = 10, at: datetime = NOON
) -> ChainReserved | ChainRefused:
    return tree.reserve_chain(plan_chain(nodes, tokens, USD, at))


def test_one_hundred_callers_on_twenty_keys_never_take_the_team_or_a_key_past_its_cap(budget_tree: BudgetTree) -> None:
    team_cap, key_cap, demand = 30 * 10, 20, 10  # the team: 30 requests' worth; each key: 2
    served: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    def caller(number: int) -> None:
        key = f"key_{number % 20:02d}"
        barrier.wait()
        for _ in range(3):
            outcome = reserve(budget_tree, chain(key_cap, team_cap, None, key=key), demand)
            if isinstance(outcome, ChainReserved):
                with lock:
                    served.append(key)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    window, _ = window_bounds("day", "UTC", NOON)
    team_spent = budget_tree.spent("team#platform", window, NOON).tokens
    assert team_spent <= team_cap and team_spent == demand * len(served)
    for number in range(20):
        key = f"key_{number:02d}"
        assert budget_tree.spent(f"key#{key}", window, NOON).tokens <= key_cap
        assert served.count(key) <= key_cap // demand
    # Twenty keys of two requests each: 40 worth asked, 30 fit the team, all 30 taken.
    assert len(served) == 30


@pytest.mark.parametrize("scope", ["key", "team", "tenant"])
def test_spend_equal_to_the_cap_refuses_the_next_request_at_every_level(budget_tree: BudgetTree, scope: str) -> None:
    caps = {"key": (30, None, None), "team": (None, 30, None), "tenant": (None, None, 30)}[scope]
    nodes = chain(*caps)
    for _ in range(3):
        assert isinstance(reserve(budget_tree, nodes), ChainReserved)
    refused = reserve(budget_tree, nodes, tokens=1)
    assert isinstance(refused, ChainRefused)
    reservation = plan_chain(nodes, 1, USD, NOON)
    assert reservation.charges[refused.index].scope == scope and refused.spent.tokens == 30
    error = chain_refusal(reservation, refused)
    assert error.code == f"{scope}_budget_exceeded" and error.param == scope
    assert "cap 30 tokens per day, spent 30 tokens" in error.message
    assert "2026-11-23T00:00:00+00:00" in error.message and error.headers["Retry-After"] == str(
        11 * 3600 + 59 * 60 + 30
    )
    # A refusal changes nothing at any level.
    window, _ = window_bounds("day", "UTC", NOON)
    assert [
        budget_tree.spent(f"{s}#{i}", window, NOON).tokens
        for s, i in (("key", "key_a"), ("team", "platform"), ("tenant", "acme"))
    ] == [
        30 if caps[0] else 0,
        30 if caps[1] else 0,
        30 if caps[2] else 0,
    ]


def test_a_spend_cap_in_micro_dollars_refuses_at_the_cap(budget_tree: BudgetTree) -> None:
    nodes = chain(micro=250)  # the tenant: $0.000250 a day, 100 micro-dollars a request
    assert isinstance(reserve(budget_tree, nodes), ChainReserved)
    assert isinstance(reserve(budget_tree, nodes), ChainReserved)
    refused = reserve(budget_tree, nodes)
    assert isinstance(refused, ChainRefused) and refused.spent.micro_usd == 200


def test_settlement_replaces_the_reservation_at_every_level(budget_tree: BudgetTree) -> None:
    nodes = chain(100, 100, 100)
    reservation = plan_chain(nodes, 40, USD, NOON)
    assert isinstance(budget_tree.reserve_chain(reservation), ChainReserved)
    budget_tree.settle_chain(reservation, 12, 30)
    window, _ = window_bounds("day", "UTC", NOON)
    for owner in ("key#key_a", "team#platform", "tenant#acme"):
        spent = budget_tree.spent(owner, window, NOON)
        assert (spent.tokens, spent.micro_usd) == (12, 30)
    released = plan_chain(nodes, 40, USD, NOON)
    budget_tree.reserve_chain(released)
    budget_tree.settle_chain(released, 0, 0)
    assert budget_tree.spent("team#platform", window, NOON).tokens == 12


def test_a_window_rolls_over_at_midnight_in_tokyo_with_nothing_scheduled(budget_tree: BudgetTree) -> None:
    nodes = chain(None, 20, None, tz="Asia/Tokyo")
    before = datetime(2026, 11, 22, 14, 59, 59, tzinfo=UTC)  # 23:59:59 in Tokyo
    assert isinstance(reserve(budget_tree, nodes, at=before), ChainReserved)
    assert isinstance(reserve(budget_tree, nodes, at=before), ChainReserved)
    refused = reserve(budget_tree, nodes, at=before)
    assert isinstance(refused, ChainRefused)
    error = chain_refusal(plan_chain(nodes, 10, USD, before), refused)
    assert error.headers["Retry-After"] == "1" and "2026-11-22T15:00:00+00:00" in error.message
    assert isinstance(reserve(budget_tree, nodes, at=before + timedelta(seconds=1)), ChainReserved)  # the next day


def test_a_cap_lowered_mid_window_refuses_until_spend_is_under_it(budget_tree: BudgetTree) -> None:
    assert isinstance(reserve(budget_tree, chain(None, 100)), ChainReserved)
    assert isinstance(reserve(budget_tree, chain(None, 100)), ChainReserved)
    # Lowered to 15 with 20 spent: nothing more this window; the spend so far stands.
    refused = reserve(budget_tree, chain(None, 15), tokens=1)
    assert isinstance(refused, ChainRefused) and refused.spent.tokens == 20
    # Lowered under the request itself: a 400 before the store, no Retry-After anywhere.
    from llm_gateway.domain.budget_tree import ReservationExceedsCapError

    with pytest.raises(ReservationExceedsCapError):
        plan_chain(chain(None, 5), 10, USD, NOON)


def test_a_key_moving_team_mid_window_charges_its_new_team_from_then_on(budget_tree: BudgetTree) -> None:
    assert isinstance(reserve(budget_tree, chain(15, 100, team="platform")), ChainReserved)
    moved = reserve(budget_tree, chain(15, 100, team="research"), tokens=5)
    assert isinstance(moved, ChainReserved)
    window, _ = window_bounds("day", "UTC", NOON)
    assert budget_tree.spent("team#platform", window, NOON).tokens == 10  # what it spent there stays there
    assert budget_tree.spent("team#research", window, NOON).tokens == 5
    assert budget_tree.spent("key#key_a", window, NOON).tokens == 15  # its own cap counts across the move
    assert isinstance(reserve(budget_tree, chain(15, 100, team="research"), tokens=1), ChainRefused)


def test_remaining_budget_per_scope(budget_tree: BudgetTree) -> None:
    nodes = chain(100, 50, None)
    reservation = plan_chain(nodes, 10, USD, NOON)
    reserved = budget_tree.reserve_chain(reservation)
    assert isinstance(reserved, ChainReserved)
    if reserved.spent:  # a DynamoDB transaction returns no values
        assert remaining_by_scope(reservation, reserved) == {"key": 90, "team": 40}


def test_nodes_are_stored_listed_and_replaced(budget_tree: BudgetTree) -> None:
    team = BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("month", 1000, 5_000_000),))
    budget_tree.put_node(team)
    budget_tree.put_node(BudgetNode("team", "research", "acme"))
    budget_tree.put_node(BudgetNode("tenant", "acme", None, "UTC", (NodeCap("week", None, 9),)))
    assert budget_tree.get_node("team", "platform") == team
    assert [n.node_id for n in budget_tree.list_nodes("team")] == ["platform", "research"]
    assert budget_tree.get_node("team", "nobody") is None
    lowered = BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("month", 10),))
    budget_tree.put_node(lowered)
    assert budget_tree.get_node("team", "platform") == lowered


def in_lease_mode(tree: BudgetTree) -> bool:
    return isinstance(tree, DynamoLeaseBudgetTree | SqliteLeaseBudgetTree)


def test_a_client_killed_mid_request_leaves_no_reservation_after_its_expiry(budget_tree: BudgetTree) -> None:
    if not in_lease_mode(budget_tree):
        pytest.skip("strict mode keeps an unsettled charge until its window ends (docs/budgets.md)")
    nodes = chain(None, 30, 100)
    window, _ = window_bounds("day", "UTC", NOON)
    for _ in range(3):  # three requests whose callers die before anything settles them
        assert isinstance(reserve(budget_tree, nodes), ChainReserved)
    later = NOON + timedelta(minutes=10)
    assert isinstance(reserve(budget_tree, nodes, at=later), ChainRefused)  # still within their lifetime
    assert budget_tree.spent("team#platform", window, later).tokens == 30
    expired = NOON + RESERVATION_TTL
    assert budget_tree.spent("team#platform", window, expired).tokens == 0
    assert budget_tree.spent("tenant#acme", window, expired).tokens == 0
    # The next request takes the lease's expired reservations back, and the window can be spent again in full.
    for _ in range(3):
        reservation = plan_chain(nodes, 10, USD, expired)
        assert isinstance(budget_tree.reserve_chain(reservation), ChainReserved)
        budget_tree.settle_chain(reservation, 10, 100)
    assert budget_tree.spent("team#platform", window, expired).tokens == 30
    assert isinstance(reserve(budget_tree, nodes, tokens=1, at=expired), ChainRefused)


def test_a_settlement_after_its_reservation_expired_still_counts_what_was_used(budget_tree: BudgetTree) -> None:
    if not in_lease_mode(budget_tree):
        pytest.skip("strict mode has no expiry")
    nodes = chain(None, 30)
    window, _ = window_bounds("day", "UTC", NOON)
    slow = plan_chain(nodes, 10, USD, NOON)
    assert isinstance(budget_tree.reserve_chain(slow), ChainReserved)
    expired = NOON + RESERVATION_TTL
    assert isinstance(reserve(budget_tree, nodes, at=expired), ChainReserved)  # returns the expired one
    budget_tree.settle_chain(slow, 4, 0)
    assert budget_tree.spent("team#platform", window, expired).tokens == 14


def test_a_lease_moves_chunks_that_shrink_near_the_cap(budget_tree: BudgetTree) -> None:
    """Far from the cap a refill takes more than the request (later requests need no refill); near it, exactly
    the request: the window's grants never pass its cap, and the last request that fits gets in."""
    if not in_lease_mode(budget_tree):
        pytest.skip("strict mode has no leases")
    nodes = chain(None, 10_000)
    window, _ = window_bounds("day", "UTC", NOON)
    committed = []
    served = 0
    while isinstance(outcome := reserve(budget_tree, nodes, tokens=100), ChainReserved):
        served += 1
        committed.append(budget_tree.committed("team#platform", window).tokens)
        assert committed[-1] <= 10_000
        assert outcome.left and outcome.left[0] == 10_000 - 100 * served  # the remaining-budget header's figure
    assert served == 100 and budget_tree.spent("team#platform", window, NOON).tokens == 10_000
    assert committed[0] > 100 * 2  # the first refill took a chunk
    assert len(set(committed)) < served // 2  # most requests needed no refill
    assert committed[-2:] == [9_900, 10_000]  # the last ones one request at a time


def test_what_an_idle_lease_holds_flows_back_to_a_sibling_at_the_cap(budget_tree: BudgetTree) -> None:
    """A window with nothing left to grant takes back its other leases' unused part before it refuses: an idle
    key never keeps its team's budget from a busy one."""
    team_cap = 1_000
    first = plan_chain(chain(None, team_cap, key="key_idle"), 100, USD, NOON)
    assert isinstance(budget_tree.reserve_chain(first), ChainReserved)
    budget_tree.settle_chain(first, 100, 100)
    busy = chain(None, team_cap, key="key_busy")
    served = 0
    while isinstance(reserve(budget_tree, busy, tokens=100), ChainReserved):
        served += 1
    window, _ = window_bounds("day", "UTC", NOON)
    assert served == 9 and budget_tree.spent("team#platform", window, NOON).tokens == team_cap
    assert budget_tree.committed("team#platform", window).tokens <= team_cap


def test_a_dead_clients_reservations_return_to_its_siblings_after_their_expiry(budget_tree: BudgetTree) -> None:
    if not in_lease_mode(budget_tree):
        pytest.skip("strict mode keeps an unsettled charge until its window ends (docs/budgets.md)")
    for _ in range(3):  # a key's three callers die mid-request with the team's whole cap reserved
        assert isinstance(reserve(budget_tree, chain(None, 30, key="key_dead")), ChainReserved)
    sibling = chain(None, 30, key="key_live")
    assert isinstance(reserve(budget_tree, sibling, at=NOON + timedelta(minutes=10)), ChainRefused)
    expired = NOON + RESERVATION_TTL
    for _ in range(3):
        assert isinstance(reserve(budget_tree, sibling, at=expired), ChainReserved)
    assert isinstance(reserve(budget_tree, sibling, tokens=1, at=expired), ChainRefused)
    window, _ = window_bounds("day", "UTC", NOON)
    assert budget_tree.spent("team#platform", window, expired).tokens == 30
    assert budget_tree.committed("team#platform", window).tokens == 30
