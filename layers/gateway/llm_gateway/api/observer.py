"""The API function's request observer: each request's record, log context, metrics, access line and usage event,
and every failure answered in the caller's API shape."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router

from llm_gateway.api.asgi import (
    CALLER_SCOPE_KEY,
    HEADERS_SCOPE_KEY,
    ASGIApp,
    ErrorRenderer,
    Message,
    Receive,
    Scope,
    Send,
    completed,
    run_blocking,
    serves_one_request_at_a_time,
)
from llm_gateway.api.headers import with_answer_headers
from llm_gateway.api.http import invocation_of, request_context
from llm_gateway.errors import GatewayError, NotFoundError
from llm_gateway.gateway import record_usage_event
from llm_gateway.observability import RequestRecord, begin_request, end_request, logger, owes, settle_leftovers


async def finish(function: Callable[..., None], *args: Any) -> None:
    """A request's finishing work (its leftover settlements, its usage event), run to its end even if the task is
    cancelled: inline where requests come one at a time (Lambda on demand: a worker thread would only add a hand-off),
    on a worker thread elsewhere."""
    if serves_one_request_at_a_time():
        function(*args)
    else:
        await completed(run_blocking(function, *args))


class _Usage:
    """A request's usage event, written once: before its response ends where the response ends normally, so that
    Lambda does not end the invocation (and may freeze the environment) before it is written; at the request's end
    otherwise (the caller gone, a failure)."""

    def __init__(self, record: RequestRecord, request_id: str) -> None:
        self.record = record
        self.request_id = request_id
        self.written = False

    async def write(self, status: int) -> None:
        if self.written:
            return
        self.written = True
        if owes(self.record):
            await finish(settle_leftovers, self.record)
        await finish(record_usage_event, self.record, status, self.request_id)


def _error_response(render: ErrorRenderer, request: Request, error: Exception) -> Response:
    """Every failure reaches the caller through `render`, in its API's shape: a route that does not exist (Starlette's
    404 and 405) as not found, anything but a GatewayError as the generic 500."""
    if isinstance(error, HTTPException):
        return render(request, NotFoundError(f"No route for {request.method} {request.url.path}."))
    if not isinstance(error, GatewayError):
        return render(request, GatewayError("The gateway failed to process this request; retry later."))
    if error.status >= 500:
        logger.error("Request failed", extra={"error_code": error.code, "status": error.status})
    return render(request, error)


class RequestObserver:
    """Gives each request its record and log context (API Gateway's request id as correlation id), and emits
    its metrics and access log line once the response is complete, a stream's last frame included."""

    def __init__(self, router: ASGIApp, render: ErrorRenderer) -> None:
        self.app = router
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Inside an app, Starlette's routing raises its 404 and 405 (for `render`) rather than answering in plain text.
        scope.setdefault("app", self)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        context = request_context(headers)
        if not context:
            # Not an API request but the adapter's readiness check (GET /, answered 404), or a call that did
            # not come through API Gateway (refused): neither is a request of the API's metrics.
            began = False

            async def sent(message: Message) -> None:
                nonlocal began
                began = True
                await send(message)

            await self._routed(scope, receive, sent, lambda: began)
            return
        scope[HEADERS_SCOPE_KEY] = headers
        route = str(context.get("resourcePath") or scope["path"])
        request_id = str(context.get("requestId") or "")
        record = begin_request(str(scope["method"]), route, request_id, invocation_of(headers))
        started = time.perf_counter()
        status = 500
        first_byte_ms: float | None = None

        authorizer = context.get("authorizer")

        usage = _Usage(record, request_id)

        async def observed(message: Message) -> None:
            nonlocal status, first_byte_ms
            if message["type"] == "http.response.start":
                status = int(message["status"])
                first_byte_ms = round((time.perf_counter() - started) * 1000, 3)
                caller = scope.get(CALLER_SCOPE_KEY)
                message = {**message, "headers": with_answer_headers(message, authorizer, caller, record, request_id)}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # The body goes out first (the caller does not wait for the event), the response's end after it.
                if message.get("body"):
                    await send({**message, "more_body": True})
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
                await usage.write(status)
            await send(message)

        try:
            await self._routed(scope, receive, observed, lambda: first_byte_ms is not None)
        except Exception:
            # Answered with the generic 500 if the answer had not begun; this keeps the traceback in the JSON log.
            logger.exception("Unhandled error")
        finally:
            if owes(record):
                await finish(settle_leftovers, record)
            end_request(record, status, round((time.perf_counter() - started) * 1000, 3), first_byte_ms)
            # Where the response did not end normally (the caller gone, a failure): the request's one usage event.
            await usage.write(status)

    async def _routed(self, scope: Scope, receive: Receive, send: Send, began: Callable[[], bool]) -> None:
        """The route's answer; a failure before the answer began answered in the caller's API shape, and raised again
        when unexpected (a failure once it began has nothing left to answer)."""
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            if began():
                raise
            await _error_response(self.render, Request(scope, receive), error)(scope, receive, send)
            if not isinstance(error, GatewayError | HTTPException):
                raise


def gateway_app(routes: Sequence[BaseRoute], render_error: ErrorRenderer) -> ASGIApp:
    """The ASGI app serving `routes`: every failure answered by `render_error`, every request observed. Starlette's
    router without its application, whose two middleware layers (errors, exceptions) each wrapped every request and
    every message sent: the observer answers failures itself."""
    return RequestObserver(Router(routes=list(routes)), render_error)
