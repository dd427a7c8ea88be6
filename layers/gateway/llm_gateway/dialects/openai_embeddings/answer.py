"""Embedding results written as OpenAI's list of embedding objects, as floats or base64 float32 arrays."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingList, EmbeddingUsage
from llm_gateway.domain.embeddings import EmbeddingResult
from llm_gateway.errors import ProviderError

if TYPE_CHECKING:
    pass


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
