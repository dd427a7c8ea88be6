"""Token budgets and usage records on the usage table (moto), alone and behind the real API handler."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from llm_gateway import gateway
from llm_gateway.config import Settings
from llm_gateway.domain.answers import Completion, StreamEvent, TextDelta, Usage
from llm_gateway.domain.budget import BudgetExceededError
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelTraits, Prices, Target
from llm_gateway.errors import ProviderError
from llm_gateway.metering import UsageMeter
from llm_gateway.providers.echo import EchoProvider
from llm_gateway.store import dynamo
from llm_gateway.store.usage import UsageStore
from tests.conftest import Handler, LogOutput
from tests.contract.conftest import Stack
from tests.fakes.proxy_events import api_event, call, chat_event
from tests.fakes.requests import openai_chat

PRICES = Prices(input_per_1k=Decimal("0.001"), output_per_1k=Decimal("0.002"))
START = datetime(2026, 11, 22, 23, 58, 50, tzinfo=UTC)


def caller(**limits: Any) -> Caller:
    return Caller(tenant="acme", key_id="key_budget", plan="standard", limits=TokenLimits(**limits))


def chat(words: str = "one two three", **fields: Any) -> ChatRequest:
    return openai_chat({"model": "echo", "messages": [{"role": "user", "content": words}], "max_tokens": 10, **fields})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def meter_for(stack: Stack, clock: Clock | None = None) -> UsageMeter:
    store = UsageStore(stack.dynamodb, stack.outputs["UsageTableName"])
    return UsageMeter(store, Settings(), clock or Clock(START))


def usage_item(stack: Stack, key_id: str = "key_budget", period: str = "2026-11") -> dict[str, Any]:
    item = stack.dynamodb.get_item(
        TableName=stack.outputs["UsageTableName"], Key={"key_id": {"S": key_id}, "period": {"S": period}}
    ).get("Item", {})
    return {name: (value.get("N") or value.get("S")) for name, value in item.items()}


def test_reserve_then_settle_leaves_exactly_the_real_usage(stack: Stack) -> None:
    meter = meter_for(stack)
    metered = meter.reserve(caller(tokens_per_day=1000), "echo", PRICES, chat())
    assert metered is not None
    reserved = metered.reservation.tokens
    assert reserved == 4 + 4 + 3 + 10  # one two three (a token per started four letters), the message, the reply's
    # priming, max_tokens
    item = usage_item(stack)
    assert (item["budget_day_22"], item["budget_min_222358"], item["tenant"], item["plan"]) == (
        str(reserved),
        str(reserved),
        "acme",
        "standard",
    )
    meter.settle(metered, Usage(3, 2))
    item = usage_item(stack)
    assert (item["budget_day_22"], item["budget_min_222358"]) == ("5", "5")
    assert (item["requests_22"], item["prompt_tokens_22"], item["completion_tokens_22"]) == ("1", "3", "2")
    assert Decimal(item["cost_usd_22"]) == Decimal("0.000007")  # 3 x $0.001/1K + 2 x $0.002/1K
    assert Decimal(item["budget_usd"]) == Decimal(item["cost_usd_22"])
    # Kept 400 days after the month ends (2026-12-01), never expiring while its month runs.
    assert int(item["expires_at"]) == int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()) + 400 * 86400


def test_a_failed_call_releases_its_reservation_and_counts_as_failed(stack: Stack) -> None:
    meter = meter_for(stack)
    metered = meter.reserve(caller(tokens_per_day=1000), "echo", PRICES, chat())
    meter.settle(metered, None, failed=True)
    item = usage_item(stack)
    assert (item["budget_day_22"], item["failed_22"], Decimal(item["budget_usd"])) == ("0", "1", 0)
    assert "requests_22" not in item


def test_minute_window_rolls_over_while_the_day_window_keeps_counting(stack: Stack) -> None:
    clock = Clock(START)
    meter = meter_for(stack, clock)
    key = caller(tokens_per_minute=45, tokens_per_day=90)
    for _ in range(2):
        meter.reserve(key, "echo", PRICES, chat())  # 21 tokens each, left unsettled: 42 in 23:58
    with pytest.raises(BudgetExceededError) as refused:
        meter.reserve(key, "echo", PRICES, chat())
    assert "tokens per minute (45)" in refused.value.message
    assert "per day" not in refused.value.message
    assert refused.value.headers["Retry-After"] == "10"  # the minute ends at 23:59:00
    clock.now = START + timedelta(seconds=10)  # 23:59:00, a new minute: 84 of the day's 90 after two more
    for _ in range(2):
        meter.reserve(key, "echo", PRICES, chat())
    clock.now = START + timedelta(seconds=69)  # 23:59:59
    with pytest.raises(BudgetExceededError) as day_refused:
        meter.reserve(key, "echo", PRICES, chat())
    assert "tokens per day (90)" in day_refused.value.message
    assert day_refused.value.headers["Retry-After"] == "1"
    clock.now = START + timedelta(seconds=71)  # 00:00:01 on the 23rd: a new day and a new minute
    assert meter.reserve(key, "echo", PRICES, chat()) is not None
    item = usage_item(stack)
    assert (item["budget_day_22"], item["budget_day_23"], item["budget_min_230000"]) == ("84", "21", "21")


def test_the_monthly_spend_limit_refuses_with_its_own_code(stack: Stack) -> None:
    meter = meter_for(stack)
    expensive = Prices(input_per_1k=Decimal(1), output_per_1k=Decimal(1))
    key = caller(usd_per_month=Decimal("0.045"))
    metered = meter.reserve(key, "echo", expensive, chat())
    meter.settle(metered, Usage(10, 10))  # $0.02 spent
    meter.reserve(key, "echo", expensive, chat())  # $0.021 reserved
    with pytest.raises(BudgetExceededError) as refused:
        meter.reserve(key, "echo", expensive, chat())
    assert refused.value.code == "spend_limit_exceeded"


def test_counters_of_past_windows_are_pruned_at_settlement(stack: Stack) -> None:
    clock = Clock(START)
    meter = meter_for(stack, clock)
    key = caller(tokens_per_day=1000)
    meter.settle(meter.reserve(key, "echo", PRICES, chat()), Usage(1, 1))
    clock.now = START + timedelta(minutes=3)  # 00:01:50 on the 23rd: yesterday's day counter may still settle
    meter.settle(meter.reserve(key, "echo", PRICES, chat()), Usage(1, 1))
    item = usage_item(stack)
    assert sorted(name for name in item if name.startswith("budget_")) == [
        "budget_day_22",
        "budget_day_23",
        "budget_min_230001",
        "budget_usd",
    ]
    clock.now = START + timedelta(days=2)
    meter.settle(meter.reserve(key, "echo", PRICES, chat()), Usage(1, 1))
    item = usage_item(stack)
    assert sorted(name for name in item if name.startswith("budget_")) == [
        "budget_day_23",
        "budget_day_24",
        "budget_min_242358",
        "budget_usd",
    ], "the 22nd's counters are gone; yesterday's stays for requests still settling into it"
    assert (item["requests_22"], item["requests_23"], item["requests_24"]) == ("1", "1", "1"), "usage is kept"


@pytest.fixture
def item_level_atomicity(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each UpdateItem atomically; moto's in-memory backend does not serialize concurrent
    writes, so concurrent ADDs can be lost. This gives moto the guarantee DynamoDB documents, nothing more."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.update_item

    def atomic_update_item(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", atomic_update_item)


@pytest.mark.usefixtures("item_level_atomicity")
def test_fifty_threads_against_a_budget_for_ten_requests(stack: Stack) -> None:
    """The budget holds under contention and the table's totals equal the successful responses' usage."""
    store = UsageStore(stack.dynamodb, stack.outputs["UsageTableName"])
    meter = UsageMeter(store, Settings(), Clock(START))
    provider, target = EchoProvider(), Target(provider="echo", model_id="echo")
    request = chat("alpha beta gamma delta")
    reservation_size = 7 + 4 + 3 + 10
    key = caller(tokens_per_day=10 * reservation_size)
    served: list[Usage] = []
    refused: list[BudgetExceededError] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def one_request() -> None:
        barrier.wait()
        try:
            metered = meter.reserve(key, "echo", PRICES, request)
        except BudgetExceededError as error:
            with lock:
                refused.append(error)
            return
        completion = provider.complete(request, target, Deadline.after(5))
        meter.settle(metered, completion.usage)
        with lock:
            served.append(completion.usage)

    threads = [threading.Thread(target=one_request) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = sum(u.total_tokens for u in served)
    assert len(served) + len(refused) == 50
    assert len(served) >= 10, "ten reservations always fit"
    assert refused, "the budget refused the rest"
    assert used <= 10 * reservation_size, "never more than the budget"
    item = usage_item(stack)
    assert int(item["requests_22"]) == len(served)
    assert int(item["prompt_tokens_22"]) + int(item["completion_tokens_22"]) == used
    assert int(item["prompt_tokens_22"]) == sum(u.prompt_tokens for u in served)
    assert int(item["budget_day_22"]) == used, "no reservation is left behind"


@pytest.fixture(autouse=True)
def metering_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's meter reads a fixed noon, so windows in assertions cannot cross midnight mid-test."""
    monkeypatch.setattr("llm_gateway.metering.utcnow", lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC))


