"""Lease mode of the budget tree: a key's rooms in each capped window of its chain, and how much a refill moves.

A key holds, for every charge of its chain (a capped window of the key, its team or its tenant), a room: what it may
still reserve from that window without asking it again (tokens and micro-dollars), and its open reservations. A
request takes its demand from every room of its chain in one conditional update, or from none. Only a room that
runs short goes back to its window's counter, which counts every room it granted (`committed`) and refuses a grant
past its cap; so the rooms of a window never add up beyond its cap, and no level can overshoot. A room is named by
its window (`room_tag`): when a window ends, the chain's next request opens a room in the new one, the rooms of the
windows still running are kept, and the ended one is dead (its counter is never read again) and pruned.

A reservation left open by a crash or a lost connection expires `RESERVATION_TTL` after it was made (the API
function runs 15 minutes at most): `spent` no longer counts it from then on, and the next refill of the key returns
it to the rooms it was taken from. When a window has nothing left to grant, the refill that needs it first takes
back what the window's other rooms hold unused (`reclaim`, their expired reservations included) and tries again: an
idle key's room, or a dead client's reservation, flows back to whoever asks next.
"""

from __future__ import annotations

import hashlib
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
# How often one process looks for unused rooms of a window at its cap (a look reads all of the window's rooms).
RECLAIM_INTERVAL = timedelta(seconds=5)


def room_tag(charge: Charge) -> str:
    """A room's short name, the same for every key: 6 hex digits of the SHA-256 of its window (`team#platform
    day:2026-11-22@Asia/Tokyo`), short because it names attributes of a key's budget item on every request."""
    return hashlib.sha256(f"{charge.owner} {charge.window}".encode()).hexdigest()[:6]


def room_tags(reservation: ChainReservation) -> tuple[str, ...]:
    return tuple(room_tag(charge) for charge in reservation.charges)


@dataclass(frozen=True)
class Room:
    """A key's room in one window: tokens and micro-dollars it may still reserve, what the window had left ungranted
    at its last grant (`free`, None: tokens not capped) and when the window ends (epoch seconds)."""

    tokens: int = 0
    micro_usd: int = 0
    free: int | None = None
    ends_at: int = 0


@dataclass(frozen=True)
class OpenReservation:
    """A reservation not settled yet: its demand, when it expires (epoch seconds) and the rooms it was taken from."""

    tokens: int
    micro_usd: int
    expires_at: int
    tags: tuple[str, ...] = ()

    def encode(self) -> str:
        return f"{self.tokens} {self.micro_usd} {self.expires_at} {','.join(self.tags)}"

    @classmethod
    def decode(cls, text: str) -> OpenReservation:
        tokens, micro, expires, *tags = text.split()
        return cls(int(tokens), int(micro), int(expires), tuple(tags[0].split(",")) if tags else ())


def open_reservation(reservation: ChainReservation) -> OpenReservation:
    return OpenReservation(
        reservation.tokens,
        reservation.micro_usd,
        int((reservation.made_at + RESERVATION_TTL).timestamp()),
        room_tags(reservation),
    )


@dataclass(frozen=True)
class LeaseState:
    """A key's rooms by tag and its open reservations by id, as read."""

    rooms: Mapping[str, Room] = field(default_factory=dict)
    reservations: Mapping[str, OpenReservation] = field(default_factory=dict)

    def expired(self, now: datetime) -> dict[str, OpenReservation]:
        moment = now.timestamp()
        return {rid: open for rid, open in self.reservations.items() if open.expires_at <= moment}

    def returned(self, now: datetime) -> dict[str, Spent]:
        """What the expired reservations give back, per room that still exists."""
        back: dict[str, Spent] = {}
        for open in self.expired(now).values():
            for tag in open.tags:
                if tag in self.rooms:
                    was = back.get(tag, Spent())
                    back[tag] = Spent(was.tokens + open.tokens, was.micro_usd + open.micro_usd)
        return back

    def unused(self, tag: str, now: datetime) -> Spent:
        """What the window of room `tag` granted this key that is neither spent nor held by a live reservation."""
        room = self.rooms.get(tag, Room())
        back = self.returned(now).get(tag, Spent())
        return Spent(room.tokens + back.tokens, room.micro_usd + back.micro_usd)

    def ended(self, now: datetime) -> tuple[str, ...]:
        """Rooms of windows that have ended by `now`: no request can take from them again."""
        moment = now.timestamp()
        return tuple(sorted(tag for tag, room in self.rooms.items() if room.ends_at <= moment))


