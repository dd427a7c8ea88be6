"""Chat orchestration: resolve the public model for a caller, pick the target, run the provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.registry import ModelEntry, ModelRegistry, Target
from llm_gateway.errors import ConfigurationError, PermissionDeniedError
from llm_gateway.providers.base import Completion, Deadline, Provider, StreamEvent


@dataclass(frozen=True)
class ChatResult:
    model: str
    entry: ModelEntry
    target: Target
    completion: Completion


@dataclass(frozen=True)
class ChatStream:
    model: str
    entry: ModelEntry
    target: Target
    events: Iterator[StreamEvent]


class ChatService:
    def __init__(
        self,
        registry: Callable[[], ModelRegistry],
        providers: Mapping[str, Provider],
        deadline: Callable[[], Deadline],
    ) -> None:
        self._registry = registry
        self._providers = providers
        self._deadline = deadline

    def resolve(self, model: str, caller: Caller) -> ModelEntry:
        """The registry entry for `model`, if it exists (404) and the caller may use it (403)."""
        entry = self._registry().get(model)
        if not caller.may_use(model):
            raise PermissionDeniedError(
                f"This API key may not use the model '{model}'; GET /models lists the models it may use.",
                param="model",
            )
        return entry

    def visible_models(self, caller: Caller) -> list[tuple[str, ModelEntry]]:
        registry = self._registry()
        return [(name, registry.models[name]) for name in registry.names() if caller.may_use(name)]

    def complete(self, request: ChatCompletionRequest, caller: Caller) -> ChatResult:
        entry = self.resolve(request.model, caller)
        target = entry.targets[0]
        completion = self._provider(target).complete(request, target, self._deadline())
        return ChatResult(request.model, entry, target, completion)

    def stream(self, request: ChatCompletionRequest, caller: Caller) -> ChatStream:
        entry = self.resolve(request.model, caller)
        target = entry.targets[0]
        events = self._provider(target).stream(request, target, self._deadline())
        return ChatStream(request.model, entry, target, events)

    def _provider(self, target: Target) -> Provider:
        try:
            return self._providers[target.provider]
        except KeyError:
            raise ConfigurationError(f"No provider '{target.provider}' is configured") from None
