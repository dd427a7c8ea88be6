"""The budget tree (tenant > team > key): caps per calendar window in each node's time zone, and the one refusal.

A request charges its worst case to every capped window of every node of its chain (key, its team, the team's
tenant) in one atomic step (strict mode: one transaction) and settles the difference afterwards. A window is part
of its counter's name (`day:2026-11-22@Asia/Tokyo`), so a new window is simply a counter nobody has written yet:
nothing runs at midnight. Money is in integer micro-dollars, so counters add exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Literal, get_args
from uuid import uuid4
from zoneinfo import ZoneInfo

from llm_gateway.errors import InvalidRequestError, RateLimitError

Scope = Literal["key", "team", "tenant"]
Period = Literal["day", "week", "month"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PERIODS: tuple[Period, ...] = get_args(Period)
MICROS_PER_USD = 1_000_000


def micro_usd(usd: Decimal) -> int:
    """Dollars as whole micro-dollars, rounded up: a reservation never counts less than it may cost."""
    return int((usd * MICROS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class NodeCap:
    """What a node may spend per `period`: tokens and micro-dollars (None: not capped)."""

    period: Period
    tokens: int | None = None
    micro_usd: int | None = None


@dataclass(frozen=True)
class BudgetNode:
    """A tenant, team or key and its caps; a team's `parent` is its tenant, a key's its team."""

    scope: Scope
    node_id: str
    parent: str | None = None
    time_zone: str = "UTC"
    caps: tuple[NodeCap, ...] = ()

    @property
    def ref(self) -> str:
        return node_ref(self.scope, self.node_id)


def node_ref(scope: Scope, node_id: str) -> str:
    """The counters' owner: `team#platform`."""
    return f"{scope}#{node_id}"


