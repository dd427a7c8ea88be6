"""Lease mode's arithmetic (domain/budget_lease.py): how much a refill moves, and what an expired reservation gives
back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from llm_gateway.domain.budget_lease import (
    CHUNK_REQUESTS,
    RESERVATION_TTL,
    LeaseState,
    Refill,
    RefillRefused,
    open_reservation,
    plan_refill,
    reclaim,
)
from llm_gateway.domain.budget_tree import BudgetNode, ChainReservation, NodeCap, Spent, plan_chain

NOON = datetime(2026, 11, 22, 12, tzinfo=UTC)


def reservation(team_cap: int, key_cap: int | None = None, tokens: int = 100) -> ChainReservation:
    nodes = (
        BudgetNode("key", "key_a", "platform", "UTC", (NodeCap("day", key_cap),) if key_cap else ()),
        BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", team_cap),)),
    )
    return plan_chain(nodes, tokens, Decimal("0.0001"), NOON)


def test_a_refill_far_from_the_cap_takes_a_chunk_and_near_it_only_the_request() -> None:
    far = plan_refill(reservation(1_000_000), LeaseState.empty(1), (Spent(),), NOON)
    assert isinstance(far, Refill) and far.token_grants == (100 + CHUNK_REQUESTS * 100,)
    middle = plan_refill(reservation(2_000), LeaseState.empty(1), (Spent(),), NOON)
    assert isinstance(middle, Refill) and middle.token_grants == (100 + 200,)  # an eighth of the 1,900 left
    near = plan_refill(reservation(2_000), LeaseState.empty(1), (Spent(1_850),), NOON)
    assert isinstance(near, Refill) and near.token_grants == (100,)
    refused = plan_refill(reservation(2_000), LeaseState.empty(1), (Spent(1_950),), NOON)
    assert refused == RefillRefused(0)


def test_no_window_grants_beyond_what_the_tightest_window_of_the_chain_can_use() -> None:
    refill = plan_refill(reservation(1_000_000, key_cap=250), LeaseState.empty(2), (Spent(), Spent()), NOON)
    assert isinstance(refill, Refill) and refill.token_grants == (100, 100)  # the key's own cap binds


def test_an_expired_reservation_is_returned_by_the_next_refill_and_by_a_reclaim() -> None:
    made = reservation(300)
    state = LeaseState((0,), (0,), {"dead": open_reservation(made)})
    assert state.unused(0, NOON) == Spent(0, 0)
    assert state.unused(0, NOON + RESERVATION_TTL) == Spent(100, 100)
    refill = plan_refill(reservation(300), state, (Spent(300),), NOON + RESERVATION_TTL)
    assert isinstance(refill, Refill) and refill.token_grants == (0,) and refill.expired == ("dead",)
    outcome = reclaim(state, 0, NOON + RESERVATION_TTL)
    assert outcome is not None and outcome[1] == Spent(100, 100) and not outcome[0].reservations
    assert reclaim(state, 0, NOON) is None
