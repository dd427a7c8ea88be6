"""Token budgets and usage records around each model call: reserve before, settle after, never lose a record."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from llm_gateway.config import Settings
from llm_gateway.domain.answers import (
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    Usage,
    UsageReport,
)
from llm_gateway.domain.budget import (
    Caps,
    Demand,
    Limits,
    Reservation,
    ReservationTooLargeError,
    Settlement,
    WindowTotals,
    budget_exceeded,
    capped_request,
    chat_demand,
    exceeded_windows,
    output_cap,
    plan_reservation,
)
from llm_gateway.domain.budget_tree import (
    ChainRefused,
    ChainReservation,
    chain_refusal,
    micro_usd,
    node_ref,
    plan_chain,
    remaining_by_scope,
)
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.chain_nodes import ChainNodes
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens, estimated_usage, prompt_tokens_floor
from llm_gateway.domain.keys import utcnow
from llm_gateway.domain.ports import closed_after
from llm_gateway.domain.registry import ContextLimits, Prices
from llm_gateway.domain.stores import BudgetTree, LeasedLedger, Refused, Reserved, UsageLedger
from llm_gateway.errors import ContextLengthExceededError
from llm_gateway.observability import Owed, current_request, logger


class _Once:
    """A flag that one caller, of any number of threads, gets to raise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._raised = False

    @property
    def raised(self) -> bool:
        return self._raised

    def claim(self) -> bool:
        with self._lock:
            if self._raised:
                return False
            self._raised = True
            return True


@dataclass(frozen=True)
class Metered:
    """A reservation in the usage table, with the counters to prune when it is settled. It is settled once:
    the first settlement counts, any later one is a no-op."""

    reservation: Reservation
    prices: Prices
    stale: tuple[str, ...]
    totals: WindowTotals = field(default_factory=WindowTotals)
    # The same request's charges in the budget tree (None: its chain has no caps).
    chain: ChainReservation | None = None
    # Reserved with the chain in one step (lease mode's LeasedLedger), so settled with it in one too.
    leased: bool = False
    settled: _Once = field(default_factory=_Once, compare=False, repr=False)


