"""The admin API's routes (docs/admin-api.md) on Powertools' REST resolver: each parses, calls one admin operation and
writes its shape; every failure is a GatewayError in `{"error": {...}}` with its status."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, date, timedelta
from typing import Any, TypeGuard, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from llm_gateway.api.admin.services import AdminServices
from llm_gateway.api.admin.shapes import (
    KeyCreateBody,
    KeyPatchBody,
    NodeBody,
    RotateBody,
    TeamCreateBody,
    budget_dict,
    key_dict,
    model_dict,
    models_of,
    node_dict,
    parse_body,
)
from llm_gateway.domain.budget_tree import SCOPES, Scope
from llm_gateway.domain.budget_view import node_budget
from llm_gateway.domain.key_admin import KeyAdminError, KeyAdminFailure, KeyFilter
from llm_gateway.domain.stores import KeyNotFoundError, KeyStateError
from llm_gateway.domain.usage_report import as_csv, grouped, header, parse_groups
from llm_gateway.errors import ConflictError, GatewayError, InvalidRequestError, NotFoundError, PermissionDeniedError
from llm_gateway.observability import logger

app = APIGatewayRestResolver()
JSON = "application/json"
# How far back a usage report reaches when it names no first day.
DEFAULT_USAGE_DAYS = 30


_serving: ContextVar[AdminServices] = ContextVar("admin_services")


def handle(event: dict[str, Any], context: Any, services: AdminServices) -> dict[str, Any]:
    """One API Gateway proxy event -> its proxy response. Only IAM-authorised events are served: a request whose
    identity names no IAM principal (a route left without AWS_IAM) is refused, whatever it asks."""
    token = _serving.set(services)
    try:
        return app.resolve(event, context)
    finally:
        _serving.reset(token)


def _services() -> AdminServices:
    return _serving.get()


def _principal() -> str:
    identity = app.current_event.request_context.identity
    principal = identity.user_arn or identity.caller
    if not principal:
        raise PermissionDeniedError(
            "The admin API takes requests signed with IAM credentials (SigV4) only", code="iam_authorization_required"
        )
    return principal


def _json(value: Any, status: int = 200) -> Response[str]:
    return Response(status, JSON, json.dumps(value))


def _body() -> Any:
    raw = app.current_event.body
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequestError("The body is not valid JSON") from None


def _query(name: str) -> str | None:
    value = (app.current_event.query_string_parameters or {}).get(name)
    return value or None


def _audit(action: str, **target: Any) -> None:
    logger.info("admin operation", extra={"admin_action": action, "principal": _principal(), **target})


def _gateway_error(error: GatewayError) -> Response[str]:
    body = {"error": {"type": error.error_type, "code": error.code, "message": error.message, "param": error.param}}
    return Response(error.status, JSON, json.dumps(body), headers=error.headers or None)


def _error(error: Exception) -> Response[str]:
    """Every failure in the one error shape: the stores' key errors as 404 and 409, an AWS call that failed as 502
    (KeyAdmin rolled back what it had done), anything else as 500 without its details."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, GatewayError):
        return _gateway_error(error)
    if isinstance(error, KeyNotFoundError):
        return _gateway_error(NotFoundError(str(error), code="key_not_found"))
    if isinstance(error, KeyStateError):
        return _gateway_error(ConflictError(str(error), code="key_state_conflict"))
    if isinstance(error, BotoCoreError | ClientError):
        logger.exception("admin operation: an AWS call failed")
        return _gateway_error(KeyAdminFailure(f"An AWS call failed: {error}"))
    logger.exception("admin operation failed")
    return _gateway_error(GatewayError("The admin API failed to process this request"))


cast(Callable[[Callable[[Exception], Response[str]]], object], app.exception_handler(Exception))(_error)


@app.not_found
def _no_route(_: Exception) -> Response[str]:
    event = app.current_event
    return _gateway_error(NotFoundError(f"No admin route for {event.http_method} {event.path}"))


# --- Keys ---


@app.get("/admin/keys")
def list_keys() -> Response[str]:
    _principal()
    status = _query("status")
    if status not in {None, "active", "revoked", "expired"}:
        raise InvalidRequestError("status is active, revoked or expired", param="status")
    services = _services()
    records = services.keys.list(
        _query("tenant"),
        team=_query("team"),
        plan=_query("plan"),
        status=cast(KeyFilter | None, status),
        query=_query("q"),
    )
    now = services.clock()
    # Newest first, as the console lists them.
    records.sort(key=lambda record: record.created_at, reverse=True)
    return _json({"data": [key_dict(record, now) for record in records]})


@app.post("/admin/keys")
def create_key() -> Response[str]:
    body = parse_body(KeyCreateBody, _body())
    _audit("keys.create", tenant=body.tenant, plan=body.plan, team=body.team)
    services = _services()
    issued = services.keys.create(
        body.tenant,
        body.plan,
        models_of(body.models),
        expires_at=body.expires_at,
        limits=body.limits.limits() if body.limits else None,
        team=body.team,
    )
    return _json({"key": issued.key, "record": key_dict(issued.record, services.clock())}, 201)


@app.get("/admin/keys/<key_id>")
def show_key(key_id: str) -> Response[str]:
    _principal()
    services = _services()
    return _json(key_dict(services.keys.show(key_id), services.clock()))


