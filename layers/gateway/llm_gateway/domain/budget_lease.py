"""Lease mode of the budget tree: a key's lease of each capped window of its chain, and how much a refill moves.

A key's lease item holds, for every charge of its chain (a capped window of the key, its team or its tenant), the
room it may still reserve from that window without asking it again (`rooms`, tokens and micro-dollars), and its
open reservations. A request is one conditional update of that item: every capped room takes the demand or none
does. Only a room that runs short goes back to its window's counter, which counts every lease it granted
(`committed`) and refuses a grant past its cap; so the leases of a window never add up beyond its cap, and no level
can overshoot. The lease item's name holds the windows it leases from (`lease_window`): a lease of a past window is
a dead item, and the new window's counter never counted it.

A reservation left open by a crash or a lost connection expires `RESERVATION_TTL` after it was made (the API
function runs 15 minutes at most): `spent` no longer counts it from then on, and the next refill of its lease
returns it to the rooms. When a window has nothing left to grant, the refill that needs it first takes back what the
window's other leases hold unused (`reclaim`, their expired reservations included) and tries again: an idle key's
lease, or a dead client's reservation, flows back to whoever asks next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from llm_gateway.domain.budget_tree import ChainReservation, Charge, Spent

# Longer than the API function's 15-minute timeout: a reservation this old cannot be settled by a live request.
RESERVATION_TTL = timedelta(minutes=20)
# A refill takes what the request needs plus this share of what the window has left ungranted (whole requests'
# worth of it), so chunks shrink as a window nears its cap and the last requests are granted one at a time.
CHUNK_SHARE = 8
# ...and at most this many requests' worth, so that one busy key does not hold what its siblings could use.
CHUNK_REQUESTS = 32
# How often one process looks for unused leases of a window at its cap (a look reads all of the window's leases).
RECLAIM_INTERVAL = timedelta(seconds=5)
LEASE_PREFIX = "lease#"


def lease_owner(holder: str) -> str:
    """The lease item's partition: `lease#key#key_a` for the key `key#key_a`."""
    return LEASE_PREFIX + holder


def lease_window(reservation: ChainReservation) -> str:
    """The lease item's name: every window it leases from (`team#platform day:2026-11-22@Asia/Tokyo|...`). When
    any of them ends, the chain's next request opens a new lease item."""
    return "|".join(f"{charge.owner} {charge.window}" for charge in reservation.charges)


@dataclass(frozen=True)
class OpenReservation:
    """A reservation of a lease not settled yet: its demand and when it expires (epoch seconds)."""

    tokens: int
    micro_usd: int
    expires_at: int

    def encode(self) -> str:
        return f"{self.tokens} {self.micro_usd} {self.expires_at}"

    @classmethod
    def decode(cls, text: str) -> OpenReservation:
        tokens, micro, expires = text.split()
        return cls(int(tokens), int(micro), int(expires))


def open_reservation(reservation: ChainReservation) -> OpenReservation:
    return OpenReservation(
        reservation.tokens, reservation.micro_usd, int((reservation.made_at + RESERVATION_TTL).timestamp())
    )


@dataclass(frozen=True)
class LeaseState:
    """A lease item as read: each charge's room (tokens, micro-dollars; by position in the charges) and its open
    reservations by id. `exists` is False for a lease nobody has written yet (every room 0)."""

    token_rooms: tuple[int, ...]
    micro_rooms: tuple[int, ...]
    reservations: Mapping[str, OpenReservation] = field(default_factory=dict)
    exists: bool = True

    @classmethod
    def empty(cls, charges: int) -> LeaseState:
        return cls((0,) * charges, (0,) * charges, {}, exists=False)

    def expired(self, now: datetime) -> dict[str, OpenReservation]:
        moment = now.timestamp()
        return {rid: open for rid, open in self.reservations.items() if open.expires_at <= moment}

    def unused(self, index: int, now: datetime) -> Spent:
        """What charge `index` granted this lease that is neither spent nor held by a live reservation."""
        expired = self.expired(now).values()
        return Spent(
            self.token_rooms[index] + sum(r.tokens for r in expired),
            self.micro_rooms[index] + sum(r.micro_usd for r in expired),
        )


@dataclass(frozen=True)
class Refill:
    """What one refill does in one atomic step: each window's counter grants `token_grants`/`micro_grants` (by
    position in the charges), expired reservations go back, and the request's own reservation is taken."""

    token_grants: tuple[int, ...]
    micro_grants: tuple[int, ...]
    expired: tuple[str, ...]
    returned: Spent

    def room_deltas(self, reservation: ChainReservation) -> tuple[tuple[int, int], ...]:
        """Each room's change (tokens, micro-dollars): the grant, the expired reservations, minus this request."""
        return tuple(
            (t + self.returned.tokens - reservation.tokens, m + self.returned.micro_usd - reservation.micro_usd)
            for t, m in zip(self.token_grants, self.micro_grants, strict=True)
        )


