"""Budget tree administration: teams (and tenants) with their caps per day, week and month in their own time zone."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llm_gateway.domain.budget_tree import PERIODS, BudgetNode, NodeCap, Period, Scope, micro_usd
from llm_gateway.domain.stores import BudgetTree
from llm_gateway.errors import ConflictError, InvalidRequestError, NotFoundError


class TeamAdminError(InvalidRequestError):
    """400: a team or tenant operation that cannot be done as asked; nothing was changed."""

    default_code = "invalid_node_request"


class TeamExistsError(ConflictError):
    default_code = "team_exists"


class NodeNotFoundError(NotFoundError):
    default_code = "node_not_found"


# What a caps option names: (period, "tokens" | "usd") -> the value given (None: not given; 0: remove the cap).
CapChanges = dict[tuple[Period, str], "int | Decimal | None"]


def apply_caps(caps: tuple[NodeCap, ...], changes: CapChanges) -> tuple[NodeCap, ...]:
    """`caps` with each given value set (0 removes that cap); periods left without any cap are dropped."""
    by_period = {cap.period: cap for cap in caps}
    for (period, kind), value in changes.items():
        if value is None:
            continue
        cap = by_period.get(period, NodeCap(period))
        if kind == "tokens":
            cap = replace(cap, tokens=int(value) or None)
        else:
            cap = replace(cap, micro_usd=micro_usd(Decimal(value)) or None)
        by_period[period] = cap
    return tuple(by_period[p] for p in PERIODS if p in by_period and (by_period[p].tokens or by_period[p].micro_usd))


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TeamAdminError(
            f"Unknown IANA time zone '{name}' (such as UTC, Europe/Paris, Asia/Tokyo)", param="time_zone"
        ) from None
    return name


class TeamAdmin:
    def __init__(self, tree: BudgetTree) -> None:
        self._tree = tree

    def create_team(
        self, team: str, tenant: str, time_zone: str = "UTC", changes: CapChanges | None = None
    ) -> BudgetNode:
        if not team.strip() or not tenant.strip():
            raise TeamAdminError("The team and its tenant must not be empty", param="id")
        if self._tree.get_node("team", team) is not None:
            raise TeamExistsError(f"Team '{team}' exists; change it with `gatewayctl teams update`", param="id")
        node = BudgetNode("team", team, tenant, _zone(time_zone), apply_caps((), changes or {}))
        self._tree.put_node(node)
        return node

    def update(
        self, scope: Scope, node_id: str, time_zone: str | None = None, changes: CapChanges | None = None
    ) -> BudgetNode:
        """A team's (or tenant's) caps and time zone; a tenant is created on first use. A lowered cap applies from
        the next request (within the API function's cache time); what was spent this window stays."""
        node = self._tree.get_node(scope, node_id)
        if node is None:
            if scope == "team":
                raise NodeNotFoundError(f"No team '{node_id}'; create it with `gatewayctl teams create`")
            node = BudgetNode(scope, node_id)
        node = replace(
            node,
            time_zone=_zone(time_zone) if time_zone else node.time_zone,
            caps=apply_caps(node.caps, changes or {}),
        )
        self._tree.put_node(node)
        return node

    def team(self, team: str) -> BudgetNode:
        node = self._tree.get_node("team", team)
        if node is None:
            raise NodeNotFoundError(f"No team '{team}'")
        return node

    def list(self, scope: Scope = "team", tenant: str | None = None) -> list[BudgetNode]:
        nodes = self._tree.list_nodes(scope)
        return [node for node in nodes if tenant is None or node.parent == tenant]
