"""The DynamoDB client's settings: a fixed User-Agent, no client-side validation, and the tests validating instead."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from moto import mock_aws

from llm_gateway.store import dynamo


def test_the_client_sends_a_fixed_user_agent_naming_the_gateway() -> None:
    sent: list[str] = []
    with mock_aws():
        client = dynamo.dynamodb_client()
        client.meta.events.register(
            "before-send.dynamodb", lambda request, **_: sent.append(request.headers["User-Agent"])
        )
        client.list_tables()
        client.list_tables()
    assert len(sent) == 2 and sent[0] == sent[1]
    user_agent = sent[0].decode() if isinstance(sent[0], bytes) else sent[0]
    assert user_agent.startswith(f"{dynamo.USER_AGENT} Boto3/")
    assert dynamo.dynamodb_config().parameter_validation is False


def test_the_tests_still_validate_every_request_against_the_service_model() -> None:
    with mock_aws():
        client: Any = dynamo.dynamodb_client()
        with pytest.raises(ParamValidationError, match="TableName"):
            client.update_item(Key={"key_id": {"S": "k"}}, UpdateExpression="ADD n :one")
