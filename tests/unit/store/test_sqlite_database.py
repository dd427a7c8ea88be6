"""The embedded database's write transactions: they wait for a writer of another process (or connection) instead
of failing, and only as long as it holds the lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from llm_gateway.store.sqlite import database as module
from llm_gateway.store.sqlite.database import Database


def test_a_transaction_waits_for_another_writer_and_then_runs(tmp_path: Path) -> None:
    db = Database(tmp_path / "gateway.sqlite3")
    with db.connection():
        pass  # the schema
    other = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.05, lambda: other.execute("COMMIT")).start()
    started = time.monotonic()
    with db.transaction() as connection:
        connection.execute("INSERT INTO budget_windows VALUES ('k', 'day:2026-11-22', 1)")
    waited = time.monotonic() - started
    assert 0.04 < waited < 0.5, "it ran as soon as the other writer committed, not a busy handler's sleep later"
    with db.connection() as connection:
        assert connection.execute("SELECT amount FROM budget_windows").fetchall() == [(1,)]


def test_a_writer_that_never_lets_go_fails_the_transaction_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BUSY_TIMEOUT_SECONDS", 0.1)
    db = Database(tmp_path / "gateway.sqlite3")
    with db.connection():
        pass
    other = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"), db.transaction():
        pass
    other.execute("ROLLBACK")
    with db.transaction() as connection:  # and the connection is usable again
        connection.execute("INSERT INTO budget_windows VALUES ('k', 'day:2026-11-22', 1)")
