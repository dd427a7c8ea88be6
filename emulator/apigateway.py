"""What API Gateway (REST) does around the integration, read from the translated template.

Routes, the REQUEST authorizer and its policy, API keys from the authorizer, usage-plan throttling and
quotas, gateway responses, and the proxy and authorizer event shapes. Every number comes from the
template (through the provisioned usage plans), none is repeated here except API Gateway's own
fixed limits.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# API Gateway's fixed limits (REST APIs).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
# The integration timeout when a method sets none.
INTEGRATION_TIMEOUT_SECONDS = 29.0
# Streamed integrations (responseTransferMode STREAM) last at most 15 minutes and are cut when idle for 5
# minutes on REGIONAL and PRIVATE endpoints, 30 s on edge-optimized ones. Source: API Gateway developer guide,
# "Stream the integration response for your proxy integrations in API Gateway".
STREAM_MAX_SECONDS = 900.0
STREAM_IDLE_SECONDS = {"REGIONAL": 300.0, "PRIVATE": 300.0, "EDGE": 30.0}

# Status of each gateway response type when the template does not override it (AWS defaults).
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "EXPIRED_TOKEN": 403,  # nosec B105 # a gateway response type and its status, not a password
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,  # nosec B105 # a gateway response type and its status
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
    "DEFAULT_4XX": 400,
    "DEFAULT_5XX": 500,
}
DEFAULT_MESSAGE = {
    "ACCESS_DENIED": "User is not authorized to access this resource with an explicit deny",
    "AUTHORIZER_FAILURE": "Internal server error",
    "INTEGRATION_TIMEOUT": "Endpoint request timed out",
    "INVALID_API_KEY": "Forbidden",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",  # nosec B105 # API Gateway's message
    "QUOTA_EXCEEDED": "Limit Exceeded",
    "REQUEST_TOO_LARGE": "Request Too Long",
    "THROTTLED": "Too Many Requests",
    "UNAUTHORIZED": "Unauthorized",
    "DEFAULT_5XX": "Internal server error",
}


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    function: str
    authorizer: str | None
    api_key_required: bool
    # The integration's responseTransferMode: BUFFERED (the default) or STREAM.
    transfer_mode: str = "BUFFERED"
    timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS
    # A MOCK integration (the CORS preflights): its default integration response, answered by API Gateway itself.
    mock: dict[str, Any] | None = None

    @property
    def streamed(self) -> bool:
        return self.transfer_mode == "STREAM"

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` (without the stage) falls under this resource, else None. A `{name}`
        segment takes one non-empty segment, a final `{name+}` (greedy) the rest of the path, as API Gateway
        matches them; a literal segment must be equal."""
        wanted = self.resource.strip("/").split("/")
        given = path.strip("/").split("/")
        found: dict[str, str] = {}
        for position, segment in enumerate(wanted):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = given[position:]
                if not rest or not all(rest):
                    return None
                found[segment[1:-2]] = "/".join(rest)
                return found
            if position >= len(given):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                if not given[position]:
                    return None
                found[segment[1:-1]] = given[position]
            elif segment != given[position]:
                return None
        return found if len(given) == len(wanted) else None


@dataclass(frozen=True)
class Authorizer:
    name: str
    function: str


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes
    # For a gateway response: its type and message ($context.error.responseType, $context.error.message).
    response_type: str | None = None
    error_message: str | None = None


_FUNCTION_IN_URI = re.compile(r"\$\{(\w+)\.Arn\}")


def _function_of(uri: Any) -> str:
    text = json.dumps(uri)
    match = _FUNCTION_IN_URI.search(text) or re.search(r'"(\w+)",\s*"Arn"', text)
    if not match:
        raise ValueError(f"cannot find the Lambda function in integration uri {uri}")
    return match.group(1)


