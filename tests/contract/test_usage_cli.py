"""gatewayctl usage: per key and day, from usage the gateway recorded through the real handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulator.lambda_context import LocalLambdaContext
from gatewayctl import cli
from gatewayctl.deployment import Deployment
from llm_gateway.config import Settings
from llm_gateway.domain.answers import Usage
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import Prices
from llm_gateway.metering import UsageMeter
from llm_gateway.store.usage import UsageStore
from tests.conftest import Handler
from tests.contract.conftest import Stack
from tests.fakes.requests import openai_chat

EVENTS = Path(__file__).resolve().parents[2] / "events" / "api"


def run(stack: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    deployment = Deployment("test stack", "us-east-1", stack.outputs)
    code = cli.main(list(argv), deployment_factory=lambda _: deployment)
    out, err = capsys.readouterr()
    return code, out, err


def record(stack: Stack, key_id: str, tenant: str, at: datetime, usage: Usage | None, prices: Prices) -> None:
    class Fixed:
        def __call__(self) -> datetime:
            return at

    meter = UsageMeter(UsageStore(stack.dynamodb, stack.outputs["UsageTableName"]), Settings(), Fixed())
    caller = Caller(tenant=tenant, key_id=key_id, plan="standard", limits=TokenLimits())
    request = openai_chat({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5})
    meter.settle(meter.reserve(caller, "echo", prices, request), usage, failed=usage is None)


def test_usage_per_key_and_day_with_totals(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    prices = Prices(input_per_1k=Decimal(1), output_per_1k=Decimal(2))
    record(stack, "key_a", "acme", today, Usage(100, 50), prices)
    record(stack, "key_a", "acme", today, Usage(10, 5), prices)
    record(stack, "key_a", "acme", today, None, prices)
    record(stack, "key_a", "acme", today - timedelta(days=40), Usage(1, 1), prices)
    record(stack, "key_b", "beta", today, Usage(7, 3), prices)
    code, out, _ = run(stack, capsys, "usage", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [
        (r["key_id"], r["requests"], r["failed"], r["prompt_tokens"], r["completion_tokens"], r["cost_usd"])
        for r in rows
    ] == [
        ("key_a", 2, 1, 110, 55, "0.22"),
        ("key_b", 1, 0, 7, 3, "0.013"),
    ]
    code, out, _ = run(
        stack, capsys, "usage", "--tenant", "acme", "--since", (today - timedelta(days=60)).date().isoformat()
    )
    lines = out.splitlines()
    assert lines[0].split() == [
        "DAY",
        "TENANT",
        "KEY",
        "ID",
        "PLAN",
        "REQUESTS",
        "FAILED",
        "PROMPT",
        "CACHE",
        "READ",
        "CACHE",
        "WRITE",
        "COMPLETION",
        "COST",
        "USD",
    ]
    assert len(lines) == 4, "two days of acme and a total"
    assert lines[-1].split() == ["TOTAL", "3", "1", "111", "0", "0", "56", "0.223000"]
    code, out, _ = run(stack, capsys, "usage", "--key", "key_b")
    assert "beta" in out and "acme" not in out
    _, out, _ = run(stack, capsys, "usage", "--key", "key_b", "--tenant", "acme", "--json")
    assert json.loads(out) == [], "every filter applies"


def test_the_handlers_usage_is_what_the_report_shows(
    monkeypatch: pytest.MonkeyPatch, stack: Stack, api_handler: Handler, capsys: pytest.CaptureFixture[str]
) -> None:
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    monkeypatch.setattr("llm_gateway.metering.utcnow", lambda: noon)
    event: dict[str, Any] = json.loads((EVENTS / "chat-completions.json").read_text())
    for _ in range(2):
        api_handler(event, LocalLambdaContext(function_name="ApiFunction"))
    capsys.readouterr()
    _, out, _ = run(stack, capsys, "usage", "--key", "key_5f1c2a9b7e3d", "--json")
    (row,) = json.loads(out)
    assert (row["day"], row["tenant"], row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (
        noon.date().isoformat(),
        "acme",
        2,
        10,
        10,
    )


def test_cache_reads_and_writes_are_reported_and_priced_at_the_caches_prices(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    prices = Prices(
        input_per_1k=Decimal(3),
        output_per_1k=Decimal(15),
        cache_read_per_1k=Decimal("0.3"),
        cache_write_per_1k=Decimal("3.75"),
    )
    record(stack, "key_c", "acme", today, Usage(1300, 40, cached_tokens=1000, cache_write_tokens=200), prices)
    record(stack, "key_c", "acme", today, Usage(500, 10, cached_tokens=400), prices)
    code, out, _ = run(stack, capsys, "usage", "--key", "key_c", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"], row["completion_tokens"]) == (
        1800,
        1400,
        200,
        50,
    )
    # 100 uncached x 3 + 1000 read x 0.3 + 200 written x 3.75 + 40 x 15, then 100 x 3 + 400 x 0.3 + 10 x 15 (per 1K)
    assert Decimal(row["cost_usd"]) == Decimal("1.95") + Decimal("0.57")
