"""Settings and provider keys read from AWS on moto: the model registry from an SSM parameter, an OpenAI-compatible
target's key from Secrets Manager through Powertools (cached, read again when the upstream rejects it)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from llm_gateway.config import get_registry
from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import ConfigurationError, ProviderError
from llm_gateway.providers.openai.provider import OpenAICompatProvider
from tests.conftest import LogOutput
from tests.fakes.openai_server import FakeOpenAIServer, error_json
from tests.unit.providers.openai.test_openai_compat import KEY, SECRET, request, server, target
from tests.unit.test_config import REGISTRY

__all__ = ["server"]


@pytest.fixture
def powertools_cache() -> Iterator[None]:
    """Powertools caches secrets per process: every test starts and ends without cached ones."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
    yield
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("name", ["/gateway/models", "gateway/models"])
def test_registry_from_ssm_parameter(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The template passes the name without its leading slash (the form IAM's policy template wants)."""
    with mock_aws():
        boto3.client("ssm").put_parameter(Name="/gateway/models", Value=json.dumps(REGISTRY), Type="String")
        monkeypatch.setenv("GATEWAY_MODELS_PARAMETER", name)
        assert get_registry().names() == ["small"]


def test_a_missing_ssm_registry_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        monkeypatch.setenv("GATEWAY_MODELS_PARAMETER", "gateway/absent")
        with pytest.raises(ConfigurationError, match="SSM parameter /gateway/absent"):
            get_registry()


def test_powertools_reads_a_plain_secret_from_secrets_manager(server: FakeOpenAIServer, powertools_cache: None) -> None:
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=SECRET, SecretString=KEY)
        provider = OpenAICompatProvider()
        provider.complete(request(), target(server), Deadline.after(5))
        provider.close()

    assert server.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_powertools_reads_a_json_secret_caches_it_and_refreshes_it_when_rejected(
    server: FakeOpenAIServer, powertools_cache: None
) -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name=SECRET, SecretString=json.dumps({"api_key": KEY, "org": "o-1"}))
        provider = OpenAICompatProvider()
        provider.complete(request(), target(server), Deadline.after(5))
        secrets.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"api_key": "sk-rotated"}))
        # Cached per container: the rotated key is not read again on every call...
        provider.complete(request(), target(server), Deadline.after(5))
        # ...until the upstream rejects the cached one.
        server.enqueue(status=401, json=error_json("Incorrect API key provided"))
        with pytest.raises(ProviderError):
            provider.complete(request(), target(server), Deadline.after(5))
        provider.complete(request(), target(server), Deadline.after(5))
        provider.close()

    sent_keys = [sent.headers["authorization"] for sent in server.requests]
    assert sent_keys == [f"Bearer {KEY}"] * 3 + ["Bearer sk-rotated"]


@pytest.mark.parametrize("secret_value", [None, json.dumps({"token": KEY}), "   ", f"{KEY}\nsk-second-line"])
def test_a_missing_or_unusable_secret_is_a_gateway_misconfiguration(
    server: FakeOpenAIServer, powertools_cache: None, log_output: LogOutput, secret_value: str | None
) -> None:
    with mock_aws():
        if secret_value is not None:
            boto3.client("secretsmanager", region_name="us-east-1").create_secret(
                Name=SECRET, SecretString=secret_value
            )
        provider = OpenAICompatProvider()
        with pytest.raises(ProviderError) as caught:
            provider.complete(request(), target(server), Deadline.after(5))

    assert (caught.value.status, caught.value.retryable) == (502, False)
    assert "secret" in caught.value.message and "misconfigured" in caught.value.message
    assert server.requests == []
    assert KEY not in json.dumps(log_output())
