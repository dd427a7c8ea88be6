"""Shared fixtures: isolated settings and caches, fake AWS credentials, handler loading."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.handlers import BUILTIN_HANDLERS

from emulator.lambda_context import LocalLambdaContext
from emulator.template import load_web_app
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
    gateway.usage_events_store.cache_clear()
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
