"""OpenAI's x-ratelimit-* headers on every answer of the API function, from the key's plan and the windows its
reservation saw, without a DynamoDB call of their own."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulator.lambda_context import LocalLambdaContext
from llm_gateway import gateway
from llm_gateway.domain.budget import Limits, WindowTotals, quota_counter, quota_period_start
from llm_gateway.domain.ratelimit import HEADERS, go_duration, rate_limit_headers
from llm_gateway.store import dynamo
from tests.conftest import Handler
from tests.contract.conftest import Stack
from tests.fakes.handler_client import handler_client

EVENTS = Path(__file__).resolve().parents[2] / "events" / "api"
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
PLANS = {
    "standard": {
        "tokens_per_minute": 1000,
        "tokens_per_day": 5000,
        "usd_per_month": 0,
        "max_output_tokens": 16,
        "requests_per_period": 1000,
        "quota_period": "DAY",
    }
}
DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+s$")


def limits(**fields: Any) -> Limits:
    values: dict[str, Any] = {
        "tokens_per_minute": None,
        "tokens_per_day": None,
        "usd_per_month": None,
        "max_output_tokens": None,
    }
    return Limits(**{**values, **fields})


def test_durations_are_written_as_openai_writes_them() -> None:
    assert [go_duration(s) for s in (0.2, 45, 360, 58023.5)] == ["1s", "45s", "6m0s", "16h7m4s"]


def test_the_window_that_refuses_first_is_reported() -> None:
    key = limits(tokens_per_minute=1000, tokens_per_day=5000, requests_per_period=100, quota_period="DAY")
    # 200 left this minute, 300 today: the minute refuses first.
    headers = rate_limit_headers(key, WindowTotals(minute_tokens=800, day_tokens=4700, period_requests=7), NOON)
    assert headers == {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "93",
        "x-ratelimit-reset-requests": "12h0m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "200",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    # 900 left this minute, 100 today: the day does.
    day = rate_limit_headers(key, WindowTotals(minute_tokens=100, day_tokens=4900, period_requests=7), NOON)
    assert (day["x-ratelimit-limit-tokens"], day["x-ratelimit-remaining-tokens"]) == ("5000", "100")
    assert day["x-ratelimit-reset-tokens"] == "12h0m0s"
    # Nothing reserved: limits and resets only.
    assert set(rate_limit_headers(key, None, NOON)) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-reset-tokens",
    }
    assert rate_limit_headers(limits(usd_per_month=Decimal(5)), None, NOON) == {}, "no token or request limit"


def test_quota_periods_start_as_api_gateway_counts_them() -> None:
    assert quota_period_start("DAY", NOON).isoformat() == "2026-11-22T00:00:00+00:00"
    assert quota_period_start("WEEK", datetime(2026, 11, 25, tzinfo=UTC)).date().isoformat() == "2026-11-22"
    assert quota_period_start("WEEK", NOON).date().isoformat() == "2026-11-22", "weeks begin on Sunday"
    assert quota_counter("MONTH", NOON) == "quota_2026-11-01"
    week = rate_limit_headers(limits(requests_per_period=10, quota_period="WEEK"), None, NOON)
    assert week["x-ratelimit-reset-requests"] == "156h0m0s"


@pytest.fixture(autouse=True)
def plans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PLAN_LIMITS", json.dumps(PLANS))
    monkeypatch.setattr("llm_gateway.metering.utcnow", lambda: NOON)


def event(name: str = "chat-completions.json") -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): values[0] for name, values in response["multiValueHeaders"].items()}


def test_every_answer_carries_them_and_remaining_counts_follow_the_reservations(
    stack: Stack, api_handler: Handler
) -> None:
    context = LocalLambdaContext(function_name="ApiFunction")
    # "Say hello to the gateway": 14 estimated prompt tokens + the plan's 16-token output cap = 30 reserved; the
    # answer uses 10, so each settled request leaves 10 in the windows.
    first = headers_of(api_handler(event(), context))
    assert {name: first[name] for name in HEADERS} == {
        "x-ratelimit-limit-requests": "1000",
        "x-ratelimit-remaining-requests": "999",
        "x-ratelimit-reset-requests": first["x-ratelimit-reset-requests"],
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "970",
        "x-ratelimit-reset-tokens": first["x-ratelimit-reset-tokens"],
    }
    assert DURATION.match(first["x-ratelimit-reset-requests"]) and DURATION.match(first["x-ratelimit-reset-tokens"])
    calls: list[str] = []
    dynamo.dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    # Embeddings reserve their input estimate, 7 tokens for "Say hello" and "to the gateway": 1000 - 10 - 7.
    second = headers_of(api_handler(event("embeddings.json"), context))
    assert calls == ["UpdateItem", "UpdateItem"], "the headers cost no DynamoDB call"
    assert (second["x-ratelimit-remaining-requests"], second["x-ratelimit-remaining-tokens"]) == ("998", "983")
    calls.clear()
    listed = headers_of(api_handler(event("models.json"), context))
    assert calls == []
    assert listed["x-ratelimit-limit-tokens"] == "1000" and "x-ratelimit-remaining-tokens" not in listed
    refused = headers_of(api_handler(event("error-unknown-model.json"), context))
    assert refused["x-ratelimit-limit-requests"] == "1000"


def test_a_budget_refusal_reports_what_is_left(
    stack: Stack, api_handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    tight = {"standard": {**PLANS["standard"], "tokens_per_minute": 45}}
    monkeypatch.setenv("GATEWAY_PLAN_LIMITS", json.dumps(tight))
    context = LocalLambdaContext(function_name="ApiFunction")
    assert api_handler(event(), context)["statusCode"] == 200  # 10 used
    refused = api_handler(event(), context)  # 10 + 30 fits 45; then 20 + 30 does not
    refused = api_handler(event(), context) if refused["statusCode"] == 200 else refused
    headers = headers_of(refused)
    assert refused["statusCode"] == 429
    assert (headers["x-ratelimit-limit-tokens"], headers["x-ratelimit-remaining-tokens"]) == ("45", "25")
    assert headers["x-ratelimit-remaining-requests"] == "998", "refused requests reach no model and are not counted"


def test_the_sdk_reads_them_with_raw_response(stack: Stack, api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "How many are left?"}]
    )
    assert raw.parse().choices[0].message.content == "How many are left?"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) == 999
    assert 0 < int(raw.headers["x-ratelimit-remaining-tokens"]) < int(raw.headers["x-ratelimit-limit-tokens"])


def test_past_quota_counters_are_pruned(stack: Stack, api_handler: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    context = LocalLambdaContext(function_name="ApiFunction")
    api_handler(event(), context)
    monkeypatch.setattr("llm_gateway.metering.utcnow", lambda: datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    gateway.get_gateway.cache_clear()  # the meter takes its clock when it is made
    api_handler(event(), context)
    api_handler(event(), context)  # settles the pruning the second reservation found
    item = stack.dynamodb.get_item(
        TableName=stack.outputs["UsageTableName"],
        Key={"key_id": {"S": "key_5f1c2a9b7e3d"}, "period": {"S": "2026-11"}},
    )["Item"]
    assert sorted(name for name in item if name.startswith("quota_")) == ["quota_2026-11-23"]
    assert item["quota_2026-11-23"]["N"] == "2"
