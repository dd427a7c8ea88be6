"""The admin API's routes (docs/admin-api.md): each parses, calls one admin operation and writes its shape; every
failure is a GatewayError in `{"error": {...}}` with its status."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any, TypeGuard, cast

from aws_lambda_powertools.event_handler import Response

from llm_gateway.api.admin import spend_limit_routes
from llm_gateway.api.admin.resolver import (
    app,
    audit,
    current_services,
    json_answer,
    query_value,
    request_body,
    resolve,
)
from llm_gateway.api.admin.services import AdminServices
from llm_gateway.api.admin.shapes import (
    KeyCreateBody,
    KeyPatchBody,
    NodeBody,
    RotateBody,
    TeamCreateBody,
    budget_dict,
    event_dict,
    key_dict,
    model_dict,
    models_of,
    node_dict,
    parse_body,
)
from llm_gateway.domain.budget_tree import SCOPES, Scope
from llm_gateway.domain.budget_view import node_budget
from llm_gateway.domain.key_admin import KeyAdminError, KeyFilter
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.usage_report import (
    Group,
    KeyDay,
    as_csv,
    grouped,
    grouped_events,
    header,
    key_days,
    needs_events,
    parse_groups,
)
from llm_gateway.errors import InvalidRequestError, NotFoundError

# How far back a usage report reaches when it names no first day.
DEFAULT_USAGE_DAYS = 30
# The spend-limit routes register on the same resolver when their module is imported.
__all__ = ["handle", "spend_limit_routes"]


def handle(event: dict[str, Any], context: Any, services: AdminServices) -> dict[str, Any]:
    """One API Gateway proxy event -> its proxy response. Only IAM-authorised events are served: a request whose
    identity names no IAM principal (a route left without AWS_IAM) is refused, whatever it asks."""
    return resolve(event, context, services)


# --- Keys ---


@app.get("/admin/keys")
def list_keys() -> Response[str]:
    status = query_value("status")
    if status not in {None, "active", "retiring", "revoked", "expired"}:
        raise InvalidRequestError("status is active, retiring, revoked or expired", param="status")
    services = current_services()
    records = services.keys.list(
        query_value("tenant"),
        team=query_value("team"),
        plan=query_value("plan"),
        status=cast(KeyFilter | None, status),
        query=query_value("q"),
    )
    now = services.clock()
    # Newest first, as the console lists them.
    records.sort(key=lambda record: record.created_at, reverse=True)
    return json_answer({"data": [key_dict(record, now) for record in records]})


@app.post("/admin/keys")
def create_key() -> Response[str]:
    body = parse_body(KeyCreateBody, request_body())
    audit("keys.create", tenant=body.tenant, plan=body.plan, team=body.team)
    services = current_services()
    issued = services.keys.create(
        body.tenant,
        body.plan,
        models_of(body.models),
        expires_at=body.expires_at,
        limits=body.limits.limits() if body.limits else None,
        team=body.team,
    )
    return json_answer({"key": issued.key, "record": key_dict(issued.record, services.clock())}, 201)


@app.get("/admin/keys/<key_id>")
def show_key(key_id: str) -> Response[str]:
    services = current_services()
    return json_answer(key_dict(services.keys.show(key_id), services.clock()))


@app.patch("/admin/keys/<key_id>")
def update_key(key_id: str) -> Response[str]:
    body = parse_body(KeyPatchBody, request_body())
    given = body.model_fields_set
    audit("keys.update", key_id=key_id, fields=sorted(given))
    services = current_services()
    current = services.keys.show(key_id)
    # Every field is checked before anything changes: a refused body changes nothing.
    if "plan" in given:
        if body.plan is None:
            raise KeyAdminError("A key is always on a plan", param="plan")
        services.keys.plan_of(body.plan)
    if "expires_at" in given and body.expires_at is not None and body.expires_at <= services.clock():
        raise KeyAdminError("The expiry must be in the future", param="expires_at")
    if "team" in given and body.team:
        services.keys.check_team(body.team, current.tenant)
    models = models_of(body.models) if "models" in given else current.models
    record = current
    if body.plan is not None and body.plan != current.plan:
        record = services.keys.change_plan(key_id, body.plan)
    if "expires_at" in given and body.expires_at != current.expires_at:
        record = services.keys.set_expiry(key_id, body.expires_at)
    if "team" in given and body.team != current.team:
        record = services.keys.move(key_id, body.team) if body.team else services.keys.leave_team(key_id)
    if "models" in given or "limits" in given:
        limits = current.limits
        if "limits" in given:
            limits = body.limits.limits() if body.limits else TokenLimits()
        record = services.keys.update(key_id, models, limits)
    return json_answer(key_dict(record, services.clock()))


@app.post("/admin/keys/<key_id>/rotate")
def rotate_key(key_id: str) -> Response[str]:
    body = parse_body(RotateBody, request_body())
    audit("keys.rotate", key_id=key_id, grace_period_seconds=body.grace_period_seconds)
    services = current_services()
    issued = services.keys.rotate(key_id, timedelta(seconds=body.grace_period_seconds))
    now = services.clock()
    answer = {"key": issued.key, "record": key_dict(issued.record, now)}
    if issued.previous is not None:
        # The old secret: retiring until its revoked_at, the end of the grace period.
        answer["previous"] = key_dict(issued.previous, now)
    return json_answer(answer, 201)


@app.post("/admin/keys/<key_id>/revoke")
def revoke_key(key_id: str) -> Response[str]:
    audit("keys.revoke", key_id=key_id)
    services = current_services()
    revocation = services.keys.revoke(key_id)
    answer = key_dict(revocation.record, services.clock())
    if revocation.warning:
        # Revoked (the authorizer refuses it) but API Gateway still meters the key: the operator has a step left.
        answer["warning"] = revocation.warning
    return json_answer(answer)


@app.get("/admin/keys/<key_id>/requests")
def key_requests(key_id: str) -> Response[str]:
    """The key's requests of one UTC day (`day`, default today), oldest first, from their usage events."""
    services = current_services()
    if services.events is None:
        raise NotFoundError(
            "This deployment keeps no usage events (no usage events table)", code="no_usage_events_table"
        )
    record = services.keys.show(key_id)
    day = _day("day") or services.clock().astimezone(UTC).date()
    events = services.events.events(record.key_id, day)
    return json_answer({"key_id": record.key_id, "day": day.isoformat(), "data": [event_dict(e) for e in events]})