class CountingEcho(EchoProvider):
    calls = 0

    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        CountingEcho.calls += 1
        return super().complete(request, target, deadline)


@pytest.fixture
def counting_echo(monkeypatch: pytest.MonkeyPatch) -> type[CountingEcho]:
    CountingEcho.calls = 0
    monkeypatch.setattr(gateway, "_echo", CountingEcho)
    return CountingEcho


def test_a_request_larger_than_the_whole_budget_is_a_400_without_a_provider_call(
    stack: Stack, api_handler: Handler, counting_echo: type[CountingEcho]
) -> None:
    # No plan cap and no max_tokens: the default 4096 output tokens alone exceed the key's 1000 per day.
    response = call(api_handler, api_event(tokensPerDay=1000))
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert (error["code"], error["param"]) == ("request_exceeds_budget", "max_tokens")
    assert counting_echo.calls == 0
    assert usage_item(stack, "key_5f1c2a9b7e3d", "2026-11") == {}


def test_plan_defaults_apply_and_a_refusal_is_a_429_without_a_provider_call(
    stack: Stack, api_handler: Handler, counting_echo: type[CountingEcho], monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = {"standard": {"tokens_per_minute": 0, "tokens_per_day": 45, "usd_per_month": 0, "max_output_tokens": 16}}
    monkeypatch.setenv("GATEWAY_PLAN_LIMITS", json.dumps(plans))
    # "Say hello to the gateway": 7 estimated (a token per started four letters) + 4 for the message + 3 priming
    # the reply, plus the plan's 16-token output cap = 30 reserved; each answer really uses 10. Day use 0 -> 10 ->
    # 20: the third reservation (20 + 30) is over 45.
    responses = [call(api_handler, api_event()) for _ in range(3)]
    assert [r["statusCode"] for r in responses] == [200, 200, 429]
    assert counting_echo.calls == 2
    error = json.loads(responses[2]["body"])["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "token_budget_exceeded")
    headers = {k.lower(): v[0] for k, v in responses[2]["multiValueHeaders"].items()}
    assert int(headers["retry-after"]) > 0
    item = usage_item(stack, "key_5f1c2a9b7e3d", "2026-11")
    day = "22"
    assert (item[f"requests_{day}"], item[f"prompt_tokens_{day}"], item[f"completion_tokens_{day}"]) == (
        "2",
        "10",
        "10",
    )


def test_streamed_requests_are_metered_like_the_others(stack: Stack, api_handler: Handler) -> None:
    response = call(api_handler, api_event("chat-completions-stream.json"))
    assert response["statusCode"] == 200
    frames = [f.removeprefix("data: ") for f in response["body"].strip().split("\n\n")]
    usage = json.loads(frames[-2])["usage"]
    item = usage_item(stack, "key_5f1c2a9b7e3d", "2026-11")
    day = "22"
    assert (int(item[f"prompt_tokens_{day}"]), int(item[f"completion_tokens_{day}"])) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert item[f"requests_{day}"] == "1"


def test_a_stream_cut_midway_is_recorded_from_what_it_produced(
    stack: Stack, api_handler: Handler, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class CutStream(EchoProvider):
        def stream(
            self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
        ) -> Iterator[StreamEvent]:
            yield TextDelta("x" * 40)
            raise ProviderError("upstream reset the connection")

    monkeypatch.setattr(gateway, "_echo", CutStream)
    capsys.readouterr()
    response = call(api_handler, api_event("chat-completions-stream.json"))
    assert '"upstream reset the connection"' in response["body"]
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Requests"' in line]
    assert (emf["ServerErrors"], emf["ProviderErrors"]) == (1, 1), "a 200 whose stream failed is a failure"
    item = usage_item(stack, "key_5f1c2a9b7e3d", "2026-11")
    day = "22"
    assert (item[f"failed_{day}"], item[f"completion_tokens_{day}"]) == ("1", "10")
    assert f"requests_{day}" not in item


def test_a_chat_request_costs_exactly_two_dynamodb_calls(stack: Stack, api_handler: Handler) -> None:
    call(api_handler, api_event())  # the first request builds the clients
    calls: list[str] = []
    dynamo.dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    assert call(api_handler, api_event())["statusCode"] == 200
    assert calls == ["UpdateItem", "UpdateItem"]
    calls.clear()
    assert call(api_handler, api_event("chat-completions-stream.json"))["statusCode"] == 200
    assert calls == ["UpdateItem", "UpdateItem"]


def test_a_failed_usage_record_is_logged_whole_and_metered_not_swallowed(
    stack: Stack,
    api_handler: Handler,
    log_output: LogOutput,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(UsageStore, "settle", broken)
    capsys.readouterr()
    response = call(api_handler, api_event())
    assert response["statusCode"] == 200, "the caller keeps the answer"
    (failure,) = [line for line in log_output() if line["message"] == "usage record failed"]
    assert (failure["key_id"], failure["model"], failure["prompt_tokens"], failure["completion_tokens"]) == (
        "key_5f1c2a9b7e3d",
        "echo",
        5,
        5,
    )
    assert "DynamoDB unreachable" in failure["exception"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["UsageRecordFailures"] for m in emf if "UsageRecordFailures" in m] == [1]


def test_one_letter_words_past_the_budget_are_refused_before_the_model(
    stack: Stack, api_handler: Handler, counting_echo: type[CountingEcho]
) -> None:
    """Issue #16, input 1: 190 one-letter words with max_tokens 1 on a key with 100 tokens per day were admitted
    (estimated at 99 + 1 by four characters per token) and took the day to 191."""
    body = {"model": "echo", "max_tokens": 1, "messages": [{"role": "user", "content": " ".join(["a"] * 190)}]}
    response = call(api_handler, chat_event(body, tokensPerDay=100))
    error = json.loads(response["body"])["error"]
    assert (response["statusCode"], error["code"]) == (400, "request_exceeds_budget")
    assert counting_echo.calls == 0
    assert usage_item(stack, "key_5f1c2a9b7e3d", "2026-11") == {}


def test_a_forced_tool_call_keeps_to_max_tokens_through_the_handler(stack: Stack, api_handler: Handler) -> None:
    """Issue #16, input 2: a forced tool call with max_tokens 1 answered 61 completion tokens."""
    body = {
        "model": "echo",
        "max_tokens": 1,
        "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}],
    }
    response = call(api_handler, chat_event(body, tokensPerDay=100_000))
    answer = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert answer["usage"]["completion_tokens"] <= 1
    assert answer["choices"][0]["finish_reason"] == "length"
