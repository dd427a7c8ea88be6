"""Routing a chat or embedding request over a model's ordered targets: retries with jittered backoff, then fallbacks.

Everything happens inside one deadline that ends before API Gateway's limits (the streamed or non-streamed time
budget), so the caller always gets a clean answer from the gateway (502/504/429) rather than a cut connection.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from llm_gateway.domain.answers import Completion, StreamEvent
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.embeddings import EmbeddingRequest, EmbeddingResult
from llm_gateway.domain.ports import Deadline, Provider, closed_after
from llm_gateway.domain.registry import ModelEntry, Target
from llm_gateway.errors import (
    ConfigurationError,
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_target: int = 2
    base_delay_seconds: float = 0.25
    max_delay_seconds: float = 2.0
    # An attempt that cannot get at least this long is not started: it could only end in a timeout.
    min_attempt_seconds: float = 1.0


@dataclass(frozen=True)
class Failure:
    """One failed attempt, for logs and metrics."""

    target: Target
    attempt: int
    error: GatewayError


@dataclass
class Routed:
    """The outcome of routing: the target that answered and the failures before it."""

    target: Target
    failures: list[Failure] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        return any(f.target != self.target for f in self.failures)


@dataclass
class RoutedCompletion(Routed):
    completion: Completion | None = None


@dataclass
class RoutedEmbedding(Routed):
    result: EmbeddingResult | None = None


@dataclass
class RoutedStream(Routed):
    events: Iterator[StreamEvent] = field(default_factory=lambda: iter(()))


class RoutingError(Exception):
    """Every target failed: carries the error the caller gets and the failures that led to it."""

    def __init__(self, error: GatewayError, failures: list[Failure]) -> None:
        super().__init__(error.message)
        self.error = error
        self.failures = failures


class Router:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._providers = providers
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter

    def complete(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> RoutedCompletion:
        def attempt(provider: Provider, target: Target) -> Completion:
            return provider.complete(request, target, deadline, entry.traits_for(target))

        target, completion, failures = self._route(entry, deadline, attempt)
        return RoutedCompletion(target, failures, completion)

    def stream(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> RoutedStream:
        """Retries and fallbacks apply until the first event; after it the stream belongs to its target."""

        def attempt(provider: Provider, target: Target) -> Iterator[StreamEvent]:
            events = iter(provider.stream(request, target, deadline, entry.traits_for(target)))
            first = next(events, None)
            return events if first is None else _resumed(first, events)

        target, events, failures = self._route(entry, deadline, attempt)
        return RoutedStream(target, failures, events)

    def count_tokens(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> tuple[Target, int | None]:
        """The request's input tokens as the first target that answers counts them (None: it cannot count)."""

        def attempt(provider: Provider, target: Target) -> int | None:
            return provider.count_tokens(request, target, deadline, entry.traits_for(target))

        target, count, _ = self._route(entry, deadline, attempt)
        return target, count

    def embed(self, entry: ModelEntry, request: EmbeddingRequest, deadline: Deadline) -> RoutedEmbedding:
        """The request's vectors from the first target that answers, with the same retries and fallbacks as chat."""

        def attempt(provider: Provider, target: Target) -> EmbeddingResult:
            return provider.embed(request, target, deadline, entry.traits_for(target))

        target, result, failures = self._route(entry, deadline, attempt)
        return RoutedEmbedding(target, failures, result)

    def _route(
        self, entry: ModelEntry, deadline: Deadline, attempt: Callable[[Provider, Target], T]
    ) -> tuple[Target, T, list[Failure]]:
        failures: list[Failure] = []
        policy = self._policy
        for position, target in enumerate(entry.targets):
            provider = self._provider(target)
            has_next_target = position + 1 < len(entry.targets)
            for number in range(1, policy.attempts_per_target + 1):
                if failures and deadline.remaining() < policy.min_attempt_seconds:
                    raise RoutingError(self._final_error(failures, out_of_time=True), failures)
                try:
                    return target, attempt(provider, target), failures
                except GatewayError as error:
                    failures.append(Failure(target, number, error))
                    if not error.retryable and not isinstance(error, ProviderError):
                        # The request itself was refused (400 and the like): no target will take it.
                        raise RoutingError(error, failures) from None
                    if not error.retryable or number == policy.attempts_per_target:
                        break
                    if isinstance(error, ProviderRateLimitError) and has_next_target:
                        break  # a throttled target is better left alone while another can answer
                    delay = self._delay(number, error)
                    if deadline.remaining() - delay < policy.min_attempt_seconds:
                        break
                    self._sleep(delay)
        raise RoutingError(self._final_error(failures, out_of_time=False), failures)

    def _delay(self, number: int, error: GatewayError) -> float:
        """Full jitter over an exponential cap, never shorter than the provider's Retry-After."""
        policy = self._policy
        cap = min(policy.max_delay_seconds, policy.base_delay_seconds * 2.0 ** (number - 1))
        delay = float(self._jitter()) * cap
        if isinstance(error, ProviderRateLimitError) and error.retry_after:
            delay = max(delay, error.retry_after)
        return delay

    @staticmethod
    def _final_error(failures: list[Failure], out_of_time: bool) -> GatewayError:
        """What the caller gets when no target answered: a throttle anywhere is a 429, since retrying after
        Retry-After can succeed even when the targets after it were unavailable or misconfigured; then a 504
        when time ran out; else a 502 naming the last problem."""
        last = failures[-1].error
        throttles = [f.error for f in failures if isinstance(f.error, ProviderRateLimitError)]
        if throttles:
            retry_after = max(error.retry_after or 0 for error in throttles)
            return ProviderRateLimitError(
                "The model's providers are rate limiting the gateway; retry after the indicated time.",
                retry_after=retry_after or 1,
            )
        if out_of_time or isinstance(last, ProviderTimeoutError):
            return ProviderTimeoutError("The model did not answer within the gateway's time limit.")
        return ProviderError(f"The model is unavailable: {last.message}", code=last.code)

    def _provider(self, target: Target) -> Provider:
        try:
            return self._providers[target.provider]
        except KeyError:
            raise ConfigurationError(f"No provider '{target.provider}' is configured") from None


def _resumed(first: StreamEvent, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    """A provider's stream again from its first event, already read; closing it closes the provider's stream at once
    (an itertools.chain would leave that to the garbage collector)."""
    with closed_after(events):
        yield first
        yield from events
