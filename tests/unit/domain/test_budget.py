"""Budget arithmetic and windows (pure), without a table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from llm_gateway.domain.budget import (
    CONTEXT_HEADROOM_TOKENS,
    Caps,
    Limits,
    PlanLimits,
    Reservation,
    ReservationTooLargeError,
    Windows,
    budget_exceeded,
    capped_request,
    chat_demand,
    exceeded_windows,
    output_cap,
    plan_reservation,
    seconds_until_reset,
)
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import ContextLimits, Prices
from llm_gateway.errors import ContextLengthExceededError
from tests.fakes.requests import openai_chat

NOW = datetime(2026, 11, 22, 15, 4, 30, tzinfo=UTC)
PRICES = Prices(input_per_1k=Decimal("0.003"), output_per_1k=Decimal("0.015"))


def request(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "m", "messages": [{"role": "user", "content": "x" * 400}], **fields})


def reserve(request: ChatRequest, limits: Limits) -> tuple[Reservation, Caps]:
    return plan_reservation(
        key_id="k",
        tenant="t",
        plan="standard",
        model="m",
        demand=chat_demand(request, limits, 4096),
        prices=PRICES,
        limits=limits,
        now=NOW,
    )


def limits(**fields: Any) -> Limits:
    values = {"tokens_per_minute": None, "tokens_per_day": None, "usd_per_month": None, "max_output_tokens": None}
    return Limits(**{**values, **fields})


def test_key_limits_override_the_plan_and_the_output_cap_is_the_plans() -> None:
    plan = PlanLimits(tokens_per_minute=1000, tokens_per_day=5000, usd_per_month=Decimal(5), max_output_tokens=256)
    assert Limits.of(TokenLimits(tokens_per_day=99), plan) == Limits(1000, 99, Decimal(5), 256)
    assert Limits.of(TokenLimits(), None) == limits()


def test_prompt_estimate_counts_characters_messages_and_images() -> None:
    assert estimate_prompt_tokens(request()) == 100 + 7
    assert estimate_prompt_tokens(request(max_tokens=5, stream=True, user="u", n=1)) == 100 + 7
    with_image = openai_chat(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "abcd"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                }
            ],
        }
    )
    assert estimate_prompt_tokens(with_image) == 1 + 7 + 1600


def test_everything_else_the_model_reads_is_estimated_too() -> None:
    """Tools, response_format schemas and vendor fields are billed as prompt by upstreams."""
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(500)}}
    with_schema = request(response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})
    assert estimate_prompt_tokens(with_schema) > 100 + 7 + len(str(schema)) // 5
    tool = {"type": "function", "function": {"name": "f", "description": "d" * 4000}}
    assert estimate_prompt_tokens(request(tools=[tool])) >= 100 + 7 + 1000
    assert estimate_prompt_tokens(request(vendor_context="c" * 8000)) >= 100 + 7 + 2000


def test_reservation_is_prompt_estimate_plus_output_cap_priced_from_the_registry() -> None:
    reservation, caps = reserve(
        request(max_tokens=96), limits(tokens_per_minute=1000, tokens_per_day=10_000, usd_per_month=Decimal(1))
    )
    assert (reservation.prompt_estimate, reservation.tokens) == (107, 203)
    assert reservation.usd == Decimal("0.003") * 107 / 1000 + Decimal("0.015") * 96 / 1000
    assert caps == Caps(minute=797, day=9797, usd=Decimal(1) - reservation.usd)
    assert reservation.windows == Windows(month="2026-11", day="22", minute="221504")


def test_without_max_tokens_the_plan_cap_or_the_default_is_reserved() -> None:
    capped, _ = reserve(request(), limits(max_output_tokens=500))
    uncapped, caps = reserve(request(), limits())
    assert (capped.tokens, uncapped.tokens) == (607, 4203)
    assert caps == Caps(None, None, None)


def test_the_cap_clamps_the_callers_output_limit_or_sets_one() -> None:
    assert capped_request(request(), 500).max_output_tokens == 500
    assert capped_request(request(max_tokens=9000), 500).max_output_tokens == 500
    assert capped_request(request(max_completion_tokens=9000), 500).max_output_tokens == 500
    kept = request(max_tokens=100)
    assert capped_request(kept, 500) is kept
    assert capped_request(request(max_tokens=100_000, max_completion_tokens=10), 500).max_output_tokens == 10, (
        "max_completion_tokens wins over the legacy max_tokens, as at OpenAI"
    )
    assert output_cap(limits(max_output_tokens=500), 4096) == 500
    assert output_cap(limits(), 4096) == 4096, "a plan without a cap still bounds a request that names no limit"
    assert output_cap(limits(), 4096, requested=32_000) == 32_000, "without a plan cap the caller's limit holds"
    assert output_cap(limits(max_output_tokens=500), 4096, requested=32_000) == 500
    assert output_cap(limits(), 4096, ContextLimits(max_output_tokens=5000), requested=32_000) == 5000


@pytest.mark.parametrize(
    ("plan_cap", "model", "prompt", "cap"),
    [
        pytest.param(4096, ContextLimits(), 104, 4096, id="no-model-limits-the-plan-cap"),
        pytest.param(None, ContextLimits(max_output_tokens=5000), 104, 4096, id="no-plan-cap-the-default"),
        pytest.param(8192, ContextLimits(max_output_tokens=5000), 104, 5000, id="the-models-maximum-output"),
        pytest.param(
            4096, ContextLimits(context_window=4096), 6, 4096 - 6 - CONTEXT_HEADROOM_TOKENS, id="the-window-left"
        ),
        pytest.param(
            4096,
            ContextLimits(context_window=200_000, max_output_tokens=64_000),
            150_000,
            4096,
            id="a-large-window-leaves-the-plan-cap",
        ),
        pytest.param(4096, ContextLimits(context_window=4096), 4090, 1, id="a-nearly-full-window-leaves-one"),
    ],
)
def test_the_injected_cap_is_the_smallest_of_plan_model_and_window(
    plan_cap: int | None, model: ContextLimits, prompt: int, cap: int
) -> None:
    assert output_cap(limits(max_output_tokens=plan_cap), 4096, model, prompt) == cap


def test_a_prompt_estimated_beyond_the_window_is_a_context_length_error() -> None:
    with pytest.raises(ContextLengthExceededError) as caught:
        output_cap(limits(), 4096, ContextLimits(context_window=4096), 4096)
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "context_length_exceeded", "messages")


def test_the_reservation_counts_exactly_the_injected_cap() -> None:
    unnamed = request()
    cap = output_cap(limits(max_output_tokens=4096), 4096, ContextLimits(context_window=4096), 107)
    capped = capped_request(unnamed, cap)
    reservation, _ = reserve(capped, limits(max_output_tokens=4096))
    assert capped.max_output_tokens == cap == 4096 - 107 - CONTEXT_HEADROOM_TOKENS
    assert reservation.tokens == reservation.prompt_estimate + cap == 107 + cap
    named = capped_request(
        request(max_tokens=64_000), output_cap(limits(), 4096, ContextLimits(max_output_tokens=5000))
    )
    assert named.max_output_tokens == 4096, "a named limit is clamped to the same cap"


def test_the_reservation_counts_the_limit_the_provider_is_sent() -> None:
    both = capped_request(request(max_tokens=100_000, max_completion_tokens=10), 500)
    reservation, _ = reserve(both, limits(max_output_tokens=500))
    assert reservation.tokens == 107 + 10


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"tokens_per_minute": 150}, "more than this API key's per-minute budget of 150"),
        ({"tokens_per_day": 150}, "per-day budget of 150"),
        ({"usd_per_month": Decimal("0.0001")}, "more than this API key's monthly limit"),
    ],
)
def test_a_request_larger_than_a_whole_window_is_a_400(budget: dict[str, Any], message: str) -> None:
    with pytest.raises(ReservationTooLargeError, match=message) as refused:
        reserve(request(max_tokens=96), limits(**budget))
    assert (refused.value.status, refused.value.code) == (400, "request_exceeds_budget")


def test_windows_reset_at_the_next_minute_day_and_month() -> None:
    assert seconds_until_reset("minute", NOW) == 30
    assert seconds_until_reset("day", NOW) == 8 * 3600 + 55 * 60 + 30
    assert seconds_until_reset("month", datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC)) == 60
    assert seconds_until_reset("minute", datetime(2026, 1, 1, 0, 0, 59, 999999, tzinfo=UTC)) == 1


def test_which_windows_refused_and_the_429_they_give() -> None:
    caps = Caps(minute=800, day=9800, usd=Decimal("0.5"))
    assert exceeded_windows(caps, {"minute": 801, "day": 100, "month": Decimal(0)}) == ["minute"]
    assert exceeded_windows(caps, {"minute": 801, "day": 9801, "month": Decimal(1)}) == ["minute", "day", "month"]
    error = budget_exceeded(["minute", "day"], limits(tokens_per_minute=1000, tokens_per_day=10_000), NOW)
    assert (error.status, error.code, error.headers["Retry-After"]) == (429, "token_budget_exceeded", str(32130))
    late = budget_exceeded(["minute"], limits(tokens_per_minute=1000), NOW.replace(second=29, microsecond=600_000))
    assert late.headers["Retry-After"] == "31", "rounded up: retrying after it lands in the next minute"
    assert "Retry after 31 s." in late.message
    assert "tokens per minute (1000), tokens per day (10000)" in error.message
    spend = budget_exceeded(["month"], limits(usd_per_month=Decimal(5)), NOW)
    assert spend.code == "spend_limit_exceeded"
