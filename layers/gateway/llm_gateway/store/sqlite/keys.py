"""Key records (domain/stores.py KeyRecords) in the embedded database: one row per secret, by its SHA-256."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from llm_gateway.domain.keys import KeyRecord, TokenLimits
from llm_gateway.domain.stores import KeyNotFoundError, KeyStateError
from llm_gateway.store.sqlite.database import Database

COLUMNS = (
    "key_hash",
    "key_id",
    "key_hint",
    "tenant",
    "plan",
    "models",
    "status",
    "created_at",
    "expires_at",
    "revoked_at",
    "rotated_from",
    "api_key_id",
    "usage_identifier",
    "tokens_per_minute",
    "tokens_per_day",
    "usd_per_month",
    "team",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM key_records"  # noqa: S608 # nosec B608 # fixed column names
_INSERT = f"INSERT INTO key_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 # nosec B608 # fixed names, values bound
# What `update` changes: the key's models and limits.
_CHANGEABLE = ("models", "tokens_per_minute", "tokens_per_day", "usd_per_month")
_UPDATE = f"UPDATE key_records SET {', '.join(f'{name} = ?' for name in _CHANGEABLE)} WHERE key_hash = ?"  # noqa: S608 # nosec B608 # fixed names, values bound


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _row(record: KeyRecord) -> tuple[Any, ...]:
    limits = record.limits
    return (
        record.key_hash,
        record.key_id,
        record.key_hint,
        record.tenant,
        record.plan,
        None if record.models is None else json.dumps(list(record.models)),
        record.status,
        _iso(record.created_at),
        _iso(record.expires_at),
        _iso(record.revoked_at),
        record.rotated_from,
        record.api_key_id,
        record.usage_identifier,
        limits.tokens_per_minute,
        limits.tokens_per_day,
        None if limits.usd_per_month is None else str(limits.usd_per_month),
        record.team,
    )


def _record(row: tuple[Any, ...]) -> KeyRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    created_at = _time(values["created_at"])
    assert created_at is not None  # nosec B101 # narrows the type: the column is NOT NULL
    return KeyRecord(
        key_id=values["key_id"],
        key_hash=values["key_hash"],
        key_hint=values["key_hint"],
        tenant=values["tenant"],
        plan=values["plan"],
        models=None if values["models"] is None else tuple(json.loads(values["models"])),
        # Anything but an explicit "active" is refused: fail closed, as the DynamoDB store does.
        status="active" if values["status"] == "active" else "revoked",
        created_at=created_at,
        expires_at=_time(values["expires_at"]),
        revoked_at=_time(values["revoked_at"]),
        rotated_from=values["rotated_from"],
        api_key_id=values["api_key_id"],
        usage_identifier=values["usage_identifier"],
        limits=TokenLimits(
            tokens_per_minute=values["tokens_per_minute"],
            tokens_per_day=values["tokens_per_day"],
            usd_per_month=None if values["usd_per_month"] is None else Decimal(values["usd_per_month"]),
        ),
        team=values["team"],
    )


class SqliteKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        with self._db.connection() as connection:
            row = connection.execute(f"{_SELECT} WHERE key_hash = ?", (key_hash,)).fetchone()
        return None if row is None else _record(row)

    def get_by_id(self, key_id: str) -> KeyRecord:
        records = self.records_of(key_id)
        if not records:
            raise KeyNotFoundError(f"No key with id {key_id}")
        return max(records, key=lambda record: (record.status == "active", record.created_at))

    def records_of(self, key_id: str) -> list[KeyRecord]:
        with self._db.connection() as connection:
            rows = connection.execute(f"{_SELECT} WHERE key_id = ?", (key_id,)).fetchall()
        return sorted((_record(row) for row in rows), key=lambda record: record.created_at)

    def list(self, tenant: str | None = None) -> list[KeyRecord]:
        with self._db.connection() as connection:
            if tenant is None:
                rows = connection.execute(_SELECT).fetchall()
            else:
                rows = connection.execute(f"{_SELECT} WHERE tenant = ?", (tenant,)).fetchall()
        return sorted((_record(row) for row in rows), key=lambda record: (record.tenant, record.created_at))

    def create(self, record: KeyRecord) -> None:
        try:
            with self._db.connection() as connection:
                connection.execute(_INSERT, _row(record))
        except sqlite3.IntegrityError as error:
            raise KeyStateError("A key with this secret already exists") from error

    def revoke(self, record: KeyRecord, at: datetime) -> KeyRecord:
        with self._db.connection() as connection:
            self._revoke(connection, record, at)
        return record.revoked(at)

    def rotate(self, old: KeyRecord, new: KeyRecord, at: datetime, retiring: Sequence[KeyRecord] = ()) -> KeyRecord:
        """Write the new record, revoke the old one as of `at` and end each `retiring` record's grace at `at`, in
        one transaction: all happen or none."""
        try:
            with self._db.transaction() as connection:
                connection.execute(_INSERT, _row(new))
                self._revoke(connection, old, at)
                self._end_grace(connection, retiring, at)
        except (sqlite3.IntegrityError, KeyStateError) as error:
            raise KeyStateError(f"Key {old.key_id} is not active, or the new key collides") from error
        return old.revoked(at)

    def end_grace(self, records: Sequence[KeyRecord], at: datetime) -> None:
        with self._db.transaction() as connection:
            self._end_grace(connection, records, at)

    def update(self, record: KeyRecord, models: tuple[str, ...] | None, limits: TokenLimits) -> KeyRecord:
        changed = replace(record, models=models, limits=limits)
        row = dict(zip(COLUMNS, _row(changed), strict=True))
        with self._db.connection() as connection:
            cursor = connection.execute(_UPDATE, (*(row[name] for name in _CHANGEABLE), record.key_hash))
        if cursor.rowcount == 0:
            raise KeyNotFoundError(f"No key with id {record.key_id}")
        return changed

    def set_api_key_id(self, record: KeyRecord, api_key_id: str) -> KeyRecord:
        with self._db.connection() as connection:
            connection.execute(
                "UPDATE key_records SET api_key_id = ? WHERE key_hash = ?", (api_key_id, record.key_hash)
            )
        return replace(record, api_key_id=api_key_id)

    def set_team(self, record: KeyRecord, team: str | None) -> KeyRecord:
        with self._db.connection() as connection:
            changed = connection.execute(
                "UPDATE key_records SET team = ? WHERE key_hash = ?", (team, record.key_hash)
            ).rowcount
        if not changed:
            raise KeyNotFoundError(f"No key {record.key_id}")
        return replace(record, team=team)

    def set_plan(self, record: KeyRecord, plan: str) -> KeyRecord:
        self._set(record, "plan", plan)
        return replace(record, plan=plan)

    def set_expiry(self, record: KeyRecord, expires_at: datetime | None) -> KeyRecord:
        self._set(record, "expires_at", _iso(expires_at))
        return replace(record, expires_at=expires_at)

    def _set(self, record: KeyRecord, column: str, value: Any) -> None:
        assert column in COLUMNS  # nosec B101 # the column name is ours, never the caller's
        with self._db.connection() as connection:
            changed = connection.execute(
                f"UPDATE key_records SET {column} = ? WHERE key_hash = ?",  # noqa: S608 # nosec B608 # checked name
                (value, record.key_hash),
            ).rowcount
        if not changed:
            raise KeyNotFoundError(f"No key {record.key_id}")

    def delete(self, record: KeyRecord) -> None:
        with self._db.connection() as connection:
            connection.execute("DELETE FROM key_records WHERE key_hash = ?", (record.key_hash,))

    @staticmethod
    def _revoke(connection: sqlite3.Connection, record: KeyRecord, at: datetime) -> None:
        cursor = connection.execute(
            "UPDATE key_records SET status = 'revoked', revoked_at = ? WHERE key_hash = ? AND status = 'active'",
            (at.isoformat(), record.key_hash),
        )
        if cursor.rowcount == 0:
            raise KeyStateError(f"Key {record.key_id} is not active")

    @staticmethod
    def _end_grace(connection: sqlite3.Connection, records: Sequence[KeyRecord], at: datetime) -> None:
        for record in records:
            cursor = connection.execute(
                "UPDATE key_records SET revoked_at = ? WHERE key_hash = ? AND status = 'revoked'",
                (at.isoformat(), record.key_hash),
            )
            if cursor.rowcount == 0:
                raise KeyStateError(f"Key {record.key_id} changed while its grace period was ended")
