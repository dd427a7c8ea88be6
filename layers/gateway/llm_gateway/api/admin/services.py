"""What the admin API's routes act on: the key and team admins over the deployment's stores, and API Gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llm_gateway.config import Settings, get_registry
from llm_gateway.domain.attribution import allowed_tag_names
from llm_gateway.domain.key_admin import ApiGatewayKeys, KeyAdmin
from llm_gateway.domain.keys import utcnow
from llm_gateway.domain.registry import ModelRegistry
from llm_gateway.domain.stores import BudgetTree, KeyRecords, UsageEvents, UsageLedger
from llm_gateway.domain.team_admin import TeamAdmin
from llm_gateway.errors import ConfigurationError
from llm_gateway.store import factory


@dataclass(frozen=True)
class AdminServices:
    keys: KeyAdmin
    teams: TeamAdmin
    tree: BudgetTree
    records: KeyRecords
    usage: UsageLedger | None
    registry: Callable[[], ModelRegistry]
    clock: Callable[[], datetime] = utcnow
    # Usage events per request (None: the deployment records none); the tag names callers may set.
    events: UsageEvents | None = None
    tag_names: tuple[str, ...] = ()
    # Log each write (action, IAM principal, ids) as the admin function's audit trail.
    audit_log: bool = True


def admin_services(
    settings: Settings,
    apigateway: ApiGatewayKeys,
    *,
    registry: Callable[[], ModelRegistry] = get_registry,
    clock: Callable[[], datetime] = utcnow,
) -> AdminServices:
    """The admin over the stores `settings` name (DynamoDB tables, or the local gateway's embedded database) and
    `apigateway` (boto3's client on a stack; the local gateway's control plane under `make run`)."""
    tree = factory.budget_tree(settings)
    if tree is None:
        raise ConfigurationError(
            "The admin API needs the usage table (GATEWAY_USAGE_TABLE): teams and budgets live there"
        )
    if not settings.usage_plans:
        raise ConfigurationError("GATEWAY_USAGE_PLANS names no usage plan: keys cannot be put on a plan")
    records = factory.key_records(settings)
    return AdminServices(
        keys=KeyAdmin(records, apigateway, dict(settings.usage_plans), clock=clock, tree=tree),
        teams=TeamAdmin(tree),
        tree=tree,
        records=records,
        usage=factory.usage_ledger(settings),
        registry=registry,
        clock=clock,
        events=factory.usage_events(settings),
        tag_names=allowed_tag_names(settings.allowed_tags),
    )


def apigateway_client() -> Any:
    """boto3's API Gateway client, created once per container (cold start: imported only here)."""
    import boto3

    return boto3.client("apigateway")
