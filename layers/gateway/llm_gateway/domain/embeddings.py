"""The embeddings use case's own model: what a surface asks to embed, what a provider answers, and the model's rules.

An embedding request is a batch of inputs, each a text or an array of token ids (OpenAI's `input` takes either,
never both in one request), for one model, with an optional vector size (`dimensions`). How the vectors travel
(OpenAI's `encoding_format`: floats or base64) is the surface's business: providers always answer floats. As in
the conversation model, what the surface does not interpret is kept as sent (`extra`, explicit nulls included)
and the caller's whole body as `native`; a provider takes the extras its API has and refuses the rest with a 400
naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llm_gateway.domain.answers import Usage
from llm_gateway.domain.conversation import Native
from llm_gateway.domain.registry import EmbeddingTraits
from llm_gateway.domain.tokens import estimate_text_tokens
from llm_gateway.errors import InvalidRequestError

# One input: a text, or the token ids of a text (in the model's own vocabulary).
EmbeddingInput = str | tuple[int, ...]
# Request fields that only label the request for the provider's bookkeeping (OpenAI's end-user id): never input,
# and a provider that has no such field need not refuse them.
LABELS = frozenset({"user"})


class UnsupportedEmbeddingInputError(InvalidRequestError):
    """400: an input or parameter the embedding model cannot take; `param` names it (input[3], dimensions)."""

    default_code = "unsupported_parameter"


def _no_extra() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class EmbeddingRequest:
    """A batch to embed. `inputs` are all texts or all token arrays; `dimensions` the vector size asked for (None:
    the model's own); `extra` the request's fields the gateway does not interpret, by name, as sent."""

    model: str
    inputs: tuple[EmbeddingInput, ...]
    dimensions: int | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    native: Native | None = None

    @property
    def tokenized(self) -> bool:
        """Whether the inputs are token arrays rather than texts."""
        return bool(self.inputs) and not isinstance(self.inputs[0], str)

    def texts(self) -> tuple[str, ...]:
        """The inputs as texts; only for a request of texts (`tokenized` False)."""
        return tuple(item for item in self.inputs if isinstance(item, str))

    def with_(self, **changes: Any) -> EmbeddingRequest:
        return replace(self, **changes)


@dataclass(frozen=True)
class EmbeddingResult:
    """One vector per input, in the inputs' order, and the input tokens billed (`usage.completion_tokens` is 0)."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    # The provider's own answer when it spoke OpenAI's dialect, for logs and vendor fields; the surface still
    # renders from `vectors`, since it owns the encoding.
    native: Native | None = None


def estimate_input_tokens(request: EmbeddingRequest) -> int:
    """An upper bound of the request's input tokens, which the token budget reserves: each text's estimate (see
    domain/tokens.py), each token array's length exactly."""
    return sum(estimate_text_tokens(item) if isinstance(item, str) else len(item) for item in request.inputs)


def fit_embedding_request(request: EmbeddingRequest, traits: EmbeddingTraits) -> EmbeddingRequest:
    """The request as the model takes it, or a 400 naming what it cannot take: more inputs than the model takes in
    one request, an input longer than its limit (characters for texts; tokens for token arrays, which can be
    counted exactly), a vector size it cannot produce. A `dimensions` equal to the model's only size is dropped
    (it changes nothing); the provider then never has to know the parameter.

    Input tokens of texts are not checked here: the gateway can only estimate them from above, which would
    refuse texts the model takes; the provider's own refusal of an over-long text is a 400 as well.
    """
    if traits.max_inputs is not None and len(request.inputs) > traits.max_inputs:
        raise UnsupportedEmbeddingInputError(
            f"The model '{request.model}' embeds at most {traits.max_inputs} inputs per request; "
            f"{len(request.inputs)} were given. Send them in several requests.",
            param="input",
        )
    for index, item in enumerate(request.inputs):
        where = f"input[{index}]" if len(request.inputs) > 1 else "input"
        if isinstance(item, str):
            limit = traits.max_input_characters
            if limit is not None and len(item) > limit:
                raise UnsupportedEmbeddingInputError(
                    f"The model '{request.model}' takes at most {limit} characters per input; {where} has {len(item)}.",
                    param=where,
                    code="input_too_long",
                )
        elif traits.max_input_tokens is not None and len(item) > traits.max_input_tokens:
            raise UnsupportedEmbeddingInputError(
                f"The model '{request.model}' takes at most {traits.max_input_tokens} tokens per input; {where} "
                f"has {len(item)}.",
                param=where,
                code="input_too_long",
            )
    return request.with_(dimensions=_fitted_dimensions(request, traits))


def _fitted_dimensions(request: EmbeddingRequest, traits: EmbeddingTraits) -> int | None:
    wanted = request.dimensions
    if wanted is None:
        return None
    if traits.supported_dimensions:
        if wanted not in traits.supported_dimensions:
            sizes = ", ".join(str(size) for size in traits.supported_dimensions)
            raise UnsupportedEmbeddingInputError(
                f"The model '{request.model}' produces vectors of {sizes} dimensions; {wanted} was asked for.",
                param="dimensions",
                code="unsupported_value",
            )
        return wanted
    if traits.dimensions is not None:
        if wanted != traits.dimensions:
            raise UnsupportedEmbeddingInputError(
                f"The model '{request.model}' produces vectors of {traits.dimensions} dimensions only; {wanted} was "
                "asked for.",
                param="dimensions",
                code="unsupported_value",
            )
        return None
    # A model whose sizes the registry does not state (an OpenAI-compatible upstream): the provider decides.
    return wanted
