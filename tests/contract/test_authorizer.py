"""The authorizer function driven with events made by `sam local generate-event apigateway request-authorizer`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.lambda_context import LocalLambdaContext
from emulator.template import load_handler
from llm_gateway.domain.key_admin import KeyAdmin
from llm_gateway.domain.keys import TokenLimits, hash_key
from llm_gateway.store.keys import KeyStore
from tests.conftest import Handler, LogOutput
from tests.contract.conftest import Stack

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEST_KEY = "sk-llmgw-T3stKeyUsedOnlyByTheGatewayTestSuite0000000"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / "authorizer" / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def authorizer() -> Handler:
    return load_handler("KeyAuthorizerFunction")


def authorize(handler: Handler, name: str) -> dict[str, Any]:
    return handler(event(name), LocalLambdaContext(function_name="KeyAuthorizerFunction"))


def put_test_key(stack: Stack, **changes: Any) -> KeyStore:
    """Issue a real key through KeyAdmin, then store it under the events' test key."""
    store = KeyStore(stack.dynamodb, stack.outputs["KeysTableName"])
    admin = KeyAdmin(store, stack.apigateway, stack.plans)
    issued = admin.create(
        "acme", "standard", changes.pop("models", None), limits=TokenLimits(tokens_per_minute=1000, tokens_per_day=5000)
    )
    store.delete(issued.record)
    store.create(replace(issued.record, key_hash=hash_key(TEST_KEY), **changes))
    return store


