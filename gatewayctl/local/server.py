"""The local gateway's HTTP server: API Gateway's request path around in-process Lambda handlers."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from gatewayctl.deployment import LOCAL_STACK_PATH
from gatewayctl.lambda_context import LocalLambdaContext
from gatewayctl.local.apigateway import (
    INTEGRATION_TIMEOUT_SECONDS,
    LAMBDA_SYNC_PAYLOAD_BYTES,
    MAX_PAYLOAD_BYTES,
    ApiDefinition,
    HttpReply,
    IncomingRequest,
    Stage,
    UsagePlan,
    UsagePlanEnforcer,
    authorizer_event,
    method_arn,
    new_request_id,
    policy_allows,
    proxy_event,
    proxy_reply,
)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _DropMetrics(io.TextIOBase):
    """stdout without the EMF metric lines Powertools prints (its own 'disabled' switch leaks them in memory)."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if not text.startswith('{"_aws"'):
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        self._target.flush()


@dataclass
class LambdaFunction:
    """A function run the way a Lambda execution environment runs it: one event at a time.

    All functions of the local gateway share one process, and with it Powertools' logger and metrics and
    the package's per-request state, so they share one lock: one invocation at a time, in any function.
    """

    name: str
    handler: Handler
    timeout_seconds: float
    lock: threading.Lock
    show_metrics: bool = True

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(function_name=self.name, timeout_seconds=self.timeout_seconds)
        with self.lock:
            if self.show_metrics:
                return self.handler(event, context)
            with redirect_stdout(_DropMetrics(sys.stdout)):
                return self.handler(event, context)


class ApiKeys:
    """API Gateway's view of API keys: the key with a given value, and the usage plan it belongs to."""

    def __init__(self, apigateway: Any, api_id: str, stage: str, cache_seconds: float = 1.0) -> None:
        self._apigateway = apigateway
        self._api_id = api_id
        self._stage = stage
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, tuple[str, UsagePlan] | None]] = {}
        self._lock = threading.Lock()

    def plan_of(self, value: str) -> tuple[str, UsagePlan] | None:
        """(API key id, usage plan) of an enabled key on a plan of this stage; None if there is none."""
        with self._lock:
            cached = self._cache.get(value)
            if cached and time.monotonic() - cached[0] < self._cache_seconds:
                return cached[1]
        found = self._lookup(value)
        with self._lock:
            self._cache[value] = (time.monotonic(), found)
        return found

    def _lookup(self, value: str) -> tuple[str, UsagePlan] | None:
        for page in self._apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
            for key in page.get("items", []):
                if key.get("value") == value and key.get("enabled"):
                    for item in self._apigateway.get_usage_plans(keyId=key["id"])["items"]:
                        stages = item.get("apiStages", [])
                        if any(s.get("apiId") == self._api_id and s.get("stage") == self._stage for s in stages):
                            return str(key["id"]), UsagePlan.from_api(item)
                    return None
        return None


