"""The daily rollup's use case wired to its adapters: finished days' usage -> one rollup item per key and day, and
finished days' usage events -> one breakdown per key and day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from llm_gateway.config import get_settings
from llm_gateway.domain.keys import utcnow
from llm_gateway.domain.stores import KeyRecords, UsageEvents, UsageLedger
from llm_gateway.domain.usage_report import roll_up_events
from llm_gateway.errors import ConfigurationError
from llm_gateway.observability import logger, metrics
from llm_gateway.store.factory import key_records, usage_events, usage_ledger


def roll_up() -> dict[str, Any]:
    """Roll up every finished day; returns {"days": how many key-days were moved, "breakdowns": how many key-days'
    events got a breakdown}.

    Raises ConfigurationError when GATEWAY_USAGE_TABLE is not set.
    """
    settings = get_settings()
    store = usage_ledger(settings)
    if store is None:
        raise ConfigurationError("GATEWAY_USAGE_TABLE is not set")
    now = utcnow()
    moved = store.roll_up_finished_days(now)
    metrics.add_metric(name="UsageDaysRolledUp", unit=MetricUnit.Count, value=moved)
    events = usage_events(settings)
    broken_down = 0
    if events is not None:
        broken_down = roll_up_usage_events(events, key_records(settings), store, now)
        metrics.add_metric(name="UsageEventDaysRolledUp", unit=MetricUnit.Count, value=broken_down)
    logger.info("usage rolled up", extra={"days": moved, "breakdowns": broken_down})
    return {"days": moved, "breakdowns": broken_down}


def roll_up_usage_events(events: UsageEvents, records: KeyRecords, ledger: UsageLedger, now: datetime) -> int:
    """Break down each finished day's events per key (domain/usage_report.py roll_up_events): the keys are those
    with a record and those with budget usage that day (a key whose record was deleted), from the first day a key
    was made or used when no day was rolled up yet."""
    keys = records.list()
    known = [record.key_id for record in keys]
    through = events.rolled_up_through()
    used: dict[date, list[str]] = {}
    for row in ledger.daily_usage(since=through):
        used.setdefault(row.day, []).append(row.key_id)
    first = min([record.created_at.date() for record in keys] + list(used), default=None)

    def key_ids(day: date) -> list[str]:
        return known + used.get(day, [])

    return roll_up_events(events, key_ids, first, now)
