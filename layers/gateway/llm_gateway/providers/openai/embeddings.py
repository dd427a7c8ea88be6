"""Embeddings on an OpenAI-compatible upstream: the body it gets, the vectors of its answer."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

from llm_gateway.domain.embeddings import EmbeddingRequest
from llm_gateway.domain.registry import Target
from llm_gateway.providers.openai.errors import (
    malformed,
)


def embedding_vectors(payload: Any, count: int, target: Target) -> tuple[tuple[float, ...], ...]:
    """The vectors of an OpenAI embeddings answer in input order (by each object's `index`): float lists, or base64
    float32 arrays; a 502 unless there is exactly one per input."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise malformed(target, "the answer does not hold one embedding per input")
    found: dict[int, tuple[float, ...]] = {}
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str):
            try:
                raw = base64.b64decode(vector, validate=True)
            except (binascii.Error, ValueError):
                raise malformed(target, "an embedding is neither floats nor base64") from None
            if len(raw) % 4:
                raise malformed(target, "a base64 embedding is not float32 values")
            vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        if (
            not isinstance(index, int)
            or not isinstance(vector, list)
            or not all(isinstance(value, int | float) for value in vector)
        ):
            raise malformed(target, "an embedding is not a list of numbers")
        found[index] = tuple(float(value) for value in vector)
    if sorted(found) != list(range(count)):
        raise malformed(target, "the embeddings' indexes do not match the inputs")
    return tuple(found[index] for index in range(count))


def embeddings_body(request: EmbeddingRequest, target: Target) -> bytes:
    """The upstream's embeddings body: the caller's as sent, under the target's model id, asking for floats."""
    native = request.native.body if request.native is not None and request.native.dialect == "openai" else {}
    body: dict[str, Any] = {**native, **request.extra}
    inputs = [item if isinstance(item, str) else list(item) for item in request.inputs]
    body.update(model=target.model_id, input=inputs, encoding_format="float")
    if request.dimensions is None:
        body.pop("dimensions", None)
    else:
        body["dimensions"] = request.dimensions
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
