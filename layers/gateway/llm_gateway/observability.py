"""Logger, metrics and tracer shared by every function, and the per-request record the API function emits."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from llm_gateway.config import environment_variable, get_settings
from llm_gateway.domain.budget import WindowTotals

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "llm-gateway"
NAMESPACE = "LLMGateway"
# Dimension value used when a request never resolved to a registry model, so that caller-supplied
# model names can never create new metric series.
NO_MODEL = "none"

# The X-Ray trace header of the request being served ("" for a request without one); unset outside requests.
_trace_header: contextvars.ContextVar[str] = contextvars.ContextVar("xray_trace_header")


def trace_id_of(header: str | None) -> str | None:
    """The trace id in an X-Ray trace header ("Root=1-...;Parent=...;Sampled=1" -> "1-..."), as Powertools logs it."""
    return header.split(";")[0].replace("Root=", "") if header else None


class RequestFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log formatter, with the X-Ray trace id of the request being served.

    Powertools reads the trace id from the process environment (_X_AMZN_TRACE_ID), which Lambda sets per
    invocation for a handler that serves one request at a time. The API function serves requests concurrently
    (locally, and on Lambda Managed Instances) in a process of its own behind Lambda Web Adapter, which passes
    each request's trace id in that request's `x-amzn-lambda-context` header: one process-wide variable would put
    one request's trace id on another's log lines."""

    def _get_latest_trace_id(self) -> str | None:
        header = _trace_header.get(None)
        if header is None:
            return super()._get_latest_trace_id()
        return trace_id_of(header) if self.log_format.get("xray_trace_id", "") is not None else None


logger = Logger(service=SERVICE, logger_formatter=RequestFormatter())
# The standard library's logger behind it (the same object for the process's life), asked for its level per request.
_stdlib_logger = logging.getLogger(logger.name)
# The authorizer's metrics (a plain Lambda handler, one invocation at a time). The API function, which may
# serve concurrent requests in one process locally, emits each request's metrics from an instance of its own.
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


@dataclass(frozen=True)
class Invocation:
    """The Lambda invocation serving a request, as AWS Lambda Web Adapter describes it in the
    `x-amzn-lambda-context` header (lambda_runtime's Context, serialised by serde)."""

    request_id: str = ""
    # Epoch milliseconds at which Lambda stops the function.
    deadline_ms: int = 0
    function_name: str = ""
    function_arn: str = ""
    memory_mb: int = 0
    xray_trace_id: str | None = None

    @classmethod
    def from_header(cls, value: dict[str, Any]) -> Invocation:
        config = value.get("env_config")
        if not isinstance(config, dict):
            config = {}
        trace = value.get("xray_trace_id")
        return cls(
            request_id=str(value.get("request_id") or ""),
            deadline_ms=int(value.get("deadline") or 0),
            function_name=str(config.get("function_name") or ""),
            function_arn=str(value.get("invoked_function_arn") or ""),
            memory_mb=int(config.get("memory") or 0),
            xray_trace_id=str(trace) if trace else None,
        )


