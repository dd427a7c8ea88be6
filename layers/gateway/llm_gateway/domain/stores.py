"""The store ports: what the gateway needs from a database for key records and usage, whatever the backend.

Each port has a DynamoDB implementation (deployed: store/keys.py, store/usage.py) and an embedded SQLite one
(local: store/sqlite/); one contract suite per port (tests/contract/test_store_*.py) runs against both, so their
conditional semantics cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from llm_gateway.domain.budget import Caps, Reservation, Settlement, Window, WindowTotals
from llm_gateway.domain.budget_tree import BudgetNode, ChainRefused, ChainReservation, ChainReserved, Scope, Spent
from llm_gateway.domain.keys import KeyRecord, TokenLimits

# prompt_tokens counts every input token; cached_tokens (read from a prompt cache) and cache_write_tokens (written
# to one) are the parts of it billed at the cache's prices.
USAGE_FIELDS = (
    "requests",
    "failed",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_usd",
    "estimated",
)
# A day is rolled up once no request can settle into it any more: the API function runs at most 15 minutes
# (its timeout), so 20 minutes after the day ends.
SETTLEMENT_WINDOW = timedelta(minutes=20)


class KeyStoreError(Exception):
    """A key operation that cannot be done as asked."""


class KeyNotFoundError(KeyStoreError):
    pass


class KeyStateError(KeyStoreError):
    """The key is not in the state the operation needs (already revoked, id already taken...)."""


class KeyRecords(Protocol):
    """Key records by the SHA-256 of their secret; a rotated key has one record per secret, all with its id."""

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        """Strongly consistent: a revocation is visible to the very next lookup."""
        ...

    def get_by_id(self, key_id: str) -> KeyRecord:
        """The key's active record, else its newest; KeyNotFoundError when there is none."""
        ...

    def records_of(self, key_id: str) -> list[KeyRecord]:
        """Every record of the key, one per secret it has had, oldest first; empty for an unknown id."""
        ...

    def list(self, tenant: str | None = None) -> list[KeyRecord]:
        """Sorted by tenant, then creation."""
        ...

    def create(self, record: KeyRecord) -> None:
        """KeyStateError when a record with this secret exists."""
        ...

    def revoke(self, record: KeyRecord, at: datetime) -> KeyRecord:
        """KeyStateError when the record is not active."""
        ...

    def rotate(self, old: KeyRecord, new: KeyRecord, at: datetime, retiring: Sequence[KeyRecord] = ()) -> KeyRecord:
        """Write `new`, revoke `old` as of `at` (a later `at` is a grace period) and set `revoked_at` of each
        already revoked `retiring` record to `at`, atomically: all or none (KeyStateError)."""
        ...

    def end_grace(self, records: Sequence[KeyRecord], at: datetime) -> None:
        """Set `revoked_at` of these revoked records to `at`, atomically (KeyStateError when one is active)."""
        ...

    def update(self, record: KeyRecord, models: tuple[str, ...] | None, limits: TokenLimits) -> KeyRecord:
        """KeyNotFoundError when the record is gone."""
        ...

    def set_api_key_id(self, record: KeyRecord, api_key_id: str) -> KeyRecord: ...

    def set_plan(self, record: KeyRecord, plan: str) -> KeyRecord:
        """KeyNotFoundError when the record is gone."""
        ...

    def set_expiry(self, record: KeyRecord, expires_at: datetime | None) -> KeyRecord:
        """None: never expires; KeyNotFoundError when the record is gone."""
        ...

    def set_team(self, record: KeyRecord, team: str | None) -> KeyRecord:
        """Move the key to `team` in the budget tree (None: no team); KeyNotFoundError when the record is gone."""
        ...

    def delete(self, record: KeyRecord) -> None: ...


@dataclass(frozen=True)
class Reserved:
    """The reservation is in; `stale` names counters of past windows to prune at settlement (a backend that prunes
    by itself gives none); `totals` are the windows with this reservation in them, from the update itself."""

    stale: tuple[str, ...]
    totals: WindowTotals = field(default_factory=WindowTotals)


@dataclass(frozen=True)
class Refused:
    """A window refused the reservation; `current` holds the refusing totals, `totals` the windows as they were."""

    current: dict[Window, int | Decimal]
    totals: WindowTotals = field(default_factory=WindowTotals)


@dataclass(frozen=True)
class DailyUsage:
    key_id: str
    tenant: str
    plan: str
    day: date
    requests: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    # Requests whose usage is the gateway's estimate: the provider reported none.
    estimated: int = 0

    def figures(self) -> dict[str, int | Decimal]:
        """The day's figures by field name (USAGE_FIELDS)."""
        return {name: getattr(self, name) for name in USAGE_FIELDS}

    def plus(self, other: DailyUsage) -> DailyUsage:
        return replace(self, **{name: getattr(self, name) + getattr(other, name) for name in USAGE_FIELDS})


class UsageLedger(Protocol):
    """A key's budget windows and its usage per day.

    `reserve` is one atomic step: every capped window is at most its cap (limit minus this reservation) or the
    whole reservation is refused and nothing changes. `settle` replaces the reservation by the real usage and
    counts the request (served or failed); the caller settles each reservation once.
    """

    def reserve(self, reservation: Reservation, caps: Caps) -> Reserved | Refused: ...

    def settle(self, settlement: Settlement, stale: tuple[str, ...] = ()) -> None: ...

    def roll_up_finished_days(self, now: datetime) -> int:
        """Compact finished days' usage (a backend without anything to compact returns 0); reports are the same
        before and after."""
        ...

    def daily_usage(
        self, *, key_id: str | None = None, tenant: str | None = None, since: date | None = None
    ) -> list[DailyUsage]:
        """Usage per key and UTC day, oldest first (then tenant, key id); every given filter applies."""
        ...


