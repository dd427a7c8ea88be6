"""Token budgets: what a request may reserve, in which windows, and what the caller is told when it may not.

A request reserves its worst case (prompt estimate + the output cap) in the key's minute, day and month
windows before the provider is called, and settles to the real usage afterwards. Windows are fixed and in
UTC: a minute, a day, a month.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from llm_gateway.domain.answers import Usage
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import ContextLimits, Prices
from llm_gateway.errors import ContextLengthExceededError, InvalidRequestError, RateLimitError

Window = Literal["minute", "day", "month"]
# The usage item's per-period request counters (quota_2026-11-22) begin with this.
QUOTA_PREFIX = "quota_"
# API Gateway's usage-plan quota periods (https://docs.aws.amazon.com/apigateway/latest/api/API_QuotaSettings.html).
QuotaPeriod = Literal["DAY", "WEEK", "MONTH"]
# Room kept free in the context window beyond the prompt estimate: chat templates add tokens the estimate does
# not see (Llama 3.1's default system header alone is about 25), and servers such as vLLM refuse any request
# whose prompt plus max_tokens exceeds the window (--max-model-len).
CONTEXT_HEADROOM_TOKENS = 64


@dataclass(frozen=True)
class PlanLimits:
    """A plan's defaults; None (or 0 in configuration) means unlimited."""

    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    usd_per_month: Decimal | None = None
    max_output_tokens: int | None = None
    # The plan's usage-plan quota (API Gateway enforces it; the gateway reports it in x-ratelimit-*-requests).
    requests_per_period: int | None = None
    quota_period: QuotaPeriod = "DAY"


@dataclass(frozen=True)
class Limits:
    """The limits in force for one key: its own where set, else its plan's."""

    tokens_per_minute: int | None
    tokens_per_day: int | None
    usd_per_month: Decimal | None
    max_output_tokens: int | None
    requests_per_period: int | None = None
    quota_period: QuotaPeriod = "DAY"

    @classmethod
    def of(cls, key: TokenLimits, plan: PlanLimits | None) -> Limits:
        plan = plan or PlanLimits()
        return cls(
            tokens_per_minute=key.tokens_per_minute if key.tokens_per_minute is not None else plan.tokens_per_minute,
            tokens_per_day=key.tokens_per_day if key.tokens_per_day is not None else plan.tokens_per_day,
            usd_per_month=key.usd_per_month if key.usd_per_month is not None else plan.usd_per_month,
            max_output_tokens=plan.max_output_tokens,
            requests_per_period=plan.requests_per_period,
            quota_period=plan.quota_period,
        )


@dataclass(frozen=True)
class Windows:
    """The fixed UTC windows an instant falls in, named as the usage table names them."""

    month: str  # 2026-11: the usage item of the key
    day: str  # 22
    minute: str  # 221504 (day, hour, minute)

    @classmethod
    def at(cls, now: datetime) -> Windows:
        now = now.astimezone(UTC)
        return cls(month=now.strftime("%Y-%m"), day=now.strftime("%d"), minute=now.strftime("%d%H%M"))


def seconds_until_reset(window: Window, now: datetime) -> float:
    now = now.astimezone(UTC)
    if window == "minute":
        reset = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    elif window == "day":
        reset = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    else:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        reset = (first + timedelta(days=32)).replace(day=1)
    return max(1.0, (reset - now).total_seconds())


