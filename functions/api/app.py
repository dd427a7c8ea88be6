"""The API function: the OpenAI-compatible routes as an ASGI app, served by uvicorn behind AWS Lambda Web Adapter
(run.sh) and, locally, by `gatewayctl serve`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.asgi import gateway_app, respond
from llm_gateway.api.http import api_request, parse_body
from llm_gateway.api.openai import chat as openai
from llm_gateway.api.openai.schemas import ChatCompletionRequest, PromptRequest
from llm_gateway.gateway import get_gateway


async def chat_completions(request: Request) -> Response:
    api = api_request(request.headers)
    body, text = parse_body(await request.body(), request.headers.get("content-type"), ChatCompletionRequest)
    return await respond(lambda: openai.chat_completions(get_gateway(), body, text, api))


async def prompt(request: Request) -> Response:
    api = api_request(request.headers)
    body, _ = parse_body(await request.body(), request.headers.get("content-type"), PromptRequest)
    return await respond(lambda: openai.prompt(get_gateway(), body, api))


async def list_models(request: Request) -> Response:
    api = api_request(request.headers)
    return await respond(lambda: openai.models(get_gateway(), api))


app = gateway_app(
    [
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/model", prompt, methods=["POST"]),
        Route("/models", list_models, methods=["GET"]),
    ]
)