@app.patch("/admin/keys/<key_id>")
def update_key(key_id: str) -> Response[str]:
    body = parse_body(KeyPatchBody, _body())
    given = body.model_fields_set
    _audit("keys.update", key_id=key_id, fields=sorted(given))
    services = _services()
    current = services.keys.show(key_id)
    if "plan" in given and body.plan != current.plan:
        raise KeyAdminError(
            "A key's plan cannot be changed: create a key on the other plan and revoke this one", param="plan"
        )
    if "expires_at" in given and body.expires_at != current.expires_at:
        raise KeyAdminError("A key's expiry cannot be changed: create a key with the new expiry", param="expires_at")
    record = current
    if "team" in given and body.team != current.team:
        record = services.keys.move(key_id, body.team) if body.team else services.keys.leave_team(key_id)
    if "models" in given or "limits" in given:
        models = models_of(body.models) if "models" in given else current.models
        limits = (body.limits.limits() if body.limits else type(current.limits)()) if "limits" in given else None
        record = services.keys.update(key_id, models, limits or current.limits)
    return _json(key_dict(record, services.clock()))


@app.post("/admin/keys/<key_id>/rotate")
def rotate_key(key_id: str) -> Response[str]:
    parse_body(RotateBody, _body())
    _audit("keys.rotate", key_id=key_id)
    services = _services()
    issued = services.keys.rotate(key_id)
    return _json({"key": issued.key, "record": key_dict(issued.record, services.clock())}, 201)


@app.post("/admin/keys/<key_id>/revoke")
def revoke_key(key_id: str) -> Response[str]:
    _audit("keys.revoke", key_id=key_id)
    services = _services()
    revocation = services.keys.revoke(key_id)
    answer = key_dict(revocation.record, services.clock())
    if revocation.warning:
        # Revoked (the authorizer refuses it) but API Gateway still meters the key: the operator has a step left.
        answer["warning"] = revocation.warning
    return _json(answer)


@app.get("/admin/keys/<key_id>/budget")
def key_budget(key_id: str) -> Response[str]:
    _principal()
    services = _services()
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
    return _json({"key_id": record.key_id, "data": budgets})


# --- Tenants, teams, budgets ---


@app.get("/admin/tenants")
def list_tenants() -> Response[str]:
    _principal()
    return _json({"data": [node_dict(node) for node in _services().teams.list("tenant")]})


@app.put("/admin/tenants/<tenant>")
def put_tenant(tenant: str) -> Response[str]:
    body = parse_body(NodeBody, _body())
    _audit("tenants.put", tenant=tenant)
    return _json(node_dict(_services().teams.update("tenant", tenant, body.time_zone, body.changes())))


@app.get("/admin/teams")
def list_teams() -> Response[str]:
    _principal()
    return _json({"data": [node_dict(node) for node in _services().teams.list("team", _query("tenant"))]})


@app.post("/admin/teams")
def create_team() -> Response[str]:
    body = parse_body(TeamCreateBody, _body())
    _audit("teams.create", team=body.id, tenant=body.tenant)
    node = _services().teams.create_team(body.id, body.tenant, body.time_zone or "UTC", body.changes())
    return _json(node_dict(node), 201)


@app.get("/admin/teams/<team>")
def show_team(team: str) -> Response[str]:
    _principal()
    return _json(node_dict(_services().teams.team(team)))


@app.patch("/admin/teams/<team>")
def update_team(team: str) -> Response[str]:
    body = parse_body(NodeBody, _body())
    _audit("teams.update", team=team)
    return _json(node_dict(_services().teams.update("team", team, body.time_zone, body.changes())))


@app.get("/admin/budgets/<scope>/<node_id>")
def budget(scope: str, node_id: str) -> Response[str]:
    _principal()
    if not _is_scope(scope):
        raise InvalidRequestError(f"scope is one of {', '.join(SCOPES)}", param="scope")
    services = _services()
    node = services.tree.get_node(scope, node_id)
    if node is None:
        raise NotFoundError(f"No {scope} '{node_id}' in the budget tree", code="node_not_found")
    return _json(budget_dict(node_budget(services.tree, node, services.clock())))


def _is_scope(value: str) -> TypeGuard[Scope]:
    return value in SCOPES


# --- Usage and models ---


def _day(name: str) -> date | None:
    value = _query(name)
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"{name} is a day, YYYY-MM-DD", param=name) from None


@app.get("/admin/usage")
def usage() -> Response[str]:
    _principal()
    services = _services()
    if services.usage is None:
        raise NotFoundError("This deployment keeps no usage records (no usage table)", code="no_usage_table")
    groups = parse_groups(_query("group_by") or "day,tenant,key")
    since = _day("since") or services.clock().astimezone(UTC).date() - timedelta(days=DEFAULT_USAGE_DAYS)
    until, team = _day("until"), _query("team")
    rows = services.usage.daily_usage(key_id=_query("key"), tenant=_query("tenant"), since=since)
    teams = {record.key_id: record.team for record in services.records.list()} if "team" in groups or team else {}
    rows = [
        row for row in rows if (until is None or row.day <= until) and (team is None or teams.get(row.key_id) == team)
    ]
    found = grouped(rows, groups, teams)
    accept = app.current_event.headers.get("accept") or app.current_event.headers.get("Accept") or ""
    if _query("format") == "csv" or "text/csv" in accept:
        return Response(200, "text/csv", as_csv(groups, found))
    columns = header(groups)
    data = []
    for group in found:
        row: dict[str, Any] = dict(zip(columns, group.key, strict=False))
        for name, value in group.figures.items():
            row[name] = str(value) if name == "cost_usd" else value
        data.append(row)
    return _json({"data": data, "group_by": list(groups), "since": since.isoformat()})


@app.get("/admin/models")
def models() -> Response[str]:
    _principal()
    registry = _services().registry()
    return _json({"data": [model_dict(name, registry.get(name)) for name in registry.names()]})
