"""Spend limits in Anthropic's Admin API shape over the budget tree's USD caps, on API Gateway-shaped events."""

from __future__ import annotations

from llm_gateway.api.admin.services import AdminServices
from tests.contract.test_admin_api import call, services

__all__ = ["services"]
PATH = "/admin/v1/organizations/spend_limits"


def test_a_limit_set_on_a_workspace_is_the_tenants_monthly_usd_cap(services: AdminServices) -> None:
    body = {"scope": {"type": "workspace", "workspace_id": "acme"}, "period": "monthly", "amount": "50000"}
    status, limit = call(services, "POST", PATH, body)
    assert status == 200
    assert limit == {
        "type": "spend_limit", "id": "spl_tenant:acme:month", "amount": "50000", "currency": "USD",
        "is_enabled": True, "period": "monthly", "scope": {"type": "workspace", "workspace_id": "acme"},
    }  # fmt: skip
    _, tenant = call(services, "GET", "/admin/tenants")
    assert tenant["data"][0]["caps"] == [{"period": "month", "tokens": None, "usd": "500"}]
    assert call(services, "GET", f"{PATH}/spl_tenant:acme:month")[1] == limit


def test_a_teams_token_cap_survives_its_usd_limit_being_set_and_removed(services: AdminServices) -> None:
    call(
        services, "POST", "/admin/teams", {"id": "platform", "tenant": "acme", "caps": [{"period": "day", "tokens": 9}]}
    )
    scope = {"type": "rbac_group", "rbac_group_id": "platform"}
    status, limit = call(services, "POST", PATH, {"scope": scope, "period": "daily", "amount": "1234"})
    assert status == 200 and limit["amount"] == "1234"
    assert call(services, "GET", "/admin/teams/platform")[1]["caps"] == [{"period": "day", "tokens": 9, "usd": "12.34"}]
    status, removed = call(services, "POST", PATH, {"scope": scope, "period": "daily", "amount": None})
    assert status == 200 and removed["amount"] is None
    assert call(services, "GET", "/admin/teams/platform")[1]["caps"] == [{"period": "day", "tokens": 9, "usd": None}]
    assert call(services, "GET", f"{PATH}/spl_team:platform:day")[0] == 404


def test_the_list_filters_by_scope_type_and_workspace(services: AdminServices) -> None:
    call(services, "POST", "/admin/teams", {"id": "platform", "tenant": "acme"})
    call(services, "POST", "/admin/teams", {"id": "ops", "tenant": "beta"})
    for scope in (
        {"type": "workspace", "workspace_id": "acme"},
        {"type": "rbac_group", "rbac_group_id": "platform"},
        {"type": "rbac_group", "rbac_group_id": "ops"},
    ):
        assert call(services, "POST", PATH, {"scope": scope, "period": "weekly", "amount": "100"})[0] == 200
    status, page = call(services, "GET", PATH)
    assert status == 200 and page["has_more"] is False
    assert {limit["id"] for limit in page["data"]} == {
        "spl_tenant:acme:week",
        "spl_team:platform:week",
        "spl_team:ops:week",
    }
    groups = call(services, "GET", PATH, query={"scope_type": "rbac_group", "workspace_id": "acme"})[1]["data"]
    assert [limit["scope"] for limit in groups] == [{"type": "rbac_group", "rbac_group_id": "platform"}]


def test_what_has_no_counterpart_is_a_400_that_changes_nothing(services: AdminServices) -> None:
    status, refused = call(services, "GET", PATH, query={"scope_type": "user"})
    assert status == 400 and refused["error"]["param"] == "scope_type"
    body = {"scope": {"type": "organization"}, "period": "monthly", "amount": "100"}
    status, refused = call(services, "POST", PATH, body)
    assert status == 400 and refused["error"]["param"].startswith("scope")
    bad_amount = {"scope": {"type": "workspace", "workspace_id": "acme"}, "amount": "12.5"}
    assert call(services, "POST", PATH, bad_amount)[0] == 400
    unknown_team = {"scope": {"type": "rbac_group", "rbac_group_id": "ghost"}, "amount": "1"}
    assert call(services, "POST", PATH, unknown_team)[0] == 404
    assert call(services, "GET", "/admin/tenants")[1]["data"] == []
    assert call(services, "GET", f"{PATH}/nonsense")[0] == 400
