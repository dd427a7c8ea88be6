"""Fixtures of the contract tests: the API handler's providers served offline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_gateway import gateway
from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from tests.fakes.bedrock_transport import FakeBedrockTransport


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrockTransport]:
    """The gateway's Bedrock provider with the production client, its HTTP exchanges served offline; every
    queued reply must be requested."""
    transport = FakeBedrockTransport()
    client = transport.install(default_client("us-east-1", 30.0))
    monkeypatch.setattr(gateway, "_bedrock", lambda: BedrockProvider(client_factory=lambda region, timeout: client))
    yield transport
    transport.assert_no_pending_replies()
