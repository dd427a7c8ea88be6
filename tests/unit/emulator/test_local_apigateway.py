"""The local gateway's API Gateway behaviour, piece by piece, with in-process fake functions."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.apigateway import ApiDefinition, policy_allows
from emulator.events import Stage
from emulator.lambda_context import LambdaFunction
from emulator.server import LocalApiGateway
from emulator.serving import GatewayServer
from emulator.template import Resolver, translate_template
from emulator.usageplans import UsagePlan, UsagePlanEnforcer, quota_window
from tests.fakes.asgi import asgi_call

EVENTS = Path(__file__).resolve().parents[3] / "events"
ARN = "arn:aws:execute-api:us-east-1:000000000000:api1/v1/POST/chat/completions"


@pytest.fixture(scope="module")
def api() -> ApiDefinition:
    return ApiDefinition.from_template(translate_template())


def test_routes_authorizer_and_key_source_come_from_the_template(api: ApiDefinition) -> None:
    assert {(r.method, r.resource, r.function) for r in api.routes if r.mock is None} == {
        ("POST", "/chat/completions", "ApiFunction"),
        ("POST", "/responses", "ApiFunction"),
        ("POST", "/responses/compact", "ApiFunction"),
        ("GET", "/responses/{response_id}", "ApiFunction"),
        ("DELETE", "/responses/{response_id}", "ApiFunction"),
        ("GET", "/responses/{response_id}/input_items", "ApiFunction"),
        ("POST", "/embeddings", "ApiFunction"),
        ("GET", "/models/{model+}", "ApiFunction"),
        ("POST", "/messages", "ApiFunction"),
        ("POST", "/messages/count_tokens", "ApiFunction"),
        ("GET", "/models", "ApiFunction"),
        ("POST", "/model", "ApiFunction"),
        ("ANY", "/admin/{proxy+}", "AdminFunction"),
    }
    callers = [r for r in api.routes if r.mock is None and r.function == "ApiFunction"]
    assert all(r.authorizer == "KeyAuthorizer" and r.api_key_required and not r.iam for r in callers)
    # The admin API: IAM only, neither the key authorizer nor an API key.
    (admin,) = [r for r in api.routes if r.function == "AdminFunction"]
    assert admin.iam and admin.authorizer is None and not admin.api_key_required
    assert api.authorizers["KeyAuthorizer"].function == "KeyAuthorizerFunction"
    assert api.api_key_source == "AUTHORIZER"


def test_cors_preflights_are_mock_routes_rendered_with_the_deployments_origin() -> None:
    cfn = translate_template()
    allowed = ApiDefinition.from_template(cfn, Resolver(cfn, {"CorsAllowOrigin": "https://app.example.com"}).resolve)
    preflights = [r for r in allowed.routes if r.method == "OPTIONS"]
    assert {r.resource for r in preflights} == {r.resource for r in allowed.routes if r.method != "OPTIONS"}
    assert all(r.mock is not None and r.authorizer is None and not r.api_key_required for r in preflights)
    reply = allowed.mock_reply(preflights[0])
    assert (reply.status, reply.headers["Access-Control-Allow-Origin"]) == (200, "https://app.example.com")
    assert allowed.render("THROTTLED", {}).headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    closed = ApiDefinition.from_template(cfn, Resolver(cfn).resolve)
    (preflight,) = [r for r in closed.routes if r.method == "OPTIONS" and r.resource == "/embeddings"]
    assert "Access-Control-Allow-Origin" not in closed.mock_reply(preflight).headers
    assert "Access-Control-Allow-Origin" not in closed.render("THROTTLED", {}).headers


def test_paths_find_their_resource_and_path_parameters_as_api_gateway_matches_them(api: ApiDefinition) -> None:
    assert api.find("GET", "/models") == (api.route("GET", "/models"), {})
    model = api.route("GET", "/models/{model+}")
    assert api.find("GET", "/models/echo") == (model, {"model": "echo"})
    # Greedy: the rest of the path, slashes included (vLLM's model names).
    assert api.find("GET", "/models/meta-llama/Llama-3.1-8B") == (model, {"model": "meta-llama/Llama-3.1-8B"})
    assert api.find("GET", "/models/") is None
    assert api.find("POST", "/models/echo") is None
    assert api.find("GET", "/nothing/here") is None


def test_gateway_responses_render_the_templates_with_context(api: ApiDefinition) -> None:
    throttled = api.render("THROTTLED", {"requestId": "r1"})
    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "1")
    assert json.loads(throttled.body)["error"]["code"] == "rate_limit_exceeded"
    missing = api.render("MISSING_AUTHENTICATION_TOKEN", {"httpMethod": "GET", "resourcePath": "/v1/x"})
    assert missing.status == 404
    assert json.loads(missing.body)["error"]["message"].startswith("No route for GET /v1/x")
    # A type the template does not configure falls back to DEFAULT_4XX / DEFAULT_5XX, keeping AWS's status.
    bad_body = api.render("BAD_REQUEST_BODY", {}, "Invalid request body")
    assert bad_body.status == 400
    assert json.loads(bad_body.body)["error"] == {
        "message": "Invalid request body",
        "type": "invalid_request_error",
        "param": None,
        "code": "BAD_REQUEST_BODY",
    }
    failure = api.render("AUTHORIZER_FAILURE", {"requestId": "r2"})
    assert failure.status == 500
    assert "request r2" in json.loads(failure.body)["error"]["message"]


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "execute-api:Invoke",
                        "Resource": ["arn:aws:execute-api:us-east-1:000000000000:api1/v1/*/*"],
                    }
                ]
            },
            True,
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ARN}]}, True),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "execute-api:Invoke",
                        "Resource": ["arn:aws:execute-api:us-east-1:000000000000:api1/v1/GET/*"],
                    }
                ]
            },
            False,
        ),
        ({"Statement": [{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ["*"]}]}, False),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": ARN},
                ]
            },
            False,
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, False),
        ({"Statement": []}, False),
    ],
)
def test_policy_evaluation(policy: dict[str, Any], allowed: bool) -> None:
    assert policy_allows(policy, ARN) is allowed


def test_quota_windows() -> None:
    wednesday = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert quota_window("DAY", 0, wednesday) == (date(2026, 11, 25), datetime(2026, 11, 26, tzinfo=UTC))
    assert quota_window("WEEK", 0, wednesday)[0] == date(2026, 11, 22)  # offset 0: weeks start on Sunday
    assert quota_window("WEEK", 1, wednesday)[0] == date(2026, 11, 23)  # offset 1: Monday
    assert quota_window("MONTH", 0, wednesday) == (date(2026, 11, 1), datetime(2026, 12, 1, tzinfo=UTC))
    assert quota_window("MONTH", 2, datetime(2026, 11, 2, tzinfo=UTC))[0] == date(2026, 10, 3)


def test_token_bucket_throttles_beyond_burst_and_refills_at_rate() -> None:
    clock = {"t": 0.0}
    enforcer = UsagePlanEnforcer(monotonic=lambda: clock["t"])
    plan = UsagePlan("p", "standard", rate_limit=10, burst_limit=20, quota_limit=None, quota_period=None)
    assert [enforcer.admit("k", plan) for _ in range(21)] == [None] * 20 + ["THROTTLED"]
    clock["t"] = 0.25  # 2.5 tokens refilled
    assert [enforcer.admit("k", plan) for _ in range(3)] == [None, None, "THROTTLED"]
    assert enforcer.admit("other-key", plan) is None, "buckets are per key"


def test_quota_counts_admitted_requests_per_period_and_resets() -> None:
    now = {"at": datetime(2026, 11, 22, 23, 59, tzinfo=UTC)}
    enforcer = UsagePlanEnforcer(monotonic=lambda: 0.0, clock=lambda: now["at"])
    plan = UsagePlan("p", "free", rate_limit=100, burst_limit=100, quota_limit=2, quota_period="DAY")
    assert [enforcer.admit("k", plan) for _ in range(3)] == [None, None, "QUOTA_EXCEEDED"]
    now["at"] = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert enforcer.admit("k", plan) is None


class FakeKeys:
    def __init__(self, plan: UsagePlan) -> None:
        self.plan = plan

    def plan_of(self, value: str) -> tuple[str, UsagePlan] | None:
        return ("apikey-1", self.plan) if value == "usage-id" else None


def allow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    key = event["headers"].get("x-api-key")
    if key is None:
        raise Exception("Unauthorized")
    effect = "Allow" if key == "good" else "Deny"
    return {
        "principalId": "key_1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": ["arn:aws:execute-api:us-east-1:000000000000:api1/v1/*/*"],
                }
            ],
        },
        "usageIdentifierKey": "usage-id",
        "context": {"tenant": "acme", "tokensPerDay": 5, "admin": False},
    }


def gateway_with(
    api: ApiDefinition, handler: Any, *, authorizer: Any = allow, plan: UsagePlan | None = None, **options: Any
) -> LocalApiGateway:
    lock = threading.Lock()
    functions = {
        "ApiFunction": LambdaFunction("ApiFunction", handler, 30, lock),
        "KeyAuthorizerFunction": LambdaFunction("KeyAuthorizerFunction", authorizer, 10, lock),
    }
    plan = plan or UsagePlan("p", "standard", rate_limit=100, burst_limit=100, quota_limit=None, quota_period=None)
    stage = Stage("api1", "v1", "us-east-1", "000000000000", "127.0.0.1:3000")
    return LocalApiGateway(api, stage, functions, FakeKeys(plan), **options)  # type: ignore[arg-type]


def test_proxy_event_has_the_shape_of_sams_events_plus_authorizer_and_key(api: ApiDefinition) -> None:
    seen: list[dict[str, Any]] = []

    def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

    reply = asgi_call(
        gateway_with(api, record),
        "POST",
        "/v1/chat/completions",
        query="debug=1",
        headers={"x-api-key": "good", "Content-Type": "application/json"},
        body=b'{"a": 1}',
    )
    assert reply.status == 200
    (event,) = seen
    sample = json.loads((EVENTS / "api" / "chat-completions.json").read_text())
    assert set(event) == set(sample)
    assert set(event["requestContext"]) >= set(sample["requestContext"]) - {"resourceId"}
    assert (event["resource"], event["path"], event["body"]) == ("/chat/completions", "/chat/completions", '{"a": 1}')
    assert event["queryStringParameters"] == {"debug": "1"}
    assert event["requestContext"]["path"] == "/v1/chat/completions"
    assert event["requestContext"]["requestId"] == reply.headers["x-amzn-requestid"]
    assert event["requestContext"]["identity"]["apiKey"] == "usage-id"
    authorizer = event["requestContext"]["authorizer"]
    assert (authorizer["tenant"], authorizer["tokensPerDay"], authorizer["admin"]) == ("acme", "5", "false")
    assert reply.headers["content-length"] == "2"


def test_authorizer_outcomes_become_gateway_responses(api: ApiDefinition) -> None:
    gateway = gateway_with(api, lambda e, c: {"statusCode": 200, "body": ""})
    assert asgi_call(gateway, "GET", "/v1/models").status == 401
    denied = asgi_call(gateway, "GET", "/v1/models", headers={"x-api-key": "bad"})
    assert (denied.status, denied.json()["error"]["code"]) == (401, "invalid_api_key")


@pytest.mark.parametrize(
    ("handler", "status", "code"),
    [
        (lambda e, c: (_ for _ in ()).throw(RuntimeError("boom")), 502, "DEFAULT_5XX"),
        (lambda e, c: {"body": "no status"}, 502, "DEFAULT_5XX"),
        (lambda e, c: time.sleep(0.5) or {"statusCode": 200}, 504, "upstream_timeout"),
    ],
)
def test_integration_failures(api: ApiDefinition, handler: Any, status: int, code: str) -> None:
    gateway = gateway_with(api, handler, integration_timeout=0.2)
    reply = asgi_call(gateway, "GET", "/v1/models", headers={"x-api-key": "good"})
    assert (reply.status, reply.json()["error"]["code"]) == (status, code)


def test_payload_limits(api: ApiDefinition) -> None:
    gateway = gateway_with(api, lambda e, c: {"statusCode": 200, "body": "ok"})
    over_10_mb = b"x" * (10 * 1024 * 1024 + 1)
    too_large = asgi_call(gateway, "POST", "/v1/chat/completions", headers={"x-api-key": "good"}, body=over_10_mb)
    assert (too_large.status, too_large.json()["error"]["code"]) == (413, "request_too_large")
    # Between Lambda's 6 MB and API Gateway's 10 MB the invocation itself fails: a 5XX, as on AWS.
    big = b"x" * (7 * 1024 * 1024)
    refused = asgi_call(gateway, "POST", "/v1/chat/completions", headers={"x-api-key": "good"}, body=big)
    assert refused.status == 502


def test_unknown_paths_are_the_missing_token_response(api: ApiDefinition) -> None:
    gateway = gateway_with(api, lambda e, c: {"statusCode": 200, "body": ""})
    missing = asgi_call(gateway, "GET", "/v2/models", headers={"x-api-key": "good"})
    assert (missing.status, missing.json()["error"]["code"]) == (404, "not_found")
    assert missing.headers["x-amzn-requestid"]
    # The openai SDKs read x-request-id: the template maps it from the request id on every gateway response.
    assert missing.headers["x-request-id"] == missing.headers["x-amzn-requestid"]


def access_records(lines: list[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in lines]


def keyed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An authorizer that allows "good" with the context the real one returns."""
    response = allow(event, context)
    response["context"] = {"tenant": "acme", "keyId": "key_1", "plan": "standard", "models": "*"}
    return response


