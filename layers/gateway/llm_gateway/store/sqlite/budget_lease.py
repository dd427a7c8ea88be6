"""The budget tree in lease mode (domain/budget_lease.py) in the embedded database: one row per lease.

A lease row holds the key's rooms in each window of its chain, what each window had left ungranted at its last
grant and the open reservations, as JSON; a holder row per window and lease lets `spent` find a window's leases.
A request reads and writes its lease in one IMMEDIATE transaction, and a refill the counters that grant too, so the
check and the update are one atomic step across threads and processes, as DynamoDB's conditional writes are.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from llm_gateway.domain.budget_lease import (
    LeaseState,
    RefillRefused,
    fits_lease,
    lease_owner,
    lease_window,
    open_reservation,
    plan_refill,
    reclaim,
)
from llm_gateway.domain.budget_tree import ChainRefused, ChainReservation, ChainReserved
from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree, _add, _load, _spent, _spent_through_leases


def _dump(state: LeaseState, free: list[int | None]) -> str:
    return json.dumps(
        {
            "tokens": list(state.token_rooms),
            "micro": list(state.micro_rooms),
            "free": free,
            "reservations": {rid: open.encode() for rid, open in state.reservations.items()},
        }
    )


def _read_lease(
    connection: sqlite3.Connection, holder: str, windows: str, count: int
) -> tuple[LeaseState, list[int | None]]:
    """The lease row of `holder` for `windows` (empty rooms for `count` windows when there is none yet)."""
    row = connection.execute(
        "SELECT state FROM budget_leases WHERE holder = ? AND windows = ?", (holder, windows)
    ).fetchone()
    return _load(row, count)


def _write_lease(
    connection: sqlite3.Connection, holder: str, windows: str, state: LeaseState, free: list[int | None]
) -> None:
    connection.execute(
        "INSERT INTO budget_leases (holder, windows, state) VALUES (?, ?, ?) "
        "ON CONFLICT (holder, windows) DO UPDATE SET state = excluded.state",
        (holder, windows, _dump(state, free)),
    )


def _left(reservation: ChainReservation, state: LeaseState, free: list[int | None]) -> tuple[int | None, ...]:
    return tuple(
        None if charge.cap_tokens is None else room + (left or 0)
        for charge, room, left in zip(reservation.charges, state.token_rooms, free, strict=True)
    )


def _reclaim(
    connection: sqlite3.Connection, reservation: ChainReservation, index: int, holder: str, windows: str
) -> bool:
    """Take back what the other leases of charge `index`'s window hold unused; whether anything came back."""
    charge = reservation.charges[index]
    rows = connection.execute(
        "SELECT h.holder, h.windows, h.charge, l.state FROM budget_lease_holders h JOIN budget_leases l "
        "ON l.holder = h.holder AND l.windows = h.windows WHERE h.owner = ? AND h.window = ?",
        (charge.owner, charge.window),
    ).fetchall()
    took = False
    for other, other_windows, position, text in rows:
        if (other, other_windows) == (holder, windows):
            continue
        state, free = _load((text,), position + 1)
        outcome = reclaim(state, position, reservation.made_at)
        if outcome is None:
            continue
        after, taken = outcome
        _add(connection, charge.owner, charge.window, -taken.tokens, -taken.micro_usd)
        _write_lease(connection, other, other_windows, after, free)
        took = True
    return took


class SqliteLeaseBudgetTree(SqliteBudgetTree):
    """The BudgetTree port (domain/stores.py) in lease mode; nodes are stored as in strict mode."""

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        if not reservation.charges:
            return ChainReserved()
        holder, windows = lease_owner(reservation.holder), lease_window(reservation)
        count = len(reservation.charges)
        with self._db.transaction() as connection:
            state, free = _read_lease(connection, holder, windows, count)
            if fits_lease(reservation, state):
                deltas = [(-reservation.tokens, -reservation.micro_usd)] * count
                expired: tuple[str, ...] = ()
            else:
                committed = tuple(_spent(connection, c.owner, c.window) for c in reservation.charges)
                refill = plan_refill(reservation, state, committed, reservation.made_at)
                if isinstance(refill, RefillRefused) and _reclaim(
                    connection, reservation, refill.index, holder, windows
                ):
                    committed = tuple(_spent(connection, c.owner, c.window) for c in reservation.charges)
                    refill = plan_refill(reservation, state, committed, reservation.made_at)
                if isinstance(refill, RefillRefused):
                    charge = reservation.charges[refill.index]
                    spent = _spent_through_leases(connection, charge.owner, charge.window, reservation.made_at)
                    return ChainRefused(refill.index, spent)
                for charge, spent, tokens, micro, index in zip(
                    reservation.charges,
                    committed,
                    refill.token_grants,
                    refill.micro_grants,
                    range(count),
                    strict=True,
                ):
                    if tokens or micro:
                        _add(connection, charge.owner, charge.window, tokens, micro)
                    if charge.cap_tokens is not None:
                        free[index] = charge.cap_tokens - spent.tokens - tokens
                    connection.execute(
                        "INSERT OR IGNORE INTO budget_lease_holders (owner, window, holder, windows, charge) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (charge.owner, charge.window, holder, windows, index),
                    )
                deltas = list(refill.room_deltas(reservation))
                expired = refill.expired
            reservations = {rid: open for rid, open in state.reservations.items() if rid not in expired}
            reservations[reservation.reservation_id] = open_reservation(reservation)
            state = LeaseState(
                tuple(room + delta[0] for room, delta in zip(state.token_rooms, deltas, strict=True)),
                tuple(room + delta[1] for room, delta in zip(state.micro_rooms, deltas, strict=True)),
                reservations,
            )
            _write_lease(connection, holder, windows, state, free)
        return ChainReserved(left=_left(reservation, state, free))

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if not reservation.charges:
            return
        holder, windows = lease_owner(reservation.holder), lease_window(reservation)
        count = len(reservation.charges)
        with self._db.transaction() as connection:
            state, free = _read_lease(connection, holder, windows, count)
            reservations = dict(state.reservations)
            # Without its open reservation (expired and returned by a refill), only what was used is taken.
            if reservations.pop(reservation.reservation_id, None) is None:
                returned_tokens, returned_micro = -tokens, -micro_usd
            else:
                returned_tokens, returned_micro = reservation.tokens - tokens, reservation.micro_usd - micro_usd
            state = replace(
                state,
                token_rooms=tuple(room + returned_tokens for room in state.token_rooms),
                micro_rooms=tuple(room + returned_micro for room in state.micro_rooms),
                reservations=reservations,
            )
            _write_lease(connection, holder, windows, state, free)
