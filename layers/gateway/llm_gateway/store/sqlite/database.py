"""One SQLite database file: WAL mode, connections pooled per process, conditional writes in IMMEDIATE transactions.

WAL lets readers go on while one writer commits; `BEGIN IMMEDIATE` takes the write lock before the transaction
reads, so a read-check-write (a budget reservation) is atomic across every thread and process using the file, as a
conditional UpdateItem is in DynamoDB. A writer that finds the lock taken waits (busy timeout) instead of failing.
Connections are never shared across a fork: a child process opens its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

DATABASE_FILE = "gateway.sqlite3"
BUSY_TIMEOUT_SECONDS = 10.0
# How long a writer waits before trying again for the write lock another process holds.
RETRY_SECONDS = 0.0002
# Idle connections kept per process; a burst beyond it opens more and closes them afterwards.
POOL_SIZE = 16

SCHEMA = """
CREATE TABLE IF NOT EXISTS key_records (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    key_hint TEXT NOT NULL,
    tenant TEXT NOT NULL,
    plan TEXT NOT NULL,
    models TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    rotated_from TEXT,
    api_key_id TEXT NOT NULL,
    usage_identifier TEXT NOT NULL,
    tokens_per_minute INTEGER,
    tokens_per_day INTEGER,
    usd_per_month TEXT,
    team TEXT
);
CREATE INDEX IF NOT EXISTS key_records_by_id ON key_records (key_id);
CREATE INDEX IF NOT EXISTS key_records_by_tenant ON key_records (tenant, created_at);
CREATE TABLE IF NOT EXISTS budget_windows (
    key_id TEXT NOT NULL,
    window TEXT NOT NULL,
    amount NOT NULL,
    PRIMARY KEY (key_id, window)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_usage (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    tenant TEXT NOT NULL,
    plan TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    estimated INTEGER NOT NULL DEFAULT 0,
    cost_usd TEXT NOT NULL DEFAULT '0',
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS daily_usage_by_tenant ON daily_usage (tenant, day);
CREATE TABLE IF NOT EXISTS budget_nodes (
    scope TEXT NOT NULL,
    node_id TEXT NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (scope, node_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_counters (
    owner TEXT NOT NULL,
    window TEXT NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0,
    micro_usd INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, window)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_leases (
    holder TEXT NOT NULL,
    windows TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (holder, windows)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_room_holders (
    owner TEXT NOT NULL,
    window TEXT NOT NULL,
    holder TEXT NOT NULL,
    month TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (owner, window, holder, month)
) WITHOUT ROWID;
"""


class Database:
    """The database at `path`, created with `schema` (statements separated by semicolons; the gateway's by
    default) on first use in each process."""

    def __init__(self, path: Path, schema: str = SCHEMA) -> None:
        self.path = Path(path)
        self._schema = schema
        self._lock = threading.Lock()
        self._pid = -1
        self._idle: list[sqlite3.Connection] = []
        self._writer = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of this process in autocommit mode (each statement its own transaction)."""
        connection = self._take()
        try:
            yield connection
        finally:
            self._give(connection)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement: what it reads stays
        true until it commits. Rolled back when the block raises."""
        # One writer at a time in this process: the others wait on a lock, which wakes them as it is released,
        # instead of in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries.
        with self._writer, self.connection() as connection:
            self._begin_immediate(connection)
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @staticmethod
    def _begin_immediate(connection: sqlite3.Connection) -> None:
        """Take the write lock; while another process holds it, try again every RETRY_SECONDS (its transactions
        last microseconds), up to the busy timeout."""
        connection.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
            while True:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() >= deadline:
                        raise
                time.sleep(RETRY_SECONDS)
        finally:
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._pid != os.getpid():
                # A fresh process (or a forked child): connections inherited from the parent are not ours to use.
                # The schema is made before any connection of this process is handed out.
                self._idle = [self._connect(schema=True)]
                self._pid = os.getpid()
                self._writer = threading.Lock()
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, schema: bool = False) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous NORMAL: a commit survives a crash of the process; a power cut may lose the last ones.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        if schema:
            self._create_schema(connection)
        return connection

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in self._schema.split(";"):
                if statement.strip():
                    connection.execute(statement)
            _add_missing_columns(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


# Columns added since a table was first created: (table, column, declaration), added to older databases.
ADDED_COLUMNS = (("key_records", "team", "TEXT"),)


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        found = connection.execute("SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column)).fetchone()
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if exists and not found:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


@lru_cache(maxsize=8)
def database(data_dir: Path) -> Database:
    """The gateway's one Database object of a data directory in this process."""
    return Database(Path(data_dir) / DATABASE_FILE)
