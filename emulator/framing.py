"""The local server's own answers (broken HTTP framing, an app that fails to answer) as JSON errors in the shape of
API Gateway's own errors, which the template's gateway responses give every caller: the same `{"type": "error",
"error": {"message", "type", "param", "code"}}` that OpenAI's and Anthropic's SDKs both read.

uvicorn answers these itself, in text/plain (`send_400_response` when h11 cannot parse a request,
`send_500_response` when the ASGI app fails or ends without a response), before or outside the emulated API
Gateway. `GatewayServer` serves with uvicorn's h11 protocol whose 400 is replaced, and with its app wrapped so that
it never leaves uvicorn a 500 to give.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
logger = logging.getLogger("emulator")


def error_body(message: str, error_type: str, code: str) -> bytes:
    """The JSON error body, as the template's DEFAULT_4XX and DEFAULT_5XX gateway responses render it."""
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return json.dumps({"type": "error", "error": error}, separators=(",", ":")).encode()


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose own error answers are JSON."""

    def send_400_response(self, msg: str) -> None:
        body = error_body(
            f"{msg.rstrip('.')}: the request's HTTP framing is malformed.", "invalid_request_error", "BAD_REQUEST"
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
            self.transport.write(self.conn.send(event))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        """Silent: an `Upgrade` header is ignored by design (API Gateway's REST APIs upgrade no connection), so
        uvicorn's advice to install a WebSocket library does not apply."""


def json_server_errors(app: ASGIApp) -> ASGIApp:
    """`app`, whose failures before its response began are answered with a JSON 500 instead of uvicorn's
    text/plain one (a failure after that can only end the response)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except Exception:
            if started or scope["type"] != "http":
                raise
            logger.exception("the local gateway failed before answering")
        else:
            if started or scope["type"] != "http":
                return
        body = error_body("The local gateway failed to process this request.", "api_error", "DEFAULT_5XX")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return guarded
