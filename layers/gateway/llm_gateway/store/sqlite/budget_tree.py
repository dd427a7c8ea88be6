"""The budget tree (domain/stores.py BudgetTree) in the embedded database: nodes as JSON rows, one row per counter.

A chain reservation reads every counter it charges and writes them all in one IMMEDIATE transaction: the check and
the update are one atomic step across threads and processes, as DynamoDB's TransactWriteItems is. Lease mode
(sqlite/budget_lease.py) keeps its rooms beside the counters; `spent` reads a window the same way in either mode.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from llm_gateway.domain.budget_lease import LeaseState, OpenReservation, Room, spent_through_leases
from llm_gateway.domain.budget_tree import (
    BudgetNode,
    ChainRefused,
    ChainReservation,
    ChainReserved,
    Scope,
    Spent,
    fits,
)
from llm_gateway.domain.keys import utcnow
from llm_gateway.store.budget_nodes import node_from_json, node_to_json
from llm_gateway.store.sqlite.database import Database


def _spent(connection: sqlite3.Connection, owner: str, window: str) -> Spent:
    row = connection.execute(
        "SELECT tokens, micro_usd FROM budget_counters WHERE owner = ? AND window = ?", (owner, window)
    ).fetchone()
    return Spent(row[0], row[1]) if row else Spent()


def _load(row: tuple[str] | None) -> LeaseState:
    """A key's rooms and open reservations from its lease row's JSON (sqlite/budget_lease.py writes it)."""
    if row is None:
        return LeaseState()
    data = json.loads(row[0])
    rooms = {tag: Room(*values) for tag, values in data.get("rooms", {}).items()}
    reservations = {rid: OpenReservation.decode(text) for rid, text in data.get("reservations", {}).items()}
    return LeaseState(rooms, reservations)


def _spent_through_leases(connection: sqlite3.Connection, owner: str, window: str, now: datetime) -> Spent:
    """The counter minus what the window's rooms hold unused (none in strict mode)."""
    rows = connection.execute(
        "SELECT h.tag, l.state FROM budget_room_holders h JOIN budget_leases l "
        "ON l.holder = h.holder AND l.windows = h.month WHERE h.owner = ? AND h.window = ?",
        (owner, window),
    ).fetchall()
    unused = [_load((state,)).unused(tag, now) for tag, state in rows]
    return spent_through_leases(_spent(connection, owner, window), unused)


def _add(connection: sqlite3.Connection, owner: str, window: str, tokens: int, micro_usd: int) -> None:
    connection.execute(
        "INSERT INTO budget_counters (owner, window, tokens, micro_usd) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (owner, window) DO UPDATE SET tokens = tokens + excluded.tokens, "
        "micro_usd = micro_usd + excluded.micro_usd",
        (owner, window, tokens, micro_usd),
    )


class SqliteBudgetTree:
    def __init__(self, database: Database) -> None:
        self._db = database

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        tokens, micro = reservation.tokens, reservation.micro_usd
        with self._db.transaction() as connection:
            found = [_spent(connection, c.owner, c.window) for c in reservation.charges]
            for index, (charge, spent) in enumerate(zip(reservation.charges, found, strict=True)):
                if not fits(charge, spent, tokens, micro):
                    return ChainRefused(index, spent)
            for charge in reservation.charges:
                _add(connection, charge.owner, charge.window, tokens, micro)
        return ChainReserved(tuple(Spent(s.tokens + tokens, s.micro_usd + micro) for s in found))

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if not reservation.charges:
            return
        with self._db.transaction() as connection:
            for charge in reservation.charges:
                _add(
                    connection,
                    charge.owner,
                    charge.window,
                    tokens - reservation.tokens,
                    micro_usd - reservation.micro_usd,
                )

    def committed(self, owner: str, window: str) -> Spent:
        with self._db.connection() as connection:
            return _spent(connection, owner, window)

    def spent(self, owner: str, window: str, now: datetime | None = None) -> Spent:
        with self._db.connection() as connection:
            return _spent_through_leases(connection, owner, window, now or utcnow())

    def put_node(self, node: BudgetNode) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO budget_nodes (scope, node_id, node) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, node_id) DO UPDATE SET node = excluded.node",
                (node.scope, node.node_id, node_to_json(node)),
            )

    def get_node(self, scope: Scope, node_id: str) -> BudgetNode | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT node FROM budget_nodes WHERE scope = ? AND node_id = ?", (scope, node_id)
            ).fetchone()
        return node_from_json(row[0]) if row else None

    def list_nodes(self, scope: Scope) -> list[BudgetNode]:
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT node FROM budget_nodes WHERE scope = ? ORDER BY node_id", (scope,)
            ).fetchall()
        return [node_from_json(row[0]) for row in rows]