@app.get("/admin/keys/<key_id>/budget")
def key_budget(key_id: str) -> Response[str]:
    services = current_services()
    record = services.keys.show(key_id)
    chain: list[tuple[Scope, str]] = [("key", record.key_id)]
    if record.team:
        chain += [("team", record.team), ("tenant", record.tenant)]
    now = services.clock()
    budgets = []
    for scope, node_id in chain:
        node = services.tree.get_node(scope, node_id)
        if node is not None:
            budgets.append(budget_dict(node_budget(services.tree, node, now)))
    return json_answer({"key_id": record.key_id, "data": budgets})


# --- Tenants, teams, budgets ---


@app.get("/admin/tenants")
def list_tenants() -> Response[str]:
    return json_answer({"data": [node_dict(node) for node in current_services().teams.list("tenant")]})


@app.put("/admin/tenants/<tenant>")
def put_tenant(tenant: str) -> Response[str]:
    body = parse_body(NodeBody, request_body())
    audit("tenants.put", tenant=tenant)
    return json_answer(node_dict(current_services().teams.update("tenant", tenant, body.time_zone, body.changes())))


@app.get("/admin/teams")
def list_teams() -> Response[str]:
    return json_answer(
        {"data": [node_dict(node) for node in current_services().teams.list("team", query_value("tenant"))]}
    )


@app.post("/admin/teams")
def create_team() -> Response[str]:
    body = parse_body(TeamCreateBody, request_body())
    audit("teams.create", team=body.id, tenant=body.tenant)
    node = current_services().teams.create_team(body.id, body.tenant, body.time_zone or "UTC", body.changes())
    return json_answer(node_dict(node), 201)


