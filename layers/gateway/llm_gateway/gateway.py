"""The gateway's use cases wired to their adapters: what each API route calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import TypeVar

from llm_gateway.api.http import EVENT_STREAM, ApiRequest, Reply
from llm_gateway.api.render import ChunkProducer, chat_completion, model_list, sse_events, usage_body
from llm_gateway.api.schemas import ChatCompletionRequest, PromptRequest, PromptResponse, UserMessage
from llm_gateway.config import Settings, get_registry, get_settings
from llm_gateway.domain.chat import ChatService
from llm_gateway.domain.routing import Failure, Routed, Router, RoutingError
from llm_gateway.observability import current_request, logger
from llm_gateway.providers.base import Deadline, Provider, Usage

T = TypeVar("T")
TARGET_HEADER = "X-Gateway-Target"
# Time kept back from the Lambda function's own timeout to answer and record usage after the model.
RESPONSE_MARGIN_SECONDS = 1.5


class Gateway:
    def __init__(self, chat: ChatService, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._chat = chat
        self._settings = settings
        self._clock = clock

    def chat_completions(self, request: ChatCompletionRequest, api: ApiRequest) -> Reply:
        self._log_context(api, request)
        completion_id, created = f"chatcmpl-{api.request_id}", int(self._clock())
        deadline = self._deadline(api)
        if request.stream:
            stream = self._routed(lambda: self._chat.stream(request, api.caller, deadline), request.model)
            self._record(stream.model, stream.routed)
            producer = ChunkProducer(
                completion_id=completion_id,
                created=created,
                model=stream.model,
                include_usage=request.wants_usage_chunk,
            )
            body = "".join(sse_events(producer.chunks(stream.routed.events)))
            self._record_usage(producer.usage)
            return Reply(body, EVENT_STREAM, {TARGET_HEADER: stream.routed.target.label})
        result = self._routed(lambda: self._chat.complete(request, api.caller, deadline), request.model)
        self._record(result.model, result.routed)
        completion = result.routed.completion
        assert completion is not None
        self._record_usage(completion.usage)
        response = chat_completion(completion, completion_id=completion_id, created=created, model=result.model)
        return Reply(response.to_json(), headers={TARGET_HEADER: result.routed.target.label})

    def prompt(self, request: PromptRequest, api: ApiRequest) -> Reply:
        chat_request = ChatCompletionRequest(
            model=request.model or self._settings.default_model,
            messages=[UserMessage(role="user", content=request.prompt)],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
        self._log_context(api, chat_request)
        deadline = self._deadline(api)
        result = self._routed(lambda: self._chat.complete(chat_request, api.caller, deadline), chat_request.model)
        self._record(result.model, result.routed)
        completion = result.routed.completion
        assert completion is not None
        self._record_usage(completion.usage)
        response = PromptResponse(
            completion=completion.content or "", model=result.model, usage=usage_body(completion.usage)
        )
        return Reply(response.to_json(), headers={TARGET_HEADER: result.routed.target.label})

    def models(self, api: ApiRequest) -> Reply:
        return Reply(model_list(self._chat.visible_models(api.caller)).to_json())

    def _deadline(self, api: ApiRequest) -> Deadline:
        return Deadline.after(min(self._settings.time_budget_seconds, api.seconds_left - RESPONSE_MARGIN_SECONDS))

    def _routed(self, run: Callable[[], T], model: str) -> T:
        """Run a routed call; when every target failed, log why and raise the caller's error."""
        try:
            return run()
        except RoutingError as failed:
            current_request().model = model
            self._log_failures(failed.failures)
            current_request().provider_errors = len(failed.failures)
            raise failed.error from None

    def _record(self, model: str, routed: Routed) -> None:
        record = current_request()
        record.model = model
        record.target = routed.target.label
        record.provider_errors = len(routed.failures)
        record.fell_back = routed.fell_back
        self._log_failures(routed.failures)

    @staticmethod
    def _log_failures(failures: list[Failure]) -> None:
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

    def _log_context(self, api: ApiRequest, request: ChatCompletionRequest) -> None:
        caller = api.caller
        current_request().model_requested = request.model
        logger.append_keys(tenant=caller.tenant, key_id=caller.key_id, plan=caller.plan)
        if self._settings.log_prompts:
            messages = request.model_dump(mode="json", include={"messages"}, exclude_none=True)["messages"]
            logger.info("prompt", extra={"messages": messages})

    @staticmethod
    def _record_usage(usage: Usage | None) -> None:
        if usage is not None:
            record = current_request()
            record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens


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
    from llm_gateway.providers.bedrock import BedrockProvider

    return BedrockProvider()


def _openai() -> Provider:
    from llm_gateway.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider()


def build_providers() -> LazyProviders:
    return LazyProviders({"echo": _echo, "bedrock": _bedrock, "openai": _openai})


@lru_cache(maxsize=1)
def get_gateway() -> Gateway:
    """The gateway of this execution environment, created at the first request and reused."""
    settings = get_settings()
    return Gateway(ChatService(get_registry, Router(build_providers())), settings)
