"""The local API Gateway's control plane on SQLite (emulator/control.py): keys on plans, usage-plan enforcement
shared by processes and kept across restarts, provisioning that finds what an earlier run made; and the embedded
usage store under several processes at once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from emulator.control import LocalApiGatewayControl, SharedUsagePlanEnforcer
from emulator.provision import provision
from emulator.usageplans import ApiKeys, UsagePlan, UsagePlanEnforcer
from gatewayctl.deployment import plans_from_outputs
from llm_gateway.domain.budget import Caps, Reservation, Windows
from llm_gateway.domain.key_admin import KeyAdmin
from llm_gateway.domain.stores import Refused, Reserved
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.keys import SqliteKeyStore
from llm_gateway.store.sqlite.usage import SqliteUsageStore

PLAN = UsagePlan("p", "standard", rate_limit=10, burst_limit=20, quota_limit=None, quota_period=None)
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_provisioning_again_finds_the_api_and_plans_of_the_earlier_run(tmp_path: Path) -> None:
    first = provision(None, LocalApiGatewayControl(tmp_path), "local").outputs
    again = provision(None, LocalApiGatewayControl(tmp_path), "local").outputs
    assert first == again
    assert set(plans_from_outputs(first)) == {"free", "standard", "premium"}


def test_keys_on_plans_survive_a_restart_and_a_revocation_disables_them(tmp_path: Path) -> None:
    outputs = provision(None, LocalApiGatewayControl(tmp_path), "local").outputs
    control = LocalApiGatewayControl(tmp_path)
    admin = KeyAdmin(SqliteKeyStore(database(tmp_path)), control, plans_from_outputs(outputs))
    issued = admin.create("acme", "free")
    restarted = LocalApiGatewayControl(tmp_path)
    keys = ApiKeys(restarted, outputs["RestApiId"], outputs["StageName"], cache_seconds=0)
    found = keys.plan_of(issued.record.usage_identifier)
    assert found is not None and found[0] == issued.record.api_key_id and found[1].name.endswith("-free")
    assert admin.reattach() == (), "nothing to reattach: API Gateway's side was kept too"
    admin.revoke(issued.record.key_id)
    assert keys.plan_of(issued.record.usage_identifier) is None
    assert keys.plan_of("usage-unknown") is None


def test_the_shared_enforcer_applies_the_same_rules_as_the_in_memory_one(tmp_path: Path) -> None:
    clock = {"t": 1000.0}
    shared = SharedUsagePlanEnforcer(LocalApiGatewayControl(tmp_path), seconds=lambda: clock["t"])
    memory = UsagePlanEnforcer(monotonic=lambda: clock["t"])
    for enforcer in (shared, memory):
        clock["t"] = 1000.0
        assert [enforcer.admit("k", PLAN) for _ in range(21)] == [None] * 20 + ["THROTTLED"]
        clock["t"] = 1000.25  # 2.5 tokens refilled
        assert [enforcer.admit("k", PLAN) for _ in range(3)] == [None, None, "THROTTLED"]
        assert enforcer.admit("other-key", PLAN) is None, "buckets are per key"


def test_quotas_are_counted_across_instances_and_restarts(tmp_path: Path) -> None:
    plan = UsagePlan("p", "free", rate_limit=100, burst_limit=100, quota_limit=3, quota_period="DAY")
    now = {"at": NOON}
    one, other = (SharedUsagePlanEnforcer(LocalApiGatewayControl(tmp_path), clock=lambda: now["at"]) for _ in range(2))
    assert [one.admit("k", plan), other.admit("k", plan), one.admit("k", plan)] == [None, None, None]
    assert other.admit("k", plan) == "QUOTA_EXCEEDED"
    now["at"] = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert one.admit("k", plan) is None, "a new period"


def _reserve_many(data_dir: Path, count: int, results: multiprocessing.Queue[int]) -> None:
    store = SqliteUsageStore(database(data_dir))
    reserved = 0
    for _ in range(count):
        reservation = Reservation("key_p", "acme", "standard", "echo", Windows.at(NOON), NOON, 10, Decimal(0), 5)
        if isinstance(store.reserve(reservation, Caps(minute=None, day=1000 - 10, usd=None)), Reserved):
            reserved += 1
    results.put(reserved)


def test_processes_sharing_the_embedded_store_never_exceed_a_budget(tmp_path: Path) -> None:
    """Four processes reserve 10 tokens 40 times each against a day of 1,000: exactly 100 fit."""
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_reserve_many, args=(tmp_path, 40, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sum(results.get(timeout=5) for _ in workers) == 100
    last = Reservation("key_p", "acme", "standard", "echo", Windows.at(NOON), NOON, 1, Decimal(0), 1)
    refused = SqliteUsageStore(database(tmp_path)).reserve(last, Caps(minute=None, day=1000 - 1, usd=None))
    assert isinstance(refused, Refused) and refused.current["day"] == 1000


def test_a_key_is_on_one_usage_plan_per_stage_and_changes_plan_by_leaving_first(tmp_path: Path) -> None:
    """As API Gateway: joining a second plan of the same stage is a conflict; KeyAdmin.change_plan leaves first."""
    import pytest

    from emulator.control import ConflictError

    outputs = provision(None, LocalApiGatewayControl(tmp_path), "local").outputs
    control = LocalApiGatewayControl(tmp_path)
    plans = plans_from_outputs(outputs)
    admin = KeyAdmin(SqliteKeyStore(database(tmp_path)), control, plans)
    issued = admin.create("acme", "free")
    with pytest.raises(ConflictError, match="multiple Usage Plans with the same API Stage"):
        control.create_usage_plan_key(usagePlanId=plans["premium"], keyId=issued.record.api_key_id, keyType="API_KEY")
    keys = ApiKeys(control, outputs["RestApiId"], outputs["StageName"], cache_seconds=0)
    assert admin.change_plan(issued.record.key_id, "premium").plan == "premium"
    found = keys.plan_of(issued.record.usage_identifier)
    assert found is not None and found[1].name.endswith("-premium")
    assert [p["id"] for p in control.get_usage_plans(keyId=issued.record.api_key_id)["items"]] == [plans["premium"]]