def window_bounds(period: Period, time_zone: str, now: datetime) -> tuple[str, datetime]:
    """The calendar window holding `now` in `time_zone`: its name (`week:2026-11-16@Europe/Paris`, weeks from
    Monday) and the instant it ends (UTC)."""
    local = now.astimezone(ZoneInfo(time_zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = midnight, midnight + timedelta(days=1)
    elif period == "week":
        start = midnight - timedelta(days=midnight.weekday())
        end = start + timedelta(days=7)
    else:
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    # Calendar arithmetic on wall-clock times, then back to the zone's real offset (a DST change in the window).
    end = end.replace(tzinfo=None).replace(tzinfo=ZoneInfo(time_zone))
    label = start.strftime("%Y-%m") if period == "month" else start.date().isoformat()
    return f"{period}:{label}@{time_zone}", end.astimezone(UTC)


@dataclass(frozen=True)
class Charge:
    """One capped window of one node that a reservation counts in: the counter (`owner`, `window`), its caps, and
    where the node sits (`scope`)."""

    scope: Scope
    owner: str
    window: str
    resets_at: datetime
    cap_tokens: int | None
    cap_micro_usd: int | None


@dataclass(frozen=True)
class ChainReservation:
    """A request's worst case charged to every capped window of its chain; `holder` is the key whose lease takes it
    (lease mode), `reservation_id` tells its open reservation from the others."""

    charges: tuple[Charge, ...]
    tokens: int
    micro_usd: int
    made_at: datetime
    holder: str = ""
    reservation_id: str = field(default_factory=lambda: uuid4().hex[:16])


@dataclass(frozen=True)
class Spent:
    """A counter's totals."""

    tokens: int = 0
    micro_usd: int = 0


@dataclass(frozen=True)
class ChainReserved:
    """The reservation is in; `spent` holds each charged counter's totals with it (by position in `charges`), or
    nothing when the backend's write returns no values (a DynamoDB transaction). Lease mode gives `left` instead:
    the tokens each charge may still reserve, as far as the key's lease knows (None: tokens not capped there)."""

    spent: tuple[Spent, ...] = ()
    left: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class ChainRefused:
    """The counter at `index` of the charges refused; `spent` is its totals as they were."""

    index: int
    spent: Spent


def plan_chain(
    chain: tuple[BudgetNode, ...], tokens: int, usd: Decimal, now: datetime, holder: str | None = None
) -> ChainReservation:
    """The charges of a request of `tokens` costing up to `usd` on `chain` (key first, tenant last): one per capped
    window of each node. A demand beyond a whole cap is refused here (400): waiting cannot help. `holder`: the key
    making it (default: the chain's key node)."""
    cost = micro_usd(usd)
    charges = []
    for node in chain:
        for cap in node.caps:
            if cap.tokens is None and cap.micro_usd is None:
                continue
            window, resets_at = window_bounds(cap.period, node.time_zone, now)
            if (cap.tokens is not None and tokens > cap.tokens) or (cap.micro_usd is not None and cost > cap.micro_usd):
                raise ReservationExceedsCapError(
                    f"This request may use up to {tokens} tokens (${Decimal(cost) / MICROS_PER_USD}), more than the "
                    f"{node.scope} {node.node_id!r} may use in a whole {cap.period} ({_cap_text(cap)}); lower "
                    "max_tokens or shorten the prompt.",
                    param="max_tokens",
                    code=f"{node.scope}_request_exceeds_budget",
                )
            charges.append(Charge(node.scope, node.ref, window, resets_at, cap.tokens, cap.micro_usd))
    if holder is None:
        holder = chain[0].ref if chain and chain[0].scope == "key" else ""
    return ChainReservation(tuple(charges), tokens, cost, now, holder)


def fits(charge: Charge, spent: Spent, tokens: int, micro: int) -> bool:
    """Whether `charge`'s counter at `spent` takes another reservation: it must stay within each cap, and a counter
    at its cap takes nothing more (not even a request that costs 0 micro-dollars), at every level alike."""
    if charge.cap_tokens is not None and spent.tokens + max(tokens, 1) > charge.cap_tokens:
        return False
    return charge.cap_micro_usd is None or spent.micro_usd + max(micro, 1) <= charge.cap_micro_usd


def _cap_text(cap: NodeCap) -> str:
    parts = []
    if cap.tokens is not None:
        parts.append(f"{cap.tokens} tokens")
    if cap.micro_usd is not None:
        parts.append(f"${Decimal(cap.micro_usd) / MICROS_PER_USD}")
    return " and ".join(parts) + f" per {cap.period}"


class ChainBudgetExceededError(RateLimitError):
    """429: a cap of the key, its team or its tenant is used up until its window resets."""

    default_code = "budget_exceeded"


class ReservationExceedsCapError(InvalidRequestError):
    """400: the request alone needs more than a node's whole cap."""

    default_code = "request_exceeds_budget"


def chain_refusal(reservation: ChainReservation, refused: ChainRefused) -> ChainBudgetExceededError:
    """The 429 naming the scope, its cap, what was spent and when the window resets. Retry-After is given only when
    the request would fit an empty window (always, as plan_chain refused the others; a cap lowered under the
    demand between the two is the exception)."""
    charge = reservation.charges[refused.index]
    now = reservation.made_at
    seconds = max(1.0, (charge.resets_at - now).total_seconds())
    fits_empty = fits(charge, Spent(), reservation.tokens, reservation.micro_usd)
    spent, caps = [], []
    if charge.cap_tokens is not None:
        caps.append(f"{charge.cap_tokens} tokens")
        spent.append(f"{refused.spent.tokens} tokens")
    if charge.cap_micro_usd is not None:
        caps.append(f"${Decimal(charge.cap_micro_usd) / MICROS_PER_USD}")
        spent.append(f"${Decimal(refused.spent.micro_usd) / MICROS_PER_USD}")
    owner = charge.owner.split("#", 1)[1]
    message = (
        f"The {charge.scope} {owner!r} budget is used up: cap {' and '.join(caps)} per "
        f"{charge.window.split(':', 1)[0]}, spent {' and '.join(spent)}; the window resets at "
        f"{charge.resets_at.isoformat()}" + (f" (retry after {math.ceil(seconds)} s)." if fits_empty else ".")
    )
    return ChainBudgetExceededError(
        message, retry_after=seconds if fits_empty else None, code=f"{charge.scope}_budget_exceeded", param=charge.scope
    )


def remaining_by_scope(reservation: ChainReservation, reserved: ChainReserved) -> dict[str, int]:
    """The tokens each scope may still reserve: the least left over its capped windows (after this reservation)."""
    left: dict[str, int] = {}
    if reserved.left:
        rooms = list(reserved.left)
    elif reserved.spent:
        rooms = [
            None if c.cap_tokens is None else c.cap_tokens - s.tokens
            for c, s in zip(reservation.charges, reserved.spent, strict=True)
        ]
    else:
        return left
    for charge, room in zip(reservation.charges, rooms, strict=True):
        if room is not None:
            floor = max(0, room)
            left[charge.scope] = min(floor, left.get(charge.scope, floor))
    return left


def remaining_headers(remaining: Mapping[str, int]) -> dict[str, str]:
    """`x-budget-remaining-tokens-team: 1200`, one per capped scope."""
    return {f"x-budget-remaining-tokens-{scope}": str(value) for scope, value in remaining.items()}
