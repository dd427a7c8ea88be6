"""The admin API's wire shapes (docs/admin-api.md): request bodies read with pydantic, answers written from records.

A secret key appears only in the answers that create or rotate it; no shape carries a key's hash or its API Gateway
usage identifier.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from llm_gateway.domain.budget_tree import MICROS_PER_USD, BudgetNode, Period
from llm_gateway.domain.budget_view import NodeBudget
from llm_gateway.domain.key_admin import MAX_GRACE, key_status
from llm_gateway.domain.keys import KeyRecord, TokenLimits
from llm_gateway.domain.registry import ModelEntry
from llm_gateway.domain.stores import UsageEvent
from llm_gateway.domain.team_admin import CapChanges
from llm_gateway.errors import InvalidRequestError

# Ids of tenants, teams and keys: what DynamoDB keys and URLs carry without escaping trouble.
NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsBody(StrictBody):
    """A key's own limits; null (or left out) is the plan's default."""

    tokens_per_minute: int | None = Field(None, gt=0)
    tokens_per_day: int | None = Field(None, gt=0)
    usd_per_month: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=6)

    def limits(self) -> TokenLimits:
        return TokenLimits(self.tokens_per_minute, self.tokens_per_day, self.usd_per_month)


Models = list[str] | Literal["*"] | None


class KeyCreateBody(StrictBody):
    tenant: str = Field(pattern=NAME)
    plan: str
    models: Models = None
    team: str | None = Field(None, pattern=NAME)
    expires_at: AwareDatetime | None = None
    limits: LimitsBody | None = None


class KeyPatchBody(StrictBody):
    """Fields given are changed (null clears an optional one); fields left out are kept."""

    plan: str | None = None
    models: Models = None
    team: str | None = Field(None, pattern=NAME)
    expires_at: AwareDatetime | None = None
    limits: LimitsBody | None = None


class RotateBody(StrictBody):
    # How long the old secret keeps working beside the new one; 0 refuses it at once (within the authorizer's
    # cache time).
    grace_period_seconds: int = Field(0, ge=0, le=int(MAX_GRACE.total_seconds()), strict=True)


class CapBody(StrictBody):
    period: Period
    tokens: int | None = Field(None, gt=0)
    usd: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=6)


class NodeBody(StrictBody):
    time_zone: str | None = None
    caps: list[CapBody] | None = None

    def changes(self) -> CapChanges:
        """Each given period's cap replaced whole: a null amount removes that part of it (0 removes, in apply_caps)."""
        changes: CapChanges = {}
        for cap in self.caps or ():
            changes[(cap.period, "tokens")] = cap.tokens or 0
            changes[(cap.period, "usd")] = cap.usd or Decimal(0)
        return changes


class TeamCreateBody(NodeBody):
    id: str = Field(pattern=NAME)
    tenant: str = Field(pattern=NAME)


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], body: Any) -> Body:
    """`body` (decoded JSON) as `model`; InvalidRequestError naming the first wrong field."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequestError(f"{field or 'body'}: {first['msg']}", param=field) from None


def models_of(value: Models) -> tuple[str, ...] | None:
    """The wire's "*" or null: every model (None); else the names."""
    if value is None or value == "*":
        return None
    if not value or not all(name.strip() for name in value):
        raise InvalidRequestError('models lists at least one model name, or is "*" for every model', param="models")
    return tuple(value)


def usd(micro: int | None) -> str | None:
    return None if micro is None else str(Decimal(micro) / MICROS_PER_USD)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def key_dict(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """A key record as operators see it: never the hash, never the usage identifier. `status` says expired for an
    active record past its expiry, retiring for an old secret in a rotation's grace period (until `revoked_at`)."""
    limits = record.limits
    return {
        "key_id": record.key_id,
        "key_hint": record.key_hint,
        "tenant": record.tenant,
        "team": record.team,
        "plan": record.plan,
        "models": list(record.models) if record.models is not None else "*",
        "status": key_status(record, now),
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "revoked_at": iso(record.revoked_at),
        "rotated_from": record.rotated_from,
        "api_key_id": record.api_key_id,
        "limits": {
            "tokens_per_minute": limits.tokens_per_minute,
            "tokens_per_day": limits.tokens_per_day,
            "usd_per_month": None if limits.usd_per_month is None else str(limits.usd_per_month),
        },
    }


def node_dict(node: BudgetNode) -> dict[str, Any]:
    return {
        "scope": node.scope,
        "id": node.node_id,
        "parent": node.parent,
        "time_zone": node.time_zone,
        "caps": [{"period": c.period, "tokens": c.tokens, "usd": usd(c.micro_usd)} for c in node.caps],
    }


def budget_dict(budget: NodeBudget) -> dict[str, Any]:
    node = budget.node
    return {
        "scope": node.scope,
        "id": node.node_id,
        "time_zone": node.time_zone,
        "windows": [
            {
                "period": w.period,
                "starts_at": iso(w.starts_at),
                "resets_at": iso(w.resets_at),
                "tokens": {"cap": w.cap_tokens, "spent": w.spent.tokens, "remaining": w.remaining_tokens},
                "usd": {
                    "cap": usd(w.cap_micro_usd),
                    "spent": usd(w.spent.micro_usd),
                    "remaining": usd(w.remaining_micro_usd),
                },
            }
            for w in budget.windows
        ],
    }


def model_dict(name: str, entry: ModelEntry) -> dict[str, Any]:
    """A model as the gateway applies it: its first target's provider, limits, prices and capabilities."""
    limits = entry.traits.limits
    return {
        "id": name,
        "kind": entry.kind,
        "aliases": list(entry.aliases),
        "provider": entry.targets[0].provider,
        "targets": [target.label for target in entry.targets],
        "context_window": limits.context_window,
        "max_output_tokens": limits.max_output_tokens,
        "prices": entry.prices.model_dump(mode="json", exclude_none=True),
        "traits": entry.traits.capabilities.model_dump(mode="json", exclude_none=True),
    }


def event_dict(event: UsageEvent) -> dict[str, Any]:
    """A request's usage event as the admin API shows it (GET /admin/keys/{id}/requests); cost in USD."""
    return {
        "request_id": event.request_id,
        "at": iso(event.at),
        "tenant": event.tenant,
        "team": event.team,
        "plan": event.plan,
        "model": event.model,
        "status": event.status,
        "failed": event.failed,
        "prompt_tokens": event.prompt_tokens,
        "cached_tokens": event.cached_tokens,
        "cache_write_tokens": event.cache_write_tokens,
        "completion_tokens": event.completion_tokens,
        "cost_usd": usd(event.cost_micro_usd),
        "session": event.session_id,
        "end_user": event.end_user,
        "tags": dict(event.tags),
    }