def test_the_access_log_is_the_templates_format_with_the_requests_values(api: ApiDefinition) -> None:
    lines: list[str] = []
    created = {"statusCode": 201, "body": "created"}
    gateway = gateway_with(api, lambda e, c: created, authorizer=keyed, access_log=lines.append)
    reply = asgi_call(gateway, "POST", "/v1/chat/completions", headers={"x-api-key": "good"}, body=b"{}")
    (record,) = access_records(lines)
    assert api.access_log_format is not None
    assert set(record) == set(json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", api.access_log_format)))
    assert record["requestId"] == reply.headers["x-amzn-requestid"]
    assert (record["httpMethod"], record["resourcePath"], record["status"]) == ("POST", "/chat/completions", "201")
    assert record["responseLength"] == str(len(b"created"))
    assert (record["keyId"], record["tenant"], record["plan"]) == ("key_1", "acme", "standard")
    assert (record["integrationStatus"], record["transferMode"]) == ("201", "BUFFERED")
    assert int(record["responseLatency"]) >= int(record["integrationLatency"]) >= 0
    assert (record["errorType"], record["errorMessage"]) == ("-", "-")
    assert datetime.strptime(record["requestTime"], "%d/%b/%Y:%H:%M:%S %z")


def test_the_access_log_names_api_gateways_own_errors_and_never_the_key(api: ApiDefinition) -> None:
    lines: list[str] = []
    gateway = gateway_with(api, lambda e, c: {"statusCode": 200, "body": ""}, access_log=lines.append)
    asgi_call(gateway, "GET", "/v1/models", headers={"x-api-key": "bad"})
    asgi_call(gateway, "GET", "/v1/models")
    asgi_call(gateway, "GET", "/v1/nowhere", headers={"x-api-key": "good"})
    denied, missing, unknown = access_records(lines)
    assert (denied["status"], denied["errorType"], denied["keyId"]) == ("401", "ACCESS_DENIED", "-")
    assert denied["errorMessage"] == "User is not authorized to access this resource with an explicit deny"
    assert (missing["status"], missing["errorType"]) == ("401", "UNAUTHORIZED")
    assert (unknown["status"], unknown["errorType"]) == ("404", "MISSING_AUTHENTICATION_TOKEN")
    assert all(r["integrationLatency"] == "-" for r in (denied, missing, unknown))
    assert not any("good" in line or "usage-id" in line for line in lines)


def test_a_throttled_request_is_logged_with_the_callers_key_id(api: ApiDefinition) -> None:
    lines: list[str] = []
    one_request = UsagePlan("p", "free", rate_limit=0, burst_limit=1, quota_limit=None, quota_period=None)
    ok = {"statusCode": 200, "body": ""}
    gateway = gateway_with(api, lambda e, c: ok, authorizer=keyed, plan=one_request, access_log=lines.append)
    for _ in range(2):
        asgi_call(gateway, "GET", "/v1/models", headers={"x-api-key": "good"})
    admitted, throttled = access_records(lines)
    assert admitted["status"] == "200"
    assert (throttled["status"], throttled["errorType"], throttled["keyId"]) == ("429", "THROTTLED", "key_1")


@pytest.fixture
def served(api: ApiDefinition) -> Any:
    """The gateway served by uvicorn on a loopback port, around a function that echoes the body."""
    seen: list[str | None] = []

    def echo_body(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event["body"])
        return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}

    server = GatewayServer(0)
    server.start(gateway_with(api, echo_body))
    yield server.port, seen
    server.stop()


def exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def test_a_chunked_body_reaches_the_function_whole(served: Any) -> None:
    port, seen = served
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: good\r\nConnection: close\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
    )
    assert exchange(port, raw).startswith(b"HTTP/1.1 200")
    assert seen == ['{"a": 1}']


@pytest.mark.parametrize("length", [b"abc", b"-5"])
def test_an_unreadable_content_length_is_refused_before_any_function_runs(served: Any, length: bytes) -> None:
    # The HTTP server cannot frame such a request, so it answers 400 itself and closes the connection.
    port, seen = served
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: good\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    assert exchange(port, raw).startswith(b"HTTP/1.1 400")
    assert seen == []


def test_a_burst_of_100_connections_is_answered_without_resets(served: Any) -> None:
    port, _ = served
    raw = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: good\r\nConnection: close\r\n\r\n"
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
    answers = []
    try:
        for connection in connections:
            connection.sendall(raw)
        for connection in connections:
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
            answers.append(received)
    finally:
        for connection in connections:
            connection.close()
    assert [answer[:12] for answer in answers] == [b"HTTP/1.1 200"] * 100
