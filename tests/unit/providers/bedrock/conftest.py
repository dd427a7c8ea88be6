"""Fixtures of the Bedrock provider's tests: real bedrock-runtime clients that never leave the process, served by
botocore's Stubber (exact requests) or FakeBedrockTransport (event streams and transport failures, see
tests/fakes/bedrock_transport.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from botocore.stub import Stubber

from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from tests.fakes.bedrock_transport import FakeBedrockTransport

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a socket fails the test, so a gap in the stubbing cannot reach AWS."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("a Bedrock unit test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    # botocore turns the refusal into EndpointConnectionError, which a test expecting a 502 could swallow.
    assert attempts == [], "a Bedrock unit test tried to open a network connection"


@dataclass
class ClientFactorySpy:
    """Hands the provider one prepared client and records which (region, read timeout) it asked for."""

    client: BedrockRuntimeClient
    calls: list[tuple[str | None, float]] = field(default_factory=list)

    def __call__(self, region: str | None, read_timeout: float) -> BedrockRuntimeClient:
        self.calls.append((region, read_timeout))
        return self.client


@pytest.fixture
def client() -> BedrockRuntimeClient:
    # The production factory, so the retry and timeout configuration under test is the one deployed.
    return default_client("us-east-1", 30.0)


@pytest.fixture
def factory(client: BedrockRuntimeClient) -> ClientFactorySpy:
    return ClientFactorySpy(client)


@pytest.fixture
def provider(factory: ClientFactorySpy) -> BedrockProvider:
    return BedrockProvider(client_factory=factory)


@pytest.fixture
def stubber(client: BedrockRuntimeClient) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def transport(client: BedrockRuntimeClient) -> Iterator[FakeBedrockTransport]:
    fake = FakeBedrockTransport()
    fake.install(client)
    yield fake
    fake.assert_no_pending_replies()
