"""Chat orchestration: resolve the public model for a caller, then route the request over its targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.registry import ModelEntry, ModelRegistry
from llm_gateway.domain.routing import RoutedCompletion, RoutedStream, Router
from llm_gateway.errors import PermissionDeniedError
from llm_gateway.providers.base import Deadline


@dataclass(frozen=True)
class ChatResult:
    model: str
    entry: ModelEntry
    routed: RoutedCompletion


@dataclass(frozen=True)
class ChatStream:
    model: str
    entry: ModelEntry
    routed: RoutedStream


class ChatService:
    def __init__(self, registry: Callable[[], ModelRegistry], router: Router) -> None:
        self._registry = registry
        self._router = router

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

    def complete(self, request: ChatCompletionRequest, caller: Caller, deadline: Deadline) -> ChatResult:
        entry = self.resolve(request.model, caller)
        return ChatResult(request.model, entry, self._router.complete(entry, request, deadline))

    def stream(self, request: ChatCompletionRequest, caller: Caller, deadline: Deadline) -> ChatStream:
        entry = self.resolve(request.model, caller)
        return ChatStream(request.model, entry, self._router.stream(entry, request, deadline))
