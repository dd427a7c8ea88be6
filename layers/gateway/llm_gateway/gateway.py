"""The gateway's use cases wired to their adapters: what each API surface calls, in the conversation model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from llm_gateway.config import Settings, get_registry, get_settings
from llm_gateway.domain.answers import Completion, StreamEvent, Usage
from llm_gateway.domain.attribution import MAX_LENGTH, allowed_tag_names, end_user, session_id, tags
from llm_gateway.domain.budget import Demand
from llm_gateway.domain.budget_tree import micro_usd
from llm_gateway.domain.caller import ApiRequest, Caller
from llm_gateway.domain.chat import ChatService
from llm_gateway.domain.conversation import ChatRequest, ContentBlock, TextBlock
from llm_gateway.domain.embeddings import (
    EmbeddingRequest,
    EmbeddingResult,
    estimate_input_tokens,
    fit_embedding_request,
)
from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.ports import Deadline, Provider
from llm_gateway.domain.registry import ModelEntry
from llm_gateway.domain.routing import Failure, Routed, Router, RoutingError
from llm_gateway.domain.stores import UsageEvent, UsageEvents
from llm_gateway.errors import GatewayError, ProviderRateLimitError
from llm_gateway.metering import Metered, UsageMeter
from llm_gateway.observability import RequestRecord, current_request, logger

T = TypeVar("T", bound=Routed)
# Time kept back from the Lambda function's own timeout to answer and record usage after the model.
RESPONSE_MARGIN_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    """A whole answer: the completion, the target that gave it (provider/model id), and the settlement of its
    usage, to run once the answer is out (the caller need not wait for the usage record)."""

    completion: Completion
    target: str
    settle: Callable[[], None]


@dataclass(frozen=True)
class Embedded:
    """The vectors of an embedding request, the target that gave them, and the settlement of their usage."""

    result: EmbeddingResult
    target: str
    settle: Callable[[], None]


@dataclass(frozen=True)
class Streamed:
    """A streamed answer: its events as the model produces them (usage settled when they end, however they
    end) and the target that streams it."""

    events: Iterator[StreamEvent]
    target: str


def attribute(record: RequestRecord, api: ApiRequest, extra: Mapping[str, Any], settings: Settings) -> None:
    """The request's team, Claude Code session, end user and tags, for its log line and usage event; a 400
    (InvalidRequestError) for tags the operator does not allow (domain/attribution.py `tags`)."""
    record.team = api.caller.team
    record.session_id = session_id(api.headers)
    record.end_user = end_user(extra)
    record.tags = tags(api.headers, allowed_tag_names(settings.allowed_tags))


# Operator-chosen names (tenant, team, plan, model) and API Gateway's request id, bounded in a usage event as the
# caller-chosen ones are (domain/attribution.py MAX_LENGTH), so that its item stays under 800 bytes.
MAX_NAME_LENGTH = 48


def usage_event(record: RequestRecord, sent_status: int, request_id: str, at: datetime) -> UsageEvent | None:
    """The usage event of a finished request that named its key (None for one that did not get that far):
    its status is a failed stream's own, its cost rounded up to a micro-dollar."""
    if record.key_id is None or record.tenant is None:
        return None
    status = record.stream_error_status or sent_status

    def name(value: str | None) -> str | None:
        return value[:MAX_NAME_LENGTH] if value else None

    return UsageEvent(
        request_id=request_id[:MAX_NAME_LENGTH],
        at=at,
        key_id=record.key_id[:MAX_NAME_LENGTH],
        tenant=record.tenant[:MAX_NAME_LENGTH],
        plan=record.plan[:MAX_NAME_LENGTH],
        model=record.model[:MAX_NAME_LENGTH],
        status=status,
        team=name(record.team),
        failed=status >= 400,
        prompt_tokens=record.prompt_tokens,
        cached_tokens=record.cached_tokens,
        cache_write_tokens=record.cache_write_tokens,
        completion_tokens=record.completion_tokens,
        cost_micro_usd=micro_usd(record.cost_usd),
        session_id=record.session_id[:MAX_LENGTH] if record.session_id else None,
        end_user=record.end_user[:MAX_LENGTH] if record.end_user else None,
        tags=record.tags,
    )


@lru_cache(maxsize=1)
def usage_events_store() -> UsageEvents | None:
    """The usage events store of this execution environment (None: the settings name none)."""
    from llm_gateway.store.factory import usage_events

    return usage_events(get_settings())


def record_usage_event(record: RequestRecord, sent_status: int, request_id: str) -> None:
    """Write the finished request's usage event, once its answer is out (the caller does not wait for it). A
    failure is logged with the event, not raised: the answer is already sent."""
    store = usage_events_store()
    event = usage_event(record, sent_status, request_id, datetime.now(UTC)) if store is not None else None
    if store is None or event is None:
        return
    try:
        store.record(event)
    except Exception:
        logger.exception("usage event failed", extra={"usage_event": repr(event)})


