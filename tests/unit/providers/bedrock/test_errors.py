"""Bedrock's failures as the gateway's errors: validation, access, throttling and its retry hint, transport failures;
botocore never retries behind the router's back."""

from __future__ import annotations

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.fakes.bedrock_transport import FakeBedrockTransport
from tests.unit.providers.bedrock.converse_bodies import MODEL_ID, TARGET, USER_HI, chat

# --- errors -------------------------------------------------------------------------------------------------

ACCESS_DENIED_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/gateway-ApiFunctionRole/gw is not authorized to perform: "
    "bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/" + MODEL_ID
)


# Every mapped Bedrock exception is walked, streamed and not, in test_error_table.py.


def test_validation_errors_carry_bedrocks_message(provider: BedrockProvider, stubber: Stubber) -> None:
    stubber.add_client_error(
        "converse", service_error_code="ValidationException", service_message="temperature must be <= 1"
    )
    with pytest.raises(ProviderRequestError, match="temperature must be <= 1"):
        provider.complete(chat(messages=USER_HI, temperature=1.5), TARGET, Deadline.after(10))


def test_access_denied_blames_the_gateway_without_leaking_arns_or_accounts(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="AccessDeniedException",
        service_message=ACCESS_DENIED_MESSAGE,
        http_status_code=403,
    )
    with pytest.raises(ProviderError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    message = caught.value.message
    assert "IAM role" in message and "not an error in the request" in message
    assert MODEL_ID in message and "bedrock:InvokeModel" in message
    assert "123456789012" not in message
    assert "assumed-role" not in message and "arn:" not in message


def test_throttling_passes_on_retry_after(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "3"})
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retry_after == 3.0
    assert caught.value.headers == {"Retry-After": "3"}


def test_throttling_without_retry_after_leaves_backoff_to_the_router(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests")
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retry_after is None


def test_botocore_does_not_retry_behind_the_routers_back(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(503, "ServiceUnavailableException", "busy")
    with pytest.raises(ProviderError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retryable
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    ("failure", "error_class", "status"),
    [
        pytest.param(ReadTimeoutError(endpoint_url="https://bedrock"), ProviderTimeoutError, 504, id="read-timeout"),
        pytest.param(
            ConnectTimeoutError(endpoint_url="https://bedrock"), ProviderTimeoutError, 504, id="connect-timeout"
        ),
        pytest.param(EndpointConnectionError(endpoint_url="https://bedrock"), ProviderError, 502, id="no-connection"),
    ],
)
def test_maps_transport_failures(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    failure: Exception,
    error_class: type[GatewayError],
    status: int,
) -> None:
    transport.fail_with(failure)
    with pytest.raises(error_class) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert type(caught.value) is error_class
    assert caught.value.status == status and caught.value.retryable
    assert len(transport.sent) == 1