class UsageMeter:
    def __init__(
        self,
        store: UsageLedger | None,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
        tree: BudgetTree | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock or utcnow
        self._tree = tree
        self._nodes = ChainNodes(tree, settings.auth_cache_seconds) if tree is not None else None

    def limits(self, caller: Caller) -> Limits:
        plan = self._settings.plan_limits.get(caller.plan)
        return Limits.of(caller.limits, plan.limits() if plan else None)

    def cap(
        self,
        request: ChatRequest,
        caller: Caller,
        model: ContextLimits | None = None,
        prompt_estimate: int | None = None,
    ) -> ChatRequest:
        """The request with its output limited to what the plan allows and the model can produce and fit (see
        `output_cap`): the limit the reservation then counts. `prompt_estimate`: the request's, when already made."""
        cap = output_cap(
            self.limits(caller),
            self._settings.default_output_tokens,
            model,
            estimate_prompt_tokens(request) if prompt_estimate is None else prompt_estimate,
            request.max_output_tokens,
        )
        return capped_request(request, cap)

    def refuse_oversized_prompt(
        self, request: ChatRequest, caller: Caller, model: ContextLimits | None, prices: Prices
    ) -> None:
        """Refuse, before the full prompt estimate, a request whose prompt alone is beyond the model's context window
        (400 context_length_exceeded) or beyond a whole token or spend window of the key (400
        request_exceeds_budget), as a cheap lower bound of the estimate (`prompt_tokens_floor`) shows: refusing it
        costs a small fraction of estimating it. A request within every limit by that bound goes on to the full
        estimate, which decides."""
        floor = prompt_tokens_floor(request)
        if model is not None and model.context_window is not None and floor >= model.context_window:
            raise ContextLengthExceededError(
                f"The prompt is at least {floor} tokens, more than the model's context window of "
                f"{model.context_window}; shorten the conversation."
            )
        if self._store is None:
            return  # no budgets without a usage store
        limits = self.limits(caller)
        for name, limit in (("per-minute", limits.tokens_per_minute), ("per-day", limits.tokens_per_day)):
            if limit is not None and floor > limit:
                raise ReservationTooLargeError(
                    f"This request's prompt alone is at least {floor} tokens, more than this API key's {name} "
                    f"budget of {limit}; shorten the prompt.",
                    param="messages",
                )
        if limits.usd_per_month is not None and prices.cost(floor, 0) > limits.usd_per_month:
            raise ReservationTooLargeError(
                f"This request's prompt alone costs at least ${prices.cost(floor, 0):.6f}, more than this API key's "
                f"monthly limit of ${limits.usd_per_month}; shorten the prompt.",
                param="messages",
            )

    def reserve(
        self, caller: Caller, model: str, prices: Prices, request: ChatRequest, prompt_estimate: int | None = None
    ) -> Metered | None:
        """Reserve a chat request's worst case (prompt estimate + output limit); see `reserve_demand`."""
        if self._store is None:
            return None
        demand = chat_demand(request, self.limits(caller), self._settings.default_output_tokens, prompt_estimate)
        return self.reserve_demand(caller, model, prices, demand)

    def reserve_demand(self, caller: Caller, model: str, prices: Prices, demand: Demand) -> Metered | None:
        """Reserve a request's worst case in one conditional update; a refused window is a 429 (or 400)."""
        if self._store is None:
            return None
        limits = self.limits(caller)
        now = self._clock()
        reservation, caps = plan_reservation(
            key_id=caller.key_id,
            tenant=caller.tenant,
            plan=caller.plan,
            model=model,
            demand=demand,
            prices=prices,
            limits=limits,
            now=now,
        )
        chain, outcome = self._reserve_with_chain(caller, reservation, caps)
        # The windows as the reservation's own answer holds them: the rate-limit headers read them.
        current_request().window_totals = outcome.totals
        if isinstance(outcome, Refused):
            current_request().budget_rejected = True
            windows = exceeded_windows(caps, outcome.current)
            logger.info("token budget exceeded", extra={"windows": windows, "reserved_tokens": reservation.tokens})
            raise budget_exceeded(windows, limits, now)
        leased = chain is not None and isinstance(self._tree, LeasedLedger)
        metered = Metered(reservation, prices, outcome.stale, outcome.totals, chain, leased=leased)
        # Released as failed should nothing else settle it (see RequestRecord.unsettled).
        self.owe(metered, lambda: self.settle(metered, None, failed=True))
        return metered

    def _reserve_with_chain(
        self, caller: Caller, reservation: Reservation, caps: Caps
    ) -> tuple[ChainReservation | None, Reserved | Refused]:
        """The key's own windows and its chain's, in one step where the tree holds both (LeasedLedger), else the
        chain first and the key's windows after it (the chain released when they refuse or fail)."""
        assert self._store is not None  # nosec B101 # reserve_demand returns first without one
        chain = self._plan_chain(caller, reservation.tokens, reservation.usd, reservation.made_at)
        if chain is not None and isinstance(self._tree, LeasedLedger):
            both = self._tree.reserve_leased(reservation, caps, chain)
            if isinstance(both, ChainRefused):
                raise self._chain_refused(chain, both)
            if isinstance(both, Refused):
                return None, both
            current_request().budget_remaining = remaining_by_scope(chain, both.chain)
            assert both.key is not None  # nosec B101 # the key's windows were asked
            return chain, both.key
        if chain is not None:
            chain = self._reserve_chain(chain)
        try:
            outcome = self._store.reserve(reservation, caps)
        except BaseException:
            self._release_chain(chain)
            raise
        if isinstance(outcome, Refused):
            self._release_chain(chain)  # the key's own windows refused
        return chain, outcome

    def _plan_chain(self, caller: Caller, tokens: int, usd: Decimal, now: datetime) -> ChainReservation | None:
        """The request's charges on every capped window of the caller's chain (None: it has none); a request beyond
        a whole cap is a 400 here."""
        if self._tree is None or self._nodes is None:
            return None
        chain = plan_chain(self._nodes.chain(caller), tokens, usd, now, node_ref("key", caller.key_id))
        return chain if chain.charges else None

    @staticmethod
    def _chain_refused(chain: ChainReservation, refused: ChainRefused) -> Exception:
        current_request().budget_rejected = True
        error = chain_refusal(chain, refused)
        logger.info("budget exceeded", extra={"scope": chain.charges[refused.index].scope, "code": error.code})
        return error

    def _reserve_chain(self, chain: ChainReservation) -> ChainReservation:
        """Charge the request to every capped window of the caller's chain in one atomic step (the key's rooms, or
        in strict mode every window at once), or raise the refusal naming the scope (429)."""
        assert self._tree is not None  # nosec B101 # a chain is planned only with a tree
        outcome = self._tree.reserve_chain(chain)
        if isinstance(outcome, ChainRefused):
            raise self._chain_refused(chain, outcome)
        current_request().budget_remaining = remaining_by_scope(chain, outcome)
        return chain

    def _release_chain(self, chain: ChainReservation | None, tokens: int = 0, micro: int = 0) -> None:
        """Settle the chain's charge to what was used (nothing: released). A failure is logged, not raised: the
        charge then stays counted until its windows end, which can only refuse too early, never overspend."""
        if chain is None or self._tree is None:
            return
        try:
            self._tree.settle_chain(chain, tokens, micro)
        except Exception:
            current_request().usage_record_failures += 1
            logger.exception(
                "budget tree settlement failed",
                extra={
                    "charges": [f"{c.owner} {c.window}" for c in chain.charges],
                    "tokens": tokens,
                    "micro_usd": micro,
                },
            )

    @staticmethod
    def owe(metered: Metered, settle: Callable[[], None]) -> None:
        """Have the current request run `settle` once its response is over, unless `metered` is settled by then: the
        newest such settlement of a reservation is the one that runs (RequestRecord.unsettled)."""
        current_request().unsettled.append(Owed(lambda: metered.settled.raised, settle))

    def settle(self, metered: Metered | None, usage: Usage | None, *, failed: bool = False) -> None:
        """Record what the call used, once per reservation (a later call for the same one does nothing). A failure
        here is logged with the whole record and metered, not raised: the caller already has the answer, and the
        log line is the record of last resort."""
        if metered is not None and not metered.settled.claim():
            return
        record = current_request()
        if usage is not None:
            record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            record.cached_tokens, record.cache_write_tokens = usage.cached_tokens, usage.cache_write_tokens
            record.reasoning_tokens = usage.reasoning_tokens
            record.usage_estimated = usage.estimated
        if metered is None:
            return
        reservation = metered.reservation
        settlement = Settlement(
            reservation,
            usage,
            cost(metered.prices, usage) if usage else Decimal(0),
            failed,
        )
        current_request().cost_usd = settlement.cost
        store = self._store
        if store is None:
            # Nothing was reserved without a store; there is nothing to settle.
            return
        tokens, micro = usage.total_tokens if usage else 0, micro_usd(settlement.cost)
        try:
            if metered.leased and metered.chain is not None and isinstance(self._tree, LeasedLedger):
                self._tree.settle_leased(settlement, metered.stale, metered.chain, tokens, micro)
            else:
                self._release_chain(metered.chain, tokens, micro)
                store.settle(settlement, metered.stale)
        except Exception:
            current_request().usage_record_failures += 1
            logger.exception(
                "usage record failed",
                extra={
                    "key_id": reservation.key_id,
                    "tenant": reservation.tenant,
                    "plan": reservation.plan,
                    "model": reservation.model,
                    "period": reservation.windows.month,
                    "day": reservation.windows.day,
                    "minute": reservation.windows.minute,
                    "reserved_tokens": reservation.tokens,
                    "reserved_usd": str(reservation.usd),
                    "prompt_tokens": usage.prompt_tokens if usage else 0,
                    "completion_tokens": usage.completion_tokens if usage else 0,
                    "cost_usd": str(settlement.cost),
                    "failed": failed,
                },
            )

    def metered_stream(self, events: Iterator[StreamEvent], metered: Metered | None) -> Iterator[StreamEvent]:
        """Pass the events through and settle when the stream ends, however it ends, also when it is never read.

        A stream cut after it began has no usage report; what it already produced was billed, so it is
        recorded as an estimate (`estimated_usage`). A stream the caller abandoned (the consumer closed this
        generator, or never read it) is a request served, not a failure; closing it closes the provider's
        stream first, so no more tokens are generated for nobody.
        """
        produced: list[str] = []
        stream = self._metered_events(events, metered, produced)
        if metered is not None:

            def abandoned() -> None:
                # A generator closed before its first event runs none of its code: close the provider's stream
                # here, and settle what the reservation estimated for the prompt.
                stream.close()
                with closed_after(events):
                    self.settle(metered, estimated_usage(metered.reservation.prompt_estimate, produced))

            self.owe(metered, abandoned)
        return stream

    def _metered_events(
        self, events: Iterator[StreamEvent], metered: Metered | None, produced: list[str]
    ) -> Generator[StreamEvent, None, None]:
        usage: Usage | None = None
        completed = False
        abandoned = False
        try:
            with closed_after(events):
                for event in events:
                    if isinstance(event, UsageReport):
                        usage = event.usage
                    elif isinstance(event, TextDelta | ReasoningDelta):
                        produced.append(event.text)
                    elif isinstance(event, ToolCallArgumentsDelta):
                        produced.append(event.arguments)
                    yield event
            completed = True
        except GeneratorExit:
            abandoned = True
            raise
        finally:
            if usage is None and metered is not None:
                usage = estimated_usage(metered.reservation.prompt_estimate, produced)
                logger.warning(
                    "stream ended without usage; recording an estimate",
                    extra={"estimated": True, "abandoned": abandoned},
                )
            self.settle(metered, usage, failed=not (completed or abandoned))


def cost(prices: Prices, usage: Usage) -> Decimal:
    """USD for a call's usage at the model's prices, cache reads and writes at theirs."""
    return prices.cost(
        usage.prompt_tokens,
        usage.completion_tokens,
        cache_read_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
