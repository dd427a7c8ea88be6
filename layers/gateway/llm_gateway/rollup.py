"""The daily rollup's use case wired to its adapters: finished days' usage -> one rollup item per key and day."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from llm_gateway.config import get_settings
from llm_gateway.domain.keys import utcnow
from llm_gateway.errors import ConfigurationError
from llm_gateway.observability import logger, metrics
from llm_gateway.store.dynamo import dynamodb_client
from llm_gateway.store.usage import UsageStore


def roll_up() -> dict[str, Any]:
    """Roll up every finished day; returns {"days": how many key-days were moved}.

    Raises ConfigurationError when GATEWAY_USAGE_TABLE is not set.
    """
    settings = get_settings()
    if not settings.usage_table:
        raise ConfigurationError("GATEWAY_USAGE_TABLE is not set")
    store = UsageStore(dynamodb_client(), settings.usage_table, settings.usage_retention_days)
    moved = store.roll_up_finished_days(utcnow())
    metrics.add_metric(name="UsageDaysRolledUp", unit=MetricUnit.Count, value=moved)
    logger.info("usage rolled up", extra={"days": moved})
    return {"days": moved}