def quota_period_start(period: QuotaPeriod, now: datetime) -> datetime:
    """The start of the usage-plan quota period holding `now`, as API Gateway counts periods with offset 0 (the
    template's): UTC days, weeks from Sunday, calendar months."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        return day
    if period == "WEEK":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    return day.replace(day=1)


def seconds_until_quota_reset(period: QuotaPeriod, now: datetime) -> float:
    start = quota_period_start(period, now)
    if period == "DAY":
        end = start + timedelta(days=1)
    elif period == "WEEK":
        end = start + timedelta(days=7)
    else:
        end = (start + timedelta(days=32)).replace(day=1)
    return max(1.0, (end - now.astimezone(UTC)).total_seconds())


def quota_counter(period: QuotaPeriod, now: datetime) -> str:
    """The usage item's count of the key's requests in the quota period holding `now`: quota_2026-11-22."""
    return QUOTA_PREFIX + quota_period_start(period, now).date().isoformat()


def output_cap(
    limits: Limits,
    default_output_tokens: int,
    model: ContextLimits | None = None,
    prompt_estimate: int = 0,
    requested: int | None = None,
) -> int:
    """The most a request may generate, in tokens: the plan's cap; on a plan without one, the caller's own limit
    (`requested`), else the gateway's default; at most the model's maximum output, and at most what the context
    window leaves after the prompt estimate and CONTEXT_HEADROOM_TOKENS (never below 1: the estimate is not
    exact, so a nearly full window is left for the provider to judge).

    Raises ContextLengthExceededError (400) when the prompt estimate alone fills the model's context window.
    """
    cap = limits.max_output_tokens or requested or default_output_tokens
    if model is None:
        return cap
    if model.max_output_tokens is not None:
        cap = min(cap, model.max_output_tokens)
    if model.context_window is not None:
        if prompt_estimate >= model.context_window:
            raise ContextLengthExceededError(
                f"The prompt is estimated at {prompt_estimate} tokens, more than the model's context window of "
                f"{model.context_window}; shorten the conversation."
            )
        cap = max(1, min(cap, model.context_window - prompt_estimate - CONTEXT_HEADROOM_TOKENS))
    return cap


def capped_request(request: ChatRequest, cap: int) -> ChatRequest:
    """The request with its output limit clamped to `cap` (or, naming none, given `cap`): every provider sends
    the limit in each field its API has for it, so the model generates no more than the reservation counted."""
    limit = request.max_output_tokens
    if limit is not None and limit <= cap:
        return request
    return request.with_(max_output_tokens=cap)


def reserved_output(request: ChatRequest) -> int | None:
    """The output limit a request carries: what any provider might generate up to."""
    return request.max_output_tokens


@dataclass(frozen=True)
class Reservation:
    key_id: str
    tenant: str
    plan: str
    model: str
    windows: Windows
    made_at: datetime
    tokens: int
    usd: Decimal
    prompt_estimate: int
    # The counter of the key's requests in its plan's quota period, counted by the reservation (None: no quota).
    quota_counter: str | None = None


@dataclass(frozen=True)
class WindowTotals:
    """A key's budget windows as its usage item held them at the reservation (this request's reservation included
    when it was made; as refused when it was not): tokens this minute and this UTC day, requests this quota period.
    None: not known."""

    minute_tokens: int | None = None
    day_tokens: int | None = None
    period_requests: int | None = None


@dataclass(frozen=True)
class Settlement:
    """What a reservation turned into: its usage (None: the call used nothing) and whether it failed."""

    reservation: Reservation
    usage: Usage | None
    cost: Decimal
    failed: bool = False

    @property
    def token_delta(self) -> int:
        used = self.usage.total_tokens if self.usage else 0
        return used - self.reservation.tokens

    @property
    def usd_delta(self) -> Decimal:
        return self.cost - self.reservation.usd


@dataclass(frozen=True)
class Caps:
    """The largest window totals at which the reservation still fits: limit minus the reservation."""

    minute: int | None
    day: int | None
    usd: Decimal | None


class BudgetExceededError(RateLimitError):
    """429: a token or spend budget of the key is used up until its window resets."""

    default_code = "token_budget_exceeded"


class ReservationTooLargeError(InvalidRequestError):
    """400: the request alone needs more than a whole window allows; waiting cannot help."""

    default_code = "request_exceeds_budget"


@dataclass(frozen=True)
class Demand:
    """What a request may use at most: its estimated prompt (input) tokens and the output it may generate, and how
    to tell the caller to ask for less when that is more than a whole window (advice, and the parameter to change)."""

    prompt_tokens: int
    output_tokens: int
    advice: str = "lower max_tokens or shorten the prompt"
    param: str = "max_tokens"


def chat_demand(
    request: ChatRequest, limits: Limits, default_output_tokens: int, prompt_estimate: int | None = None
) -> Demand:
    """A chat request's worst case: the prompt estimate (`prompt_estimate` when the caller already made it) plus
    its output limit (else the plan's cap)."""
    prompt = estimate_prompt_tokens(request) if prompt_estimate is None else prompt_estimate
    return Demand(prompt, reserved_output(request) or output_cap(limits, default_output_tokens))


def plan_reservation(
    *,
    key_id: str,
    tenant: str,
    plan: str,
    model: str,
    demand: Demand,
    prices: Prices,
    limits: Limits,
    now: datetime,
) -> tuple[Reservation, Caps]:
    """The reservation for a request's demand, and the caps the usage store must check it against."""
    prompt, output = demand.prompt_tokens, demand.output_tokens
    tokens = prompt + output
    usd = prices.cost(prompt, output)
    for name, limit in (("per-minute", limits.tokens_per_minute), ("per-day", limits.tokens_per_day)):
        if limit is not None and tokens > limit:
            raise ReservationTooLargeError(
                f"This request may use up to {tokens} tokens ({prompt} estimated prompt + {output} output), more "
                f"than this API key's {name} budget of {limit}; {demand.advice}.",
                param=demand.param,
            )
    if limits.usd_per_month is not None and usd > limits.usd_per_month:
        raise ReservationTooLargeError(
            f"This request may cost up to ${usd:.6f}, more than this API key's monthly limit of "
            f"${limits.usd_per_month}; {demand.advice}.",
            param=demand.param,
        )
    reservation = Reservation(
        key_id=key_id,
        tenant=tenant,
        plan=plan,
        model=model,
        windows=Windows.at(now),
        made_at=now,
        tokens=tokens,
        usd=usd,
        prompt_estimate=prompt,
        quota_counter=quota_counter(limits.quota_period, now) if limits.requests_per_period else None,
    )
    caps = Caps(
        minute=None if limits.tokens_per_minute is None else limits.tokens_per_minute - tokens,
        day=None if limits.tokens_per_day is None else limits.tokens_per_day - tokens,
        usd=None if limits.usd_per_month is None else limits.usd_per_month - usd,
    )
    return reservation, caps


def exceeded_windows(caps: Caps, current: dict[Window, int | Decimal]) -> list[Window]:
    """Which windows refused the reservation, given their totals when it was refused."""
    found: list[Window] = []
    if caps.minute is not None and current.get("minute", 0) > caps.minute:
        found.append("minute")
    if caps.day is not None and current.get("day", 0) > caps.day:
        found.append("day")
    if caps.usd is not None and current.get("month", 0) > caps.usd:
        found.append("month")
    return found


def budget_exceeded(windows: Iterable[Window], limits: Limits, now: datetime) -> BudgetExceededError:
    """The 429 for refused windows; Retry-After is when the last of them resets."""
    windows = list(windows) or ["minute"]
    retry_after = max(seconds_until_reset(window, now) for window in windows)
    names = {
        "minute": f"tokens per minute ({limits.tokens_per_minute})",
        "day": f"tokens per day ({limits.tokens_per_day})",
        "month": f"USD per month ({limits.usd_per_month})",
    }
    code = "spend_limit_exceeded" if windows == ["month"] else None
    return BudgetExceededError(
        "This API key's budget is used up: "
        + ", ".join(names[w] for w in windows)
        + f". Retry after {math.ceil(retry_after)} s.",
        retry_after=retry_after,
        code=code,
    )