@dataclass
class RequestRecord:
    """What the current request did, filled in by the gateway and emitted once when the request ends."""

    method: str = ""
    route: str = ""
    model: str = NO_MODEL
    # What the caller asked for, logged but never a metric dimension (callers choose it).
    model_requested: str | None = None
    plan: str = NO_MODEL
    tenant: str | None = None
    key_id: str | None = None
    # Attribution (domain/attribution.py): the key's team, the Claude Code session, the end user the client names.
    team: str | None = None
    session_id: str | None = None
    end_user: str | None = None
    # The allowed (name, value) pairs of its X-Gateway-Tags header, sorted by name.
    tags: tuple[tuple[str, str], ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Parts of prompt_tokens read from and written to a prompt cache; part of completion_tokens spent reasoning.
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Inputs of an embedding request (texts or token arrays) that were sent to a model.
    embedding_inputs: int = 0
    cost_usd: Decimal = Decimal(0)
    target: str | None = None
    provider_errors: int = 0
    provider_throttles: int = 0
    fell_back: bool = False
    budget_rejected: bool = False
    # The key's budget windows as the reservation's answer held them (None: nothing was reserved).
    window_totals: WindowTotals | None = None
    # Tokens each capped scope of the budget tree may still reserve (x-budget-remaining-tokens-<scope>).
    budget_remaining: dict[str, int] = field(default_factory=dict)
    usage_record_failures: int = 0
    streamed: bool = False
    # The caller hung up before the answer was complete.
    client_disconnected: bool = False
    # Set when a stream failed after its 200 was committed: the status the failure would have had.
    stream_error_status: int | None = None
    # The usage recorded is the gateway's estimate: the provider reported none.
    usage_estimated: bool = False
    # How to settle each reservation the request made should its own settling never run (a client gone before
    # the answer began, a failure between the model's answer and its rendering, a cancelled task): run, newest
    # first, once the response is over (`settle_leftovers`).
    unsettled: list[Owed] = field(default_factory=list)


@dataclass(frozen=True)
class Owed:
    """A settlement a request owes until `settled()` says its reservation was settled; `settle` makes it."""

    settled: Callable[[], bool]
    settle: Callable[[], None]


def owes(record: RequestRecord) -> bool:
    """Whether a reservation of the request is still unsettled (most often none is: nothing left to run)."""
    return any(not owed.settled() for owed in record.unsettled)


def settle_leftovers(record: RequestRecord) -> None:
    """Make the request's outstanding settlements, newest first; a failing one is logged and the rest still run."""
    while record.unsettled:
        owed = record.unsettled.pop()
        if owed.settled():
            continue
        try:
            owed.settle()
        except Exception:
            logger.exception("settling a leftover reservation failed")


_record: contextvars.ContextVar[RequestRecord] = contextvars.ContextVar("request_record")
_cold_start = True


def _metrics_disabled() -> bool:
    """Powertools' switch for metrics (POWERTOOLS_METRICS_DISABLED), honoured by the request metrics too."""
    switch = environment_variable("POWERTOOLS_METRICS_DISABLED")
    return bool(switch) and resolve_truthy_env_var_choice(env=str(switch))


def current_request() -> RequestRecord:
    """The record of the request being served: one per request, also when requests run concurrently
    (worker threads started for the request share it)."""
    try:
        return _record.get()
    except LookupError:
        record = RequestRecord()
        _record.set(record)
        return record


def begin_request(method: str, route: str, correlation_id: str, invocation: Invocation | None) -> RequestRecord:
    """Start the record and the log context of a request (call it in the request's own context)."""
    global _cold_start
    record = RequestRecord(method=method, route=route)
    _record.set(record)
    keys: dict[str, Any] = {"correlation_id": correlation_id or None}
    if invocation is not None:
        keys.update(
            function_name=invocation.function_name,
            function_memory_size=invocation.memory_mb,
            function_arn=invocation.function_arn,
            function_request_id=invocation.request_id,
            cold_start=_cold_start,
        )
        if invocation.xray_trace_id and get_tracer() is not None:
            # The X-Ray SDK reads the invocation's trace header only from this process-wide variable (the adapter
            # runs the app in a process of its own, where Lambda does not set it per invocation): with requests
            # served concurrently, a segment may join a concurrent request's trace. The logs read the request's
            # own (RequestFormatter).
            os.environ["_X_AMZN_TRACE_ID"] = invocation.xray_trace_id
        if _cold_start:
            _cold_start = False
            _cold_start_metric(invocation.function_name)
    _trace_header.set((invocation.xray_trace_id or "") if invocation is not None else "")
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**keys)
    return record


def _cold_start_metric(function_name: str) -> None:
    cold = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    cold.add_dimension(name="function_name", value=function_name or "unknown")
    cold.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
    cold.flush_metrics()


class _Instant:
    """What a formatter's `formatTime` reads of a log record: when it was made (a whole LogRecord costs 4 µs)."""

    __slots__ = ("created", "msecs")

    def __init__(self, now: float) -> None:
        self.created = now
        self.msecs = (now - int(now)) * 1000


# The log format's own keys, which every formatted record fills in (`access_line` writes them itself).
_FORMAT_KEYS = frozenset({"level", "location", "message", "timestamp", "xray_trace_id"})

# The request metrics' definitions in CloudWatch's embedded metric format: name and unit, in document order. A metric
# without a unit has CloudWatch's default unit, None (the specification's "Unit" member is optional).
_COUNTS = (
    "Requests", "ClientErrors", "ServerErrors", "ProviderErrors", "ProviderThrottles", "Fallbacks",
    "BudgetRejections", "UsageRecordFailures", "ClientDisconnects", "PromptTokens", "CompletionTokens",
    "CacheReadTokens", "CacheWriteTokens", "ReasoningTokens", "EmbeddingInputs",
)  # fmt: skip
_DEFINITIONS: list[dict[str, str]] = [{"Name": name, "Unit": "Count"} for name in _COUNTS] + [
    {"Name": "Latency", "Unit": "Milliseconds"},
    {"Name": "CostUSD"},
]
# Totals (service), by model, and by model and plan.
_DIMENSION_SETS = [["service"], ["service", "Model"], ["service", "Model", "Plan"]]
# The metric directives as JSON, written once: without and with TimeToFirstByte.
_DIRECTIVE, _DIRECTIVE_FIRST_BYTE = (
    json.dumps([{"Namespace": NAMESPACE, "Dimensions": _DIMENSION_SETS, "Metrics": metrics}], separators=(",", ":"))
    for metrics in (_DEFINITIONS, [*_DEFINITIONS, {"Name": "TimeToFirstByte", "Unit": "Milliseconds"}])
)
# The document but for its values, written once: each metric's value a plain JSON number (the specification allows a
# number or an array of them; an array of one costs 2 to 4 bytes more a metric).
_DOCUMENT = (
    '{"_aws":{"Timestamp":%d,"CloudWatchMetrics":%s},"service":"'
    + SERVICE
    + '","Model":%s,"Plan":%s,'
    + ",".join(f'"{name}":%d' for name in _COUNTS)
    + ',"Latency":%r,"CostUSD":%r'
)
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


