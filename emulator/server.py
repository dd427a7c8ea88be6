"""The local gateway's HTTP side: API Gateway's request path as an ASGI app, served by uvicorn on loopback."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread

from emulator import LOCAL_STACK_PATH
from emulator.apigateway import (
    LAMBDA_SYNC_PAYLOAD_BYTES,
    MAX_PAYLOAD_BYTES,
    STREAM_MAX_SECONDS,
    ApiDefinition,
    Route,
    access_log_line,
    policy_allows,
)
from emulator.console import console_reply, is_console_path
from emulator.events import (
    HttpReply,
    IncomingRequest,
    Stage,
    authorizer_event,
    context_value,
    method_arn,
    new_request_id,
    proxy_event,
    proxy_reply,
    request_time,
)
from emulator.lambda_context import LambdaFunction
from emulator.sends import BufferedResponse, ResponseMeter
from emulator.serving import blocking, read_body, serially
from emulator.usageplans import ApiKeys, PlanEnforcer, UsagePlanEnforcer
from emulator.webadapter import Relay, StreamLimits, WebAdapterFunction, adapter_request

# The IAM user the local admin key stands for, as the admin function sees it (requestContext.identity.userArn).
LOCAL_ADMIN = "local-admin"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class WebIntegration:
    """A request that passed API Gateway's checks, for a function behind Lambda Web Adapter: its response is
    relayed to the client as it is produced."""

    route: Route
    function: WebAdapterFunction
    event: dict[str, Any]
    context: dict[str, str]


class LocalApiGateway:
    """Serves one REST API stage as an ASGI app: routing, authorizer, API keys, usage plans, integration
    (buffered, or streamed from a function behind Lambda Web Adapter), gateway responses."""

    def __init__(
        self,
        api: ApiDefinition,
        stage: Stage,
        functions: Mapping[str, LambdaFunction | WebAdapterFunction],
        api_keys: ApiKeys,
        *,
        enforcer: PlanEnforcer | None = None,
        integration_timeout: float | None = None,
        local_stack: Mapping[str, Any] | None = None,
        access_log: Callable[[str], None] | None = None,
        admin_key: str | None = None,
    ) -> None:
        """`integration_timeout` replaces every route's own (tests); by default each route's applies. `admin_key`
        stands in for IAM on AWS_IAM routes (`Authorization: Bearer <admin key>`); without one they refuse all."""
        self.api = api
        self.stage = stage
        self._functions = functions
        self._api_keys = api_keys
        self._enforcer = enforcer or UsagePlanEnforcer()
        self._integration_timeout = integration_timeout
        self._local_stack = local_stack
        self._access_log = access_log
        self._admin_key = admin_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        request_id = new_request_id()
        method = str(scope["method"])
        path = str(scope["path"])
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        client = scope.get("client") or ("127.0.0.1", 0)
        # The request's $context variables for the access log, filled in as it goes through API Gateway's steps.
        log = {
            "requestId": request_id,
            "extendedRequestId": request_id[:16],
            "requestTime": request_time(received_at),
            "requestTimeEpoch": str(int(received_at.timestamp() * 1000)),
            "httpMethod": method,
            "resourcePath": path,
            "protocol": "HTTP/1.1",
            "identity.sourceIp": str(client[0]),
        }
        sent = ResponseMeter(send)
        body = await read_body(receive, MAX_PAYLOAD_BYTES)
        outcome = await self.handle(
            method,
            path,
            query=query,
            headers=headers,
            body=body,
            source_ip=str(client[0]),
            request_id=request_id,
            log=log,
        )
        if isinstance(outcome, WebIntegration):
            await self._stream(outcome, receive, sent.send, request_id, log)
        else:
            _log_error(log, outcome)
            await self._send(outcome, method, sent.send, request_id)
        log["status"] = str(sent.status)
        log["responseLength"] = str(sent.length)
        log["responseLatency"] = str(_ms_since(started))
        if self._access_log:
            line = access_log_line(self.api.access_log_format, log) if self.api.access_log_format else None
            self._access_log(line or f"{method} {path} {sent.status} {log['responseLatency']}ms {request_id}")

    @staticmethod
    def _request_id_headers(request_id: str) -> dict[str, str]:
        return {"x-amzn-RequestId": request_id, "x-amz-apigw-id": request_id[:16]}

    async def _send(self, reply: HttpReply, method: str, send: Send, request_id: str) -> None:
        """A whole reply, with API Gateway's request id headers and its length."""
        for name, value in self._request_id_headers(request_id).items():
            reply.headers.setdefault(name, value)
        reply.headers["Content-Length"] = str(len(reply.body))
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else reply.body})

    async def handle(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        source_ip: str,
        request_id: str,
        log: dict[str, str] | None = None,
    ) -> HttpReply | WebIntegration:
        """Take one request through API Gateway's checks to its integration: a whole reply, or the streamed
        integration still to run. `body` None means it was larger than API Gateway accepts (and not kept).
        `log` receives the request's access log variables (resource path, authorizer's context, integration)."""
        log = {} if log is None else log
        context = {"requestId": request_id, "httpMethod": method, "resourcePath": path}
        if method == "GET" and path == LOCAL_STACK_PATH and self._local_stack is not None:
            return HttpReply(200, {"Content-Type": "application/json"}, json.dumps(self._local_stack).encode())
        if method in ("GET", "HEAD") and is_console_path(path):  # on a stack: CloudFront, from S3
            return console_reply(path, self.stage.name)
        prefix = f"/{self.stage.name}"
        resource = path[len(prefix) :] if path.startswith(prefix + "/") else None
        found = self.api.find(method, resource) if resource else None
        if found is None or resource is None:
            # API Gateway answers an unknown resource or method with MISSING_AUTHENTICATION_TOKEN.
            return self.api.render("MISSING_AUTHENTICATION_TOKEN", context)
        route, path_parameters = found
        context["resourcePath"] = log["resourcePath"] = route.resource
        if route.mock is not None and not route.authorizer and not route.api_key_required:
            # A CORS preflight: API Gateway answers it itself, calling neither the authorizer nor a function.
            log["integration.responseTransferMode"] = "BUFFERED"
            return self.api.mock_reply(route)
        if body is None or len(body) > MAX_PAYLOAD_BYTES:
            return self.api.render("REQUEST_TOO_LARGE", context)
        request = IncomingRequest(
            method=method,
            resource=route.resource,
            path=resource,
            headers=headers,
            query=parse_qsl(query, keep_blank_values=True),
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            received_at=datetime.now(UTC),
            path_parameters=path_parameters,
        )
        authorizer_context: dict[str, Any] | None = None
        usage_identifier: str | None = None
        iam_principal: str | None = None
        if route.iam:
            checked = self._iam_principal(request)
            if isinstance(checked, str):
                iam_principal = checked
            else:
                return self.api.render(checked[0], context, checked[1])
            log["identity.userArn"] = iam_principal
        if route.authorizer:
            outcome = await self._authorize(route.authorizer, request, context)
            if isinstance(outcome, HttpReply):
                return outcome
            authorizer_context, usage_identifier = outcome
            for key, value in authorizer_context.items():
                log[f"authorizer.{key}"] = context_value(value)
            log["authorizer.latency"] = str(authorizer_context["integrationLatency"])
        api_key: tuple[str, str] | None = None
        if route.api_key_required:
            value = (
                usage_identifier if self.api.api_key_source == "AUTHORIZER" else request.header_map().get("x-api-key")
            )
            # A key looked up within the cache time needs no thread (test doubles have plan_of only).
            on_plan = self._api_keys.cached(value) if value and isinstance(self._api_keys, ApiKeys) else None
            if on_plan is None and value:
                on_plan = await blocking(self._api_keys.plan_of, value)
            if on_plan is None or value is None:
                return self.api.render("INVALID_API_KEY", context)
            api_key_id, plan = on_plan
            # Off the event loop: the shared enforcer's transaction may wait for another worker's.
            refusal = await serially(self._enforcer.admit, api_key_id, plan)
            if refusal:
                return self.api.render(refusal, context)
            api_key = (api_key_id, value)
        event = proxy_event(self.stage, request, authorizer_context, api_key, iam_principal)
        if len(json.dumps(event)) > LAMBDA_SYNC_PAYLOAD_BYTES:
            # Lambda refuses the invocation (413 RequestEntityTooLarge); API Gateway answers 502.
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        function = self._functions[route.function]
        if isinstance(function, WebAdapterFunction):
            return WebIntegration(route, function, event, context)
        return await self._invoke(function, route, event, context, log)

    def _iam_principal(self, request: IncomingRequest) -> str | tuple[str, str]:
        """The local admin for a request bearing the admin key, else API Gateway's refusal of an unsigned request
        (MISSING_AUTHENTICATION_TOKEN without an Authorization header, INVALID_SIGNATURE with a wrong one: a
        caller's API key is no IAM signature)."""
        import hmac

        given = request.header_map().get("authorization") or request.header_map().get("Authorization")
        if not given:
            return "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token"
        scheme, _, token = given.partition(" ")
        if self._admin_key and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self._admin_key):
            return f"arn:aws:iam::{self.stage.account_id}:user/{LOCAL_ADMIN}"
        return (
            "INVALID_SIGNATURE",
            "The admin API takes IAM-signed requests (locally: Authorization: Bearer <admin key>)",
        )

    async def _authorize(
        self, name: str, request: IncomingRequest, context: dict[str, str]
    ) -> HttpReply | tuple[dict[str, Any], str | None]:
        function = self._functions[self.api.authorizers[name].function]
        if not isinstance(function, LambdaFunction):
            raise TypeError(f"authorizer {name}: a REQUEST authorizer is a plain Lambda handler, not a web app")
        started = time.perf_counter()
        try:
            result = await serially(function.invoke, authorizer_event(self.stage, request))
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

    def _timeout(self, route: Route) -> float:
        return self._integration_timeout if self._integration_timeout is not None else route.timeout_seconds

    async def _invoke(
        self,
        function: LambdaFunction,
        route: Route,
        event: dict[str, Any],
        context: dict[str, str],
        log: dict[str, str],
    ) -> HttpReply:
        """A buffered Lambda proxy integration: the whole response, within the integration timeout."""
        started = time.perf_counter()
        log["integration.responseTransferMode"] = "BUFFERED"
        try:
            # At the timeout API Gateway gives up on the invocation; the function itself runs on.
            with anyio.fail_after(self._timeout(route)):
                response = await blocking(function.invoke, event, abandon_on_cancel=True)
        except TimeoutError:
            return self.api.render("INTEGRATION_TIMEOUT", context)
        except Exception as error:
            print(f"function {function.name} failed: {error!r}", file=sys.stderr)
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        finally:
            log["integration.latency"] = str(_ms_since(started))
        reply = proxy_reply(response)
        if reply is None:
            print(f"function {function.name} returned a malformed proxy response", file=sys.stderr)
            return self.api.render("DEFAULT_5XX", context, "Internal server error", status=502)
        log["integration.status"] = str(reply.status)
        return reply

    async def _stream(
        self, integration: WebIntegration, receive: Receive, send: Send, request_id: str, log: dict[str, str]
    ) -> None:
        """Relay the app's response as it is produced (STREAM) or once complete (BUFFERED), under API
        Gateway's limits, noting the integration's variables in `log`."""
        route, function = integration.route, integration.function
        started = time.perf_counter()
        log["integration.responseTransferMode"] = "STREAMED" if route.streamed else "BUFFERED"
        timeout = self._timeout(route)
        if route.streamed:
            total = min(timeout, STREAM_MAX_SECONDS, function.timeout_seconds)
            limits = StreamLimits(first_byte=timeout, idle=self.api.stream_idle_seconds, total=total)
        else:
            limits = StreamLimits(first_byte=timeout, idle=timeout, total=timeout)
        scope, body = adapter_request(integration.event, function.lambda_context())
        buffered = BufferedResponse() if not route.streamed else None
        relayed = ResponseMeter(buffered.send if buffered is not None else send)
        relay = Relay(receive, relayed.send, limits, self._request_id_headers(request_id))
        outcome = await relay.run(function.app, scope, body)
        log["integration.latency"] = str(_ms_since(started))
        if relayed.first_content_at is not None:
            log["integration.timeToFirstContent"] = str(round((relayed.first_content_at - started) * 1000))
        if outcome.gateway_response is not None:
            reply = self.api.render(
                outcome.gateway_response, integration.context, "Internal server error", status=outcome.status
            )
            _log_error(log, reply)
            await self._send(reply, integration.event["httpMethod"], send, request_id)
            return
        log["integration.status"] = str(outcome.status)
        if buffered is not None:
            await self._send(buffered.reply(), integration.event["httpMethod"], send, request_id)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _log_error(log: dict[str, str], reply: HttpReply) -> None:
    if reply.response_type is not None:
        log["error.responseType"] = reply.response_type
        log["error.message"] = reply.error_message or ""
