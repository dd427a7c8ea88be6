"""The admin API through the local gateway (`make run`): the local admin key opens it and nothing else, a caller's
key never opens it, and what it does (a key created, a team's caps, a revocation) holds on the model routes."""

from __future__ import annotations

import json
import re

from tests.e2e.conftest import LocalGateway, wait_for
from tests.e2e.test_local_gateway import call

CHAT = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello"}]}


def admin_key(gateway: LocalGateway) -> str:
    match = re.search(r"admin API: \S+/admin  \(Authorization: Bearer (\S+)\)", gateway.text())
    assert match, gateway.text()
    return match.group(1)


def test_the_admin_key_is_printed_and_kept_in_the_data_directory(local_gateway: LocalGateway) -> None:
    key = admin_key(local_gateway)
    assert key.startswith("llmgw-admin-")
    assert local_gateway.key not in key


def test_a_callers_key_never_opens_the_admin_api(local_gateway: LocalGateway) -> None:
    status, _, body = call(
        local_gateway, "GET", "/admin/keys", headers={"Authorization": f"Bearer {local_gateway.key}"}
    )
    assert status == 403, body
    status, _, _ = call(local_gateway, "GET", "/admin/keys", headers={"x-api-key": local_gateway.key})
    # No Authorization header at all: API Gateway's MISSING_AUTHENTICATION_TOKEN (this template renders it as 404).
    assert status == 404
    body = {"tenant": "intruder", "plan": "premium"}
    status, _, _ = call(local_gateway, "POST", "/admin/keys", body, {"Authorization": f"Bearer {local_gateway.key}"})
    assert status == 403
    status, _, listed = call(local_gateway, "GET", "/admin/keys", headers=auth(local_gateway))
    assert "intruder" not in {k["tenant"] for k in listed["data"]}


def test_the_admin_key_never_calls_a_model(local_gateway: LocalGateway) -> None:
    for headers in (auth(local_gateway), {"x-api-key": admin_key(local_gateway)}):
        status, _, body = call(local_gateway, "POST", "/chat/completions", CHAT, headers)
        assert status == 401, body
        status, _, _ = call(local_gateway, "GET", "/models", headers=headers)
        assert status == 401


def auth(gateway: LocalGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key(gateway)}"}


def test_a_key_made_through_the_admin_api_calls_models_until_revoked(local_gateway: LocalGateway) -> None:
    headers = auth(local_gateway)
    team_body = {"id": "admin-e2e", "tenant": "adm", "caps": [{"period": "day", "tokens": 100000}]}
    status, _, team = call(local_gateway, "POST", "/admin/teams", team_body, headers)
    assert status == 201, team
    status, _, created = call(
        local_gateway, "POST", "/admin/keys", {"tenant": "adm", "plan": "premium", "team": "admin-e2e"}, headers
    )
    assert status == 201, created
    key, key_id = created["key"], created["record"]["key_id"]
    status, _, answer = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
    assert status == 200, answer
    status, _, budget = call(local_gateway, "GET", "/admin/budgets/team/admin-e2e", headers=headers)
    assert status == 200 and budget["windows"][0]["tokens"]["spent"] > 0
    status, _, shown = call(local_gateway, "GET", f"/admin/keys/{key_id}", headers=headers)
    assert status == 200 and key not in str(shown)
    status, _, revoked = call(local_gateway, "POST", f"/admin/keys/{key_id}/revoke", headers=headers)
    assert status == 200 and revoked["status"] == "revoked"
    status, _, _ = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
    assert status == 401
    status, _, models = call(local_gateway, "GET", "/admin/models", headers=headers)
    assert status == 200 and "echo" in {m["id"] for m in models["data"]}


def test_gatewayctl_works_through_the_admin_api(local_gateway: LocalGateway) -> None:
    """gatewayctl --local is a client of the admin API: its commands are admin requests in the access log."""
    before = local_gateway.text().count("/admin/{proxy+}")
    created = local_gateway.gatewayctl("teams", "create", "ctl-team", "--tenant", "ctl", "--tokens-per-day", "5000")
    assert created.returncode == 0, created.stderr
    assert local_gateway.gatewayctl("tenants", "set", "ctl", "--usd-per-month", "20").returncode == 0
    issued = local_gateway.gatewayctl(
        "keys", "create", "--tenant", "ctl", "--team", "ctl-team", "--plan", "free", "--json"
    )
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)["key"]
    status, _, _ = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
    assert status == 200
    report = local_gateway.gatewayctl("usage", "--tenant", "ctl", "--group-by", "team", "--csv")
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[1].startswith("ctl-team,1,0,")
    listed = local_gateway.gatewayctl("tenants", "list", "--json")
    assert {"period": "month", "tokens": None, "usd": "20"} in next(
        t for t in json.loads(listed.stdout) if t["id"] == "ctl"
    )["caps"]
    wait_for(lambda: local_gateway.text().count("/admin/{proxy+}") >= before + 5)


def test_anthropics_sdk_sets_and_lists_spend_limits(local_gateway: LocalGateway) -> None:
    """A tool written for Anthropic's Admin API (here its own SDK) on the admin API's URL, with the admin key."""
    from anthropic import Anthropic

    client = Anthropic(base_url=f"{local_gateway.base_url}/admin", api_key=None, auth_token=admin_key(local_gateway))
    limit = client.beta.organization.spend_limits.set(
        scope={"type": "workspace", "workspace_id": "sdk-tenant"}, period="monthly", amount="2500"
    )
    assert (limit.id, limit.amount, limit.currency, limit.period) == (
        "spl_tenant:sdk-tenant:month",
        "2500",
        "USD",
        "monthly",
    )
    listed = [item.id for item in client.beta.organization.spend_limits.list(scope_type=["workspace"])]
    assert limit.id in listed
    assert client.beta.organization.spend_limits.retrieve(limit.id).amount == "2500"
    _, _, tenants = call(local_gateway, "GET", "/admin/tenants", headers=auth(local_gateway))
    caps = next(t for t in tenants["data"] if t["id"] == "sdk-tenant")["caps"]
    assert caps == [{"period": "month", "tokens": None, "usd": "25"}]
