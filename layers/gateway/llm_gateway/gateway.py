"""The gateway's use cases wired to their adapters: what each API route calls."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from functools import lru_cache

from llm_gateway.api.http import EVENT_STREAM, Reply
from llm_gateway.api.render import ChunkProducer, chat_completion, model_list, sse_events, usage_body
from llm_gateway.api.schemas import ChatCompletionRequest, PromptRequest, PromptResponse, UserMessage
from llm_gateway.config import Settings, get_registry, get_settings
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.chat import ChatService
from llm_gateway.observability import current_request, logger
from llm_gateway.providers.base import Deadline, Provider, StreamEvent, Usage
from llm_gateway.providers.echo import EchoProvider

TARGET_HEADER = "X-Gateway-Target"


def _begin(events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    """Pull the first event now, so a provider that fails before producing anything yields an HTTP error."""
    first = next(events, None)
    return events if first is None else itertools.chain([first], events)


class Gateway:
    def __init__(self, chat: ChatService, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._chat = chat
        self._settings = settings
        self._clock = clock

    def chat_completions(self, request: ChatCompletionRequest, caller: Caller, request_id: str) -> Reply:
        self._log_context(caller, request)
        completion_id, created = f"chatcmpl-{request_id}", int(self._clock())
        record = current_request()
        if request.stream:
            stream = self._chat.stream(request, caller)
            record.model, record.target = stream.model, stream.target.label
            producer = ChunkProducer(
                completion_id=completion_id,
                created=created,
                model=stream.model,
                include_usage=request.wants_usage_chunk,
            )
            body = "".join(sse_events(producer.chunks(_begin(stream.events))))
            self._record_usage(producer.usage)
            return Reply(body, EVENT_STREAM, {TARGET_HEADER: record.target})
        result = self._chat.complete(request, caller)
        record.model, record.target = result.model, result.target.label
        self._record_usage(result.completion.usage)
        response = chat_completion(result.completion, completion_id=completion_id, created=created, model=result.model)
        return Reply(response.to_json(), headers={TARGET_HEADER: record.target})

    def prompt(self, request: PromptRequest, caller: Caller, request_id: str) -> Reply:
        chat_request = ChatCompletionRequest(
            model=request.model or self._settings.default_model,
            messages=[UserMessage(role="user", content=request.prompt)],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
        self._log_context(caller, chat_request)
        result = self._chat.complete(chat_request, caller)
        record = current_request()
        record.model, record.target = result.model, result.target.label
        self._record_usage(result.completion.usage)
        response = PromptResponse(
            completion=result.completion.content or "",
            model=result.model,
            usage=usage_body(result.completion.usage),
        )
        return Reply(response.to_json(), headers={TARGET_HEADER: record.target})

    def models(self, caller: Caller) -> Reply:
        return Reply(model_list(self._chat.visible_models(caller)).to_json())

    def _log_context(self, caller: Caller, request: ChatCompletionRequest) -> None:
        logger.append_keys(tenant=caller.tenant, key_id=caller.key_id, plan=caller.plan)
        if self._settings.log_prompts:
            messages = request.model_dump(mode="json", include={"messages"}, exclude_none=True)["messages"]
            logger.info("prompt", extra={"messages": messages})

    @staticmethod
    def _record_usage(usage: Usage | None) -> None:
        if usage is not None:
            record = current_request()
            record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens


def build_providers() -> dict[str, Provider]:
    return {"echo": EchoProvider()}


@lru_cache(maxsize=1)
def get_gateway() -> Gateway:
    """The gateway of this execution environment, created at the first request and reused."""
    settings = get_settings()
    chat = ChatService(get_registry, build_providers(), lambda: Deadline.after(settings.time_budget_seconds))
    return Gateway(chat, settings)
