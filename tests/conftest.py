"""Shared fixtures: isolated settings and caches, fake AWS credentials, handler loading."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.handlers import BUILTIN_HANDLERS
from moto import mock_aws

from emulator.lambda_context import LocalLambdaContext
from emulator.provision import provision
from emulator.template import load_web_app
from gatewayctl.deployment import plans_from_outputs
from llm_gateway import authorizer, config, gateway, observability
from llm_gateway.api.anthropic import messages as anthropic_messages
from llm_gateway.api.openai import responses as openai_responses
from llm_gateway.store import dynamo
from tests.fakes.web_function import web_function_handler

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
LogOutput = Callable[[], list[dict[str, Any]]]


def validate_dynamodb_parameters(params: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore's own parameter validation, which the gateway's DynamoDB client skips for its CPU cost
    (store/dynamo.py): every request the tests make must still pass it."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


# In every botocore session the tests create (moto makes new ones), as moto adds its own handlers.
BUILTIN_HANDLERS.append(("before-parameter-build.dynamodb", validate_dynamodb_parameters))


def reset_caches() -> None:
    config.get_settings.cache_clear()
    config._parse_registry.cache_clear()
    gateway.get_gateway.cache_clear()
    observability.get_tracer.cache_clear()
    authorizer.get_authenticator.cache_clear()
    dynamo.dynamodb_client.cache_clear()
    dynamo.s3_client.cache_clear()
    openai_responses.response_store.cache_clear()
    anthropic_messages.thread_store.cache_clear()


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's gateway settings or real AWS credentials."""
    for name in list(os.environ):
        if name.startswith(("GATEWAY_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LLMGateway")
    reset_caches()
    yield
    reset_caches()


@dataclass
class Stack:
    """The stateful part of the stack, provisioned from template.yaml on moto."""

    outputs: dict[str, str]
    dynamodb: Any
    apigateway: Any

    @property
    def plans(self) -> dict[str, str]:
        return plans_from_outputs(self.outputs)

    def usage_item(self, key_id: str) -> dict[str, str]:
        """The key's budget item of this month, attribute name -> value (numbers as their text)."""
        key = {"key_id": {"S": key_id}, "period": {"S": datetime.now(UTC).strftime("%Y-%m")}}
        item = self.dynamodb.get_item(TableName=self.outputs["UsageTableName"], Key=key, ConsistentRead=True)
        return {name: value.get("N", value.get("S")) for name, value in item.get("Item", {}).items()}

    def assert_settled(self, key_id: str, requests: int) -> dict[str, str]:
        """Each of today's `requests` recorded once (served or failed), and the day's budget holding exactly what they
        used: no reservation left in it. Returns the budget item."""
        item = self.usage_item(key_id)
        day = datetime.now(UTC).strftime("%d")
        counted = int(item.get(f"requests_{day}", 0)) + int(item.get(f"failed_{day}", 0))
        assert counted == requests, item
        used = int(item.get(f"prompt_tokens_{day}", 0)) + int(item.get(f"completion_tokens_{day}", 0))
        assert int(item[f"budget_day_{day}"]) == used, f"a reservation is still held: {item}"
        return item


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A fresh moto account holding the template's tables, REST API and usage plans; settings point at it."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        apigateway = boto3.client("apigateway", region_name="us-east-1")
        outputs = provision(dynamodb, apigateway, "llm-gateway-test").outputs
        monkeypatch.setenv("GATEWAY_KEYS_TABLE", outputs["KeysTableName"])
        monkeypatch.setenv("GATEWAY_USAGE_TABLE", outputs["UsageTableName"])
        reset_caches()
        yield Stack(outputs, dynamodb, apigateway)


@pytest.fixture
def log_output() -> Iterator[LogOutput]:
    """The gateway's structured log lines written during the test, parsed."""
    handler = observability.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext(function_name="ApiFunction")


@pytest.fixture(scope="session")
def api_app() -> Any:
    """The API function's ASGI app, found through template.yaml as the local gateway finds it."""
    return load_web_app("ApiFunction")


@pytest.fixture(scope="session")
def api_handler(api_app: Any) -> Handler:
    """The API function invoked with a proxy event, through Lambda Web Adapter's translation."""
    return web_function_handler(api_app)
