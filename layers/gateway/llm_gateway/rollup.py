"""The daily rollup's use case wired to its adapters: finished days' usage -> one rollup item per key and day."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from llm_gateway.config import get_settings
from llm_gateway.domain.keys import utcnow
from llm_gateway.errors import ConfigurationError
from llm_gateway.observability import logger, metrics
from llm_gateway.store.factory import usage_ledger


def roll_up() -> dict[str, Any]:
    """Roll up every finished day; returns {"days": how many key-days were moved}.

    Raises ConfigurationError when GATEWAY_USAGE_TABLE is not set.
    """
    settings = get_settings()
    store = usage_ledger(settings)
    if store is None:
        raise ConfigurationError("GATEWAY_USAGE_TABLE is not set")
    moved = store.roll_up_finished_days(utcnow())
    metrics.add_metric(name="UsageDaysRolledUp", unit=MetricUnit.Count, value=moved)
    logger.info("usage rolled up", extra={"days": moved})
    return {"days": moved}
