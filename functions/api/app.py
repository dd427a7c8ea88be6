"""The API function: the OpenAI-compatible (chat, embeddings, models) and Anthropic Messages routes as an ASGI app,
served by uvicorn behind AWS Lambda Web Adapter (run.sh) and, locally, by `gatewayctl serve`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.anthropic import messages as anthropic
from llm_gateway.api.anthropic.schemas import CountTokensRequest, MessagesRequest
from llm_gateway.api.asgi import gateway_app, respond
from llm_gateway.api.http import Reply, api_request, parse_body
from llm_gateway.api.openai import chat as openai
from llm_gateway.api.openai import embeddings as openai_embeddings
from llm_gateway.api.openai.schemas import ChatCompletionRequest, EmbeddingsRequest, PromptRequest
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.gateway import Gateway, get_gateway

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


def posted(schema: type[M], use_case: Callable[[Gateway, M, str, ApiRequest], Reply]) -> Endpoint:
    """A POST route: the caller from the request context, the body validated into `schema` (and kept as sent),
    then `use_case` off the event loop."""

    async def endpoint(request: Request) -> Response:
        api = api_request(request.headers)
        body, text = parse_body(await request.body(), request.headers.get("content-type"), schema)
        return await respond(lambda: use_case(get_gateway(), body, text, api))

    return endpoint


async def list_models(request: Request) -> Response:
    """GET /models: Anthropic's list shape for clients that name an Anthropic API version, else OpenAI's."""
    api = api_request(request.headers)
    if "anthropic-version" in request.headers:
        query = dict(request.query_params)
        return await respond(lambda: anthropic.models(get_gateway(), api, query))
    return await respond(lambda: openai.models(get_gateway(), api))


async def retrieve_model(request: Request) -> Response:
    """GET /models/{model}: one model, in Anthropic's shape for clients that name an Anthropic API version."""
    api = api_request(request.headers)
    name = str(request.path_params["model"])
    if "anthropic-version" in request.headers:
        return await respond(lambda: anthropic.model(get_gateway(), api, name))
    return await respond(lambda: openai.model(get_gateway(), api, name))


app = gateway_app(
    [
        Route("/chat/completions", posted(ChatCompletionRequest, openai.chat_completions), methods=["POST"]),
        Route("/embeddings", posted(EmbeddingsRequest, openai_embeddings.embeddings), methods=["POST"]),
        Route("/messages", posted(MessagesRequest, anthropic.messages), methods=["POST"]),
        Route("/messages/count_tokens", posted(CountTokensRequest, anthropic.count_tokens), methods=["POST"]),
        Route(
            "/model",
            posted(PromptRequest, lambda gateway, body, _, api: openai.prompt(gateway, body, api)),
            methods=["POST"],
        ),
        Route("/models", list_models, methods=["GET"]),
        # Model names may hold slashes (vLLM's meta-llama/...): the rest of the path is the name.
        Route("/models/{model:path}", retrieve_model, methods=["GET"]),
    ]
)
