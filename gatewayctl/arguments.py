"""Parsers of gatewayctl's argument values: expiry durations and dates, grace periods, model lists, positive numbers."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """An absolute ISO date/time (UTC unless it says otherwise) or a duration from now: 30d, 12h, 90m."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is neither an ISO date/time nor a duration like 30d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# A plain number of seconds, or a number with a unit: 90s, 15m, 1h, 2d.
_GRACE = re.compile(r"^(\d+)([smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(value: str) -> int:
    """A grace period in seconds: 3600, 90s, 15m, 1h or 2d (the admin API bounds it)."""
    match = _GRACE.fullmatch(value.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"'{value}' is not a duration like 90s, 15m, 1h or 2d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_expiry_or_never(value: str) -> datetime | None:
    """`parse_expiry`, or None for 'never' (the key stops expiring)."""
    return None if value.strip() == "never" else parse_expiry(value)


def parse_models(value: str) -> list[str]:
    models = [name.strip() for name in value.split(",") if name.strip()]
    if not models:
        raise argparse.ArgumentTypeError("give at least one model name, or leave --models out for all models")
    return models


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"'{value}' is not a positive whole number")
    return int(value)


def positive_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"'{value}' must be positive")
    return number
