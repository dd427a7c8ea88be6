"""The request's EMF document is the one Powertools' Metrics prints for the same metrics, dimension sets and
properties: written directly only because that is cheaper."""

from __future__ import annotations

import contextlib
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from llm_gateway.observability import NAMESPACE, SERVICE, RequestRecord, end_request, request_metrics


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
    """A document without its timestamp, metric definitions in name order."""
    document = json.loads(json.dumps(document))
    del document["_aws"]["Timestamp"]
    for directive in document["_aws"]["CloudWatchMetrics"]:
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
    ours = json.loads(request_metrics(record, status, 1234.5, first_byte_ms))
    assert comparable(ours) == comparable(powertools_document(record, status, 1234.5, first_byte_ms))


def test_powertools_switch_turns_the_request_metrics_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    end_request(RequestRecord(), 200, 1.0, None)
    assert '"_aws"' in capsys.readouterr().out
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    end_request(RequestRecord(), 200, 1.0, None)
    assert '"_aws"' not in capsys.readouterr().out