@dataclass(frozen=True)
class Refill:
    """What one refill does in one atomic step: each window's counter grants `token_grants`/`micro_grants` (by
    position in the charges), expired reservations go back to their rooms (`returned`, by tag), and the request's
    own reservation is taken."""

    token_grants: tuple[int, ...]
    micro_grants: tuple[int, ...]
    expired: tuple[str, ...]
    returned: Mapping[str, Spent]

    def room_deltas(self, reservation: ChainReservation) -> dict[str, tuple[int, int]]:
        """Each room's change (tokens, micro-dollars) by tag: the grant, the expired reservations, minus this
        request; rooms outside the chain get their expired reservations back."""
        deltas = {tag: (back.tokens, back.micro_usd) for tag, back in self.returned.items()}
        for tag, t, m in zip(room_tags(reservation), self.token_grants, self.micro_grants, strict=True):
            was = deltas.get(tag, (0, 0))
            deltas[tag] = (was[0] + t - reservation.tokens, was[1] + m - reservation.micro_usd)
        return deltas


@dataclass(frozen=True)
class RefillRefused:
    """The counter at `index` of the charges has not enough ungranted budget left for the request."""

    index: int


def fits_lease(reservation: ChainReservation, state: LeaseState) -> bool:
    """Whether the rooms take the reservation as they are: every room of the chain exists and holds the demand in
    each capped dimension (at least 1, so a window at its cap takes nothing more, not even a request that costs 0
    micro-dollars)."""
    tokens, micro = max(reservation.tokens, 1), max(reservation.micro_usd, 1)
    for charge, tag in zip(reservation.charges, room_tags(reservation), strict=True):
        room = state.rooms.get(tag)
        if room is None:
            return False
        if charge.cap_tokens is not None and room.tokens < tokens:
            return False
        if charge.cap_micro_usd is not None and room.micro_usd < micro:
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
    """The refill that lets `reservation` into the rooms `state`, given what each charge's counter has granted
    (`committed`, by position); expired reservations are returned first."""
    returned = state.returned(now)
    charges: tuple[Charge, ...] = reservation.charges
    tags = room_tags(reservation)
    rooms = [state.rooms.get(tag, Room()) for tag in tags]
    backs = [returned.get(tag, Spent()) for tag in tags]
    token_grants, refused = _grants(
        [c.cap_tokens for c in charges],
        [s.tokens for s in committed],
        [room.tokens + back.tokens for room, back in zip(rooms, backs, strict=True)],
        reservation.tokens,
    )
    if refused is not None:
        return RefillRefused(refused)
    micro_grants, refused = _grants(
        [c.cap_micro_usd for c in charges],
        [s.micro_usd for s in committed],
        [room.micro_usd + back.micro_usd for room, back in zip(rooms, backs, strict=True)],
        reservation.micro_usd,
    )
    if refused is not None:
        return RefillRefused(refused)
    return Refill(tuple(token_grants), tuple(micro_grants), tuple(sorted(state.expired(now))), returned)


def reclaim(state: LeaseState, tag: str, now: datetime) -> tuple[dict[str, tuple[int, int]], Spent, tuple[str, ...]]:
    """Another key giving back what its room `tag` holds unused (its expired reservations returned first): each
    room's change by tag, what goes back to the window's counter, and the expired reservations to remove. Nothing
    to do when all three are empty."""
    returned = state.returned(now)
    expired = tuple(sorted(state.expired(now)))
    deltas = {t: (back.tokens, back.micro_usd) for t, back in returned.items()}
    unused = state.unused(tag, now)
    taken = Spent(max(0, unused.tokens), max(0, unused.micro_usd))
    if taken.tokens or taken.micro_usd:
        was = deltas.get(tag, (0, 0))
        deltas[tag] = (was[0] - taken.tokens, was[1] - taken.micro_usd)
    return {t: d for t, d in deltas.items() if d != (0, 0)}, taken, expired


def spent_through_leases(committed: Spent, unused: list[Spent]) -> Spent:
    """A window's actual spend (live reservations included, as in strict mode): what its counter granted minus what
    its rooms hold unused. A dimension the window does not cap grants nothing, and its rooms count down from 0, so
    the same subtraction gives its spend."""
    return Spent(
        committed.tokens - sum(u.tokens for u in unused), committed.micro_usd - sum(u.micro_usd for u in unused)
    )


def settled_deltas(reservation: ChainReservation, tokens: int, micro_usd: int, still_open: bool) -> tuple[int, int]:
    """What a settlement gives back to each room of its chain: the reservation minus what was used, or (its
    reservation expired and returned already) minus what was used alone."""
    if still_open:
        return reservation.tokens - tokens, reservation.micro_usd - micro_usd
    return -tokens, -micro_usd


def remaining(reservation: ChainReservation, rooms: Mapping[str, Room]) -> tuple[int | None, ...]:
    """The tokens each charge may still reserve as far as the key knows: its room plus what the window had left
    ungranted at the last grant (None: tokens not capped there)."""
    return tuple(
        None if charge.cap_tokens is None else room.tokens + (room.free or 0)
        for charge, room in (
            (c, rooms.get(tag, Room())) for c, tag in zip(reservation.charges, room_tags(reservation), strict=True)
        )
    )
