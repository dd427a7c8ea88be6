"""AWS Lambda Web Adapter as the local gateway plays it, and API Gateway's streamed integration around it.

On AWS, API Gateway invokes the function with a proxy event; the adapter (awslabs/aws-lambda-web-adapter,
`fetch_response` in src/lib.rs) turns it into an HTTP request to the app: the event's method, path (without
the stage: lambda_http's raw HTTP path), query, headers and body, plus two headers it sets itself, replacing
any the client sent under those names: `x-amzn-request-context` (API Gateway's request context, as JSON)
and `x-amzn-lambda-context` (the invocation). The app's response then streams back through API Gateway
(integration `responseTransferMode: STREAM`) under its timeouts. Here the same request goes to the same
ASGI app in-process and the response is relayed to the client as the app produces it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.api.http import LAMBDA_CONTEXT_HEADER, REQUEST_CONTEXT_HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ADAPTER_HEADERS = {REQUEST_CONTEXT_HEADER, LAMBDA_CONTEXT_HEADER}


@dataclass
class WebAdapterFunction:
    """A function whose handler script starts a web app that Lambda Web Adapter forwards invocations to."""

    name: str
    app: ASGIApp
    timeout_seconds: float
    memory_mb: int = 1024

    def lambda_context(self, now: float | None = None) -> dict[str, Any]:
        """The invocation as the adapter serialises it (lambda_runtime's Context, serde field names)."""
        started = time.time() if now is None else now
        return {
            "request_id": str(uuid.uuid4()),
            "deadline": int((started + self.timeout_seconds) * 1000),
            "invoked_function_arn": f"arn:aws:lambda:us-east-1:000000000000:function:{self.name}",
            "xray_trace_id": None,
            "client_context": None,
            "identity": None,
            "env_config": {
                "function_name": self.name,
                "memory": self.memory_mb,
                "version": "$LATEST",
                "log_stream": "local",
                "log_group": f"/aws/lambda/{self.name}",
            },
        }


def adapter_request(event: dict[str, Any], lambda_context: dict[str, Any]) -> tuple[Scope, bytes]:
    """The ASGI scope and body of the HTTP request the adapter sends the app for a REST API proxy event."""
    headers: list[tuple[str, str]] = []
    multi = event.get("multiValueHeaders") or {}
    single = event.get("headers") or {}
    for name, values in multi.items() if multi else ((n, [v]) for n, v in single.items()):
        if name.lower() not in _ADAPTER_HEADERS:
            headers.extend((name.lower(), str(value)) for value in values)
    headers.append((REQUEST_CONTEXT_HEADER, json.dumps(event.get("requestContext") or {}, separators=(",", ":"))))
    headers.append((LAMBDA_CONTEXT_HEADER, json.dumps(lambda_context, separators=(",", ":"))))
    query: list[str] = []
    multi_query = event.get("multiValueQueryStringParameters") or {}
    single_query = event.get("queryStringParameters") or {}
    for name, values in multi_query.items() if multi_query else ((n, [v]) for n, v in single_query.items()):
        query.extend(f"{_quote(name)}={_quote(str(value))}" for value in values)
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    path = str(event.get("path") or "/")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": str(event.get("httpMethod") or "GET"),
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8"),
        "query_string": "&".join(query).encode("latin-1"),
        "root_path": "",
        "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 8080),
    }
    return scope, body


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@dataclass(frozen=True)
class StreamLimits:
    """API Gateway's limits on a streamed integration (seconds): until the response starts (the integration
    timeout), between two pieces of the body (the endpoint type's idle timeout), and in all (the integration
    timeout, never more than the function's own timeout)."""

    first_byte: float
    idle: float
    total: float


@dataclass
class RelayOutcome:
    status: int
    # True when API Gateway gave up on the response (a timeout) after it had started.
    cut: bool = False
    # The response never started: the gateway response to send instead (INTEGRATION_TIMEOUT, DEFAULT_5XX).
    gateway_response: str | None = None


class Relay:
    """One request to a web app, its response relayed to the client as it is produced, under API Gateway's
    stream limits.

    The client's disconnection (or API Gateway giving up on a timeout) reaches the app as `http.disconnect`
    and makes its later writes fail, as a closed connection does; the app is then left to finish on its own.
    """

    def __init__(self, client_receive: Receive, client_send: Send, limits: StreamLimits, headers: dict[str, str]):
        self._client_receive = client_receive
        self._client_send = client_send
        self._limits = limits
        self._extra_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._body: bytes = b""
        self._body_given = False
        self._started = time.monotonic()
        self._last_activity = self._started
        self._response_started = False
        self._status = 0
        self._finished = asyncio.Event()
        self._gone = asyncio.Event()

    async def run(self, app: ASGIApp, scope: Scope, body: bytes) -> RelayOutcome:
        self._body = body
        app_task = asyncio.ensure_future(app(scope, self._app_receive, self._app_send))
        watcher = asyncio.ensure_future(self._watch_client())
        try:
            while not app_task.done():
                now = time.monotonic()
                limit = self._limit()
                if now >= limit:
                    return await self._give_up(app_task)
                await asyncio.wait({app_task, watcher}, timeout=limit - now, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done() and not app_task.done():
                    # The client left: the app hears of it through its receive() and stops on its own.
                    _leave_running(app_task)
                    return RelayOutcome(self._status or 499)
            error = app_task.exception()
            if error is not None:
                print(f"the function's app failed: {error!r}", file=sys.stderr)
            if not self._response_started:
                # The adapter reports a failed or empty answer as the invocation's error: API Gateway answers 502.
                return RelayOutcome(502, gateway_response="DEFAULT_5XX")
            if not self._finished.is_set() and not self._gone.is_set():
                await self._end()
            return RelayOutcome(self._status)
        finally:
            watcher.cancel()

    def _limit(self) -> float:
        """When API Gateway gives up if nothing more arrives (monotonic seconds)."""
        idle = self._last_activity + self._limits.idle
        if self._response_started:
            return min(self._started + self._limits.total, idle)
        return min(self._started + self._limits.first_byte, idle)

    async def _give_up(self, app_task: asyncio.Future[None]) -> RelayOutcome:
        self._gone.set()
        _leave_running(app_task)
        if not self._response_started:
            return RelayOutcome(504, gateway_response="INTEGRATION_TIMEOUT")
        if not self._finished.is_set():
            await self._end()
        return RelayOutcome(self._status, cut=True)

    async def _app_receive(self) -> Message:
        if not self._body_given:
            self._body_given = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _app_send(self, message: Message) -> None:
        if self._gone.is_set():
            raise OSError("the connection to the client is closed")
        self._last_activity = time.monotonic()
        if message["type"] == "http.response.start":
            self._status = int(message["status"])
            message = {**message, "headers": [*message.get("headers", []), *self._extra_headers]}
            self._response_started = True
        elif not message.get("more_body", False):
            self._finished.set()
        try:
            await self._client_send(message)
        except OSError:
            self._gone.set()
            raise

    async def _watch_client(self) -> None:
        while (await self._client_receive())["type"] != "http.disconnect":
            pass
        self._gone.set()

    async def _end(self) -> None:
        with contextlib.suppress(OSError):
            await self._client_send({"type": "http.response.body", "body": b"", "more_body": False})


_running: set[asyncio.Future[None]] = set()


def _leave_running(task: asyncio.Future[None]) -> None:
    """Keep a reference to an app task left to finish on its own, and collect its outcome when it does."""
    _running.add(task)

    def done(finished: asyncio.Future[None]) -> None:
        _running.discard(finished)
        if not finished.cancelled():
            finished.exception()

    task.add_done_callback(done)
