"""Embeddings requests read into the gateway's embedding request, unknown fields kept for providers that take them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.domain.conversation import Native
from llm_gateway.domain.embeddings import EmbeddingInput, EmbeddingRequest

if TYPE_CHECKING:
    pass


# The request fields `embedding_request()` reads itself; every other field is the request's `extra`.
_INTERPRETED = frozenset({"model", "input", "encoding_format", "dimensions"})


def embedding_request(request: EmbeddingsRequest, body: str) -> EmbeddingRequest:
    """The internal request for a validated embeddings request; `body` is its JSON text, kept as the native body."""
    sent = {name: getattr(request, name) for name in request.model_fields_set}
    extra = {name: value for name, value in {**sent, **(request.model_extra or {})}.items() if name not in _INTERPRETED}
    return EmbeddingRequest(
        model=request.model,
        inputs=_inputs(request.input),
        dimensions=request.dimensions,
        extra=extra,
        native=Native("openai", body),
    )


def _inputs(value: str | Sequence[Any]) -> tuple[EmbeddingInput, ...]:
    """OpenAI's four input forms as a batch: a text, texts, one token array, token arrays."""
    if isinstance(value, str):
        return (value,)
    if value and isinstance(value[0], int):
        return (tuple(value),)
    return tuple(item if isinstance(item, str) else tuple(item) for item in value)
