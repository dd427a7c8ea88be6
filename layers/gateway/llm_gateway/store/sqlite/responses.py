"""The stored responses port (domain/stores.py ResponseStore) on the embedded database: one row per response.

Expired rows are deleted by the next write, in the same statement's transaction, so nothing has to run on a
schedule; reads never return an expired row anyway."""

from __future__ import annotations

from llm_gateway.domain.stores import StoredResponse
from llm_gateway.store.sqlite.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS stored_responses (
    key_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (key_id, response_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stored_responses_by_expiry ON stored_responses (expires_at)
"""


class SqliteResponseStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        # The gateway's schema (store/sqlite/database.py) is the other stores'; this table is made here, once per
        # store object, so that it stays this module's own.
        with database.transaction() as connection:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)

    def put(self, stored: StoredResponse) -> None:
        with self._database.transaction() as connection:
            connection.execute("DELETE FROM stored_responses WHERE expires_at <= ?", (stored.created_at,))
            connection.execute(
                "INSERT OR REPLACE INTO stored_responses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    stored.key_id,
                    stored.response_id,
                    stored.tenant,
                    stored.created_at,
                    stored.expires_at,
                    stored.document,
                ),
            )

    def get(self, key_id: str, tenant: str, response_id: str, now: int) -> StoredResponse | None:
        with self._database.connection() as connection:
            row = connection.execute(
                "SELECT created_at, expires_at, document FROM stored_responses "
                "WHERE key_id = ? AND response_id = ? AND tenant = ? AND expires_at > ?",
                (key_id, response_id, tenant, now),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(response_id, key_id, tenant, int(row[0]), int(row[1]), str(row[2]))

    def delete(self, key_id: str, tenant: str, response_id: str, now: int) -> bool:
        with self._database.transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM stored_responses WHERE key_id = ? AND response_id = ? AND tenant = ? AND expires_at > ?",
                (key_id, response_id, tenant, now),
            )
            return cursor.rowcount > 0
