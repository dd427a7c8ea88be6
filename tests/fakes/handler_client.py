"""The official openai SDK wired straight to the API function: each HTTP request becomes a proxy event.

The SDK's HTTP client gets a transport that builds the same API Gateway proxy event the local gateway
builds (as the authorizer and API Gateway would have left it) and returns the handler's response, so SDK
parsing of our non-streamed and streamed answers is tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2
from openai import OpenAI

from emulator.events import IncomingRequest, Stage, new_request_id, proxy_event, proxy_reply
from emulator.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
STAGE = Stage("a1b2c3d4e5", "v1", "us-east-1", "123456789012", "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com")
CALLER = {
    "principalId": "key_5f1c2a9b7e3d",
    "tenant": "acme",
    "keyId": "key_5f1c2a9b7e3d",
    "plan": "standard",
    "models": "*",
}


class HandlerTransport(httpx2.BaseTransport):
    def __init__(self, handler: Handler, authorizer: Mapping[str, Any]) -> None:
        self._handler = handler
        self._authorizer = authorizer
        self.responses: list[dict[str, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path.removeprefix(f"/{STAGE.name}")
        incoming = IncomingRequest(
            method=request.method,
            resource=path,
            path=path,
            headers=list(request.headers.items()),
            query=list(request.url.params.multi_items()),
            body=request.read(),
            source_ip="203.0.113.7",
            request_id=new_request_id(),
            received_at=datetime.now(UTC),
        )
        event = proxy_event(STAGE, incoming, self._authorizer, ("apikey-1", "usage-id"))
        response = self._handler(event, LocalLambdaContext(function_name="ApiFunction"))
        self.responses.append(response)
        reply = proxy_reply(response)
        assert reply is not None, response
        return httpx2.Response(reply.status, headers=reply.headers, content=reply.body)


def handler_client(handler: Handler, authorizer: Mapping[str, Any] = CALLER) -> tuple[OpenAI, HandlerTransport]:
    transport = HandlerTransport(handler, authorizer)
    client = OpenAI(
        base_url=f"https://{STAGE.domain}/{STAGE.name}",
        api_key="sk-llmgw-unused-the-authorizer-already-ran",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )
    return client, transport
