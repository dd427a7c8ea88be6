"""Logger, metrics and tracer shared by every function, and the per-request metrics the gateway emits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from llm_gateway.config import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "llm-gateway"
NAMESPACE = "LLMGateway"
# Dimension value used when a request never resolved to a registry model, so that caller-supplied
# model names can never create new metric series.
NO_MODEL = "none"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@lru_cache(maxsize=1)
def get_tracer() -> Tracer | None:
    """The X-Ray tracer, created (and the X-Ray SDK imported) only when tracing is enabled."""
    if not get_settings().tracing_enabled:
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def instrument(handler: Handler, correlation_id_path: str = correlation_paths.API_GATEWAY_REST) -> Handler:
    """Wrap a Lambda handler with log context (request id as correlation id), metrics and optional tracing.

    The wrapping happens at the first invocation, so that importing a handler module reads no settings.
    """
    wrapped: Handler | None = None

    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal wrapped
        if wrapped is None:
            inner: Handler = metrics.log_metrics(capture_cold_start_metric=True)(handler)
            tracer = get_tracer()
            if tracer is not None:
                inner = tracer.capture_lambda_handler(inner)
            wrapped = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)(inner)
        return wrapped(event, context)

    return entry


@dataclass
class RequestRecord:
    """What the current request did, filled in by the gateway and emitted once when the request ends."""

    model: str = NO_MODEL
    # What the caller asked for, logged but never a metric dimension (callers choose it).
    model_requested: str | None = None
    plan: str = NO_MODEL
    tenant: str | None = None
    key_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    target: str | None = None
    provider_errors: int = 0
    provider_throttles: int = 0
    fell_back: bool = False
    budget_rejected: bool = False
    usage_record_failures: int = 0
    # Set when a stream failed after its 200 was committed: the status the failure would have had.
    stream_error_status: int | None = None


# A Lambda execution environment serves one request at a time, so one record per process suffices.
_current = RequestRecord()


def current_request() -> RequestRecord:
    return _current


def _emit(record: RequestRecord, sent_status: int, latency_ms: float) -> None:
    """One EMF document: totals (service), by model, and by model and plan. Plans and registry models are
    bounded sets; tenant and key id ride along as metadata, never as dimensions."""
    status = record.stream_error_status or sent_status
    metrics.add_dimensions(service=SERVICE, Model=record.model)
    metrics.add_dimensions(service=SERVICE, Model=record.model, Plan=record.plan)
    counts = {
        "Requests": 1,
        "ClientErrors": int(400 <= status < 500),
        "ServerErrors": int(status >= 500),
        "ProviderErrors": record.provider_errors,
        "ProviderThrottles": record.provider_throttles,
        "Fallbacks": int(record.fell_back),
        "BudgetRejections": int(record.budget_rejected),
        "UsageRecordFailures": record.usage_record_failures,
        "PromptTokens": record.prompt_tokens,
        "CompletionTokens": record.completion_tokens,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
    metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(record.cost_usd))
    if record.tenant:
        metrics.add_metadata(key="tenant", value=record.tenant)
    if record.key_id:
        metrics.add_metadata(key="key_id", value=record.key_id)


def metered(handler: Handler) -> Handler:
    """Emit one access log line and the per-request EMF metrics for every API request."""

    def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
        global _current
        _current = RequestRecord()
        started = time.perf_counter()
        response = handler(event, context)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        status = int(response.get("statusCode", 500))
        record = _current
        _emit(record, status, latency_ms)
        logger.info(
            "request",
            extra={
                "method": event.get("httpMethod"),
                "route": event.get("resource"),
                "status": status,
                "stream_error_status": record.stream_error_status,
                "latency_ms": latency_ms,
                "model": record.model,
                "model_requested": record.model_requested,
                "target": record.target,
                "provider_errors": record.provider_errors,
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
                "cost_usd": str(record.cost_usd),
            },
        )
        return response

    return entry
