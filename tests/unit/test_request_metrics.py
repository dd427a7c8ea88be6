"""The request's EMF document and access log line are the ones Powertools' Metrics and Logger write for the same
metrics and fields (written directly only because that is cheaper), each line with its own request's trace id."""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_gateway.observability import (
    NAMESPACE,
    SERVICE,
    Invocation,
    RequestRecord,
    begin_request,
    end_request,
    logger,
    request_metrics,
)
from tests.conftest import LogOutput


def powertools_document(record: RequestRecord, status: int, latency_ms: float, first_byte_ms: float | None) -> Any:
    emf = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    emf.add_dimensions(service=SERVICE, Model=record.model)
    emf.add_dimensions(service=SERVICE, Model=record.model, Plan=record.plan)
    counts = {
        "Requests": 1,
        "ClientErrors": int(400 <= status < 500),
        "ServerErrors": int(status >= 500),
        "ProviderErrors": record.provider_errors,
        "ProviderThrottles": record.provider_throttles,
        "Fallbacks": int(record.fell_back),
        "BudgetRejections": int(record.budget_rejected),
        "UsageRecordFailures": record.usage_record_failures,
        "ClientDisconnects": int(record.client_disconnected),
        "PromptTokens": record.prompt_tokens,
        "CompletionTokens": record.completion_tokens,
        "CacheReadTokens": record.cached_tokens,
        "CacheWriteTokens": record.cache_write_tokens,
        "ReasoningTokens": record.reasoning_tokens,
        "EmbeddingInputs": record.embedding_inputs,
    }
    for name, value in counts.items():
        emf.add_metric(name=name, unit=MetricUnit.Count, value=value)
    emf.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if first_byte_ms is not None:
        emf.add_metric(name="TimeToFirstByte", unit=MetricUnit.Milliseconds, value=first_byte_ms)
    emf.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(record.cost_usd))
    if record.tenant:
        emf.add_metadata(key="tenant", value=record.tenant)
    if record.key_id:
        emf.add_metadata(key="key_id", value=record.key_id)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        emf.flush_metrics()
    return json.loads(printed.getvalue())


def comparable(document: Any) -> Any:
    """What CloudWatch reads of a document (the EMF specification's defaults made explicit: a metric's value is a
    number or an array of them, its unit None unless given), without its timestamp, metric definitions in name
    order."""
    document = json.loads(json.dumps(document))
    del document["_aws"]["Timestamp"]
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            metric.setdefault("Unit", "None")
            value = document[metric["Name"]]
            document[metric["Name"]] = [float(number) for number in (value if isinstance(value, list) else [value])]
        directive["Metrics"].sort(key=lambda metric: metric["Name"])
        directive["Dimensions"].sort()
    return document


@pytest.mark.parametrize(
    ("record", "status", "first_byte_ms"),
    [
        (
            RequestRecord(
                model="claude-sonnet-4-5", plan="standard", tenant="acme", key_id="key_1", prompt_tokens=1200,
                completion_tokens=80, cached_tokens=1000, provider_errors=1, fell_back=True, cost_usd=Decimal("0.0123"),
            ),
            200,
            412.5,
        ),
        (RequestRecord(budget_rejected=True), 429, None),
        (RequestRecord(model="echo", plan="free", client_disconnected=True, usage_record_failures=1), 502, 3.25),
    ],
)  # fmt: skip
def test_the_document_is_powertools_own(record: RequestRecord, status: int, first_byte_ms: float | None) -> None:
    written = request_metrics(record, status, 1234.5, first_byte_ms)
    ours, powertools = json.loads(written), powertools_document(record, status, 1234.5, first_byte_ms)
    assert comparable(ours) == comparable(powertools)
    assert abs(ours["_aws"]["Timestamp"] - powertools["_aws"]["Timestamp"]) < 60_000
    # Plain numbers and the default unit left out: fewer bytes for CloudWatch Logs to ingest.
    assert len(written) < len(json.dumps(powertools, separators=(",", ":"))) - 60


def test_powertools_switch_turns_the_request_metrics_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    end_request(RequestRecord(), 200, 1.0, None)
    assert '"_aws"' in capsys.readouterr().out
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    end_request(RequestRecord(), 200, 1.0, None)
    assert '"_aws"' not in capsys.readouterr().out


def _fields(record: RequestRecord, status: int, latency_ms: float, first_byte_ms: float | None) -> dict[str, Any]:
    """The access line's fields as `logger.info("request", extra=...)` would be given them."""
    return {
        "method": record.method, "route": record.route, "tenant": record.tenant, "key_id": record.key_id,
        "team": record.team, "session_id": record.session_id, "end_user": record.end_user, "plan": record.plan,
        "status": status, "stream_error_status": record.stream_error_status, "streamed": record.streamed,
        "client_disconnected": record.client_disconnected, "usage_estimated": record.usage_estimated,
        "latency_ms": latency_ms, "first_byte_ms": first_byte_ms, "model": record.model,
        "model_requested": record.model_requested, "target": record.target, "provider_errors": record.provider_errors,
        "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens, "cache_write_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens, "embedding_inputs": record.embedding_inputs,
        "cost_usd": str(record.cost_usd),
    }  # fmt: skip


INVOCATION = Invocation(
    request_id="f7305589", deadline_ms=1, function_name="ApiFunction", function_arn="arn:aws:lambda:::function:Api",
    memory_mb=256, xray_trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
)  # fmt: skip


@pytest.mark.parametrize("invocation", [INVOCATION, None])
def test_the_access_line_is_the_one_powertools_writes(invocation: Invocation | None, log_output: LogOutput) -> None:
    def serve() -> None:
        record = begin_request("POST", "/chat/completions", "req-1", invocation)
        logger.thread_safe_append_keys(tenant="acme", key_id="key_1", plan="standard")
        record.tenant, record.key_id, record.plan, record.model = "acme", "key_1", "standard", "echo"
        record.prompt_tokens, record.cost_usd = 12, Decimal("0.0001")
        end_request(record, 200, 12.5, 3.25)
        logger.info("request", extra=_fields(record, 200, 12.5, 3.25))

    contextvars.copy_context().run(serve)
    ours, powertools = log_output()
    for line in (ours, powertools):
        del line["timestamp"], line["location"]
    assert ours == powertools
    assert ours.get("xray_trace_id") == ("1-5759e988-bd862e3fe1be46a994272793" if invocation else None)


def test_each_request_logs_its_own_trace_id_also_when_requests_interleave(log_output: LogOutput) -> None:
    first, second = contextvars.copy_context(), contextvars.copy_context()
    other = Invocation(xray_trace_id="Root=1-00000000-000000000000000000000002;Sampled=0")
    first.run(begin_request, "POST", "/chat/completions", "req-1", INVOCATION)
    second.run(begin_request, "POST", "/chat/completions", "req-2", other)
    first.run(logger.info, "budget exceeded")  # any line of the request, not only the access line
    second.run(lambda: end_request(RequestRecord(), 200, 1.0, None))
    first.run(lambda: end_request(RequestRecord(), 200, 1.0, None))
    traces = [(line["correlation_id"], line["xray_trace_id"]) for line in log_output()]
    assert traces == [
        ("req-1", "1-5759e988-bd862e3fe1be46a994272793"),
        ("req-2", "1-00000000-000000000000000000000002"),
        ("req-1", "1-5759e988-bd862e3fe1be46a994272793"),
    ]
    # Tracing is off: nothing process-wide was set for the X-Ray SDK.
    assert "_X_AMZN_TRACE_ID" not in os.environ