@dataclass
class ApiDefinition:
    """The REST API of the translated template: routes, authorizers, key source and gateway responses."""

    routes: list[Route]
    authorizers: dict[str, Authorizer]
    api_key_source: str
    gateway_responses: dict[str, dict[str, Any]]
    endpoint_type: str = "EDGE"
    # The stage's access log format (AccessLogSetting.Format): $context variables in a line of text.
    access_log_format: str | None = None

    @property
    def stream_idle_seconds(self) -> float:
        return STREAM_IDLE_SECONDS.get(self.endpoint_type, STREAM_IDLE_SECONDS["EDGE"])

    @classmethod
    def from_template(cls, cfn: dict[str, Any], resolve: Callable[[Any], Any] | None = None) -> ApiDefinition:
        """The API of a translated template; `resolve` evaluates the intrinsic functions left in its body (parameter
        values and conditions: the CORS origin in preflights and gateway responses) as CloudFormation would."""
        (api,) = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
        resolve = resolve or (lambda value: value)
        body = api["Properties"]["Body"]
        schemes = body.get("components", {}).get("securitySchemes", {}) or body.get("securityDefinitions", {})
        authorizers = {
            name: Authorizer(name, _function_of(scheme["x-amazon-apigateway-authorizer"]["authorizerUri"]))
            for name, scheme in schemes.items()
            if "x-amazon-apigateway-authorizer" in scheme
        }
        routes = []
        for resource, methods in body["paths"].items():
            for method, operation in methods.items():
                names = {name for requirement in operation.get("security", []) for name in requirement}
                integration = operation["x-amazon-apigateway-integration"]
                if str(integration.get("type", "")).lower() == "mock":
                    routes.append(
                        Route(
                            method=method.upper(),
                            resource=resource,
                            function="",
                            authorizer=next((n for n in names if n in authorizers), None),
                            api_key_required="api_key" in names,
                            mock=dict(resolve(integration.get("responses", {}).get("default", {}))),
                        )
                    )
                    continue
                timeout_ms = integration.get("timeoutInMillis")
                routes.append(
                    Route(
                        method=method.upper(),
                        resource=resource,
                        function=_function_of(integration["uri"]),
                        authorizer=next((n for n in names if n in authorizers), None),
                        api_key_required="api_key" in names,
                        transfer_mode=str(integration.get("responseTransferMode", "BUFFERED")),
                        timeout_seconds=int(timeout_ms) / 1000 if timeout_ms else INTEGRATION_TIMEOUT_SECONDS,
                    )
                )
        endpoint = api["Properties"].get("EndpointConfiguration") or {}
        types = endpoint.get("Types") or [endpoint.get("Type") or "EDGE"]
        stages = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
        access_log = (stages[0]["Properties"].get("AccessLogSetting") or {}) if stages else {}
        log_format = access_log.get("Format")
        return cls(
            routes=routes,
            authorizers=authorizers,
            api_key_source=str(api["Properties"].get("ApiKeySourceType", "HEADER")),
            gateway_responses=dict(resolve(body.get("x-amazon-apigateway-gateway-responses", {}))),
            endpoint_type=str(types[0]),
            access_log_format=log_format if isinstance(log_format, str) else None,
        )

    def route(self, method: str, resource: str) -> Route | None:
        return next((r for r in self.routes if r.method == method and r.resource == resource), None)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `method` `path` (the path without the stage) and its path parameters. As API Gateway
        does, a resource of literal segments wins over one with parameters (/models over /models/{model+})."""
        exact = self.route(method, path)
        if exact is not None:
            return exact, {}
        for route in self.routes:
            if route.method == method and "{" in route.resource:
                found = route.match(path)
                if found is not None:
                    return route, found
        return None

    @staticmethod
    def mock_reply(route: Route) -> HttpReply:
        """A MOCK integration's answer: its default integration response's status, its static header mappings
        ('value' in single quotes; a mapping CloudFormation removed is no header) and its JSON template."""
        spec = route.mock or {}
        headers = {"Content-Type": "application/json"}
        for name, value in (spec.get("responseParameters") or {}).items():
            if name.startswith("method.response.header.") and isinstance(value, str):
                headers[name.removeprefix("method.response.header.")] = value.strip("'")
        body = str((spec.get("responseTemplates") or {}).get("application/json", ""))
        return HttpReply(int(spec.get("statusCode", 200)), headers, body.encode("utf-8"))

    def render(
        self, response_type: str, context: Mapping[str, str], message: str | None = None, status: int | None = None
    ) -> HttpReply:
        """A gateway response as API Gateway renders it: type, then DEFAULT_4XX/5XX, then AWS's default.

        `status` is the status API Gateway would send for this event (e.g. 502 for a failed Lambda) when the
        template does not set one.
        """
        default_status = status or DEFAULT_STATUS.get(response_type, 500)
        family = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
        spec = self.gateway_responses.get(response_type) or self.gateway_responses.get(family) or {}
        status = int(spec.get("statusCode", default_status))
        text = message or DEFAULT_MESSAGE.get(response_type) or DEFAULT_MESSAGE.get(family, "Error")
        variables = {
            **context,
            "error.message": text,
            "error.messageString": json.dumps(text),
            "error.responseType": response_type,
        }
        template = spec.get("responseTemplates", {}).get("application/json")
        body = _substitute(template, variables) if template else json.dumps({"message": text})
        headers = {"Content-Type": "application/json"}
        for name, value in spec.get("responseParameters", {}).items():
            if name.startswith("gatewayresponse.header.") and isinstance(value, str):
                headers[name.removeprefix("gatewayresponse.header.")] = _mapped_value(value, variables)
        return HttpReply(status, headers, body.encode("utf-8"), response_type=response_type, error_message=text)


def _mapped_value(value: str, variables: Mapping[str, str]) -> str:
    """A gateway response's header mapping: a 'static' value in single quotes, or a context variable
    (`context.requestId`)."""
    if value.startswith("context."):
        return variables.get(value.removeprefix("context."), "")
    return value.strip("'")


_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])")


def _substitute(template: str, variables: Mapping[str, str]) -> str:
    return _CONTEXT_VARIABLE.sub(lambda m: variables.get(m.group(1), ""), template)


def access_log_line(log_format: str, values: Mapping[str, str]) -> str:
    """The stage's access log line for one request: each $context variable replaced by its value, or by "-"
    when the request has none (as API Gateway writes an absent value), unescaped as API Gateway writes it.

    `values` are keyed by variable name without the `$context.` prefix (`status`, `authorizer.keyId`).
    """
    return _CONTEXT_VARIABLE.sub(lambda m: values.get(m.group(1)) or "-", log_format)


def policy_allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """IAM-style evaluation of an authorizer policy for one method ARN: an explicit Deny wins."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_wildcard(a).fullmatch("execute-api:Invoke") for a in actions):
            continue
        if any(_wildcard(r).fullmatch(method_arn) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


@dataclass(frozen=True)
class UsagePlan:
    plan_id: str
    name: str
    rate_limit: float
    burst_limit: int
    quota_limit: int | None
    quota_period: str | None
    quota_offset: int = 0

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> UsagePlan:
        throttle, quota = item.get("throttle", {}), item.get("quota")
        return cls(
            plan_id=str(item["id"]),
            name=str(item.get("name", "")),
            rate_limit=float(throttle.get("rateLimit", 10000)),
            burst_limit=int(throttle.get("burstLimit", 5000)),
            quota_limit=int(quota["limit"]) if quota else None,
            quota_period=str(quota["period"]) if quota else None,
            quota_offset=int(quota.get("offset", 0)) if quota else 0,
        )


def quota_window(period: str, offset: int, now: datetime) -> tuple[date, datetime]:
    """(start, reset time) of the quota period holding `now`, as API Gateway counts them in UTC."""
    today = now.astimezone(UTC).date()
    if period == "DAY":
        start = today
        end = start + timedelta(days=1)
    elif period == "WEEK":
        # offset 0 is Sunday, 1 Monday...; date.weekday() counts Monday as 0.
        days_since_start = (today.weekday() + 1 - offset) % 7
        start = today - timedelta(days=days_since_start)
        end = start + timedelta(days=7)
    elif period == "MONTH":
        start = today.replace(day=1 + offset)
        if start > today:
            previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
            start = previous.replace(day=1 + offset)
        end = (start.replace(day=1) + timedelta(days=32)).replace(day=1 + offset)
    else:
        raise ValueError(f"unknown quota period {period}")
    return start, datetime.combine(end, datetime.min.time(), UTC)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class UsagePlanEnforcer:
    """Per-key token-bucket throttling (rate, burst) and per-period quotas, as usage plans apply them."""

    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _quota_used: dict[tuple[str, date], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, api_key_id: str, plan: UsagePlan) -> str | None:
        """None when the request may pass, else the gateway response type (THROTTLED, QUOTA_EXCEEDED)."""
        with self._lock:
            now = self.monotonic()
            bucket = self._buckets.setdefault(api_key_id, _Bucket(float(plan.burst_limit), now))
            bucket.tokens = min(plan.burst_limit, bucket.tokens + (now - bucket.updated) * plan.rate_limit)
            bucket.updated = now
            if bucket.tokens < 1:
                return "THROTTLED"
            if plan.quota_limit is not None and plan.quota_period is not None:
                window, _ = quota_window(plan.quota_period, plan.quota_offset, self.clock())
                used = self._quota_used.get((api_key_id, window), 0)
                if used >= plan.quota_limit:
                    return "QUOTA_EXCEEDED"
                self._quota_used[(api_key_id, window)] = used + 1
            bucket.tokens -= 1
            return None


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_time(now: datetime) -> str:
    return now.strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass(frozen=True)
class Stage:
    api_id: str
    name: str
    region: str
    account_id: str
    domain: str


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    resource: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str
    request_id: str
    received_at: datetime
    # Values of the resource's {name} segments (API Gateway URL-decodes them).
    path_parameters: dict[str, str] = field(default_factory=dict)

    def header_map(self) -> dict[str, str]:
        """API Gateway's single-value headers: the last value of each header wins."""
        return dict(self.headers)

    def multi_value_headers(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for name, value in self.headers:
            values.setdefault(name, []).append(value)
        return values

    def query_maps(self) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
        if not self.query:
            return None, None
        multi: dict[str, list[str]] = {}
        for name, value in self.query:
            multi.setdefault(name, []).append(value)
        return dict(self.query), multi


def method_arn(stage: Stage, request: IncomingRequest) -> str:
    return (
        f"arn:aws:execute-api:{stage.region}:{stage.account_id}:{stage.api_id}/{stage.name}/"
        f"{request.method}{request.path}"
    )


def _request_context(stage: Stage, request: IncomingRequest) -> dict[str, Any]:
    user_agent = request.header_map().get("User-Agent") or request.header_map().get("user-agent")
    return {
        "resourceId": "local",
        "resourcePath": request.resource,
        "httpMethod": request.method,
        "extendedRequestId": request.request_id[:16],
        "requestTime": request_time(request.received_at),
        "path": f"/{stage.name}{request.path}",
        "accountId": stage.account_id,
        "protocol": "HTTP/1.1",
        "stage": stage.name,
        "domainPrefix": stage.domain.split(".")[0],
        "requestTimeEpoch": int(request.received_at.timestamp() * 1000),
        "requestId": request.request_id,
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": request.source_ip,
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": user_agent,
            "user": None,
        },
        "domainName": stage.domain,
        "apiId": stage.api_id,
    }


def authorizer_event(stage: Stage, request: IncomingRequest) -> dict[str, Any]:
    """The event API Gateway sends a REQUEST authorizer."""
    query, multi_query = request.query_maps()
    return {
        "type": "REQUEST",
        "methodArn": method_arn(stage, request),
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": request.header_map(),
        "multiValueHeaders": request.multi_value_headers(),
        "queryStringParameters": query or {},
        "multiValueQueryStringParameters": multi_query or {},
        "pathParameters": dict(request.path_parameters),
        "stageVariables": {},
        "requestContext": _request_context(stage, request),
    }


def context_value(value: Any) -> str:
    """An authorizer context value as REST APIs hand it on (to the integration, to the access log): a string,
    booleans as true/false."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def proxy_event(
    stage: Stage,
    request: IncomingRequest,
    authorizer: Mapping[str, Any] | None,
    api_key: tuple[str, str] | None,
) -> dict[str, Any]:
    """The Lambda proxy integration event (REST API, payload 1.0), as API Gateway and `sam local` build it."""
    query, multi_query = request.query_maps()
    context = _request_context(stage, request)
    if api_key is not None:
        context["identity"]["apiKeyId"], context["identity"]["apiKey"] = api_key
    if authorizer is not None:
        # REST APIs pass authorizer context values to the integration as strings.
        context["authorizer"] = {key: context_value(value) for key, value in authorizer.items()}
    try:
        body: str | None = request.body.decode("utf-8") if request.body else None
        encoded = False
    except UnicodeDecodeError:
        import base64

        body, encoded = base64.b64encode(request.body).decode("ascii"), True
    return {
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": request.header_map() or None,
        "multiValueHeaders": request.multi_value_headers() or None,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(request.path_parameters) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": encoded,
    }


def proxy_reply(response: Any) -> HttpReply | None:
    """The HTTP reply of a proxy integration response; None when the response is malformed (a 502)."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        return None
    headers: dict[str, str] = {}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    for name, value in (response.get("headers") or {}).items():
        headers[name] = str(value)
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        import base64

        raw = base64.b64decode(body)
    else:
        raw = str(body).encode("utf-8")
    return HttpReply(int(response["statusCode"]), headers, raw)
