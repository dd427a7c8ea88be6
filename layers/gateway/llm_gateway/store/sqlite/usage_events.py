"""Usage events (domain/stores.py UsageEvents) in the embedded database: a row per finished request, indexed by key
and day (what a key's requests and the rollup read), a breakdown row per key and finished day, the rollup's mark.

The tables are made at the store's first use. Marking a day rolled up also deletes events and breakdowns older than
the retention, as the DynamoDB table's TTL does.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

from llm_gateway.domain.stores import EventGroup, UsageEvent
from llm_gateway.store.sqlite.database import Database
from llm_gateway.store.usage_events import group_of, group_row, parse_tags, tags_text

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS usage_events (
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        at TEXT NOT NULL,
        request_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        team TEXT,
        plan TEXT NOT NULL,
        model TEXT NOT NULL,
        status INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_micro_usd INTEGER NOT NULL,
        session_id TEXT,
        end_user TEXT,
        tags TEXT NOT NULL,
        PRIMARY KEY (key_id, day, at, request_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS usage_events_by_day ON usage_events (day)",
    """CREATE TABLE IF NOT EXISTS usage_event_breakdowns (
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        groups TEXT NOT NULL,
        PRIMARY KEY (key_id, day)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS usage_event_marks (name TEXT PRIMARY KEY, day TEXT NOT NULL) WITHOUT ROWID",
)
_COLUMNS = (
    "key_id, day, at, request_id, tenant, team, plan, model, status, failed, prompt_tokens, cached_tokens, "
    "cache_write_tokens, completion_tokens, cost_micro_usd, session_id, end_user, tags"
)


class SqliteUsageEvents:
    """The usage events port in the embedded database."""

    def __init__(self, database: Database, retention_days: int = 90) -> None:
        self._db = database
        self._retention = timedelta(days=retention_days)
        self._ready = False
        self._lock = threading.Lock()

    def _schema(self) -> None:
        with self._lock:
            if self._ready:
                return
            with self._db.transaction() as connection:
                for statement in SCHEMA:
                    connection.execute(statement)
            self._ready = True

    def record(self, event: UsageEvent) -> None:
        self._schema()
        at = event.at.astimezone(UTC)
        with self._db.transaction() as connection:
            connection.execute(
                f"INSERT OR IGNORE INTO usage_events ({_COLUMNS}) VALUES ({', '.join('?' * 18)})",  # noqa: S608 # nosec B608 # fixed column names
                (
                    event.key_id,
                    at.date().isoformat(),
                    at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    event.request_id,
                    event.tenant,
                    event.team,
                    event.plan,
                    event.model,
                    event.status,
                    int(event.failed),
                    event.prompt_tokens,
                    event.cached_tokens,
                    event.cache_write_tokens,
                    event.completion_tokens,
                    event.cost_micro_usd,
                    event.session_id,
                    event.end_user,
                    tags_text(event.tags),
                ),
            )

    def events(self, key_id: str, day: date) -> list[UsageEvent]:
        self._schema()
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM usage_events WHERE key_id = ? AND day = ? ORDER BY at, request_id",  # noqa: S608 # nosec B608 # fixed column names
                (key_id, day.isoformat()),
            ).fetchall()
        return [
            UsageEvent(
                request_id=row[3],
                at=datetime.strptime(row[2], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
                key_id=row[0],
                tenant=row[4],
                team=row[5],
                plan=row[6],
                model=row[7],
                status=row[8],
                failed=bool(row[9]),
                prompt_tokens=row[10],
                cached_tokens=row[11],
                cache_write_tokens=row[12],
                completion_tokens=row[13],
                cost_micro_usd=row[14],
                session_id=row[15],
                end_user=row[16],
                tags=parse_tags(row[17]),
            )
            for row in rows
        ]

    def put_breakdown(self, key_id: str, day: date, groups: list[EventGroup]) -> None:
        self._schema()
        document = json.dumps([group_row(group) for group in groups], separators=(",", ":"))
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO usage_event_breakdowns (key_id, day, groups) VALUES (?, ?, ?) "
                "ON CONFLICT (key_id, day) DO UPDATE SET groups = excluded.groups",
                (key_id, day.isoformat(), document),
            )

    def breakdowns(self, key_id: str, since: date, until: date) -> dict[date, list[EventGroup]]:
        self._schema()
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT day, groups FROM usage_event_breakdowns WHERE key_id = ? AND day BETWEEN ? AND ?",
                (key_id, since.isoformat(), until.isoformat()),
            ).fetchall()
        return {date.fromisoformat(day): [group_of(row) for row in json.loads(groups)] for day, groups in rows}

    def rolled_up_through(self) -> date | None:
        self._schema()
        with self._db.connection() as connection:
            row = connection.execute("SELECT day FROM usage_event_marks WHERE name = 'rolled_up_through'").fetchone()
        return date.fromisoformat(row[0]) if row else None

    def set_rolled_up_through(self, day: date) -> None:
        self._schema()
        oldest = (day - self._retention).isoformat()
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO usage_event_marks (name, day) VALUES ('rolled_up_through', ?) "
                "ON CONFLICT (name) DO UPDATE SET day = excluded.day",
                (day.isoformat(),),
            )
            connection.execute("DELETE FROM usage_events WHERE day < ?", (oldest,))
            connection.execute("DELETE FROM usage_event_breakdowns WHERE day < ?", (oldest,))
