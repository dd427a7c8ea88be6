"""The Anthropic surface's route list and its error renderer, which the API function composes."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.api.anthropic import messages
from llm_gateway.api.asgi import posted
from llm_gateway.api.http import JSON, request_context
from llm_gateway.dialects.anthropic_messages.errors import error_body
from llm_gateway.dialects.anthropic_messages.schemas import CountTokensRequest, MessagesRequest
from llm_gateway.errors import GatewayError

VERSION_HEADER = "anthropic-version"

ROUTES = [
    Route("/messages", posted(MessagesRequest, messages.messages), methods=["POST"]),
    Route("/messages/count_tokens", posted(CountTokensRequest, messages.count_tokens), methods=["POST"]),
]
_ENDPOINTS = frozenset(route.endpoint for route in ROUTES)


def speaks_anthropic(request: Request) -> bool:
    """Whether a request is Anthropic's: one of its routes (Starlette names the matched endpoint in the scope), or
    any request of a client that names an Anthropic API version (the Anthropic SDKs and Claude Code always do)."""
    return request.scope.get("endpoint") in _ENDPOINTS or VERSION_HEADER in request.headers


def render_error(request: Request, error: GatewayError) -> Response:
    """The error in Anthropic's shape, with API Gateway's request id."""
    body = error_body(error, str(request_context(request.headers).get("requestId") or ""))
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=error.status, media_type=JSON, headers=error.headers
    )
