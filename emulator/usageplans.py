"""Usage plans as API Gateway applies them to an API key: a token bucket (rate, burst) and a quota per period."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True)
class UsagePlan:
    plan_id: str
    name: str
    rate_limit: float
    burst_limit: int
    quota_limit: int | None
    quota_period: str | None
    quota_offset: int = 0

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> UsagePlan:
        throttle, quota = item.get("throttle", {}), item.get("quota")
        return cls(
            plan_id=str(item["id"]),
            name=str(item.get("name", "")),
            rate_limit=float(throttle.get("rateLimit", 10000)),
            burst_limit=int(throttle.get("burstLimit", 5000)),
            quota_limit=int(quota["limit"]) if quota else None,
            quota_period=str(quota["period"]) if quota else None,
            quota_offset=int(quota.get("offset", 0)) if quota else 0,
        )


def quota_window(period: str, offset: int, now: datetime) -> tuple[date, datetime]:
    """(start, reset time) of the quota period holding `now`, as API Gateway counts them in UTC."""
    today = now.astimezone(UTC).date()
    if period == "DAY":
        start = today
        end = start + timedelta(days=1)
    elif period == "WEEK":
        # offset 0 is Sunday, 1 Monday...; date.weekday() counts Monday as 0.
        days_since_start = (today.weekday() + 1 - offset) % 7
        start = today - timedelta(days=days_since_start)
        end = start + timedelta(days=7)
    elif period == "MONTH":
        start = today.replace(day=1 + offset)
        if start > today:
            previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
            start = previous.replace(day=1 + offset)
        end = (start.replace(day=1) + timedelta(days=32)).replace(day=1 + offset)
    else:
        raise ValueError(f"unknown quota period {period}")
    return start, datetime.combine(end, datetime.min.time(), UTC)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class PlanEnforcer(Protocol):
    def admit(self, api_key_id: str, plan: UsagePlan) -> str | None: ...


@dataclass
class UsagePlanEnforcer:
    """Per-key token-bucket throttling (rate, burst) and per-period quotas, as usage plans apply them."""

    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _quota_used: dict[tuple[str, date], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, api_key_id: str, plan: UsagePlan) -> str | None:
        """None when the request may pass, else the gateway response type (THROTTLED, QUOTA_EXCEEDED)."""
        with self._lock:
            now = self.monotonic()
            bucket = self._buckets.setdefault(api_key_id, _Bucket(float(plan.burst_limit), now))
            bucket.tokens = min(plan.burst_limit, bucket.tokens + (now - bucket.updated) * plan.rate_limit)
            bucket.updated = now
            if bucket.tokens < 1:
                return "THROTTLED"
            if plan.quota_limit is not None and plan.quota_period is not None:
                window, _ = quota_window(plan.quota_period, plan.quota_offset, self.clock())
                used = self._quota_used.get((api_key_id, window), 0)
                if used >= plan.quota_limit:
                    return "QUOTA_EXCEEDED"
                self._quota_used[(api_key_id, window)] = used + 1
            bucket.tokens -= 1
            return None


class ApiKeys:
    """API Gateway's view of API keys: the key with a given value, and the usage plan it belongs to."""

    def __init__(self, apigateway: Any, api_id: str, stage: str, cache_seconds: float = 1.0) -> None:
        self._apigateway = apigateway
        self._api_id = api_id
        self._stage = stage
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, tuple[str, UsagePlan] | None]] = {}
        self._lock = threading.Lock()

    def cached(self, value: str) -> tuple[str, UsagePlan] | None:
        """What `plan_of` found for this value within the cache time, without looking it up; None otherwise."""
        with self._lock:
            cached = self._cache.get(value)
        if cached and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        return None

    def plan_of(self, value: str) -> tuple[str, UsagePlan] | None:
        """(API key id, usage plan) of an enabled key on a plan of this stage; None if there is none."""
        with self._lock:
            cached = self._cache.get(value)
            if cached and time.monotonic() - cached[0] < self._cache_seconds:
                return cached[1]
        found = self._lookup(value)
        with self._lock:
            self._cache[value] = (time.monotonic(), found)
        return found

    def _lookup(self, value: str) -> tuple[str, UsagePlan] | None:
        direct = getattr(self._apigateway, "plan_of_value", None)
        if direct is not None:
            # The local control plane (control.py) answers in one query.
            found: tuple[str, UsagePlan] | None = direct(value, self._api_id, self._stage)
            return found
        for page in self._apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                if key.get("value") == value and key.get("enabled"):
                    for item in self._apigateway.get_usage_plans(keyId=key["id"])["items"]:
                        stages = item.get("apiStages", [])
                        if any(s.get("apiId") == self._api_id and s.get("stage") == self._stage for s in stages):
                            return str(key["id"]), UsagePlan.from_api(item)
                    return None
        return None
