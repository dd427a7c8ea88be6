"""The budget tree in lease mode (domain/budget_lease.py) in the embedded database: a key's rooms in one row.

A key's row of `budget_leases` (`holder` = `key#key_a`, `windows` = the UTC month, as the DynamoDB budget item)
holds its rooms in each window of its chain (tokens, micro-dollars, what the window had left ungranted at its last
grant, when it ends) and its open reservations, as JSON; a row of `budget_room_holders` per window and key lets
`spent` and the reclaim of siblings' unused rooms find a window's rooms. A request reads and writes its row in one
IMMEDIATE transaction, and a refill the counters that grant too, so the check and the update are one atomic step
across threads and processes, as DynamoDB's conditional writes are. With the key's own windows (the LeasedLedger
port) the same transaction checks and writes both: SQLite has no write units, so nothing is folded into one row.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC

from llm_gateway.domain.budget import Caps, Reservation, Settlement
from llm_gateway.domain.budget_lease import (
    LeaseState,
    RefillRefused,
    Room,
    fits_lease,
    open_reservation,
    plan_refill,
    reclaim,
    remaining,
    room_tags,
    settled_deltas,
)
from llm_gateway.domain.budget_tree import ChainRefused, ChainReservation, ChainReserved
from llm_gateway.domain.stores import LeasedReserved, Refused
from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree, _add, _load, _spent, _spent_through_leases
from llm_gateway.store.sqlite.usage import check_windows, settle_windows, write_windows


def _month(chain: ChainReservation) -> str:
    return chain.made_at.astimezone(UTC).strftime("%Y-%m")


def _read(connection: sqlite3.Connection, holder: str, month: str) -> LeaseState:
    row = connection.execute(
        "SELECT state FROM budget_leases WHERE holder = ? AND windows = ?", (holder, month)
    ).fetchone()
    return _load(row)


def _write(connection: sqlite3.Connection, holder: str, month: str, state: LeaseState) -> None:
    data = {
        "rooms": {tag: [r.tokens, r.micro_usd, r.free, r.ends_at] for tag, r in state.rooms.items()},
        "reservations": {rid: open.encode() for rid, open in state.reservations.items()},
    }
    connection.execute(
        "INSERT INTO budget_leases (holder, windows, state) VALUES (?, ?, ?) "
        "ON CONFLICT (holder, windows) DO UPDATE SET state = excluded.state",
        (holder, month, json.dumps(data)),
    )


def _moved(state: LeaseState, deltas: dict[str, tuple[int, int]], gone: tuple[str, ...] = ()) -> LeaseState:
    """The rooms changed by `deltas` (tokens, micro-dollars by tag), without the reservations `gone`."""
    rooms = dict(state.rooms)
    for tag, (tokens, micro) in deltas.items():
        room = rooms.get(tag, Room())
        rooms[tag] = replace(room, tokens=room.tokens + tokens, micro_usd=room.micro_usd + micro)
    reservations = {rid: open for rid, open in state.reservations.items() if rid not in gone}
    return LeaseState(rooms, reservations)


def _reclaim(connection: sqlite3.Connection, chain: ChainReservation, index: int) -> bool:
    """Take back what the other keys' rooms in charge `index`'s window hold unused; whether anything came back."""
    charge = chain.charges[index]
    rows = connection.execute(
        "SELECT h.holder, h.month, h.tag, l.state FROM budget_room_holders h JOIN budget_leases l "
        "ON l.holder = h.holder AND l.windows = h.month WHERE h.owner = ? AND h.window = ?",
        (charge.owner, charge.window),
    ).fetchall()
    took = False
    for other, month, tag, text in rows:
        if (other, month) == (chain.holder, _month(chain)):
            continue
        state = _load((text,))
        deltas, taken, expired = reclaim(state, tag, chain.made_at)
        if not (deltas or expired):
            continue
        _add(connection, charge.owner, charge.window, -taken.tokens, -taken.micro_usd)
        _write(connection, other, month, _moved(state, deltas, expired))
        took = took or bool(taken.tokens or taken.micro_usd)
    return took


def _reserve_rooms(connection: sqlite3.Connection, chain: ChainReservation) -> ChainReserved | ChainRefused:
    """The chain's demand taken from the key's rooms (refilled first when one is short), or the refusal."""
    month = _month(chain)
    state = _read(connection, chain.holder, month)
    tags = room_tags(chain)
    if fits_lease(chain, state):
        deltas = dict.fromkeys(tags, (-chain.tokens, -chain.micro_usd))
        expired: tuple[str, ...] = ()
    else:
        committed = tuple(_spent(connection, c.owner, c.window) for c in chain.charges)
        refill = plan_refill(chain, state, committed, chain.made_at)
        if isinstance(refill, RefillRefused) and _reclaim(connection, chain, refill.index):
            committed = tuple(_spent(connection, c.owner, c.window) for c in chain.charges)
            refill = plan_refill(chain, state, committed, chain.made_at)
        if isinstance(refill, RefillRefused):
            charge = chain.charges[refill.index]
            return ChainRefused(
                refill.index, _spent_through_leases(connection, charge.owner, charge.window, chain.made_at)
            )
        rooms = dict(state.rooms)
        for index, (charge, tag) in enumerate(zip(chain.charges, tags, strict=True)):
            tokens, micro = refill.token_grants[index], refill.micro_grants[index]
            if tokens or micro:
                _add(connection, charge.owner, charge.window, tokens, micro)
            free = None if charge.cap_tokens is None else charge.cap_tokens - committed[index].tokens - tokens
            room = rooms.get(tag, Room())
            rooms[tag] = replace(room, free=free, ends_at=int(charge.resets_at.timestamp()))
            connection.execute(
                "INSERT OR IGNORE INTO budget_room_holders (owner, window, holder, month, tag) VALUES (?, ?, ?, ?, ?)",
                (charge.owner, charge.window, chain.holder, month, tag),
            )
        state = LeaseState(rooms, state.reservations)
        deltas = refill.room_deltas(chain)
        expired = refill.expired
    state = _moved(state, deltas, expired)
    state = LeaseState(state.rooms, {**state.reservations, chain.reservation_id: open_reservation(chain)})
    _write(connection, chain.holder, month, state)
    return ChainReserved(left=remaining(chain, state.rooms))


def _settle_rooms(connection: sqlite3.Connection, chain: ChainReservation, tokens: int, micro_usd: int) -> None:
    """Give each room back what the reservation took beyond what was used; prune the rooms of ended windows."""
    month = _month(chain)
    state = _read(connection, chain.holder, month)
    still_open = chain.reservation_id in state.reservations
    delta = settled_deltas(chain, tokens, micro_usd, still_open)
    state = _moved(state, dict.fromkeys(room_tags(chain), delta), (chain.reservation_id,))
    ended = set(state.ended(chain.made_at))
    state = LeaseState({t: r for t, r in state.rooms.items() if t not in ended}, state.reservations)
    _write(connection, chain.holder, month, state)


class SqliteLeaseBudgetTree(SqliteBudgetTree):
    """The BudgetTree port (domain/stores.py) in lease mode, and the LeasedLedger port (the key's own windows and
    its rooms in one transaction); nodes are stored as in strict mode."""

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        if not reservation.charges:
            return ChainReserved()
        with self._db.transaction() as connection:
            return _reserve_rooms(connection, reservation)

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if not reservation.charges:
            return
        with self._db.transaction() as connection:
            _settle_rooms(connection, reservation, tokens, micro_usd)

    def reserve_leased(
        self, reservation: Reservation, caps: Caps, chain: ChainReservation
    ) -> LeasedReserved | Refused | ChainRefused:
        with self._db.transaction() as connection:
            # The key's own windows are checked first and written last: the write lock holds them as read.
            checked = check_windows(connection, reservation, caps)
            if isinstance(checked, Refused):
                return checked
            rooms = _reserve_rooms(connection, chain)
            if isinstance(rooms, ChainRefused):
                return rooms
            return LeasedReserved(write_windows(connection, reservation, checked), rooms)

    def settle_leased(
        self, settlement: Settlement, stale: tuple[str, ...], chain: ChainReservation, tokens: int, micro_usd: int
    ) -> None:
        with self._db.transaction() as connection:
            settle_windows(connection, settlement)
            _settle_rooms(connection, chain, tokens, micro_usd)