@app.get("/admin/teams/<team>")
def show_team(team: str) -> Response[str]:
    return json_answer(node_dict(current_services().teams.team(team)))


@app.patch("/admin/teams/<team>")
def update_team(team: str) -> Response[str]:
    body = parse_body(NodeBody, request_body())
    audit("teams.update", team=team)
    return json_answer(node_dict(current_services().teams.update("team", team, body.time_zone, body.changes())))


@app.get("/admin/budgets/<scope>/<node_id>")
def budget(scope: str, node_id: str) -> Response[str]:
    if not _is_scope(scope):
        raise InvalidRequestError(f"scope is one of {', '.join(SCOPES)}", param="scope")
    services = current_services()
    node = services.tree.get_node(scope, node_id)
    if node is None:
        raise NotFoundError(f"No {scope} '{node_id}' in the budget tree", code="node_not_found")
    return json_answer(budget_dict(node_budget(services.tree, node, services.clock())))


def _is_scope(value: str) -> TypeGuard[Scope]:
    return value in SCOPES


# --- Usage and models ---


def _day(name: str) -> date | None:
    value = query_value(name)
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"{name} is a day, YYYY-MM-DD", param=name) from None


@app.get("/admin/usage")
def usage() -> Response[str]:
    services = current_services()
    groups = parse_groups(query_value("group_by") or "day,tenant,key", services.tag_names)
    since = _day("since") or services.clock().astimezone(UTC).date() - timedelta(days=DEFAULT_USAGE_DAYS)
    until, team, key, tenant = _day("until"), query_value("team"), query_value("key"), query_value("tenant")
    if needs_events(groups):
        found = _event_groups(services, groups, since=since, until=until, key=key, tenant=tenant, team=team)
    else:
        if services.usage is None:
            raise NotFoundError("This deployment keeps no usage records (no usage table)", code="no_usage_table")
        rows = services.usage.daily_usage(key_id=key, tenant=tenant, since=since)
        teams = {record.key_id: record.team for record in services.records.list()} if "team" in groups or team else {}
        rows = [
            row
            for row in rows
            if (until is None or row.day <= until) and (team is None or teams.get(row.key_id) == team)
        ]
        found = grouped(rows, groups, teams)
    accept = app.current_event.headers.get("accept") or app.current_event.headers.get("Accept") or ""
    if query_value("format") == "csv" or "text/csv" in accept:
        return Response(200, "text/csv", as_csv(groups, found))
    columns = header(groups)
    data = []
    for group in found:
        row: dict[str, Any] = dict(zip(columns, group.key, strict=False))
        for name, value in group.figures.items():
            row[name] = str(value) if name == "cost_usd" else value
        data.append(row)
    return json_answer({"data": data, "group_by": list(groups), "since": since.isoformat()})


def _event_groups(
    services: AdminServices,
    groups: tuple[str, ...],
    *,
    since: date,
    until: date | None,
    key: str | None,
    tenant: str | None,
    team: str | None,
) -> list[Group]:
    """The usage events' report: the keys of the key records (and of the budgets' usage, for a key whose record is
    gone), each read by key (domain/usage_report.py key_days)."""
    if services.events is None:
        raise NotFoundError(
            "This deployment keeps no usage events (no usage events table): group by day, tenant, team, key or plan",
            code="no_usage_events_table",
        )
    if key is not None:
        key_ids = [key]
    else:
        key_ids = [record.key_id for record in services.records.list(tenant)]
        if services.usage is not None:
            key_ids += [row.key_id for row in services.usage.daily_usage(tenant=tenant, since=since)]
    today = services.clock().astimezone(UTC).date()
    # No event can be later than today: a later `until` reads no more days.
    last = min(until or today, today)
    found = key_days(services.events, dict.fromkeys(key_ids), since, last)
    if tenant is not None:
        found = [KeyDay(day.key_id, day.day, [g for g in day.groups if g.tenant == tenant]) for day in found]
    return grouped_events(found, groups, team)


@app.get("/admin/models")
def models() -> Response[str]:
    registry = current_services().registry()
    return json_answer({"data": [model_dict(name, registry.get(name)) for name in registry.names()]})
