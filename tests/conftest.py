"""Shared fixtures: isolated settings and caches, fake AWS credentials, handler loading."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gatewayctl.lambda_context import LocalLambdaContext
from gatewayctl.template import load_handler
from llm_gateway import config, gateway, observability

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
LogOutput = Callable[[], list[dict[str, Any]]]


def reset_caches() -> None:
    config.get_settings.cache_clear()
    config._parse_registry.cache_clear()
    gateway.get_gateway.cache_clear()
    observability.get_tracer.cache_clear()


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
def api_handler() -> Handler:
    return load_handler("ApiFunction")
