"""A data directory written before a column existed gains it on first open, its rows kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llm_gateway.store.sqlite.database import Database
from llm_gateway.store.sqlite.keys import SqliteKeyStore


def test_an_older_key_table_gains_the_team_column(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE key_records (key_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, key_hint TEXT NOT NULL, "
        "tenant TEXT NOT NULL, plan TEXT NOT NULL, models TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, "
        "expires_at TEXT, revoked_at TEXT, rotated_from TEXT, api_key_id TEXT NOT NULL, "
        "usage_identifier TEXT NOT NULL, "
        "tokens_per_minute INTEGER, tokens_per_day INTEGER, usd_per_month TEXT)"
    )
    old.execute(
        "INSERT INTO key_records VALUES ('h', 'key_1', 'sk', 'acme', 'free', NULL, 'active', "
        "'2026-11-22T00:00:00+00:00', NULL, NULL, NULL, 'a', 'u', NULL, NULL, NULL)"
    )
    old.commit()
    old.close()
    store = SqliteKeyStore(Database(path))
    [record] = store.list()
    assert (record.key_id, record.team) == ("key_1", None)