class Gateway:
    def __init__(
        self, chat: ChatService, meter: UsageMeter, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self._chat = chat
        self._meter = meter
        self._settings = settings
        self.clock = clock

    @property
    def settings(self) -> Settings:
        return self._settings

    def complete(self, request: ChatRequest, api: ApiRequest) -> Answer:
        """Admit, reserve, route and answer a chat request; the reservation is released if it fails."""
        entry, request, metered = self._admit(request, api)
        deadline = self._deadline(api, streamed=False)
        routed = self._route(lambda: self._chat.complete(entry, request, deadline), metered)
        completion = routed.completion
        if completion is None:
            raise GatewayError("The provider gave no completion.")
        self._owed(metered, completion.usage)
        return Answer(completion, routed.target.label, lambda: self._meter.settle(metered, completion.usage))

    def stream(self, request: ChatRequest, api: ApiRequest) -> Streamed:
        """Admit, reserve and route a chat request up to its first event (retries and fallbacks happen before
        it); the rest of the events follow as the model produces them."""
        entry, request, metered = self._admit(request, api)
        deadline = self._deadline(api, streamed=True)
        routed = self._route(lambda: self._chat.stream(entry, request, deadline), metered)
        return Streamed(self._meter.metered_stream(routed.events, metered), routed.target.label)

    def count_tokens(self, request: ChatRequest, api: ApiRequest) -> int:
        """The request's input tokens: as the model's provider counts them, else the gateway's own estimate (the
        one budgets reserve). Nothing is generated, reserved or billed; the key must still be allowed the model."""
        name, entry = self._chat.resolve_kind(request.model, api.caller, "chat")
        current_request().model = name
        request = self._fit(entry, request.with_(model=name))
        try:
            counted = self._chat.count_tokens(entry, request, self._deadline(api, streamed=False))
        except RoutingError as failed:
            self._record_failures(failed.failures)
            raise failed.error from None
        return estimate_prompt_tokens(request) if counted is None else counted

    def embed(self, request: EmbeddingRequest, api: ApiRequest) -> Embedded:
        """Embed a batch: model allowed? (403/404) -> an embedding model? (400) -> fitted to its input limits (400)
        -> its input estimate reserved in the key's budget (429) -> routed over its targets. Embeddings use input
        tokens only; the usage is settled once the answer is out (`Embedded.settle`)."""
        caller = api.caller
        record = current_request()
        record.model_requested, record.tenant, record.key_id = request.model, caller.tenant, caller.key_id
        record.plan = caller.plan
        attribute(record, api, request.extra, self._settings)
        logger.thread_safe_append_keys(tenant=caller.tenant, key_id=caller.key_id, plan=caller.plan)
        name, entry = self._chat.resolve_kind(request.model, caller, "embedding")
        record.model = name
        request = fit_embedding_request(request.with_(model=name), entry.traits.embedding)
        record.embedding_inputs = len(request.inputs)
        demand = Demand(estimate_input_tokens(request), 0, "send fewer or shorter inputs", "input")
        metered = self._meter.reserve_demand(caller, name, entry.prices, demand)
        deadline = self._deadline(api, streamed=False)
        routed = self._route(lambda: self._chat.embed(entry, request, deadline), metered)
        result = routed.result
        if result is None or len(result.vectors) != len(request.inputs):
            self._meter.settle(metered, result.usage if result else None, failed=True)
            raise GatewayError("The provider gave no vector for every input.")
        self._owed(metered, result.usage)
        return Embedded(result, routed.target.label, lambda: self._meter.settle(metered, result.usage))

    def models(self, caller: Caller) -> list[tuple[str, ModelEntry]]:
        return self._chat.visible_models(caller)

    def model(self, model: str, caller: Caller) -> tuple[str, ModelEntry]:
        """One model the key may use, by any of its names (404 otherwise)."""
        return self._chat.visible_model(model, caller)

    def _admit(self, request: ChatRequest, api: ApiRequest) -> tuple[ModelEntry, ChatRequest, Metered | None]:
        """Model allowed? (404/403) -> fitted to the model (400) -> output capped by the plan and the model ->
        worst case reserved in the budget (429)."""
        caller = api.caller
        record = current_request()
        record.model_requested, record.tenant, record.key_id = request.model, caller.tenant, caller.key_id
        record.plan = caller.plan
        attribute(record, api, request.extra, self._settings)
        logger.thread_safe_append_keys(tenant=caller.tenant, key_id=caller.key_id, plan=caller.plan)
        if self._settings.log_prompts:
            logger.info("prompt", extra={"system": "\n".join(_texts(request.system)), "messages": _logged(request)})
        name, entry = self._chat.resolve_kind(request.model, caller, "chat")
        record.model = name
        request = self._fit(entry, request.with_(model=name))
        self._meter.refuse_oversized_prompt(request, caller, entry.traits.limits, entry.prices)
        # The estimate reads the whole conversation: made once, for the output cap and the reservation (capping
        # changes only the output limit, which it does not read).
        estimate = estimate_prompt_tokens(request)
        request = self._meter.cap(request, caller, entry.traits.limits, estimate)
        return entry, request, self._meter.reserve(caller, request.model, entry.prices, request, estimate)

    def _fit(self, entry: ModelEntry, request: ChatRequest) -> ChatRequest:
        """The request as the model takes it (a 400 for what it cannot take); each sampling parameter dropped on the
        way is logged, so that the drop is never silent."""
        fitted = self._chat.fit(entry, request)
        for name, reason in fitted.dropped.items():
            logger.info("sampling parameter not sent", extra={"parameter": name, "reason": reason})
        return fitted.request

    def _deadline(self, api: ApiRequest, *, streamed: bool) -> Deadline:
        """When the provider calls must be over: the streamed or non-streamed time budget, and never later than
        the function's own timeout allows."""
        settings = self._settings
        budget = settings.stream_time_budget_seconds if streamed else settings.time_budget_seconds
        return Deadline.after(min(budget, api.seconds_left - RESPONSE_MARGIN_SECONDS))

    def _owed(self, metered: Metered | None, usage: Usage) -> None:
        """The model answered: should the answer never reach its own settlement (it failed to render, the task
        was cancelled), record what the model used, as a failed request."""
        if metered is not None:
            self._meter.owe(metered, lambda: self._meter.settle(metered, usage, failed=True))

    def _route(self, run: Callable[[], T], metered: Metered | None) -> T:
        """Run a routed call. When it fails, record why, release the reservation and raise the caller's error."""
        try:
            routed = run()
        except RoutingError as failed:
            self._record_failures(failed.failures)
            self._meter.settle(metered, None, failed=True)
            raise failed.error from None
        except Exception:
            self._meter.settle(metered, None, failed=True)
            raise
        current_request().target = routed.target.label
        current_request().fell_back = routed.fell_back
        self._record_failures(routed.failures)
        return routed

    @staticmethod
    def _record_failures(failures: list[Failure]) -> None:
        record = current_request()
        record.provider_errors = len(failures)
        record.provider_throttles = sum(isinstance(f.error, ProviderRateLimitError) for f in failures)
        for failure in failures:
            logger.warning(
                "provider attempt failed",
                extra={
                    "target": failure.target.label,
                    "attempt": failure.attempt,
                    "status": failure.error.status,
                    "error_code": failure.error.code,
                    "retryable": failure.error.retryable,
                },
            )


def _texts(blocks: Iterable[ContentBlock]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, TextBlock):
            yield block.text


def _logged(request: ChatRequest) -> list[dict[str, object]]:
    """The conversation's text as the prompt log shows it (only when an operator turned prompt logging on)."""
    return [{"role": message.role, "content": "\n".join(_texts(message.content))} for message in request.messages]


class LazyProviders(Mapping[str, Provider]):
    """Providers by name, each imported and created at its first use: a deployment that never calls a
    provider never pays for importing its SDK."""

    def __init__(self, factories: Mapping[str, Callable[[], Provider]]) -> None:
        self._factories = factories
        self._providers: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        if name not in self._providers:
            self._providers[name] = self._factories[name]()
        return self._providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def _echo() -> Provider:
    from llm_gateway.providers.echo import EchoProvider

    return EchoProvider()


def _bedrock() -> Provider:
    from llm_gateway.providers.bedrock.provider import BedrockProvider

    return BedrockProvider()


def _openai() -> Provider:
    from llm_gateway.providers.openai.provider import OpenAICompatProvider

    return OpenAICompatProvider()


def build_providers() -> LazyProviders:
    return LazyProviders({"echo": _echo, "bedrock": _bedrock, "openai": _openai})


def build_meter(settings: Settings) -> UsageMeter:
    from llm_gateway.store.factory import budget_tree, usage_ledger

    return UsageMeter(usage_ledger(settings), settings, tree=budget_tree(settings))


@lru_cache(maxsize=1)
def get_gateway() -> Gateway:
    """The gateway of this execution environment, created at the first request and reused."""
    settings = get_settings()
    return Gateway(ChatService(get_registry, Router(build_providers())), build_meter(settings), settings)
