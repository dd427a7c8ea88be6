"""The local API Gateway's control plane on SQLite: the REST API, usage plans and API keys, and the usage plans'
throttle buckets and quota counts, in `apigateway.sqlite3` of the local gateway's data directory.

`LocalApiGatewayControl` answers the part of boto3's API Gateway client that provisioning, `gatewayctl keys` and
the emulator call, in the same shapes, so that they work unchanged on a stack and on the local gateway; what it
keeps survives a restart. Unlike AWS, creating a REST API or a usage plan whose name exists returns (and updates)
the existing one: provisioning runs at every start and keys stay on their plans. Every worker process of the
local gateway shares the file (WAL, IMMEDIATE transactions), so a key's throttle and quota hold across them.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.usageplans import UsagePlan, quota_window
from llm_gateway.store.sqlite.database import Database

DATABASE_FILE = "apigateway.sqlite3"
ROOT_RESOURCE_ID = "root"

SCHEMA = """
CREATE TABLE IF NOT EXISTS rest_apis (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, api_key_source TEXT);
CREATE TABLE IF NOT EXISTS usage_plans (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT, description TEXT, value TEXT NOT NULL, enabled INTEGER NOT NULL, tags TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_by_value ON api_keys (value);
CREATE TABLE IF NOT EXISTS usage_plan_keys (plan_id TEXT NOT NULL, key_id TEXT NOT NULL, PRIMARY KEY (plan_id, key_id));
CREATE TABLE IF NOT EXISTS throttle_buckets (key_id TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quota_counts (
    key_id TEXT NOT NULL, period_start TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (key_id, period_start)
);
"""


class NotFoundError(Exception):
    """What boto3 raises as NotFoundException."""


class ConflictError(Exception):
    """What boto3 raises as ConflictException."""


def _new_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


class LocalApiGatewayControl:
    """boto3's API Gateway client, as far as the local gateway and gatewayctl use it, on the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.database = Database(Path(data_dir) / DATABASE_FILE, SCHEMA)

    # The REST API and its stage: only the id matters locally (routes come from the template).
    def create_rest_api(self, *, name: str, apiKeySource: str = "HEADER", **_: Any) -> dict[str, Any]:
        with self.database.transaction() as db:
            found = db.execute("SELECT id FROM rest_apis WHERE name = ?", (name,)).fetchone()
            if found:
                return {"id": found[0], "name": name}
            api_id = _new_id()
            db.execute("INSERT INTO rest_apis VALUES (?, ?, ?)", (api_id, name, apiKeySource))
        return {"id": api_id, "name": name}

    def get_resources(self, **_: Any) -> dict[str, Any]:
        return {"items": [{"id": ROOT_RESOURCE_ID, "path": "/"}]}

    def put_method(self, **_: Any) -> dict[str, Any]:
        return {}

    def put_integration(self, **_: Any) -> dict[str, Any]:
        return {}

    def create_deployment(self, **_: Any) -> dict[str, Any]:
        return {"id": _new_id()}

    def create_usage_plan(self, *, name: str, **fields: Any) -> dict[str, Any]:
        with self.database.transaction() as db:
            found = db.execute("SELECT id FROM usage_plans WHERE name = ?", (name,)).fetchone()
            plan_id = found[0] if found else _new_id()
            plan = {"id": plan_id, "name": name, **fields}
            db.execute(
                "INSERT INTO usage_plans VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET plan = excluded.plan",
                (plan_id, name, json.dumps(plan)),
            )
        return plan

    def get_usage_plans(self, *, keyId: str | None = None, **_: Any) -> dict[str, Any]:
        with self.database.connection() as db:
            if keyId is None:
                rows = db.execute("SELECT plan FROM usage_plans").fetchall()
            else:
                rows = db.execute(
                    "SELECT plan FROM usage_plans JOIN usage_plan_keys ON usage_plans.id = plan_id WHERE key_id = ?",
                    (keyId,),
                ).fetchall()
        return {"items": [json.loads(row[0]) for row in rows]}

    # API keys and their plans.
    def create_api_key(
        self,
        *,
        name: str,
        value: str,
        enabled: bool = False,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        key_id = _new_id()
        with self.database.connection() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, description, value, int(enabled), json.dumps(tags or {})),
            )
        return {"id": key_id, "name": name, "value": value, "enabled": enabled}

    def create_usage_plan_key(self, *, usagePlanId: str, keyId: str, **_: Any) -> dict[str, Any]:
        """As on AWS, a key is on at most one usage plan per API stage: joining a second is refused, so a key
        changes plan by leaving the old one first."""
        with self.database.transaction() as db:
            if db.execute("SELECT 1 FROM api_keys WHERE id = ?", (keyId,)).fetchone() is None:
                raise NotFoundError(f"Invalid API Key identifier specified: {keyId}")
            joining = db.execute("SELECT plan FROM usage_plans WHERE id = ?", (usagePlanId,)).fetchone()
            if joining is None:
                raise NotFoundError(f"Invalid Usage Plan ID specified: {usagePlanId}")
            stages = _stages(joining[0])
            for (plan,) in db.execute(
                "SELECT plan FROM usage_plans JOIN usage_plan_keys ON usage_plans.id = plan_id "
                "WHERE key_id = ? AND plan_id != ?",
                (keyId, usagePlanId),
            ):
                shared = stages & _stages(plan)
                if shared:
                    api_id, stage = sorted(shared)[0]
                    raise ConflictError(
                        f"Usage plan {usagePlanId} cannot be added because API Key {keyId} cannot reference "
                        f"multiple Usage Plans with the same API Stage: {api_id}:{stage}"
                    )
            db.execute("INSERT OR IGNORE INTO usage_plan_keys VALUES (?, ?)", (usagePlanId, keyId))
        return {"id": keyId, "type": "API_KEY"}

    def delete_usage_plan_key(self, *, usagePlanId: str, keyId: str) -> dict[str, Any]:
        with self.database.connection() as db:
            db.execute("DELETE FROM usage_plan_keys WHERE plan_id = ? AND key_id = ?", (usagePlanId, keyId))
        return {}

    def delete_api_key(self, *, apiKey: str) -> dict[str, Any]:
        with self.database.transaction() as db:
            db.execute("DELETE FROM usage_plan_keys WHERE key_id = ?", (apiKey,))
            db.execute("DELETE FROM api_keys WHERE id = ?", (apiKey,))
        return {}

    def update_api_key(self, *, apiKey: str, patchOperations: list[dict[str, str]]) -> dict[str, Any]:
        with self.database.transaction() as db:
            for operation in patchOperations:
                if operation.get("op") == "replace" and operation.get("path") == "/enabled":
                    enabled = int(str(operation.get("value")).lower() == "true")
                    if db.execute("UPDATE api_keys SET enabled = ? WHERE id = ?", (enabled, apiKey)).rowcount == 0:
                        raise NotFoundError(f"Invalid API Key identifier specified: {apiKey}")
        return {"id": apiKey}

    def get_api_keys(self, *, includeValues: bool = False, **_: Any) -> dict[str, Any]:
        with self.database.connection() as db:
            rows = db.execute("SELECT id, name, description, value, enabled, tags FROM api_keys").fetchall()
        items = []
        for key_id, name, description, value, enabled, tags in rows:
            item = {"id": key_id, "name": name, "enabled": bool(enabled), "tags": json.loads(tags or "{}")}
            if description is not None:
                item["description"] = description
            if includeValues:
                item["value"] = value
            items.append(item)
        return {"items": items}

    def get_paginator(self, operation: str) -> _PagedApiKeys:
        if operation != "get_api_keys":
            raise NotImplementedError(f"the local API Gateway has no paginator for {operation}")
        return _PagedApiKeys(self)

    def plan_of_value(self, value: str, api_id: str, stage: str) -> tuple[str, UsagePlan] | None:
        """(API key id, usage plan) of the enabled key with this value on a plan of the stage: one query."""
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT api_keys.id, plan FROM api_keys JOIN usage_plan_keys ON api_keys.id = key_id "
                "JOIN usage_plans ON usage_plans.id = plan_id WHERE value = ? AND enabled = 1",
                (value,),
            ).fetchall()
        for key_id, plan in rows:
            item = json.loads(plan)
            stages = item.get("apiStages", [])
            if any(s.get("apiId") == api_id and s.get("stage") == stage for s in stages):
                return str(key_id), UsagePlan.from_api(item)
        return None


