"""The admin API on API Gateway-shaped proxy events, against the template's tables and usage plans on moto."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from emulator.events import IncomingRequest, Stage, proxy_event
from emulator.lambda_context import LocalLambdaContext
from emulator.template import load_handler
from llm_gateway.api.admin.routes import handle
from llm_gateway.api.admin.services import AdminServices, admin_services
from llm_gateway.config import Settings, get_registry
from llm_gateway.domain.budget_tree import Spent, window_bounds
from llm_gateway.domain.keys import hash_key
from llm_gateway.domain.stores import DailyUsage
from tests.conftest import reset_caches
from tests.contract.conftest import Stack

STAGE = Stage("api123", "v1", "us-east-1", "000000000000", "api123.execute-api.us-east-1.amazonaws.com")
OPERATOR = "arn:aws:iam::000000000000:user/operator"


def event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    principal: str | None = OPERATOR,
) -> dict[str, Any]:
    request = IncomingRequest(
        method=method,
        resource="/admin/{proxy+}",
        path=path,
        headers=list({"content-type": "application/json", **(headers or {})}.items()),
        query=list((query or {}).items()),
        body=b"" if body is None else json.dumps(body).encode(),
        source_ip="203.0.113.9",
        request_id="req-1",
        received_at=datetime.now(UTC),
        path_parameters={"proxy": path.removeprefix("/admin/")},
    )
    return proxy_event(STAGE, request, None, None, principal)


@pytest.fixture
def services(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AdminServices:
    monkeypatch.setenv("GATEWAY_USAGE_PLANS", json.dumps(stack.plans))
    reset_caches()
    return admin_services(Settings.from_environ(), stack.apigateway)


def call(services: AdminServices, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    reply = handle(event(*args, **kwargs), None, services)
    body = reply["body"]
    content_type = reply["multiValueHeaders"]["Content-Type"][0]
    return reply["statusCode"], json.loads(body) if content_type == "application/json" else body


def test_a_key_is_created_listed_shown_updated_rotated_and_revoked(services: AdminServices, stack: Stack) -> None:
    status, created = call(
        services, "POST", "/admin/keys", {"tenant": "acme", "plan": "standard", "models": ["echo"],
                                         "limits": {"tokens_per_day": 5000}},
    )  # fmt: skip
    assert status == 201
    key, record = created["key"], created["record"]
    assert record["tenant"] == "acme" and record["models"] == ["echo"] and record["status"] == "active"
    assert record["limits"] == {"tokens_per_minute": None, "tokens_per_day": 5000, "usd_per_month": None}
    assert services.records.get_by_hash(hash_key(key)) is not None
    assert "key_hash" not in record and "usage_identifier" not in record
    api_keys = stack.apigateway.get_api_keys()["items"]
    assert [k["id"] for k in api_keys] == [record["api_key_id"]]

    status, listed = call(services, "GET", "/admin/keys", query={"tenant": "acme", "status": "active"})
    assert status == 200 and [k["key_id"] for k in listed["data"]] == [record["key_id"]]
    assert key not in json.dumps(listed)
    assert call(services, "GET", "/admin/keys", query={"q": "nobody"})[1] == {"data": []}

    status, updated = call(
        services, "PATCH", f"/admin/keys/{record['key_id']}", {"models": "*", "limits": {"usd_per_month": "12.50"}}
    )
    assert status == 200 and updated["models"] == "*" and updated["limits"]["usd_per_month"] == "12.50"

    status, rotated = call(services, "POST", f"/admin/keys/{record['key_id']}/rotate")
    assert status == 201 and rotated["key"] != key and rotated["record"]["rotated_from"] == record["key_hint"]
    assert services.records.get_by_hash(hash_key(key)).status == "revoked"  # type: ignore[union-attr]

    status, revoked = call(services, "POST", f"/admin/keys/{record['key_id']}/revoke")
    assert status == 200 and revoked["status"] == "revoked"
    assert stack.apigateway.get_api_key(apiKey=record["api_key_id"])["enabled"] is False
    status, again = call(services, "POST", f"/admin/keys/{record['key_id']}/revoke")
    assert status == 409 and again["error"]["code"] == "key_state_conflict"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tenant": "acme", "plan": "gold"}, "plan"),
        ({"tenant": "", "plan": "free"}, "tenant"),
        ({"tenant": "acme", "plan": "free", "limits": {"tokens_per_day": -1}}, "limits.tokens_per_day"),
        ({"tenant": "acme", "plan": "free", "expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"tenant": "acme", "plan": "free", "team": "nope"}, "team"),
        ({"tenant": "acme", "plan": "free", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_key_body_is_a_400_naming_the_field_and_changes_nothing(
    services: AdminServices, stack: Stack, body: dict[str, Any], param: str
) -> None:
    status, answer = call(services, "POST", "/admin/keys", body)
    assert status == 400
    assert answer["error"]["param"] == param and answer["error"]["type"] == "invalid_request_error"
    assert services.records.list() == []
    assert stack.apigateway.get_api_keys()["items"] == []


def test_malformed_json_unknown_key_and_unknown_route(services: AdminServices) -> None:
    reply = handle({**event("POST", "/admin/keys"), "body": "{not json"}, None, services)
    assert reply["statusCode"] == 400
    assert call(services, "GET", "/admin/keys/key_missing")[0] == 404
    status, answer = call(services, "GET", "/admin/nothing")
    assert status == 404 and answer["error"]["code"] == "not_found"


def test_an_event_without_an_iam_principal_is_refused(services: AdminServices) -> None:
    """A route left without AWS_IAM (a template mistake) still opens nothing."""
    status, answer = call(services, "GET", "/admin/keys", principal=None)
    assert status == 403 and answer["error"]["code"] == "iam_authorization_required"
    status, _ = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free"}, principal=None)
    assert status == 403
    # Refused before any route reads the request: a malformed body is no 400 here.
    assert call(services, "POST", "/admin/keys", {"colour": "red"}, principal=None)[0] == 403
    assert services.records.list() == []


def test_teams_tenants_caps_and_moving_a_key(services: AdminServices) -> None:
    status, tenant = call(services, "PUT", "/admin/tenants/acme", {"caps": [{"period": "month", "usd": "100"}]})
    assert status == 200 and tenant["caps"] == [{"period": "month", "tokens": None, "usd": "100"}]
    body = {"id": "platform", "tenant": "acme", "time_zone": "Asia/Tokyo", "caps": [{"period": "day", "tokens": 1000}]}
    status, team = call(services, "POST", "/admin/teams", body)
    assert status == 201 and team == {
        "scope": "team", "id": "platform", "parent": "acme", "time_zone": "Asia/Tokyo",
        "caps": [{"period": "day", "tokens": 1000, "usd": None}],
    }  # fmt: skip
    assert call(services, "POST", "/admin/teams", body)[0] == 409
    status, bad = call(services, "PATCH", "/admin/teams/platform", {"time_zone": "Mars/Olympus"})
    assert status == 400 and bad["error"]["param"] == "time_zone"
    status, team = call(services, "PATCH", "/admin/teams/platform", {"caps": [{"period": "week", "usd": "7.5"}]})
    assert [c["period"] for c in team["caps"]] == ["day", "week"]
    assert call(services, "GET", "/admin/teams", query={"tenant": "acme"})[1]["data"] == [team]
    assert call(services, "GET", "/admin/teams/ghost")[0] == 404
    assert [t["id"] for t in call(services, "GET", "/admin/tenants")[1]["data"]] == ["acme"]

    _, created = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free"})
    key_id = created["record"]["key_id"]
    status, moved = call(services, "PATCH", f"/admin/keys/{key_id}", {"team": "platform"})
    assert status == 200 and moved["team"] == "platform"
    assert call(services, "GET", "/admin/keys", query={"team": "platform"})[1]["data"][0]["key_id"] == key_id
    status, unknown = call(services, "PATCH", f"/admin/keys/{key_id}", {"plan": "gold", "team": None})
    assert status == 400 and unknown["error"]["param"] == "plan"
    assert call(services, "GET", f"/admin/keys/{key_id}")[1]["team"] == "platform", "a refused body changes nothing"


def test_budgets_show_cap_spent_and_remaining_per_window(services: AdminServices) -> None:
    call(
        services,
        "PUT",
        "/admin/tenants/acme",
        {"time_zone": "Europe/Paris", "caps": [{"period": "month", "usd": "10"}]},
    )
    call(
        services,
        "POST",
        "/admin/teams",
        {"id": "platform", "tenant": "acme", "caps": [{"period": "day", "tokens": 1000}]},
    )
    _, created = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free", "team": "platform"})
    now = datetime.now(UTC)
    team_window, resets = window_bounds("day", "UTC", now)
    tenant_window, _ = window_bounds("month", "Europe/Paris", now)
    # Spend recorded the way a settled request leaves it, through the tree's own reservation and settlement.
    from llm_gateway.domain.budget_tree import BudgetNode, NodeCap, plan_chain

    chain = (
        BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", tokens=1000),)),
        BudgetNode("tenant", "acme", None, "Europe/Paris", (NodeCap("month", micro_usd=10_000_000),)),
    )
    reservation = plan_chain(chain, 300, Decimal("0.25"), now, holder=f"key#{created['record']['key_id']}")
    services.tree.reserve_chain(reservation)
    services.tree.settle_chain(reservation, 250, 200_000)
    assert services.tree.spent("team#platform", team_window) == Spent(250, 200_000)

    status, team = call(services, "GET", "/admin/budgets/team/platform")
    assert status == 200
    [window] = team["windows"]
    assert window["period"] == "day" and window["resets_at"] == resets.isoformat()
    assert window["tokens"] == {"cap": 1000, "spent": 250, "remaining": 750}
    assert window["usd"] == {"cap": None, "spent": "0.2", "remaining": None}
    assert datetime.fromisoformat(window["starts_at"]) == resets - timedelta(days=1)

    status, tenant = call(services, "GET", "/admin/budgets/tenant/acme")
    assert tenant["windows"][0]["usd"] == {"cap": "10", "spent": "0.2", "remaining": "9.8"}
    assert tenant_window.startswith("month:")

    status, chain_budget = call(services, "GET", f"/admin/keys/{created['record']['key_id']}/budget")
    assert status == 200 and [b["scope"] for b in chain_budget["data"]] == ["team", "tenant"]
    assert call(services, "GET", "/admin/budgets/galaxy/x")[0] == 400
    assert call(services, "GET", "/admin/budgets/team/ghost")[0] == 404


def test_usage_grouped_by_team_and_day_as_json_and_csv(services: AdminServices, stack: Stack) -> None:
    call(services, "POST", "/admin/teams", {"id": "platform", "tenant": "acme"})
    _, created = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free", "team": "platform"})
    key_id = created["record"]["key_id"]
    today = datetime.now(UTC).date()
    rows = [
        DailyUsage(key_id, "acme", "free", today, 2, 0, 100, 40, Decimal("0.001")),
        DailyUsage(key_id, "acme", "free", today - timedelta(days=1), 1, 1, 10, 5, Decimal("0.0001")),
    ]

    class Ledger:
        def daily_usage(self, *, key_id: str | None = None, tenant: str | None = None, since: date | None = None):  # type: ignore[no-untyped-def]
            return [r for r in rows if since is None or r.day >= since]

    from dataclasses import replace

    services = replace(services, usage=Ledger())  # type: ignore[arg-type]
    status, report = call(
        services, "GET", "/admin/usage", query={"group_by": "team", "since": str(today - timedelta(days=7))}
    )
    assert status == 200
    assert report["data"] == [
        {"team": "platform", "requests": 3, "failed": 1, "prompt_tokens": 110, "completion_tokens": 45,
         "cached_tokens": 0, "cache_write_tokens": 0, "cost_usd": "0.0011", "estimated": 0},
    ]  # fmt: skip
    status, csv_text = call(services, "GET", "/admin/usage", query={"group_by": "day,team", "format": "csv"})
    lines = csv_text.splitlines()
    assert lines[0].startswith("day,team,requests") and len(lines) == 3
    status, until = call(
        services, "GET", "/admin/usage", query={"group_by": "day", "until": str(today - timedelta(days=1))}
    )
    assert [r["day"] for r in until["data"]] == [str(today - timedelta(days=1))]
    status, refused = call(services, "GET", "/admin/usage", query={"group_by": "colour"})
    assert status == 400 and refused["error"]["param"] == "group_by" and "colour" in refused["error"]["message"]
    assert call(services, "GET", "/admin/usage", query={"since": "yesterday"})[0] == 400


def test_models_list_the_registry(services: AdminServices) -> None:
    status, models = call(services, "GET", "/admin/models")
    assert status == 200
    assert [m["id"] for m in models["data"]] == get_registry().names()
    echo = next(m for m in models["data"] if m["id"] == "echo")
    assert echo["provider"] == "echo"


def test_the_template_wires_the_admin_function(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler template.yaml names, on the settings the stack gives it (tables, usage plans), with boto3's
    client."""
    monkeypatch.setenv("GATEWAY_USAGE_PLANS", json.dumps(stack.plans))
    reset_caches()
    import llm_gateway.api.admin.entry as entry

    monkeypatch.setattr(entry, "_services", None)
    monkeypatch.setattr(entry, "_apigateway", None)
    handler = load_handler("AdminFunction")
    context = LocalLambdaContext(function_name="AdminFunction")
    reply = handler(event("POST", "/admin/keys", {"tenant": "acme", "plan": "premium"}), context)
    assert reply["statusCode"] == 201
    assert len(stack.apigateway.get_usage_plan_keys(usagePlanId=stack.plans["premium"])["items"]) == 1


