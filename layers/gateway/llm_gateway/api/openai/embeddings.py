"""The OpenAI surface's embeddings route: POST /embeddings read into the embeddings model and answered in OpenAI's
shape (https://platform.openai.com/docs/api-reference/embeddings), floats or base64 as the caller asked.

`encoding_format` is this surface's business: providers answer floats, and a base64 answer is the little-endian
float32 array of each vector, base64-encoded, as OpenAI sends it (the official SDKs ask for base64 by default and
decode it themselves).
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llm_gateway.api.http import Reply
from llm_gateway.api.openai.chat import TARGET_HEADER
from llm_gateway.api.openai.schemas import EmbeddingList, EmbeddingsRequest, EmbeddingUsage
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.domain.conversation import Native
from llm_gateway.domain.embeddings import EmbeddingInput, EmbeddingRequest, EmbeddingResult
from llm_gateway.errors import ProviderError

if TYPE_CHECKING:
    from llm_gateway.gateway import Gateway

# The request fields `embedding_request()` reads itself; every other field is the request's `extra`.
_INTERPRETED = frozenset({"model", "input", "encoding_format", "dimensions"})


def embeddings(gateway: Gateway, request: EmbeddingsRequest, body: str, api: ApiRequest) -> Reply:
    """POST /embeddings: one embedding object per input, in the order given, and the input tokens used."""
    embedded = gateway.embed(embedding_request(request, body), api)
    text = embedding_list(embedded.result, model=request.model, encoding=request.encoding_format or "float")
    return Reply(text, headers={TARGET_HEADER: embedded.target}, finish=embedded.settle)


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


def embedding_list(result: EmbeddingResult, *, model: str, encoding: str) -> str:
    """OpenAI's `list` of `embedding` objects under the public model name.

    Floats are written with 9 significant digits, the most a float32 needs to come back exactly (OpenAI's vectors
    and the base64 encoding are float32): about 40% less text than Python's shortest double repr for the same
    numbers, which matters for batches of 2,048 vectors.
    """
    usage = result.usage
    envelope = EmbeddingList(
        data=[],
        model=model,
        usage=EmbeddingUsage(prompt_tokens=usage.prompt_tokens, total_tokens=usage.prompt_tokens),
    ).model_dump(mode="json")
    items = []
    for index, vector in enumerate(result.vectors):
        if encoding == "base64":
            embedding = json.dumps(encode_base64(vector))
        else:
            embedding = "[" + ",".join(_float32_text(value) for value in vector) + "]"
        items.append(f'{{"object":"embedding","index":{index},"embedding":{embedding}}}')
    head = json.dumps({"object": envelope["object"]}, separators=(",", ":"))[:-1]
    tail = json.dumps({"model": envelope["model"], "usage": envelope["usage"]}, separators=(",", ":"))[1:]
    return f'{head},"data":[{",".join(items)}],{tail}'


def _float32_text(value: float) -> str:
    """A JSON number holding a float32 exactly: 9 significant digits (IEEE 754's bound for binary32)."""
    if not math.isfinite(value):
        raise ProviderError("The provider answered an embedding that is not a finite number.")
    text = format(value, ".9g")
    return text if any(char in text for char in ".e") else text + ".0"


def encode_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI's base64 encoding: little-endian float32 values, base64 (the SDKs decode it with numpy's
    frombuffer(dtype="float32") or array("f"))."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
