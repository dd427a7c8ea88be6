"""Request and response schemas of OpenAI's embeddings API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from llm_gateway.dialects.openai_chat.schemas import OpenAIObject

# OpenAI's limits on one embeddings request (https://platform.openai.com/docs/api-reference/embeddings/create):
# at most 2048 inputs, none empty; a model may take fewer (the registry's traits.embedding).
MAX_EMBEDDING_INPUTS = 2048


TokenId = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


EmbeddingText = Annotated[StrictStr, Field(min_length=1)]


class EmbeddingsRequest(BaseModel):
    """POST /embeddings: `input` is a text, a list of texts, a token array or a list of token arrays (token ids in
    the model's own vocabulary). Unknown fields are kept for providers that take them (Cohere's `input_type`...)."""

    model_config = ConfigDict(extra="allow")

    input: (
        EmbeddingText
        | Annotated[list[EmbeddingText], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
        | Annotated[list[TokenId], Field(min_length=1)]
        | Annotated[
            list[Annotated[list[TokenId], Field(min_length=1)]],
            Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS),
        ]
    )
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    # Floats, or (encoding_format base64) the little-endian float32 array in base64.
    embedding: list[float] | str


class EmbeddingList(OpenAIObject):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingUsage
