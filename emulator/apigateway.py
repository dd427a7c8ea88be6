"""What API Gateway (REST) does around the integration, read from the translated template.

Routes, the REQUEST authorizer and its policy, gateway responses and access log lines (the events are in
events.py, usage plans in usageplans.py). Every number comes from the
template (through the provisioned usage plans), none is repeated here except API Gateway's own
fixed limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.events import (
    HttpReply,
)

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


# A resource's catch-all method: OpenAPI's extension, and how routes here name it.
OPENAPI_ANY_METHOD = "x-amazon-apigateway-any-method"
ANY_METHOD = "ANY"


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
    # AWS_IAM authorization: API Gateway checks the request's SigV4 signature and the principal's IAM permission.
    iam: bool = False

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
        iam_schemes = {name for name, s in schemes.items() if s.get("x-amazon-apigateway-authtype") == "awsSigv4"}
        routes = []
        for resource, methods in body["paths"].items():
            for given_method, operation in methods.items():
                method = ANY_METHOD if given_method == OPENAPI_ANY_METHOD else given_method
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
                        iam=bool(names & iam_schemes),
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
        does, a resource of literal segments wins over one with parameters (/models over /models/{model+}), and a
        resource's own method over its ANY method."""
        for wanted in (method, ANY_METHOD):
            exact = self.route(wanted, path)
            if exact is not None:
                return exact, {}
        for wanted in (method, ANY_METHOD):
            for route in self.routes:
                if route.method == wanted and "{" in route.resource:
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
