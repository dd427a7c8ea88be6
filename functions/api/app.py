"""The API function: the OpenAI-compatible (chat, embeddings, models) and Anthropic Messages routes as an ASGI app,
served by uvicorn behind AWS Lambda Web Adapter (run.sh) and, locally, by `gatewayctl serve`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.anthropic import messages as anthropic
from llm_gateway.api.anthropic import routes as anthropic_routes
from llm_gateway.api.asgi import respond
from llm_gateway.api.http import api_request
from llm_gateway.api.observer import gateway_app
from llm_gateway.api.openai import chat as openai
from llm_gateway.api.openai import routes as openai_routes
from llm_gateway.errors import GatewayError
from llm_gateway.gateway import get_gateway


async def list_models(request: Request) -> Response:
    """GET /models: Anthropic's list shape for clients that name an Anthropic API version, else OpenAI's."""
    api = api_request(request.headers)
    if anthropic_routes.VERSION_HEADER in request.headers:
        query = dict(request.query_params)
        return await respond(lambda: anthropic.models(get_gateway(), api, query))
    return await respond(lambda: openai.models(get_gateway(), api))


async def retrieve_model(request: Request) -> Response:
    """GET /models/{model}: one model, in Anthropic's shape for clients that name an Anthropic API version."""
    api = api_request(request.headers)
    name = str(request.path_params["model"])
    if anthropic_routes.VERSION_HEADER in request.headers:
        return await respond(lambda: anthropic.model(get_gateway(), api, name))
    return await respond(lambda: openai.model(get_gateway(), api, name))


def render_error(request: Request, error: GatewayError) -> Response:
    """The error in the shape of the caller's API: Anthropic's or OpenAI's."""
    if anthropic_routes.speaks_anthropic(request):
        return anthropic_routes.render_error(request, error)
    return openai_routes.render_error(request, error)


app = gateway_app(
    [
        *openai_routes.ROUTES,
        *anthropic_routes.ROUTES,
        Route("/models", list_models, methods=["GET"]),
        # Model names may hold slashes (vLLM's meta-llama/...): the rest of the path is the name.
        Route("/models/{model:path}", retrieve_model, methods=["GET"]),
    ],
    render_error,
)
