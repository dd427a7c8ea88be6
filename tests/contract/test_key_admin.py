"""gatewayctl keys end to end on moto: API Gateway keys, usage plans and records stay consistent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from gatewayctl import cli
from gatewayctl.deployment import Deployment
from llm_gateway.domain.key_admin import KeyAdmin, KeyAdminError, KeyAdminFailure, PartialFailureError
from llm_gateway.domain.keys import TokenLimits, hash_key, looks_like_key
from llm_gateway.domain.stores import KeyNotFoundError, KeyStateError
from llm_gateway.store.keys import KeyStore
from tests.contract.conftest import Stack


def admin_for(stack: Stack, apigateway: Any = None, store: Any = None) -> KeyAdmin:
    return KeyAdmin(
        store or KeyStore(stack.dynamodb, stack.outputs["KeysTableName"]), apigateway or stack.apigateway, stack.plans
    )


def api_keys(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.apigateway.get_api_keys(includeValues=True)["items"])


def plan_key_ids(stack: Stack, plan: str) -> list[str]:
    return [k["id"] for k in stack.apigateway.get_usage_plan_keys(usagePlanId=stack.plans[plan])["items"]]


def table_items(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.dynamodb.scan(TableName=stack.outputs["KeysTableName"])["Items"])


def test_create_writes_a_hash_only_record_and_a_metering_key_on_the_plan(stack: Stack) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    issued = admin_for(stack).create(
        "acme", "premium", ["echo"], expires_at=expires, limits=TokenLimits(tokens_per_day=10_000, usd_per_month=None)
    )
    assert looks_like_key(issued.key)
    (item,) = table_items(stack)
    assert item["key_hash"]["S"] == hash_key(issued.key)
    assert issued.key not in json.dumps(item)
    (api_key,) = api_keys(stack)
    assert api_key["id"] == issued.record.api_key_id
    assert api_key["value"] == issued.record.usage_identifier != issued.key
    assert api_key["enabled"] is True
    assert plan_key_ids(stack, "premium") == [api_key["id"]]
    assert plan_key_ids(stack, "standard") == []
    shown = admin_for(stack).show(issued.record.key_id)
    assert shown == issued.record
    assert (shown.models, shown.limits.tokens_per_day, shown.expires_at) == (("echo",), 10_000, expires)


def test_list_by_tenant(stack: Stack) -> None:
    admin = admin_for(stack)
    a1 = admin.create("acme", "free").record
    b1 = admin.create("beta", "standard").record
    a2 = admin.create("acme", "premium").record
    assert [r.key_id for r in admin.list("acme")] == [a1.key_id, a2.key_id]
    assert {r.key_id for r in admin.list()} == {a1.key_id, a2.key_id, b1.key_id}
    assert admin.list("nobody") == []


def test_revoke_marks_the_record_and_disables_the_api_gateway_key(stack: Stack) -> None:
    admin = admin_for(stack)
    record = admin.create("acme", "standard").record
    revocation = admin.revoke(record.key_id)
    assert revocation.warning is None
    assert revocation.record.status == "revoked"
    assert admin.show(record.key_id).status == "revoked"
    assert api_keys(stack)[0]["enabled"] is False
    with pytest.raises(KeyStateError):
        admin.revoke(record.key_id)


def test_rotate_issues_a_new_secret_with_the_same_identity_and_revokes_the_old(stack: Stack) -> None:
    admin = admin_for(stack)
    old = admin.create("acme", "standard", ["echo"], limits=TokenLimits(tokens_per_minute=500)).record
    rotated = admin.rotate(old.key_id)
    new = rotated.record
    assert new.key_id == old.key_id, "the key keeps its id, and with it its budgets and usage history"
    assert new.key_hash == hash_key(rotated.key) != old.key_hash
    assert (new.tenant, new.plan, new.models, new.limits) == (old.tenant, old.plan, old.models, old.limits)
    assert (new.api_key_id, new.usage_identifier) == (old.api_key_id, old.usage_identifier)
    assert new.rotated_from == old.key_hint
    store = KeyStore(stack.dynamodb, stack.outputs["KeysTableName"])
    previous = store.get_by_hash(old.key_hash)
    assert previous is not None and previous.status == "revoked"
    assert admin.show(old.key_id) == new, "the key's current record is its active secret"
    assert api_keys(stack)[0]["enabled"] is True, "the usage-plan key carries over to the new secret"
    again = admin.rotate(old.key_id)
    assert store.get_by_hash(new.key_hash).status == "revoked"  # type: ignore[union-attr]
    admin.revoke(old.key_id)
    assert store.get_by_hash(again.record.key_hash).status == "revoked"  # type: ignore[union-attr]
    with pytest.raises(KeyStateError):
        admin.rotate(old.key_id)


def test_unknown_plan_and_key_are_clear_errors(stack: Stack) -> None:
    admin = admin_for(stack)
    with pytest.raises(KeyAdminError, match="Unknown plan 'gold'; plans: free, premium, standard"):
        admin.create("acme", "gold")
    with pytest.raises(KeyNotFoundError):
        admin.show("key_000000000000")
    assert api_keys(stack) == []


class FailingCalls:
    """Wraps a client and fails the named operations with a real botocore ClientError."""

    def __init__(self, client: Any, *operations: str) -> None:
        self._client = client
        self._failing = set(operations)

    def __getattr__(self, name: str) -> Any:
        if name in self._failing:

            def fail(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, name)

            return fail
        return getattr(self._client, name)


def test_plan_attachment_failure_rolls_back_the_api_gateway_key(stack: Stack) -> None:
    admin = admin_for(stack, apigateway=FailingCalls(stack.apigateway, "create_usage_plan_key"))
    with pytest.raises(KeyAdminFailure, match="rolled back"):
        admin.create("acme", "standard")
    assert api_keys(stack) == []
    assert table_items(stack) == []


def test_record_write_failure_rolls_back_the_api_gateway_key_and_its_plan_membership(stack: Stack) -> None:
    failing_dynamodb = FailingCalls(stack.dynamodb, "put_item")
    store = KeyStore(failing_dynamodb, stack.outputs["KeysTableName"])  # type: ignore[arg-type]
    with pytest.raises(KeyAdminFailure, match="rolled back"):
        admin_for(stack, store=store).create("acme", "standard")
    assert api_keys(stack) == []
    assert plan_key_ids(stack, "standard") == []
    assert table_items(stack) == []


def test_failed_rollback_is_reported_with_the_leftover_key_and_the_fix(stack: Stack) -> None:
    store = KeyStore(FailingCalls(stack.dynamodb, "put_item"), stack.outputs["KeysTableName"])  # type: ignore[arg-type]
    apigateway = FailingCalls(stack.apigateway, "delete_api_key")
    with pytest.raises(PartialFailureError) as failure:
        admin_for(stack, apigateway=apigateway, store=store).create("acme", "standard")
    (leftover,) = api_keys(stack)
    assert f"aws apigateway delete-api-key --api-key {leftover['id']}" in str(failure.value)
    assert "No key record was written" in str(failure.value)
    assert table_items(stack) == []


def test_a_write_that_landed_despite_an_error_is_kept(stack: Stack) -> None:
    class LostResponse(FailingCalls):
        def __getattr__(self, name: str) -> Any:
            if name == "put_item":

                def put_then_fail(**kwargs: Any) -> Any:
                    self._client.put_item(**kwargs)
                    raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "lost"}}, "PutItem")

                return put_then_fail
            return getattr(self._client, name)

    store = KeyStore(LostResponse(stack.dynamodb), stack.outputs["KeysTableName"])  # type: ignore[arg-type]
    issued = admin_for(stack, store=store).create("acme", "standard")
    assert [item["key_id"]["S"] for item in table_items(stack)] == [issued.record.key_id]
    assert [k["id"] for k in api_keys(stack)] == [issued.record.api_key_id]


def test_importing_a_secret_that_is_already_a_key_fails_and_leaves_nothing_behind(stack: Stack) -> None:
    admin = admin_for(stack)
    first = admin.create("acme", "standard")
    with pytest.raises(KeyAdminFailure, match="already exists"):
        admin.create("evil", "premium", key=first.key)
    assert [k["id"] for k in api_keys(stack)] == [first.record.api_key_id]
    assert plan_key_ids(stack, "premium") == []
    assert [r.key_id for r in admin.list()] == [first.record.key_id]


def test_failed_disable_on_revoke_is_reported_precisely(stack: Stack) -> None:
    record = admin_for(stack).create("acme", "standard").record
    revocation = admin_for(stack, apigateway=FailingCalls(stack.apigateway, "update_api_key")).revoke(record.key_id)
    assert revocation.record.status == "revoked"
    assert revocation.warning is not None
    assert f"aws apigateway update-api-key --api-key {record.api_key_id}" in revocation.warning


def run(stack: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    deployment = Deployment("test stack", "us-east-1", stack.outputs)
    code = cli.main(list(argv), deployment_factory=lambda _: deployment)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_create_list_show_rotate_revoke(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(stack, capsys, "keys", "create", "--tenant", "acme", "--plan", "standard", "--models", "echo")
    assert code == 0
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("sk-llmgw-"))
    assert "only time the key is shown" in out
    code, out, _ = run(stack, capsys, "keys", "list", "--json")
    (listed,) = json.loads(out)
    assert key not in out
    assert hash_key(key) not in out
    assert (listed["tenant"], listed["models"], listed["status"]) == ("acme", ["echo"], "active")
    code, out, _ = run(stack, capsys, "keys", "list")
    assert out.splitlines()[0].split() == [
        "KEY",
        "ID",
        "TENANT",
        "PLAN",
        "MODELS",
        "STATUS",
        "CREATED",
        "EXPIRES",
        "KEY",
    ]
    assert listed["key_id"] in out.splitlines()[1]
    code, out, _ = run(stack, capsys, "keys", "show", listed["key_id"])
    assert "tenant" in out and "acme" in out
    code, out, _ = run(stack, capsys, "keys", "rotate", listed["key_id"], "--json")
    rotated = json.loads(out)
    assert (rotated["key_id"], rotated["rotated_from"]) == (listed["key_id"], listed["key_hint"])
    assert looks_like_key(rotated["key"])
    code, out, _ = run(stack, capsys, "keys", "revoke", rotated["key_id"])
    assert (code, out.strip()) == (
        0,
        f"Revoked key {rotated['key_id']}; the gateway refuses it within the authorizer cache time.",
    )


def test_cli_update_changes_models_and_limits_and_resets_to_the_plan(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(stack, capsys, "keys", "create", "--tenant", "acme", "--plan", "standard", "--json")
    key_id = json.loads(out)["key_id"]
    code, out, err = run(
        stack,
        capsys,
        "keys",
        "update",
        key_id,
        "--models",
        "echo,nova-lite",
        "--tokens-per-day",
        "5000",
        "--usd-per-month",
        "2.5",
        "--json",
    )
    assert code == 0, err
    updated = json.loads(out)
    assert (updated["models"], updated["tokens_per_day"], updated["usd_per_month"]) == (
        ["echo", "nova-lite"],
        5000,
        "2.5",
    )
    record = admin_for(stack).show(key_id)
    assert record.limits.tokens_per_day == 5000
    _, out, _ = run(stack, capsys, "keys", "update", key_id, "--all-models", "--tokens-per-day", "default", "--json")
    reset = json.loads(out)
    assert (reset["models"], reset["tokens_per_day"], reset["usd_per_month"]) == ("*", None, "2.5")
    revoked_id = json.loads(run(stack, capsys, "keys", "create", "--tenant", "a", "--plan", "free", "--json")[1])[
        "key_id"
    ]
    run(stack, capsys, "keys", "revoke", revoked_id)
    code, _, err = run(stack, capsys, "keys", "update", revoked_id, "--tokens-per-day", "1")
    assert (code, "only active keys can be changed" in err) == (1, True)


def test_cli_errors_exit_non_zero_with_a_message(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(stack, capsys, "keys", "create", "--tenant", "acme", "--plan", "gold")
    assert (code, err.strip()) == (1, "error: Unknown plan 'gold'; plans: free, premium, standard")
    code, _, err = run(stack, capsys, "keys", "revoke", "key_000000000000")
    assert (code, err.strip()) == (1, "error: No key with id key_000000000000")


def test_cli_expiry_accepts_dates_and_durations() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert cli.parse_expiry("30d", now) == now + timedelta(days=30)
    assert cli.parse_expiry("12h", now) == now + timedelta(hours=12)
    assert cli.parse_expiry("2026-12-31", now) == datetime(2026, 12, 31, tzinfo=UTC)
    assert cli.parse_expiry("2026-12-31T10:00:00Z", now) == datetime(2026, 12, 31, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "show"],
        ["keys", "update"],
        ["keys", "revoke"],
        ["keys", "rotate"],
        ["usage"],
        ["serve"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: gatewayctl" in capsys.readouterr().out


def test_a_restart_on_a_persistent_dynamodb_keeps_tables_and_puts_keys_back_on_their_plans(stack: Stack) -> None:
    """The local gateway's API Gateway state is new at every start; DynamoDB Local's tables are not."""
    from emulator.provision import provision
    from emulator.usageplans import ApiKeys
    from gatewayctl.deployment import plans_from_outputs

    admin = admin_for(stack)
    kept = admin.create("acme", "premium").record
    revoked = admin.create("acme", "free").record
    admin.revoke(revoked.key_id)
    fresh_apigateway = boto3.client("apigateway", region_name="us-west-2")  # another region: no state
    outputs = provision(stack.dynamodb, fresh_apigateway, "llm-gateway-test").outputs
    assert outputs["KeysTableName"] == stack.outputs["KeysTableName"]
    restarted = KeyAdmin(
        KeyStore(stack.dynamodb, outputs["KeysTableName"]), fresh_apigateway, plans_from_outputs(outputs)
    )
    (reattached,) = restarted.reattach()
    assert reattached.key_id == kept.key_id
    assert restarted.show(kept.key_id).api_key_id == reattached.api_key_id != kept.api_key_id
    found = ApiKeys(fresh_apigateway, outputs["RestApiId"], outputs["StageName"]).plan_of(kept.usage_identifier)
    assert found is not None
    assert found[1].plan_id == plans_from_outputs(outputs)["premium"]
    assert restarted.reattach() == (), "a second start finds nothing missing"
