"""OpenAI's rate-limit headers from a key's limits and the budget windows its reservation saw.

OpenAI sends six headers on every answer (https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers):
`x-ratelimit-limit-requests`, `-remaining-requests`, `-reset-requests`, `-limit-tokens`, `-remaining-tokens`,
`-reset-tokens`; the resets are durations in Go's notation ("1s", "6m0s"). The gateway fills them from what it
enforces:

- requests: the plan's usage-plan quota (API Gateway's requests per DAY, WEEK or MONTH), its reset the end of the
  quota period; remaining is the quota less the key's requests that reached a model this period, counted by the
  same update that reserves the tokens;
- tokens: the key's token budget whose window will refuse first (per minute or per UTC day); remaining is its limit
  less what the window holds, this request's reservation included (its prompt estimate plus its output cap, until
  the usage is settled).

No extra read: the counters come from the reservation's own answer. An answer that reserved nothing (the model list,
a request refused before its reservation) carries the limits and resets, without remaining counts.
"""

from __future__ import annotations

import math
from datetime import datetime

from llm_gateway.domain.budget import Limits, Window, WindowTotals, seconds_until_quota_reset, seconds_until_reset

LIMIT_REQUESTS = "x-ratelimit-limit-requests"
REMAINING_REQUESTS = "x-ratelimit-remaining-requests"
RESET_REQUESTS = "x-ratelimit-reset-requests"
LIMIT_TOKENS = "x-ratelimit-limit-tokens"
REMAINING_TOKENS = "x-ratelimit-remaining-tokens"
RESET_TOKENS = "x-ratelimit-reset-tokens"
HEADERS = (LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS, LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS)


def go_duration(seconds: float) -> str:
    """A duration as OpenAI writes it (Go's time.Duration): whole seconds, rounded up, as 45s, 6m0s, 16h7m3s."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rate_limit_headers(limits: Limits, totals: WindowTotals | None, now: datetime) -> dict[str, str]:
    """The x-ratelimit-* headers for a key's limits and, when a reservation was made, its windows' totals."""
    headers: dict[str, str] = {}
    if limits.requests_per_period:
        headers[LIMIT_REQUESTS] = str(limits.requests_per_period)
        if totals is not None and totals.period_requests is not None:
            headers[REMAINING_REQUESTS] = str(max(0, limits.requests_per_period - totals.period_requests))
        headers[RESET_REQUESTS] = go_duration(seconds_until_quota_reset(limits.quota_period, now))
    windows: list[tuple[Window, int, int | None]] = []
    if limits.tokens_per_minute:
        windows.append(("minute", limits.tokens_per_minute, totals.minute_tokens if totals else None))
    if limits.tokens_per_day:
        windows.append(("day", limits.tokens_per_day, totals.day_tokens if totals else None))
    if windows:
        known = [(window, limit, used) for window, limit, used in windows if used is not None]
        if known:
            # The window with the least left refuses first; on a tie, the shorter one.
            window, limit, used = min(known, key=lambda found: found[1] - (found[2] or 0))
            headers[LIMIT_TOKENS] = str(limit)
            headers[REMAINING_TOKENS] = str(max(0, limit - (used or 0)))
        else:
            window, limit, _ = windows[0]
            headers[LIMIT_TOKENS] = str(limit)
        headers[RESET_TOKENS] = go_duration(seconds_until_reset(window, now))
    return headers
