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
    Room,
    fits_lease,
    open_reservation,
    plan_refill,
    reclaim,
    room_tags,
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
    far = plan_refill(reservation(1_000_000), LeaseState(), (Spent(),), NOON)
    assert isinstance(far, Refill) and far.token_grants == (100 + CHUNK_REQUESTS * 100,)
    middle = plan_refill(reservation(2_000), LeaseState(), (Spent(),), NOON)
    assert isinstance(middle, Refill) and middle.token_grants == (100 + 200,)  # an eighth of the 1,900 left
    near = plan_refill(reservation(2_000), LeaseState(), (Spent(1_850),), NOON)
    assert isinstance(near, Refill) and near.token_grants == (100,)
    refused = plan_refill(reservation(2_000), LeaseState(), (Spent(1_950),), NOON)
    assert refused == RefillRefused(0)


def test_no_window_grants_beyond_what_the_tightest_window_of_the_chain_can_use() -> None:
    refill = plan_refill(reservation(1_000_000, key_cap=250), LeaseState(), (Spent(), Spent()), NOON)
    assert isinstance(refill, Refill) and refill.token_grants == (100, 100)  # the key's own cap binds


def test_an_expired_reservation_is_returned_by_the_next_refill_and_by_a_reclaim() -> None:
    made = reservation(300)
    [tag] = room_tags(made)
    state = LeaseState({tag: Room(0, 0, 0, 0)}, {"dead": open_reservation(made)})
    assert state.unused(tag, NOON) == Spent(0, 0)
    assert state.unused(tag, NOON + RESERVATION_TTL) == Spent(100, 100)
    refill = plan_refill(reservation(300), state, (Spent(300),), NOON + RESERVATION_TTL)
    assert isinstance(refill, Refill) and refill.token_grants == (0,) and refill.expired == ("dead",)
    deltas, taken, expired = reclaim(state, tag, NOON + RESERVATION_TTL)
    assert taken == Spent(100, 100) and expired == ("dead",) and deltas == {}  # returned, then all taken back
    assert reclaim(state, tag, NOON) == ({}, Spent(0, 0), ())


def test_rooms_are_named_by_their_window_so_a_new_window_opens_a_new_room_and_the_others_carry_on() -> None:
    nodes = (
        BudgetNode("key", "key_a", "platform", "UTC", (NodeCap("month", 10_000),)),
        BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("day", 10_000),)),
    )
    before = plan_chain(nodes, 100, Decimal("0.0001"), datetime(2026, 11, 22, 14, 59, tzinfo=UTC))
    after = plan_chain(nodes, 100, Decimal("0.0001"), datetime(2026, 11, 22, 15, 1, tzinfo=UTC))  # Tokyo's midnight
    assert room_tags(before)[0] == room_tags(after)[0] and room_tags(before)[1] != room_tags(after)[1]
    ends = [int(c.resets_at.timestamp()) for c in before.charges]
    state = LeaseState({tag: Room(5_000, 0, 0, end) for tag, end in zip(room_tags(before), ends, strict=True)})
    assert fits_lease(before, state) and not fits_lease(after, state)  # the team's new day has no room yet
    refill = plan_refill(after, state, (Spent(5_000), Spent()), after.made_at)
    assert isinstance(refill, Refill) and refill.token_grants[0] == 0 and refill.token_grants[1] > 100
    assert state.ended(after.made_at) == (room_tags(before)[1],)  # the team's past day: pruned at settlement
