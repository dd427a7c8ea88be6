"""Routing over a model's targets: retries with jittered backoff inside the time budget, then fallbacks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.domain.answers import Completion, StreamEvent, TextDelta, Usage
from llm_gateway.domain.conversation import ChatRequest, TextBlock
from llm_gateway.domain.ports import Deadline, Provider
from llm_gateway.domain.registry import ModelEntry, ModelTraits, Target
from llm_gateway.domain.routing import RetryPolicy, Router, RoutingError
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
    TargetMisconfiguredError,
)
from tests.fakes.requests import openai_chat

REQUEST = openai_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
OK = Completion((TextBlock("ok"),), "end_turn", Usage(1, 1))


class Scripted(Provider):
    """Answers each call with the next scripted outcome: a Completion or an error to raise."""

    name = "scripted"

    def __init__(self, *outcomes: Completion | GatewayError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        self.calls.append(target.model_id)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        self.calls.append(target.model_id)
        outcome = self.outcomes.pop(0)

        def events() -> Iterator[StreamEvent]:
            if isinstance(outcome, GatewayError):
                raise outcome
            yield TextDelta("a")
            raise ProviderError("dropped mid-stream")

        return events()


class Clock:
    """A deadline and sleep that advance together, so time budgets are tested without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("llm_gateway.domain.ports.time.monotonic", lambda: clock.now)
    return clock


def entry(*model_ids: str) -> ModelEntry:
    return ModelEntry(targets=tuple(Target(provider="echo", model_id=m) for m in model_ids))


def router(provider: Provider, clock: Clock, jitter: float = 0.5, **policy: Any) -> Router:
    return Router({"echo": provider}, RetryPolicy(**policy), sleep=clock.sleep, jitter=lambda: jitter)


def test_a_5xx_is_retried_on_the_same_target_with_jittered_backoff(clock: Clock) -> None:
    provider = Scripted(ProviderError("503"), OK)
    routed = router(provider, clock, jitter=0.5).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert (routed.target.model_id, routed.completion, provider.calls) == ("a", OK, ["a", "a"])
    assert clock.slept == [0.5 * 0.25]
    assert [f.error.message for f in routed.failures] == ["503"]
    assert not routed.fell_back


def test_backoff_grows_exponentially_to_its_cap(clock: Clock) -> None:
    provider = Scripted(ProviderError("1"), ProviderError("2"), ProviderError("3"), ProviderError("4"), OK)
    router(provider, clock, jitter=1.0, attempts_per_target=5, max_delay_seconds=1.0).complete(
        entry("a"), REQUEST, Deadline.after(26)
    )
    assert clock.slept == [0.25, 0.5, 1.0, 1.0]


def test_a_timeout_falls_over_to_the_next_target(clock: Clock) -> None:
    provider = Scripted(ProviderTimeoutError("slow"), ProviderTimeoutError("slow"), OK)
    routed = router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert (routed.target.model_id, provider.calls) == ("b", ["a", "a", "b"])
    assert routed.fell_back


def test_a_throttled_target_is_left_for_the_next_one_at_once(clock: Clock) -> None:
    provider = Scripted(ProviderRateLimitError("429", retry_after=10), OK)
    routed = router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert (routed.target.model_id, clock.slept) == ("b", [])


def test_the_last_target_is_retried_after_its_retry_after(clock: Clock) -> None:
    provider = Scripted(ProviderRateLimitError("429", retry_after=3), OK)
    router(provider, clock).complete(entry("a"), REQUEST, Deadline.after(26))
    assert clock.slept == [3]


def test_every_target_throttled_is_a_429_with_the_longest_retry_after(clock: Clock) -> None:
    provider = Scripted(ProviderRateLimitError("429", retry_after=2), ProviderRateLimitError("429", retry_after=30))
    with pytest.raises(RoutingError) as failed:
        router(provider, clock, attempts_per_target=1).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    error = failed.value.error
    assert (error.status, error.headers["Retry-After"]) == (429, "30")
    assert len(failed.value.failures) == 2


