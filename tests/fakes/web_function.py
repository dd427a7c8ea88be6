"""The API function as API Gateway invokes it: a proxy event in, Lambda Web Adapter's HTTP request to the ASGI
app, and the whole response out in the proxy response shape, so event-driven tests read it like any Lambda's.

    handler = web_function_handler(load_web_app("ApiFunction"))
    response = handler(event, LocalLambdaContext(function_name="ApiFunction"))
    response["statusCode"], response["multiValueHeaders"], response["body"], response["chunks"]

`chunks` keeps the body's pieces as the app wrote them, with their times: (seconds, text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from emulator.lambda_context import LocalLambdaContext
from emulator.webadapter import WebAdapterFunction, adapter_request
from tests.fakes.asgi import App, run_asgi

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def web_function_handler(app: App, *, disconnect_after: int | None = None) -> Handler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        lambda_context = context if isinstance(context, LocalLambdaContext) else LocalLambdaContext("ApiFunction")
        function = WebAdapterFunction(
            lambda_context.function_name, app, lambda_context.get_remaining_time_in_millis() / 1000
        )
        scope, body = adapter_request(event, function.lambda_context())
        reply = asyncio.run(run_asgi(app, scope, body, disconnect_after=disconnect_after))
        return {
            "statusCode": reply.status,
            "headers": dict(reply.headers),
            "multiValueHeaders": {name: [value] for name, value in reply.headers.items()},
            "body": reply.body.decode("utf-8"),
            "isBase64Encoded": False,
            "chunks": [(at, piece.decode("utf-8")) for at, piece in reply.chunks],
            "disconnected": reply.disconnected,
        }

    return handler
