"""Spend limits in Anthropic's Admin API shape, under the admin API: list, set (upsert) and retrieve, on the budget
tree's USD caps of tenants (workspaces) and teams (rbac groups). A tool built for Anthropic's API takes the admin API's
URL as its base URL (`…/v1/admin`, so the paths read `/v1/admin/v1/organizations/spend_limits`)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from llm_gateway.api.admin.resolver import app, audit, current_services, json_answer, request_body
from llm_gateway.api.admin.shapes import parse_body
from llm_gateway.api.admin.spend_limits import (
    SCOPE_TYPES,
    SpendLimitBody,
    parse_limit_id,
    spend_limit,
    spend_limits,
    usd_cap,
)
from llm_gateway.domain.budget_tree import SCOPES
from llm_gateway.errors import InvalidRequestError, NotFoundError

PATH = "/admin/v1/organizations/spend_limits"


def _wanted_types() -> set[str]:
    """`scope_type` as the SDKs send it: repeated, bracketed (`scope_type[]`) or comma-separated; empty: every type."""
    given = app.current_event.multi_value_query_string_parameters or {}
    values = [
        part for name in ("scope_type", "scope_type[]") for value in given.get(name, []) for part in value.split(",")
    ]
    known = {scope_type for scope_type, _ in SCOPE_TYPES.values()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidRequestError(
            f"scope_type {', '.join(unknown)} has no counterpart in this gateway: it has workspace (a tenant) and "
            "rbac_group (a team)",
            param="scope_type",
        )
    return set(values) or known


@app.get(PATH)
def list_spend_limits() -> Response[str]:
    wanted = _wanted_types()
    workspace = (app.current_event.query_string_parameters or {}).get("workspace_id")
    tree = current_services().tree
    found = []
    for scope in SCOPES:
        if scope not in SCOPE_TYPES or SCOPE_TYPES[scope][0] not in wanted:
            continue
        for node in tree.list_nodes(scope):
            tenant = node.node_id if scope == "tenant" else node.parent
            if workspace is None or tenant == workspace:
                found += spend_limits(node)
    return json_answer({"data": found, "has_more": False, "first_id": None, "last_id": None, "next_page": None})


@app.post(PATH)
def set_spend_limit() -> Response[str]:
    limit = parse_body(SpendLimitBody, request_body())
    scope, node_id, period = limit.target()
    audit("spend_limits.set", scope=scope, node=node_id, period=period)
    node = current_services().teams.update(scope, node_id, None, limit.changes())
    return json_answer(spend_limit(node, period, usd_cap(node, period)))


@app.get(PATH + "/<limit_id>")
def retrieve_spend_limit(limit_id: str) -> Response[str]:
    scope, node_id, period = parse_limit_id(limit_id)
    node = current_services().tree.get_node(scope, node_id)
    cap = None if node is None else usd_cap(node, period)
    if node is None or cap is None:
        raise NotFoundError(f"No spend limit '{limit_id}'", code="not_found")
    return json_answer(spend_limit(node, period, cap))
