"""The authorizer's use case wired to its adapters: presented key -> API Gateway policy and context."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from llm_gateway.config import get_settings
from llm_gateway.domain.caller import ALL_MODELS
from llm_gateway.domain.keys import Authenticator, Denial, KeyRecord, presented_key
from llm_gateway.observability import logger, metrics
from llm_gateway.store.factory import key_records

# Raising exactly this message makes API Gateway answer 401 (its UNAUTHORIZED gateway response).
UNAUTHORIZED = "Unauthorized"


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


@lru_cache(maxsize=1)
def get_authenticator() -> Authenticator:
    settings = get_settings()
    return Authenticator(key_records(settings), settings.auth_cache_seconds)


def caller_context(record: KeyRecord) -> dict[str, str | int | bool]:
    """What the API function learns about the caller; API Gateway allows only strings, numbers, booleans."""
    context: dict[str, str | int | bool] = {
        "tenant": record.tenant,
        "keyId": record.key_id,
        "plan": record.plan,
        "models": ",".join(record.models) if record.models is not None else ALL_MODELS,
    }
    if record.team is not None:
        # The key's chain in the budget tree (team, then `tenant`): the API function needs no read to find it.
        context["team"] = record.team
    limits = record.limits
    if limits.tokens_per_minute is not None:
        context["tokensPerMinute"] = limits.tokens_per_minute
    if limits.tokens_per_day is not None:
        context["tokensPerDay"] = limits.tokens_per_day
    if limits.usd_per_month is not None:
        context["usdPerMonth"] = str(limits.usd_per_month)
    return context


def authorize(event: APIGatewayAuthorizerRequestEvent, authenticator: Authenticator) -> dict[str, Any]:
    decision = authenticator.authenticate(presented_key(event.headers or {}))
    outcome = decision.reason if isinstance(decision, Denial) else "allowed"
    metrics.add_dimension(name="Outcome", value=outcome)
    metrics.add_metric(name="Authorizations", unit=MetricUnit.Count, value=1)
    if isinstance(decision, Denial) and decision.reason == "missing":
        logger.info("No API key presented")
        raise Unauthorized
    arn = event.parsed_arn
    response = APIGatewayAuthorizerResponse(
        principal_id=decision.key_id if isinstance(decision, KeyRecord) else "anonymous",
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context=caller_context(decision) if isinstance(decision, KeyRecord) else None,
        usage_identifier_key=decision.usage_identifier if isinstance(decision, KeyRecord) else None,
    )
    if isinstance(decision, Denial):
        logger.info("API key denied", extra={"reason": decision.reason})
        response.deny_all_routes()
    else:
        logger.info("API key allowed", extra={"key_id": decision.key_id, "tenant": decision.tenant})
        # The policy covers every route: a key may call the whole API (model access is the function's job).
        response.allow_all_routes()
    return response.asdict()
