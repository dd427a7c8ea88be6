"""Every answer of the local gateway is JSON, the server's own included: broken HTTP framing (uvicorn's h11 parser
refuses it before any app sees it) and an app that fails before answering."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.serving import GatewayServer


async def failing_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        raise RuntimeError("the app failed before answering")


@pytest.fixture
def server() -> Iterator[GatewayServer]:
    running = GatewayServer(0)
    running.start(failing_app)
    try:
        yield running
    finally:
        running.stop()


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Send `raw` on a fresh connection; the status, headers and JSON body of the answer (read to its close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
    ],
    ids=["content-length-not-a-number", "two-content-lengths", "header-without-colon", "no-request-line"],
)
def test_broken_framing_is_a_json_400_in_the_gateway_response_shape(server: GatewayServer, raw: bytes) -> None:
    status, headers, body = exchange(server.port, raw)
    assert (status, headers["content-type"]) == (400, "application/json")
    assert int(headers["content-length"]) == len(json.dumps(body, separators=(",", ":")))
    assert body["type"] == "error"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["code"]) == ("invalid_request_error", "BAD_REQUEST")
    assert "framing" in body["error"]["message"]


def test_an_app_failing_before_its_answer_is_a_json_500(server: GatewayServer) -> None:
    status, headers, body = exchange(server.port, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (status, headers["content-type"]) == (500, "application/json")
    assert (body["type"], body["error"]["type"], body["error"]["code"]) == ("error", "api_error", "DEFAULT_5XX")


async def answering_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers 404 naming the request it saw, as the emulated API Gateway answers a route it does not have."""
    body = json.dumps({"scope": scope["type"], "method": scope.get("method"), "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_a_websocket_handshake_is_answered_as_the_plain_get_it_also_is() -> None:
    # A WebSocket client's opening request (RFC 6455 section 4.1): API Gateway's REST APIs do not upgrade it.
    running = GatewayServer(0)
    running.start(answering_app)
    try:
        status, headers, body = exchange(
            running.port,
            b"GET /v1/responses HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
    finally:
        running.stop()
    assert (status, headers["content-type"]) == (404, "application/json")
    assert body == {"scope": "http", "method": "GET", "path": "/v1/responses"}