@dataclass(frozen=True)
class RefillRefused:
    """The counter at `index` of the charges has not enough ungranted budget left for the request."""

    index: int


def fits_lease(reservation: ChainReservation, state: LeaseState) -> bool:
    """Whether the lease takes the reservation as it is: every capped room holds the demand (at least 1, so a
    window at its cap takes nothing more, not even a request that costs 0 micro-dollars)."""
    if not state.exists:
        return False
    tokens, micro = max(reservation.tokens, 1), max(reservation.micro_usd, 1)
    for charge, token_room, micro_room in zip(reservation.charges, state.token_rooms, state.micro_rooms, strict=True):
        if charge.cap_tokens is not None and token_room < tokens:
            return False
        if charge.cap_micro_usd is not None and micro_room < micro:
            return False
    return True


def _grants(
    caps: list[int | None], committed: list[int], rooms: list[int], demand: int
) -> tuple[list[int], int | None]:
    """One dimension (tokens or micro-dollars) of a refill: the grant of each capped window so that every capped room
    holds `demand` (at least 1) and, where the windows allow, the same chunk beyond it; (grants, refusing index)."""
    floor = max(demand, 1)
    needs, targets = [], []
    for index, (cap, spent, room) in enumerate(zip(caps, committed, rooms, strict=True)):
        if cap is None:
            needs.append(0)
            continue
        need = max(0, floor - room)
        left = cap - spent
        if need > left:
            return [], index
        extra = min((left - need) // CHUNK_SHARE // floor * floor, CHUNK_REQUESTS * floor)
        needs.append(need)
        targets.append(room + need + extra)
    # Beyond its need, no window grants more than the tightest one can: a room above the others' is never usable.
    target = min(targets, default=0)
    grants = [
        0 if cap is None else max(need, target - room) for cap, need, room in zip(caps, needs, rooms, strict=True)
    ]
    return grants, None


def plan_refill(
    reservation: ChainReservation, state: LeaseState, committed: tuple[Spent, ...], now: datetime
) -> Refill | RefillRefused:
    """The refill that lets `reservation` into the lease `state`, given what each charge's counter has granted
    (`committed`, by position); expired reservations are returned first."""
    expired = state.expired(now)
    returned = Spent(sum(r.tokens for r in expired.values()), sum(r.micro_usd for r in expired.values()))
    charges: tuple[Charge, ...] = reservation.charges
    token_grants, refused = _grants(
        [c.cap_tokens for c in charges],
        [s.tokens for s in committed],
        [room + returned.tokens for room in state.token_rooms],
        reservation.tokens,
    )
    if refused is not None:
        return RefillRefused(refused)
    micro_grants, refused = _grants(
        [c.cap_micro_usd for c in charges],
        [s.micro_usd for s in committed],
        [room + returned.micro_usd for room in state.micro_rooms],
        reservation.micro_usd,
    )
    if refused is not None:
        return RefillRefused(refused)
    return Refill(tuple(token_grants), tuple(micro_grants), tuple(sorted(expired)), returned)


def reclaim(state: LeaseState, index: int, now: datetime) -> tuple[LeaseState, Spent] | None:
    """Another key's lease giving back what it holds unused of charge `index` (its expired reservations returned
    first): the lease as it becomes, and what goes back to the window's counter; None when it holds nothing."""
    expired = state.expired(now)
    back = Spent(sum(r.tokens for r in expired.values()), sum(r.micro_usd for r in expired.values()))
    taken = Spent(max(0, state.token_rooms[index] + back.tokens), max(0, state.micro_rooms[index] + back.micro_usd))
    if not (taken.tokens or taken.micro_usd):
        return None
    live = {rid: open for rid, open in state.reservations.items() if rid not in expired}
    token_rooms = tuple(
        room + back.tokens - (taken.tokens if i == index else 0) for i, room in enumerate(state.token_rooms)
    )
    micro_rooms = tuple(
        room + back.micro_usd - (taken.micro_usd if i == index else 0) for i, room in enumerate(state.micro_rooms)
    )
    return LeaseState(token_rooms, micro_rooms, live), taken


def spent_through_leases(committed: Spent, unused: list[Spent]) -> Spent:
    """A window's actual spend (live reservations included, as in strict mode): what its counter granted minus what
    its leases hold unused. A dimension the window does not cap grants nothing, and its leases' rooms count down
    from 0, so the same subtraction gives its spend."""
    return Spent(
        committed.tokens - sum(u.tokens for u in unused), committed.micro_usd - sum(u.micro_usd for u in unused)
    )
