"""The OpenAI surface's embeddings route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway.api.http import Reply
from llm_gateway.api.openai.chat import TARGET_HEADER
from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.domain.caller import ApiRequest

if TYPE_CHECKING:
    from llm_gateway.gateway import Gateway
from llm_gateway.dialects.openai_embeddings.answer import embedding_list
from llm_gateway.dialects.openai_embeddings.request import embedding_request


def embeddings(gateway: Gateway, request: EmbeddingsRequest, body: str, api: ApiRequest) -> Reply:
    """POST /embeddings: one embedding object per input, in the order given, and the input tokens used."""
    embedded = gateway.embed(embedding_request(request, body), api)
    text = embedding_list(embedded.result, model=request.model, encoding=request.encoding_format or "float")
    return Reply(text, headers={TARGET_HEADER: embedded.target}, finish=embedded.settle)