def test_every_write_is_logged_with_its_principal_and_never_the_key(services: AdminServices, log_output: Any) -> None:
    _, created = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free"})
    call(services, "GET", "/admin/keys")
    lines = [line for line in log_output() if line.get("message") == "admin operation"]
    assert [(line["admin_action"], line["principal"], line["tenant"]) for line in lines] == [
        ("keys.create", OPERATOR, "acme")
    ]
    assert created["key"] not in json.dumps(log_output())


def test_a_rotation_with_a_grace_period_and_a_patch_of_plan_and_expiry(services: AdminServices, stack: Stack) -> None:
    _, created = call(services, "POST", "/admin/keys", {"tenant": "acme", "plan": "free"})
    key, record = created["key"], created["record"]
    key_id = record["key_id"]
    for value in (604_801, -1, True, "60", 1.5):
        status, refused = call(services, "POST", f"/admin/keys/{key_id}/rotate", {"grace_period_seconds": value})
        assert (status, refused["error"]["param"]) == (400, "grace_period_seconds"), refused
    assert call(services, "POST", f"/admin/keys/{key_id}/rotate", {"grace_seconds": 60})[0] == 400
    assert services.records.get_by_hash(hash_key(key)).status == "active"  # type: ignore[union-attr]
    status, rotated = call(services, "POST", f"/admin/keys/{key_id}/rotate", {"grace_period_seconds": 3600})
    assert status == 201, rotated
    previous = rotated["previous"]
    assert (previous["key_hint"], previous["status"]) == (record["key_hint"], "retiring")
    ends = datetime.fromisoformat(previous["revoked_at"])
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    assert key not in json.dumps(rotated) and hash_key(key) not in json.dumps(rotated)
    status, listed = call(services, "GET", "/admin/keys", query={"status": "retiring"})
    assert status == 200 and [k["key_hint"] for k in listed["data"]] == [record["key_hint"]]

    later = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    status, patched = call(
        services, "PATCH", f"/admin/keys/{key_id}", {"plan": "premium", "expires_at": later.isoformat()}
    )
    assert status == 200, patched
    assert (patched["plan"], patched["expires_at"]) == ("premium", later.isoformat())
    assert [k["id"] for k in stack.apigateway.get_usage_plan_keys(usagePlanId=stack.plans["premium"])["items"]] == [
        record["api_key_id"]
    ]
    old = services.records.get_by_hash(hash_key(key))
    assert old is not None and (old.plan, old.expires_at) == ("premium", later), "the retiring secret follows"
    for body, param in (
        ({"plan": "gold"}, "plan"),
        ({"plan": None}, "plan"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"plan": "free", "team": "nope"}, "team"),
    ):
        status, refused = call(services, "PATCH", f"/admin/keys/{key_id}", body)
        assert (status, refused["error"]["param"]) == (400, param), refused
    assert call(services, "GET", f"/admin/keys/{key_id}")[1]["plan"] == "premium", "a refused body changes nothing"
    status, cleared = call(services, "PATCH", f"/admin/keys/{key_id}", {"expires_at": None})
    assert status == 200 and cleared["expires_at"] is None
