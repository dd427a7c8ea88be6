"""The events API Gateway hands its functions and takes back: the REQUEST authorizer event, the Lambda proxy
integration event (REST API, payload 1.0) and the reply a proxy response becomes; the stage and request they
describe."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes
    # For a gateway response: its type and message ($context.error.responseType, $context.error.message).
    response_type: str | None = None
    error_message: str | None = None


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
    iam_principal: str | None = None,
) -> dict[str, Any]:
    """The Lambda proxy integration event (REST API, payload 1.0), as API Gateway and `sam local` build it.
    `iam_principal`: the ARN of the IAM principal an AWS_IAM route authorised (the identity's caller and userArn)."""
    query, multi_query = request.query_maps()
    context = _request_context(stage, request)
    if iam_principal is not None:
        context["identity"]["userArn"] = context["identity"]["caller"] = iam_principal
        context["identity"]["accountId"] = stage.account_id
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
