"""The budget tree's USD caps in the wire shape of Anthropic's Admin API spend limits (`/v1/organizations/spend_limits`,
beta), so tools written for it read and set them: a tenant is a `workspace`, a team an `rbac_group`.

Source: Anthropic's API reference, "Spend Limits" (BetaSpendLimit: type, id, amount in minor units as a decimal string,
currency, is_enabled, period daily | weekly | monthly, scope a union tagged by `type`). What has no counterpart here
(the organization, seat tiers, users, services, increase requests, the effective report, created_at and updated_at:
nodes keep no history) is left out; docs/admin-api.md lists it.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from pydantic import Field

from llm_gateway.api.admin.shapes import NAME, StrictBody
from llm_gateway.domain.budget_tree import MICROS_PER_USD, BudgetNode, NodeCap, Period, Scope
from llm_gateway.domain.team_admin import CapChanges
from llm_gateway.errors import InvalidRequestError

# Our scope -> Anthropic's scope type and the field naming its id.
SCOPE_TYPES: dict[Scope, tuple[str, str]] = {
    "tenant": ("workspace", "workspace_id"),
    "team": ("rbac_group", "rbac_group_id"),
}
PERIODS: dict[Period, str] = {"day": "daily", "week": "weekly", "month": "monthly"}
MICROS_PER_CENT = MICROS_PER_USD // 100


class ScopeBody(StrictBody):
    type: Literal["workspace", "rbac_group"]
    workspace_id: str | None = Field(None, pattern=NAME)
    rbac_group_id: str | None = Field(None, pattern=NAME)

    def node(self) -> tuple[Scope, str]:
        node_id = self.workspace_id if self.type == "workspace" else self.rbac_group_id
        if not node_id:
            field = "workspace_id" if self.type == "workspace" else "rbac_group_id"
            raise InvalidRequestError(f"A {self.type} scope names its {field}", param=f"scope.{field}")
        return ("tenant" if self.type == "workspace" else "team"), node_id


class SpendLimitBody(StrictBody):
    """POST /v1/organizations/spend_limits: upsert keyed on (scope, period); `amount` null removes the USD cap."""

    scope: ScopeBody
    period: Literal["daily", "weekly", "monthly"] = "monthly"
    amount: str | None = Field(pattern=r"^[0-9]{1,12}$")

    def target(self) -> tuple[Scope, str, Period]:
        scope, node_id = self.scope.node()
        period = next(ours for ours, theirs in PERIODS.items() if theirs == self.period)
        return scope, node_id, period

    def changes(self) -> CapChanges:
        """The USD part of the period's cap only: its token cap, if any, is kept (0 removes, in apply_caps)."""
        _, _, period = self.target()
        usd = Decimal(self.amount) / 100 if self.amount is not None else Decimal(0)
        return {(period, "usd"): usd}


def limit_id(scope: Scope, node_id: str, period: Period) -> str:
    """`spl_team:platform:month`: stable, since a limit is its (scope, period)."""
    return f"spl_{scope}:{node_id}:{period}"


def parse_limit_id(value: str) -> tuple[Scope, str, Period]:
    parts = value.removeprefix("spl_").split(":")
    if not value.startswith("spl_") or len(parts) != 3 or parts[0] not in SCOPE_TYPES or parts[2] not in PERIODS:
        raise InvalidRequestError(f"No spend limit '{value}'", param="spend_limit_id")
    scope, node_id, period = parts
    return scope, node_id, period  # type: ignore[return-value]


def spend_limit(node: BudgetNode, period: Period, micro_usd: int | None) -> dict[str, Any]:
    """One limit: the amount in whole cents, rounded down (the cap itself keeps its micro-dollars)."""
    scope_type, id_field = SCOPE_TYPES[node.scope]
    cents = None if micro_usd is None else str((Decimal(micro_usd) / MICROS_PER_CENT).to_integral_value(ROUND_FLOOR))
    return {
        "type": "spend_limit",
        "id": limit_id(node.scope, node.node_id, period),
        "amount": cents,
        "currency": "USD",
        "is_enabled": True,
        "period": PERIODS[period],
        "scope": {"type": scope_type, id_field: node.node_id},
    }


def spend_limits(node: BudgetNode) -> list[dict[str, Any]]:
    """The node's USD caps, one limit per period that has one."""
    return [spend_limit(node, cap.period, cap.micro_usd) for cap in node.caps if cap.micro_usd is not None]


def usd_cap(node: BudgetNode, period: Period) -> int | None:
    cap = next((c for c in node.caps if c.period == period), NodeCap(period))
    return cap.micro_usd
