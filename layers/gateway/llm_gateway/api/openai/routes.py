"""The OpenAI surface's route list and its error renderer, which the API function composes."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.asgi import posted, respond
from llm_gateway.api.http import JSON, api_request
from llm_gateway.api.openai import chat, embeddings, responses
from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest, PromptRequest
from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.dialects.openai_responses.schemas import CompactRequest, ResponsesRequest
from llm_gateway.errors import GatewayError
from llm_gateway.gateway import get_gateway


async def stored_response(request: Request) -> Response:
    """GET or DELETE /responses/{id}: the caller's stored response."""
    api = api_request(request.headers)
    identifier = str(request.path_params["response_id"])
    if request.method == "DELETE":
        return await respond(lambda: responses.delete(get_gateway(), api, identifier))
    return await respond(lambda: responses.retrieve(get_gateway(), api, identifier))


async def stored_input_items(request: Request) -> Response:
    """GET /responses/{id}/input_items."""
    api = api_request(request.headers)
    identifier = str(request.path_params["response_id"])
    query = dict(request.query_params)
    return await respond(lambda: responses.input_items(get_gateway(), api, identifier, query))


ROUTES = [
    Route("/chat/completions", posted(ChatCompletionRequest, chat.chat_completions), methods=["POST"]),
    Route("/responses", posted(ResponsesRequest, responses.responses), methods=["POST"]),
    Route("/responses/compact", posted(CompactRequest, responses.compact_conversation), methods=["POST"]),
    Route("/responses/{response_id}", stored_response, methods=["GET", "DELETE"]),
    Route("/responses/{response_id}/input_items", stored_input_items, methods=["GET"]),
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
