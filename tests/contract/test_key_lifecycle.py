"""A key's life after it is made, on moto: rotation with a grace period, a new plan, a new expiry; API Gateway's usage
plans, the records and the authorizer's decisions stay consistent, and a failed step is undone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from llm_gateway.domain.key_admin import MAX_GRACE, KeyAdmin, KeyAdminError, KeyAdminFailure, PartialFailureError
from llm_gateway.domain.keys import Authenticator, Denial, KeyRecord, TokenLimits
from llm_gateway.domain.stores import KeyStateError
from llm_gateway.store.keys import KeyStore
from tests.contract.conftest import Stack
from tests.contract.test_key_admin import FailingCalls, plan_key_ids, run


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def store_of(stack: Stack, dynamodb: Any = None) -> KeyStore:
    return KeyStore(dynamodb or stack.dynamodb, stack.outputs["KeysTableName"])


def admin_for(stack: Stack, clock: Clock, apigateway: Any = None, store: Any = None) -> KeyAdmin:
    return KeyAdmin(store or store_of(stack), apigateway or stack.apigateway, stack.plans, clock=clock)


class FailsOnce:
    """Wraps a client and fails the `nth` call (1: the first) of one operation with a real botocore ClientError."""

    def __init__(self, client: Any, operation: str, nth: int = 1) -> None:
        self._client, self._operation, self._nth, self.calls = client, operation, nth, 0

    def __getattr__(self, name: str) -> Any:
        if name != self._operation:
            return getattr(self._client, name)
        self.calls += 1
        if self.calls != self._nth:
            return getattr(self._client, name)

        def fail(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, name)

        return fail


def authenticator(stack: Stack, clock: Clock) -> Authenticator:
    # No cache: each decision reads the record, as the first request after the cache time does.
    return Authenticator(store_of(stack), cache_seconds=0, clock=clock)


def test_the_old_secret_serves_through_its_grace_then_is_refused_as_revoked(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    issued = admin.create("acme", "standard", limits=TokenLimits(tokens_per_day=900))
    rotated = admin.rotate(issued.record.key_id, timedelta(hours=1))
    auth = authenticator(stack, clock)
    old, new = auth.authenticate(issued.key), auth.authenticate(rotated.key)
    assert isinstance(old, KeyRecord) and isinstance(new, KeyRecord)
    # Both secrets speak for one key: the key id its budgets are charged to, the API Gateway key its plan meters.
    assert (old.key_id, old.usage_identifier, old.api_key_id) == (new.key_id, new.usage_identifier, new.api_key_id)
    assert rotated.previous is not None and rotated.previous.revoked_at == clock.now + timedelta(hours=1)
    assert admin.show(issued.record.key_id) == rotated.record
    assert [r.key_hint for r in admin.list(status="retiring")] == [issued.record.key_hint]
    clock.now += timedelta(minutes=59, seconds=59)
    assert isinstance(auth.authenticate(issued.key), KeyRecord)
    clock.now += timedelta(seconds=1)
    assert auth.authenticate(issued.key) == Denial("revoked")
    assert isinstance(auth.authenticate(rotated.key), KeyRecord)
    assert [r.key_hint for r in admin.list(status="revoked")] == [issued.record.key_hint], "the record says it ended"
    assert stack.apigateway.get_api_key(apiKey=issued.record.api_key_id)["enabled"] is True, "the new secret's"


def test_a_rotation_without_grace_refuses_the_old_secret_at_once(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    issued = admin.create("acme", "standard")
    rotated = admin.rotate(issued.record.key_id)
    assert authenticator(stack, clock).authenticate(issued.key) == Denial("revoked")
    assert rotated.previous is not None and rotated.previous.revoked_at == clock.now


def test_the_grace_period_is_bounded(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    issued = admin.create("acme", "standard")
    for grace in (MAX_GRACE + timedelta(seconds=1), timedelta(seconds=-1)):
        with pytest.raises(KeyAdminError) as refused:
            admin.rotate(issued.record.key_id, grace)
        assert refused.value.param == "grace_period_seconds"
    assert authenticator(stack, clock).authenticate(issued.key) == issued.record, "nothing changed"


def test_a_later_rotation_and_a_revocation_cut_earlier_graces_short(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    first = admin.create("acme", "standard")
    second = admin.rotate(first.record.key_id, timedelta(days=2))
    third = admin.rotate(first.record.key_id, timedelta(minutes=10))
    auth = authenticator(stack, clock)
    assert all(isinstance(auth.authenticate(k), KeyRecord) for k in (first.key, second.key, third.key))
    clock.now += timedelta(minutes=10)
    assert auth.authenticate(first.key) == Denial("revoked"), "ended with the later, shorter grace"
    assert auth.authenticate(second.key) == Denial("revoked")
    fourth = admin.rotate(first.record.key_id, timedelta(hours=1))
    admin.revoke(first.record.key_id)
    assert auth.authenticate(third.key) == Denial("revoked"), "a revocation ends every grace"
    assert auth.authenticate(fourth.key) == Denial("revoked")
    with pytest.raises(KeyStateError):
        admin.rotate(first.record.key_id, timedelta(hours=1))


def test_changes_during_a_grace_apply_to_both_secrets(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    issued = admin.create("acme", "standard", ["echo"])
    rotated = admin.rotate(issued.record.key_id, timedelta(hours=1))
    key_id = issued.record.key_id
    admin.update(key_id, ("echo", "nova-lite"), TokenLimits(tokens_per_minute=50))
    admin.set_expiry(key_id, clock.now + timedelta(days=3))
    admin.change_plan(key_id, "premium")
    auth = authenticator(stack, clock)
    old, new = auth.authenticate(issued.key), auth.authenticate(rotated.key)
    assert isinstance(old, KeyRecord) and isinstance(new, KeyRecord)
    for record in (old, new):
        assert (record.models, record.limits.tokens_per_minute, record.plan) == (("echo", "nova-lite"), 50, "premium")
        assert record.expires_at == clock.now + timedelta(days=3)


def test_a_new_plan_moves_the_api_gateway_key_between_usage_plans(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    record = admin.create("acme", "free").record
    moved = admin.change_plan(record.key_id, "premium")
    assert moved.plan == "premium" == admin.show(record.key_id).plan
    assert plan_key_ids(stack, "free") == [] and plan_key_ids(stack, "premium") == [record.api_key_id]
    assert admin.change_plan(record.key_id, "premium") == moved, "the same plan again changes nothing"
    with pytest.raises(KeyAdminError) as unknown:
        admin.change_plan(record.key_id, "gold")
    assert unknown.value.param == "plan"
    admin.revoke(record.key_id)
    with pytest.raises(KeyStateError):
        admin.change_plan(record.key_id, "free")


def test_the_move_leaves_the_old_usage_plan_before_joining_the_new(stack: Stack) -> None:
    """API Gateway refuses a key on two usage plans of one stage, so the order is fixed: leave, then join."""
    clock = Clock()
    record = admin_for(stack, clock).create("acme", "free").record
    client = boto3.client("apigateway", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("delete_usage_plan_key", {}, {"usagePlanId": stack.plans["free"], "keyId": record.api_key_id})
    stubber.add_response(
        "create_usage_plan_key",
        {"id": record.api_key_id, "type": "API_KEY"},
        {"usagePlanId": stack.plans["standard"], "keyId": record.api_key_id, "keyType": "API_KEY"},
    )
    with stubber:
        moved = admin_for(stack, clock, apigateway=client).change_plan(record.key_id, "standard")
    stubber.assert_no_pending_responses()
    assert moved.plan == "standard"


def test_a_refused_join_puts_the_key_back_on_its_plan(stack: Stack) -> None:
    clock = Clock()
    record = admin_for(stack, clock).create("acme", "free").record
    failing = FailsOnce(stack.apigateway, "create_usage_plan_key")
    with pytest.raises(KeyAdminFailure, match="rolled back"):
        admin_for(stack, clock, apigateway=failing).change_plan(record.key_id, "premium")
    assert plan_key_ids(stack, "free") == [record.api_key_id] and plan_key_ids(stack, "premium") == []
    assert admin_for(stack, clock).show(record.key_id).plan == "free"


def test_a_refused_leave_changes_nothing(stack: Stack) -> None:
    clock = Clock()
    record = admin_for(stack, clock).create("acme", "free").record
    failing = FailingCalls(stack.apigateway, "delete_usage_plan_key")
    with pytest.raises(KeyAdminFailure, match="nothing changed"):
        admin_for(stack, clock, apigateway=failing).change_plan(record.key_id, "premium")
    assert plan_key_ids(stack, "free") == [record.api_key_id] and plan_key_ids(stack, "premium") == []


def test_a_failed_record_write_moves_the_key_back(stack: Stack) -> None:
    clock = Clock()
    record = admin_for(stack, clock).create("acme", "free").record
    store = store_of(stack, FailingCalls(stack.dynamodb, "update_item"))
    with pytest.raises(KeyAdminFailure, match="rolled back"):
        admin_for(stack, clock, store=store).change_plan(record.key_id, "premium")
    assert plan_key_ids(stack, "free") == [record.api_key_id] and plan_key_ids(stack, "premium") == []
    assert admin_for(stack, clock).show(record.key_id).plan == "free"


def test_a_move_that_cannot_be_undone_names_the_commands_left(stack: Stack) -> None:
    clock = Clock()
    record = admin_for(stack, clock).create("acme", "free").record
    store = store_of(stack, FailingCalls(stack.dynamodb, "update_item"))
    # The move leaves the old plan (first call); the undo cannot leave the new one (second call).
    apigateway = FailsOnce(stack.apigateway, "delete_usage_plan_key", nth=2)
    with pytest.raises(PartialFailureError) as failure:
        admin_for(stack, clock, apigateway=apigateway, store=store).change_plan(record.key_id, "premium")
    message = str(failure.value)
    assert f"--usage-plan-id {stack.plans['premium']} --key-id {record.api_key_id}" in message
    assert plan_key_ids(stack, "free") == [record.api_key_id], "put back on its old plan even so"


def test_an_expiry_is_set_extended_and_cleared_and_an_expired_key_revived(stack: Stack) -> None:
    clock = Clock()
    admin = admin_for(stack, clock)
    issued = admin.create("acme", "standard", expires_at=clock.now + timedelta(hours=1))
    auth = authenticator(stack, clock)
    clock.now += timedelta(hours=1)
    assert auth.authenticate(issued.key) == Denial("expired")
    with pytest.raises(KeyAdminError) as past:
        admin.set_expiry(issued.record.key_id, clock.now)
    assert past.value.param == "expires_at"
    extended = admin.set_expiry(issued.record.key_id, clock.now + timedelta(days=1))
    assert auth.authenticate(issued.key) == extended
    assert admin.set_expiry(issued.record.key_id, None).expires_at is None
    clock.now += timedelta(days=400)
    assert isinstance(auth.authenticate(issued.key), KeyRecord)


def test_cli_rotates_with_a_grace_and_changes_plan_and_expiry(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(stack, capsys, "keys", "create", "--tenant", "acme", "--plan", "free", "--json")
    created = json.loads(out)
    key_id = created["key_id"]
    code, out, err = run(stack, capsys, "keys", "rotate", key_id, "--grace", "1h")
    assert code == 0, err
    assert f"The old key {created['key_hint']} keeps working until" in out
    code, out, _ = run(stack, capsys, "keys", "list", "--status", "retiring", "--json")
    assert [k["key_hint"] for k in json.loads(out)] == [created["key_hint"]]
    code, out, err = run(stack, capsys, "keys", "update", key_id, "--plan", "premium", "--expires", "30d", "--json")
    assert code == 0, err
    updated = json.loads(out)
    assert updated["plan"] == "premium" and updated["expires_at"] is not None
    assert plan_key_ids(stack, "premium") == [created["api_key_id"]]
    code, out, err = run(stack, capsys, "keys", "update", key_id, "--expires", "never", "--json")
    assert (code, json.loads(out)["expires_at"]) == (0, None), err
    code, _, err = run(stack, capsys, "keys", "rotate", key_id, "--grace", "8d")
    assert code == 1 and "grace_period_seconds" in err
    code, _, err = run(stack, capsys, "keys", "update", key_id, "--expires", "2020-01-01")
    assert code == 1 and "in the future" in err
    with pytest.raises(SystemExit):
        run(stack, capsys, "keys", "rotate", key_id, "--grace", "soon")