def _stages(plan: str) -> set[tuple[str, str]]:
    return {(str(s.get("apiId")), str(s.get("stage"))) for s in json.loads(plan).get("apiStages", [])}


class _PagedApiKeys:
    def __init__(self, control: LocalApiGatewayControl) -> None:
        self._control = control

    def paginate(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        yield self._control.get_api_keys(**arguments)


class SharedUsagePlanEnforcer:
    """UsagePlanEnforcer's rules (a token bucket per key, a quota per period) with the buckets and counts in the
    control plane's database: shared by the worker processes, and quotas kept across restarts."""

    def __init__(
        self,
        control: LocalApiGatewayControl,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        seconds: Callable[[], float] = time.time,
    ) -> None:
        """`seconds`: the buckets' clock; wall-clock seconds, which every process (and the next run) shares."""
        self._db = control.database
        self._clock = clock
        self._seconds = seconds

    def admit(self, api_key_id: str, plan: UsagePlan) -> str | None:
        """None when the request may pass, else the gateway response type (THROTTLED, QUOTA_EXCEEDED)."""
        now = self._seconds()
        with self._db.transaction() as db:
            row = db.execute("SELECT tokens, updated FROM throttle_buckets WHERE key_id = ?", (api_key_id,)).fetchone()
            tokens, updated = row if row else (float(plan.burst_limit), now)
            tokens = min(plan.burst_limit, tokens + max(0.0, now - updated) * plan.rate_limit)
            refusal = None
            if tokens < 1:
                refusal = "THROTTLED"
            elif plan.quota_limit is not None and plan.quota_period is not None:
                start, _ = quota_window(plan.quota_period, plan.quota_offset, self._clock())
                counted = db.execute(
                    "SELECT used FROM quota_counts WHERE key_id = ? AND period_start = ?",
                    (api_key_id, start.isoformat()),
                ).fetchone()
                used = counted[0] if counted else 0
                if used >= plan.quota_limit:
                    refusal = "QUOTA_EXCEEDED"
                else:
                    db.execute(
                        "INSERT INTO quota_counts VALUES (?, ?, 1) "
                        "ON CONFLICT (key_id, period_start) DO UPDATE SET used = used + 1",
                        (api_key_id, start.isoformat()),
                    )
            if refusal is None:
                tokens -= 1
            db.execute(
                "INSERT INTO throttle_buckets VALUES (?, ?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                (api_key_id, tokens, now),
            )
        return refusal