class LocalApiGateway:
    """Serves one REST API stage: routing, authorizer, API keys, usage plans, integration, gateway responses."""

    def __init__(
        self,
        api: ApiDefinition,
        stage: Stage,
        functions: Mapping[str, LambdaFunction],
        api_keys: ApiKeys,
        *,
        enforcer: UsagePlanEnforcer | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        local_stack: Mapping[str, Any] | None = None,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.stage = stage
        self._functions = functions
        self._api_keys = api_keys
        self._enforcer = enforcer or UsagePlanEnforcer()
        self._integration_timeout = integration_timeout
        self._local_stack = local_stack
        self._access_log = access_log
        # Integrations run on worker threads so that a slow one can be abandoned at the timeout, as
        # API Gateway does; the Lambda keeps running, and the next event for it waits its turn.
        self._workers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="lambda")

    def close(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None, source_ip: str
    ) -> HttpReply:
        """Answer one HTTP request; `body` None means it was larger than API Gateway accepts (and not kept)."""
        started = time.perf_counter()
        request_id = new_request_id()
        reply = self._handle(method, target, headers, body, source_ip, request_id=request_id)
        return self._finish(reply, method, target, request_id, started)

    def refuse(self, response_type: str, method: str, target: str, message: str) -> HttpReply:
        """A gateway response for a request that never got as far as routing (e.g. unreadable framing)."""
        started = time.perf_counter()
        request_id = new_request_id()
        context = {"requestId": request_id, "httpMethod": method, "resourcePath": urlsplit(target).path}
        return self._finish(self.api.render(response_type, context, message), method, target, request_id, started)

    def _finish(self, reply: HttpReply, method: str, target: str, request_id: str, started: float) -> HttpReply:
        """What every reply gets: API Gateway's request id headers, its length, an access log line."""
        reply.headers.setdefault("x-amzn-RequestId", request_id)
        reply.headers.setdefault("x-amz-apigw-id", request_id[:16])
        reply.headers["Content-Length"] = str(len(reply.body))
        if self._access_log:
            elapsed = (time.perf_counter() - started) * 1000
            self._access_log(f"{method} {urlsplit(target).path} {reply.status} {elapsed:.0f}ms {request_id}")
        return reply

    def _handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        source_ip: str,
        *,
        request_id: str,
    ) -> HttpReply:
        split = urlsplit(target)
        context = {"requestId": request_id, "httpMethod": method, "resourcePath": split.path}
        if method == "GET" and split.path == LOCAL_STACK_PATH and self._local_stack is not None:
            return HttpReply(200, {"Content-Type": "application/json"}, json.dumps(self._local_stack).encode())
        prefix = f"/{self.stage.name}"
        resource = split.path[len(prefix) :] if split.path.startswith(prefix + "/") else None
        route = self.api.route(method, resource) if resource else None
        if route is None:
            # API Gateway answers an unknown resource or method with MISSING_AUTHENTICATION_TOKEN.
            return self.api.render("MISSING_AUTHENTICATION_TOKEN", context)
        context["resourcePath"] = route.resource
        if body is None or len(body) > MAX_PAYLOAD_BYTES:
            return self.api.render("REQUEST_TOO_LARGE", context)
        request = IncomingRequest(
            method=method,
            resource=route.resource,
            path=route.resource,
            headers=headers,
            query=parse_qsl(split.query, keep_blank_values=True),
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            received_at=datetime.now(UTC),
        )
        authorizer_context: dict[str, Any] | None = None
        usage_identifier: str | None = None
        if route.authorizer:
            outcome = self._authorize(route.authorizer, request, context)
            if isinstance(outcome, HttpReply):
                return outcome
            authorizer_context, usage_identifier = outcome
        api_key: tuple[str, str] | None = None
        if route.api_key_required:
            value = (
                usage_identifier if self.api.api_key_source == "AUTHORIZER" else request.header_map().get("x-api-key")
            )
            found = self._api_keys.plan_of(value) if value else None
            if found is None or value is None:
                return self.api.render("INVALID_API_KEY", context)
            api_key_id, plan = found
            refusal = self._enforcer.admit(api_key_id, plan)
            if refusal:
                return self.api.render(refusal, context)
            api_key = (api_key_id, value)
        return self._integrate(route.function, proxy_event(self.stage, request, authorizer_context, api_key), context)

    def _authorize(
        self, name: str, request: IncomingRequest, context: dict[str, str]
    ) -> HttpReply | tuple[dict[str, Any], str | None]:
        function = self._functions[self.api.authorizers[name].function]
        started = time.perf_counter()
        try:
            result = function.invoke(authorizer_event(self.stage, request))
        except Exception as error:
            if str(error) == "Unauthorized":
                return self.api.render("UNAUTHORIZED", context)
            print(f"authorizer {function.name} failed: {error!r}", file=sys.stderr)
            return self.api.render("AUTHORIZER_FAILURE", context)
        if not isinstance(result, dict) or "policyDocument" not in result:
            return self.api.render("AUTHORIZER_CONFIGURATION_ERROR", context)
        if not policy_allows(result["policyDocument"], method_arn(self.stage, request)):
            return self.api.render("ACCESS_DENIED", context)
        authorizer = {
            "principalId": result.get("principalId"),
            **(result.get("context") or {}),
            "integrationLatency": int((time.perf_counter() - started) * 1000),
        }
        return authorizer, result.get("usageIdentifierKey")

    def _integrate(self, function_name: str, event: dict[str, Any], context: dict[str, str]) -> HttpReply:
        if len(json.dumps(event)) > LAMBDA_SYNC_PAYLOAD_BYTES:
            # Lambda refuses the invocation (413 RequestEntityTooLarge); API Gateway answers 502.
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        future = self._workers.submit(self._functions[function_name].invoke, event)
        try:
            response = future.result(timeout=self._integration_timeout)
        except FutureTimeout:
            return self.api.render("INTEGRATION_TIMEOUT", context)
        except Exception as error:
            print(f"function {function_name} failed: {error!r}", file=sys.stderr)
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        reply = proxy_reply(response)
        if reply is None:
            print(f"function {function_name} returned a malformed proxy response", file=sys.stderr)
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        return reply


class _BadFraming(Exception):
    """The request's body framing (Content-Length, chunked encoding) cannot be read."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadFraming as error:
            # The body's length is unknown, so the connection cannot be reused.
            self.close_connection = True
            reply = self.server.gateway.refuse("BAD_REQUEST_BODY", self.command, self.path, str(error))
        else:
            reply = self.server.gateway.handle(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes | None:
        """The request body; None when it exceeds API Gateway's limit (then read and dropped, so that the
        client, still sending, receives the 413 rather than a reset connection)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():
            raise _BadFraming(f"Content-Length '{declared}' is not a number of bytes")
        length = int(declared)
        if length <= MAX_PAYLOAD_BYTES:
            return self.rfile.read(length) if length else b""
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)
        return None

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                chunk_size = int(line, 16)
            except ValueError:
                raise _BadFraming("malformed chunked body") from None
            if chunk_size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the blank line
                    pass
                return None if size > MAX_PAYLOAD_BYTES else b"".join(parts)
            data = self.rfile.read(chunk_size)
            self.rfile.readline(2)
            size += len(data)
            if size <= MAX_PAYLOAD_BYTES:
                parts.append(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged by the gateway's access log instead."""


class GatewayHttpServer(ThreadingHTTPServer):
    """Bound on creation (so a busy port fails before anything else starts); serves once `gateway` is set."""

    daemon_threads = True
    gateway: LocalApiGateway

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])
