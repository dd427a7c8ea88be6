"""Fixtures of the contract tests: the stack's stateful part on moto, the API handler's providers served offline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.provision import provision
from gatewayctl.deployment import plans_from_outputs
from llm_gateway import gateway
from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from tests.conftest import reset_caches
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