def request_metrics(record: RequestRecord, status: int, latency_ms: float, first_byte_ms: float | None) -> str:
    """The request's metrics as one EMF document (one JSON line), published three ways: totals (service), by model,
    and by model and plan. Plans and registry models are bounded sets; tenant and key id ride along as properties,
    never as dimensions.

    Written directly rather than through Powertools' Metrics, which validates and copies each of the 18 metrics of
    every request (about a tenth of a warm request's CPU), and from JSON written once but for the values: the
    document carries what Powertools prints for the same metrics, each value a number rather than an array of one
    and CostUSD without its default unit, 80 bytes fewer (tests/unit/test_request_metrics.py holds the two the same;
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
    """
    document = _DOCUMENT % (
        int(time.time() * 1000), _DIRECTIVE if first_byte_ms is None else _DIRECTIVE_FIRST_BYTE,
        _json_string(record.model), _json_string(record.plan),
        1, 400 <= status < 500, status >= 500, record.provider_errors, record.provider_throttles, record.fell_back,
        record.budget_rejected, record.usage_record_failures, record.client_disconnected, record.prompt_tokens,
        record.completion_tokens, record.cached_tokens, record.cache_write_tokens, record.reasoning_tokens,
        record.embedding_inputs, float(latency_ms), float(record.cost_usd),
    )  # fmt: skip
    if first_byte_ms is not None:
        # For a stream, when its status went out: after the model's first token (or the error before it).
        document += f',"TimeToFirstByte":{float(first_byte_ms)!r}'
    if record.tenant:
        document += ',"tenant":' + _json_string(record.tenant)
    if record.key_id:
        document += ',"key_id":' + _json_string(record.key_id)
    return document + "}"


def end_request(record: RequestRecord, sent_status: int, latency_ms: float, first_byte_ms: float | None) -> None:
    """One EMF document (`request_metrics`) and one access log line (`access_line`) for the request, each written in
    one call (on the event loop), so concurrent requests of one process never interleave them."""
    status = record.stream_error_status or sent_status
    if not _metrics_disabled():
        sys.stdout.write(request_metrics(record, status, latency_ms, first_byte_ms) + "\n")
    if _stdlib_logger.isEnabledFor(logging.INFO):
        handler = cast("logging.StreamHandler[Any]", logger.registered_handler)
        line = access_line(record, sent_status, latency_ms, first_byte_ms, f"end_request:{sys._getframe().f_lineno}")
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(line + "\n")
            handler.stream.flush()


def access_line(
    record: RequestRecord, sent_status: int, latency_ms: float, first_byte_ms: float | None, location: str
) -> str:
    """The request's access log line: the JSON line Powertools' Logger writes for `logger.info("request", extra=...)`
    with these fields (tests/unit/test_request_metrics.py holds the two equal), written directly: Powertools'
    formatter copies the log record and walks every key on each call, about 30 µs of a warm request's CPU."""
    formatter = cast(RequestFormatter, logger.registered_formatter)  # the formatter `logger` is made with
    line: dict[str, Any] = {
        "level": "INFO",
        "location": location,
        "message": "request",
        "timestamp": formatter.formatTime(cast("logging.LogRecord", _Instant(time.time()))),
    }
    for name, value in formatter.get_current_keys().items():
        if name not in _FORMAT_KEYS:
            line[name] = value
    line.update(formatter.thread_safe_get_current_keys())
    line.update(
        method=record.method,
        route=record.route,
        tenant=record.tenant,
        key_id=record.key_id,
        team=record.team,
        session_id=record.session_id,
        end_user=record.end_user,
        plan=record.plan,
        status=sent_status,
        stream_error_status=record.stream_error_status,
        streamed=record.streamed,
        client_disconnected=record.client_disconnected,
        usage_estimated=record.usage_estimated,
        latency_ms=latency_ms,
        first_byte_ms=first_byte_ms,
        model=record.model,
        model_requested=record.model_requested,
        target=record.target,
        provider_errors=record.provider_errors,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cached_tokens=record.cached_tokens,
        cache_write_tokens=record.cache_write_tokens,
        reasoning_tokens=record.reasoning_tokens,
        embedding_inputs=record.embedding_inputs,
        cost_usd=str(record.cost_usd),
        xray_trace_id=formatter._get_latest_trace_id(),
    )
    return formatter.serialize({name: value for name, value in line.items() if value is not None})
