"""Model calls: resolve the public model for a caller, then route a chat or embedding request over its targets."""

from __future__ import annotations

from collections.abc import Callable

from llm_gateway.domain.caller import Caller
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.embeddings import EmbeddingRequest
from llm_gateway.domain.fitting import Fitted, fit_request
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelEntry, ModelKind, ModelRegistry
from llm_gateway.domain.routing import RoutedCompletion, RoutedEmbedding, RoutedStream, Router
from llm_gateway.errors import InvalidRequestError, ModelNotFoundError, PermissionDeniedError

# What each kind of model is called for, for the 400 that names the right route.
_ROUTES: dict[ModelKind, str] = {
    "chat": "POST /chat/completions (or /messages)",
    "embedding": "POST /embeddings",
}


class WrongModelKindError(InvalidRequestError):
    """400: the model exists and the key may use it, but it does another job (an embedding model asked to chat, a
    chat model asked to embed)."""

    default_code = "unsupported_model"


class ChatService:
    def __init__(self, registry: Callable[[], ModelRegistry], router: Router) -> None:
        self._registry = registry
        self._router = router

    def resolve(self, model: str, caller: Caller) -> tuple[str, ModelEntry]:
        """The model that `model` (a public name or an alias) designates and its registry entry, if the caller
        may use it (403) and it exists (404). The key's allow-list applies to the model, whatever name it was
        called by.

        Permission comes first, so a key limited to some models learns nothing about the others.
        """
        registry = self._registry()
        name = registry.canonical_name(model) or model
        if not caller.may_use(name):
            raise PermissionDeniedError(
                f"This API key may not use the model '{model}'; GET /models lists the models it may use.",
                param="model",
            )
        return name, registry.get(name)

    def resolve_kind(self, model: str, caller: Caller, kind: ModelKind) -> tuple[str, ModelEntry]:
        """As `resolve`, and a 400 when the model does another job than `kind`."""
        name, entry = self.resolve(model, caller)
        if entry.kind != kind:
            raise WrongModelKindError(
                f"The model '{model}' is {'an embedding' if entry.kind == 'embedding' else 'a chat'} model: call it "
                f"with {_ROUTES[entry.kind]}, not here.",
                param="model",
            )
        return name, entry

    def visible_model(self, model: str, caller: Caller) -> tuple[str, ModelEntry]:
        """A model the key may use, by any of its names; 404 for an unknown model and for one the key may not use,
        so that a key limited to some models learns nothing about the others (GET /models/{model})."""
        registry = self._registry()
        name = registry.canonical_name(model)
        if name is None or not caller.may_use(name):
            raise ModelNotFoundError(model)
        return name, registry.models[name]

    @staticmethod
    def fit(entry: ModelEntry, request: ChatRequest) -> Fitted:
        """The request as the model takes it and what was dropped from it, or a 400 naming what it cannot take
        (domain/fitting.py)."""
        return fit_request(request, entry.traits)

    def visible_models(self, caller: Caller) -> list[tuple[str, ModelEntry]]:
        registry = self._registry()
        return [(name, registry.models[name]) for name in registry.names() if caller.may_use(name)]

    def complete(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> RoutedCompletion:
        return self._router.complete(entry, request, deadline)

    def stream(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> RoutedStream:
        return self._router.stream(entry, request, deadline)

    def embed(self, entry: ModelEntry, request: EmbeddingRequest, deadline: Deadline) -> RoutedEmbedding:
        return self._router.embed(entry, request, deadline)

    def count_tokens(self, entry: ModelEntry, request: ChatRequest, deadline: Deadline) -> int | None:
        return self._router.count_tokens(entry, request, deadline)[1]
