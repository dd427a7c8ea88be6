"""The OpenAI surface's route list and its error renderer, which the API function composes."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.asgi import posted
from llm_gateway.api.http import JSON
from llm_gateway.api.openai import chat, embeddings, responses
from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest, PromptRequest
from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.errors import GatewayError

ROUTES = [
    Route("/chat/completions", posted(ChatCompletionRequest, chat.chat_completions), methods=["POST"]),
    Route("/responses", posted(ResponsesRequest, responses.responses), methods=["POST"]),
    Route("/embeddings", posted(EmbeddingsRequest, embeddings.embeddings), methods=["POST"]),
    Route(
        "/model",
        posted(PromptRequest, lambda gateway, body, _, api: chat.prompt(gateway, body, api)),
        methods=["POST"],
    ),
]


def render_error(request: Request, error: GatewayError) -> Response:
    """The error as OpenAI's error object."""
    body = json.dumps(error_body(error), separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=error.status, media_type=JSON, headers=error.headers)