@pytest.mark.parametrize("name", ["x-api-key", "bearer", "bearer-lowercase-header"])
def test_valid_key_by_either_header_is_allowed_on_every_route(stack: Stack, authorizer: Handler, name: str) -> None:
    put_test_key(stack)
    response = authorize(authorizer, name)
    statement = response["policyDocument"]["Statement"]
    assert statement == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": ["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/v1/*/*"],
        }
    ]
    assert response["principalId"].startswith("key_")
    record = KeyStore(stack.dynamodb, stack.outputs["KeysTableName"]).get_by_hash(hash_key(TEST_KEY))
    assert record is not None
    assert response["usageIdentifierKey"] == record.usage_identifier
    context = response["context"]
    assert context == {
        "tenant": "acme",
        "keyId": record.key_id,
        "plan": "standard",
        "models": "*",
        "tokensPerMinute": 1000,
        "tokensPerDay": 5000,
    }
    assert all(isinstance(value, str | int | bool) for value in context.values())


def test_usage_identifier_is_the_value_of_the_api_gateway_key_on_the_plan(stack: Stack, authorizer: Handler) -> None:
    put_test_key(stack)
    response = authorize(authorizer, "x-api-key")
    keys = stack.apigateway.get_api_keys(includeValues=True)["items"]
    (api_key,) = [k for k in keys if k["value"] == response["usageIdentifierKey"]]
    plan_keys = stack.apigateway.get_usage_plan_keys(usagePlanId=stack.plans["standard"])["items"]
    assert [k["id"] for k in plan_keys] == [api_key["id"]]


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("unknown-key", {}),
        ("malformed-key", {}),
        ("malformed-authorization", None),
        ("x-api-key", {"status": "revoked"}),
        ("bearer", {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}),
    ],
)
def test_unknown_malformed_revoked_and_expired_keys_are_denied(
    stack: Stack, authorizer: Handler, name: str, changes: dict[str, Any] | None
) -> None:
    if changes is not None:
        put_test_key(stack, **changes)
    if name == "malformed-authorization":
        # A Basic header carries no gateway key at all: API Gateway answers 401 (UNAUTHORIZED).
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(authorizer, name)
        return
    response = authorize(authorizer, name)
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "usageIdentifierKey" not in response
    assert "context" not in response


def test_missing_key_is_unauthorized(stack: Stack, authorizer: Handler) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer, "missing-key")


def test_wrong_model_for_the_key_is_a_403_from_the_api(stack: Stack, authorizer: Handler, api_handler: Handler) -> None:
    put_test_key(stack, models=("claude-sonnet",))
    context = authorize(authorizer, "bearer")["context"]
    assert context["models"] == "claude-sonnet"
    api_event = json.loads((EVENTS / "api" / "chat-completions.json").read_text())
    api_event["requestContext"]["authorizer"] = {k: str(v) for k, v in context.items()}
    response = api_handler(api_event, LocalLambdaContext(function_name="ApiFunction"))
    assert response["statusCode"] == 403
    error = json.loads(response["body"])["error"]
    assert (error["type"], error["code"], error["param"]) == ("permission_denied", "model_not_allowed", "model")
    models_event = json.loads((EVENTS / "api" / "models.json").read_text())
    models_event["requestContext"]["authorizer"] = {k: str(v) for k, v in context.items()}
    listed = api_handler(models_event, LocalLambdaContext(function_name="ApiFunction"))
    assert json.loads(listed["body"])["data"] == [], "GET /models lists only the models the key may use"


def test_a_restricted_key_learns_nothing_about_models_it_may_not_use(
    stack: Stack, authorizer: Handler, api_handler: Handler
) -> None:
    put_test_key(stack, models=("echo",))
    context = {k: str(v) for k, v in authorize(authorizer, "bearer")["context"].items()}
    answers = []
    for model in ("nova-lite", "no-such-model"):
        api_event = json.loads((EVENTS / "api" / "chat-completions.json").read_text())
        api_event["body"], api_event["isBase64Encoded"] = (
            json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            False,
        )
        api_event["requestContext"]["authorizer"] = context
        response = api_handler(api_event, LocalLambdaContext(function_name="ApiFunction"))
        answers.append((response["statusCode"], json.loads(response["body"])["error"]["code"]))
    assert answers == [(403, "model_not_allowed"), (403, "model_not_allowed")]


def test_a_record_with_an_unknown_status_is_refused(stack: Stack, authorizer: Handler) -> None:
    store = put_test_key(stack)
    stack.dynamodb.update_item(
        TableName=stack.outputs["KeysTableName"],
        Key={"key_hash": {"S": hash_key(TEST_KEY)}},
        UpdateExpression="SET #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": {"S": "disabled"}},
    )
    assert store.get_by_hash(hash_key(TEST_KEY)) is not None
    assert authorize(authorizer, "x-api-key")["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_an_api_request_without_authorizer_context_is_refused(api_handler: Handler) -> None:
    api_event = json.loads((EVENTS / "api" / "models.json").read_text())
    del api_event["requestContext"]["authorizer"]
    response = api_handler(api_event, LocalLambdaContext(function_name="ApiFunction"))
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["type"] == "authentication_error"


def test_no_key_or_hash_reaches_the_logs(stack: Stack, authorizer: Handler, log_output: LogOutput) -> None:
    put_test_key(stack)
    for name in ("x-api-key", "bearer", "unknown-key", "malformed-key"):
        authorize(authorizer, name)
    logged = json.dumps(log_output())
    assert "API key allowed" in logged
    assert "API key denied" in logged
    unknown = event("unknown-key")["headers"]["x-api-key"]
    for secret in (TEST_KEY, hash_key(TEST_KEY), unknown, hash_key(unknown), TEST_KEY.removeprefix("sk-llmgw-")):
        assert secret not in logged


def test_revocation_is_seen_after_the_cache_time(
    stack: Stack, authorizer: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_AUTH_CACHE_SECONDS", "0")
    store = put_test_key(stack)
    assert authorize(authorizer, "x-api-key")["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    record = store.get_by_hash(hash_key(TEST_KEY))
    assert record is not None
    store.revoke(record, datetime.now(UTC))
    assert authorize(authorizer, "x-api-key")["policyDocument"]["Statement"][0]["Effect"] == "Deny"
