"""Embedding requests in the InvokeModel bodies of Bedrock's embedding models, and their answers back.

Each model family has a body of its own, named by the registry (traits.bedrock.embedding_schema):
- titan-embed-text-v2: one text per call, `{"inputText", "dimensions", "normalize"}` in, `{"embedding",
  "inputTextTokenCount"}` out (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).
- cohere-embed-v3: up to 96 texts per call, `{"texts", "input_type", "truncate"}` in, `{"embeddings"}` (a list of
  vectors, or `{"float": [...]}` when embedding types were named) out; `input_type` is required and defaults to
  `search_document`, as LiteLLM and bedrock-access-gateway send it
  (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html).

Both take texts only: token arrays are a 400. A request's extra fields become the body fields of the same name the
model has (`normalize` for Titan; `input_type` and `truncate` for Cohere); any other is a 400 naming it, and
labels (`user`) are not sent. Input tokens come from the answer's own count (Titan), else from Bedrock's
`x-amzn-bedrock-input-token-count` response header, else from the gateway's upper-bound estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_gateway.domain.embeddings import LABELS, EmbeddingRequest, UnsupportedEmbeddingInputError
from llm_gateway.domain.registry import BedrockEmbeddingSchema
from llm_gateway.domain.tokens import estimate_text_tokens
from llm_gateway.errors import ProviderError

INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_TRUNCATE = ("NONE", "START", "END")
DEFAULT_COHERE_INPUT_TYPE = "search_document"
# Texts one call takes when the registry states no batch size.
DEFAULT_BATCH_SIZE = {"titan-embed-text-v2": 1, "cohere-embed-v3": 96}


@dataclass(frozen=True)
class Batch:
    """One InvokeModel call: its body and the texts it embeds."""

    body: dict[str, Any]
    texts: tuple[str, ...]


def batches(request: EmbeddingRequest, schema: BedrockEmbeddingSchema, batch_size: int | None) -> list[Batch]:
    """The InvokeModel bodies for a request, in input order: 400 for token arrays and for extras the model lacks."""
    if request.tokenized:
        raise UnsupportedEmbeddingInputError(
            f"The model '{request.model}' takes texts, not token arrays: send `input` as text.", param="input"
        )
    settings = _settings(request.extra, schema)
    texts = request.texts()
    size = batch_size or DEFAULT_BATCH_SIZE[schema]
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    if schema == "titan-embed-text-v2":
        dimensions = {"dimensions": request.dimensions} if request.dimensions is not None else {}
        return [Batch({"inputText": chunk[0], **dimensions, **settings}, chunk) for chunk in chunks]
    return [
        Batch({"texts": list(chunk), "input_type": DEFAULT_COHERE_INPUT_TYPE, **settings}, chunk) for chunk in chunks
    ]


def _settings(extra: Mapping[str, Any], schema: BedrockEmbeddingSchema) -> dict[str, Any]:
    """The request's extra fields as the model's body fields; a 400 for a field it does not have or a bad value."""
    settings: dict[str, Any] = {}
    for name, value in extra.items():
        if name in LABELS or value is None:
            continue
        if schema == "titan-embed-text-v2" and name == "normalize":
            if not isinstance(value, bool):
                raise UnsupportedEmbeddingInputError("normalize must be true or false.", param=name)
            settings[name] = value
        elif schema == "cohere-embed-v3" and name == "input_type":
            if value not in COHERE_INPUT_TYPES:
                raise UnsupportedEmbeddingInputError(
                    f"input_type must be one of {', '.join(COHERE_INPUT_TYPES)}.", param=name
                )
            settings[name] = value
        elif schema == "cohere-embed-v3" and name == "truncate":
            if value not in COHERE_TRUNCATE:
                raise UnsupportedEmbeddingInputError(
                    f"truncate must be one of {', '.join(COHERE_TRUNCATE)}.", param=name
                )
            settings[name] = value
        else:
            raise UnsupportedEmbeddingInputError(
                f"The Bedrock embedding model takes no parameter '{name}'.", param=name, code="unsupported_parameter"
            )
    return settings


def vectors_of(payload: Any, batch: Batch, schema: BedrockEmbeddingSchema, model_id: str) -> list[tuple[float, ...]]:
    """The vectors of one call's answer, one per text of the batch; a 502 when the answer is not of that shape."""
    found: Any = None
    if isinstance(payload, dict):
        if schema == "titan-embed-text-v2":
            found = [payload.get("embedding")]
        else:
            embeddings = payload.get("embeddings")
            found = embeddings.get("float") if isinstance(embeddings, dict) else embeddings
    if not _vectors(found) or len(found) != len(batch.texts):
        raise ProviderError(
            f"Bedrock model '{model_id}' answered without one vector per text; the answer cannot be used."
        )
    return [tuple(float(value) for value in vector) for vector in found]


def _vectors(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(vector, list) and vector and all(isinstance(x, int | float) for x in vector) for vector in value
    )


def input_tokens(payload: Any, headers: Mapping[str, str], batch: Batch) -> int:
    """The input tokens Bedrock billed for one call: the answer's own count (Titan's inputTextTokenCount), else
    the response header, else the gateway's estimate (an upper bound, so a budget is never undercharged)."""
    counted = payload.get("inputTextTokenCount") if isinstance(payload, dict) else None
    if isinstance(counted, int) and counted >= 0:
        return counted
    header = headers.get(INPUT_TOKENS_HEADER)
    if header is not None and header.isdigit():
        return int(header)
    return sum(estimate_text_tokens(text) for text in batch.texts)


def batched_results(
    outcomes: Sequence[tuple[list[tuple[float, ...]], int]],
) -> tuple[tuple[tuple[float, ...], ...], int]:
    """The calls' vectors joined in input order, and their input tokens added up."""
    vectors = tuple(vector for found, _ in outcomes for vector in found)
    return vectors, sum(tokens for _, tokens in outcomes)