def test_a_request_the_provider_refuses_is_not_retried_anywhere(clock: Clock) -> None:
    provider = Scripted(ProviderRequestError("bad tool schema", param="tools"))
    with pytest.raises(RoutingError) as failed:
        router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert isinstance(failed.value.error, ProviderRequestError)
    assert (failed.value.error.status, failed.value.error.param) == (400, "tools")
    assert provider.calls == ["a"]


def test_a_refusal_after_failovers_keeps_the_earlier_failures(clock: Clock) -> None:
    provider = Scripted(ProviderError("502"), ProviderError("502"), ProviderRequestError("context too long"))
    with pytest.raises(RoutingError) as failed:
        router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert failed.value.error.status == 400
    assert [(f.target.model_id, f.error.status) for f in failed.value.failures] == [("a", 502), ("a", 502), ("b", 400)]


def test_a_misconfigured_target_is_skipped_without_retries(clock: Clock) -> None:
    provider = Scripted(ProviderError("credentials rejected", retryable=False), OK)
    routed = router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert (routed.target.model_id, provider.calls, clock.slept) == ("b", ["a", "b"], [])


def test_all_targets_down_is_a_502_naming_the_last_problem(clock: Clock) -> None:
    provider = Scripted(*[ProviderError("upstream 500", code="upstream_error")] * 4)
    with pytest.raises(RoutingError) as failed:
        router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    assert (failed.value.error.status, failed.value.error.code) == (502, "upstream_error")
    assert "upstream 500" in failed.value.error.message
    assert provider.calls == ["a", "a", "b", "b"]


def test_no_attempt_starts_without_time_for_it_and_running_out_is_a_504(clock: Clock) -> None:
    provider = Scripted(ProviderError("500"), ProviderError("500"), OK)
    deadline = Deadline.after(1.5)
    clock.now = 0.6  # the first attempt used 0.6 s; a retry would have less than min_attempt_seconds left
    with pytest.raises(RoutingError) as failed:
        router(provider, clock, jitter=0.0).complete(entry("a", "b"), REQUEST, deadline)
    assert failed.value.error.status == 504
    assert provider.calls == ["a"]


def test_stream_falls_over_before_the_first_event_but_not_after(clock: Clock) -> None:
    provider = Scripted(ProviderError("down"), ProviderError("down"), OK)
    routed = router(provider, clock).stream(entry("a", "b"), REQUEST, Deadline.after(26))
    assert routed.target.model_id == "b"
    events = routed.events
    assert next(events) == TextDelta("a")
    with pytest.raises(ProviderError, match="dropped mid-stream"):
        list(itertools.islice(events, 5))
    assert provider.calls == ["a", "a", "b"], "no retry once the stream has begun"


def test_a_misconfigured_last_target_after_a_throttled_one_is_a_429_not_the_callers_fault(clock: Clock) -> None:
    provider = Scripted(
        ProviderRateLimitError("429", retry_after=7),
        TargetMisconfiguredError("on-demand not supported", code="upstream_inference_profile_required"),
    )
    with pytest.raises(RoutingError) as failed:
        router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    error = failed.value.error
    assert (error.status, error.code, error.headers["Retry-After"]) == (429, "upstream_rate_limited", "7")
    assert provider.calls == ["a", "b"], "neither target is retried: one is throttled, the other cannot work"


def test_misconfigured_targets_only_are_a_502_naming_the_fault(clock: Clock) -> None:
    provider = Scripted(
        TargetMisconfiguredError("no access", code="upstream_access_denied"),
        TargetMisconfiguredError("unknown model id", code="upstream_model_not_found"),
    )
    with pytest.raises(RoutingError) as failed:
        router(provider, clock).complete(entry("a", "b"), REQUEST, Deadline.after(26))
    error = failed.value.error
    assert (error.status, error.code, error.type) == (502, "upstream_model_not_found", "api_error")
    assert provider.calls == ["a", "b"]


def test_an_errors_own_type_replaces_the_class_type_in_the_body() -> None:
    error = ProviderRequestError("too long", param="messages", code="context_length_exceeded", error_type="x_error")
    assert error_body(error) == {
        "error": {"message": "too long", "type": "x_error", "param": "messages", "code": "context_length_exceeded"}
    }
    assert error_body(ProviderRequestError("bad"))["error"]["type"] == "invalid_request_error"
