"""Token budgets: what a request may reserve, in which windows, and what the caller is told when it may not.

A request reserves its worst case (prompt estimate + the output cap) in the key's minute, day and month
windows before the provider is called, and settles to the real usage afterwards. Windows are fixed and in
UTC: a minute, a day, a month.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from llm_gateway.domain.conversation import ChatRequest, DocumentBlock, ImageBlock, OpaqueBlock, Usage
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.domain.registry import ContextLimits, Prices
from llm_gateway.domain.tokens import document_tokens, estimate_text_tokens, image_tokens, text_tokens_floor
from llm_gateway.errors import ContextLengthExceededError, InvalidRequestError, RateLimitError

Window = Literal["minute", "day", "month"]
# The usage item's per-period request counters (quota_2026-11-22) begin with this.
QUOTA_PREFIX = "quota_"
# API Gateway's usage-plan quota periods (https://docs.aws.amazon.com/apigateway/latest/api/API_QuotaSettings.html).
QuotaPeriod = Literal["DAY", "WEEK", "MONTH"]
# The chat format's framing: 3 tokens per message (role and separators) and 1 more for a `name`, plus 3 that
# prime the reply (OpenAI's cookbook, "How to count tokens with tiktoken":
# https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken).
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
# Enough of a data URL's base64 to reach the image's dimensions (a JPEG's frame header follows its metadata).
IMAGE_HEADER_BASE64_CHARS = 65536
# Base64 data inside content blocks the gateway does not interpret (input_audio...): see _opaque_tokens.
LONG_DATA_CHARS = 1024
BASE64_CHARS_PER_TOKEN = 1000
_BASE64_PREFIX = re.compile(r"[A-Za-z0-9+/=\s]+")
# A PDF's page objects ("/Type /Page", not the "/Type /Pages" tree nodes).
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-z])")
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


# Request fields that are no model input: everything else (tools, response_format and its JSON schema,
# vendor extras passed through to OpenAI-compatible upstreams) is read by the model and billed as prompt.
_NOT_INPUT = frozenset({"user", "metadata", "n", "store", "service_tier", "prompt_cache_key", "safety_identifier"})


def _read_texts(request: ChatRequest) -> list[str]:
    """The texts the model reads: the conversation's, and the JSON of tools, stop sequences and other fields."""
    texts = list(request.texts())
    tools = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in request.tools]
    read = {name: value for name, value in request.extra.items() if name not in _NOT_INPUT and value is not None}
    texts += [json.dumps(part, ensure_ascii=False, default=str) for part in (tools, read, list(request.stop)) if part]
    return texts


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """An upper bound of the prompt's tokens (see `domain/tokens.py` for the bound and how it is measured): the
    conversation's text and every other field the model reads (tool definitions, response_format schemas, vendor
    extras, content blocks of kinds the gateway does not interpret), plus TOKENS_PER_MESSAGE per message (the
    system prompt is one) and REPLY_PRIMING_TOKENS; each image by its size (read from its header; a remote or
    unreadable image counts as the largest); each inline document by its pages."""
    texts = _read_texts(request)
    tokens = sum(estimate_text_tokens(text) for text in texts)
    for block in request.blocks():
        if isinstance(block, ImageBlock):
            detail = block.extra.get("detail")
            tokens += image_tokens(_image_size(block), detail if isinstance(detail, str) else None)
        elif isinstance(block, DocumentBlock) and block.base64 is not None:
            tokens += _document_tokens(block.media_type, block.base64)
        elif isinstance(block, OpaqueBlock):
            tokens += _opaque_tokens(block.data)
    messages = len(request.messages) + (1 if request.system else 0)
    return tokens + TOKENS_PER_MESSAGE * messages + REPLY_PRIMING_TOKENS


def estimated_usage(prompt_tokens: int, produced: Iterable[str]) -> Usage:
    """Usage for a call its provider did not meter: `prompt_tokens` (the request's `estimate_prompt_tokens`, as its
    reservation counted it) and the text estimate of what the model `produced` (text, reasoning, tool names and
    arguments). Both bound real tokenizers from above, so an unmetered call is never recorded as cheaper than it
    was; the usage is marked `estimated`."""
    return Usage(prompt_tokens, sum(estimate_text_tokens(text) for text in produced), estimated=True)


def prompt_tokens_floor(request: ChatRequest) -> int:
    """A lower bound of `estimate_prompt_tokens(request)` at a fraction of its cost (`text_tokens_floor` of the same
    texts; images, documents and opaque blocks counted as nothing): a request whose floor is beyond a limit is
    beyond it, whatever the full estimate says."""
    messages = len(request.messages) + (1 if request.system else 0)
    tokens = sum(text_tokens_floor(text) for text in _read_texts(request))
    return tokens + TOKENS_PER_MESSAGE * messages + REPLY_PRIMING_TOKENS


def _decoded(data: str, limit: int | None = None) -> bytes:
    """The bytes of base64 `data` (its first `limit` characters), b"" when it is not base64."""
    encoded = "".join(data[:limit].split()) if limit else "".join(data.split())
    try:
        return base64.b64decode(encoded[: len(encoded) // 4 * 4])
    except ValueError:
        return b""


def _image_size(block: ImageBlock) -> tuple[int, int] | None:
    """(width, height) of an inline image from its header, None for a remote URL or an unknown format."""
    from llm_gateway.domain.images import image_dimensions

    data = block.base64
    if data is None and block.url is not None and block.url.startswith("data:") and ";base64," in block.url:
        data = block.url.split(";base64,", 1)[1]
    if data is None:
        return None
    return image_dimensions(_decoded(data, IMAGE_HEADER_BASE64_CHARS))


def _document_tokens(media_type: str | None, data: str) -> int:
    """A PDF by its pages (Claude reads each as text and as an image); a plain-text document as its text; any
    other format (Word, Excel...) as text of one token per byte, which its compressed XML never exceeds."""
    raw = _decoded(data)
    if media_type == "application/pdf":
        return document_tokens(max(1, len(_PDF_PAGE.findall(raw))))
    if media_type is not None and media_type.startswith("text/"):
        return estimate_text_tokens(raw.decode("utf-8", "replace"))
    return len(raw)


def _opaque_tokens(value: object) -> int:
    """A content block the gateway does not interpret, as the text of its JSON, except long base64 data (audio,
    files): about one token per 1,000 characters, above what audio models charge (OpenAI's gpt-4o audio input:
    about 10 tokens a second; a second of 32 kbit/s audio is 5,300 base64 characters)."""
    if isinstance(value, str):
        if len(value) >= LONG_DATA_CHARS and _BASE64_PREFIX.fullmatch(value[:LONG_DATA_CHARS]):
            return math.ceil(len(value) / BASE64_CHARS_PER_TOKEN)
        return estimate_text_tokens(value)
    if isinstance(value, dict):
        return sum(estimate_text_tokens(str(name)) + _opaque_tokens(inner) for name, inner in value.items())
    if isinstance(value, list):
        return sum(_opaque_tokens(inner) for inner in value)
    return estimate_text_tokens(json.dumps(value, default=str))


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