@dataclass(frozen=True)
class StoredResponse:
    """A stored Responses API response: the key (and tenant) that made it, when it expires (epoch seconds) and its
    document (JSON text the dialect writes and reads; the store keeps it as it is)."""

    response_id: str
    key_id: str
    tenant: str
    created_at: int
    expires_at: int
    document: str


class ResponseStore(Protocol):
    """Stored responses by (key, id). A response belongs to the key that stored it: another key's id, an expired
    one and an unknown one are all the same miss, so a stranger learns nothing from asking."""

    def put(self, stored: StoredResponse) -> None: ...

    def get(self, key_id: str, tenant: str, response_id: str, now: int) -> StoredResponse | None:
        """None unless this key of this tenant stored it and it expires after `now`."""
        ...

    def delete(self, key_id: str, tenant: str, response_id: str, now: int) -> bool:
        """Delete it; False (nothing done) whenever `get` would give None."""


# The budget tree: nodes and their window counters.


class BudgetTree(Protocol):
    """Tenant and team nodes with their caps, and the counters of every node's capped windows.

    `reserve_chain` is one atomic step: every charged counter takes the reservation (`fits`) or none does and
    nothing changes; strict mode charges every counter in one transaction, lease mode the key's lease of them
    (domain/budget_lease.py). `settle_chain` replaces the reservation by the real usage.
    """

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused: ...

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        """Replace the reservation by `tokens` and `micro_usd` really used (0, 0 releases it)."""
        ...

    def spent(self, owner: str, window: str, now: datetime | None = None) -> Spent:
        """What the window `owner` (`team#platform`) `window` (`day:2026-11-22@Asia/Tokyo`) has spent: settled
        usage and live reservations, never a lease's unused part nor a reservation expired by `now` (default: the
        clock)."""
        ...

    def committed(self, owner: str, window: str) -> Spent:
        """What the window's counter has taken from its cap: `spent` plus what its leases hold unused (lease mode;
        strict mode has none). A refusal comes when this reaches the cap."""
        ...

    def put_node(self, node: BudgetNode) -> None:
        """Create or replace a tenant or team node."""
        ...

    def get_node(self, scope: Scope, node_id: str) -> BudgetNode | None: ...

    def list_nodes(self, scope: Scope) -> list[BudgetNode]:
        """Sorted by id."""
        ...


@dataclass(frozen=True)
class LeasedReserved:
    """Both in: the key's own windows (`key`, None when only the chain was asked) and its chain."""

    key: Reserved | None
    chain: ChainReserved


@runtime_checkable
class LeasedLedger(Protocol):
    """Lease mode's budget tree holding the key's own windows too: a request of a key with a chain reserves both in
    one atomic step and settles both in another (on DynamoDB one conditional UpdateItem each, of the key's budget
    item; store/budget_lease.py). `reserve_leased` refuses with the key's own windows' `Refused` or the chain's
    `ChainRefused` and then changes nothing; `settle_leased` is `UsageLedger.settle` and `BudgetTree.settle_chain`
    of the same request at once (`tokens`, `micro_usd`: what it really used), called once per reservation."""

    def reserve_leased(
        self, reservation: Reservation, caps: Caps, chain: ChainReservation
    ) -> LeasedReserved | Refused | ChainRefused: ...

    def settle_leased(
        self, settlement: Settlement, stale: tuple[str, ...], chain: ChainReservation, tokens: int, micro_usd: int
    ) -> None: ...


# Usage events: one record per finished request, and each finished day's breakdown.


@dataclass(frozen=True)
class UsageEvent:
    """What one finished request used, and whom it is for. `at` is when it finished (UTC); `team` and `plan` are the
    key's as the request saw them; `cost_micro_usd` is its cost in millionths of a dollar; `tags` are the allowed
    (name, value) pairs of its tags header, sorted by name (domain/attribution.py bounds every caller-chosen string).
    """

    request_id: str
    at: datetime
    key_id: str
    tenant: str
    plan: str
    model: str
    status: int
    team: str | None = None
    failed: bool = False
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    session_id: str | None = None
    end_user: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def day(self) -> date:
        return self.at.date()


# What an event group adds up, in this order (a breakdown stores each group's figures as a list of them).
EVENT_FIGURES = (
    "requests",
    "failed",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "cost_micro_usd",
)


@dataclass(frozen=True)
class EventGroup:
    """A key's events of one day that share every attribute a report groups by, and their summed figures
    (EVENT_FIGURES by name)."""

    tenant: str
    team: str | None
    plan: str
    model: str
    session_id: str | None
    end_user: str | None
    tags: tuple[tuple[str, str], ...]
    figures: tuple[int, ...]


class UsageEvents(Protocol):
    """Usage events per key and UTC day, and the breakdowns the daily rollup makes of finished days.

    `record` writes an event once: the same (key, request id, time) again changes nothing. Reports read a day's
    breakdown when it has been rolled up (`rolled_up_through`), its events otherwise.
    """

    def record(self, event: UsageEvent) -> None: ...

    def events(self, key_id: str, day: date) -> list[UsageEvent]:
        """The key's events of `day`, oldest first."""
        ...

    def put_breakdown(self, key_id: str, day: date, groups: list[EventGroup]) -> None:
        """Store (replace) the key's breakdown of `day`."""
        ...

    def breakdowns(self, key_id: str, since: date, until: date) -> dict[date, list[EventGroup]]:
        """The key's stored breakdowns of the days `since`..`until` (both included)."""
        ...

    def rolled_up_through(self) -> date | None:
        """The last day whose every key's breakdown is stored (None: no day yet)."""
        ...

    def set_rolled_up_through(self, day: date) -> None: ...
