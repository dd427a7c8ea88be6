"""The Bedrock provider's targets, clients and deadlines: model ids and regions, one client per region, read
timeouts within the deadline, the AWS SDK imported only when a client is built."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.errors import ProviderTimeoutError
from llm_gateway.providers.bedrock.provider import (
    CONNECT_TIMEOUT_SECONDS,
    BedrockProvider,
    default_client,
    read_timeout,
)
from tests.unit.providers.bedrock.conftest import ClientFactorySpy
from tests.unit.providers.bedrock.converse_bodies import (
    MODEL_ID,
    TARGET,
    USER_HI,
    chat,
    converse_response,
    expected_request,
    text,
    user,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


# --- targets, clients and deadlines -------------------------------------------------------------------------

ARN_PROFILE = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.mark.parametrize(
    ("target", "client_region", "factory_call"),
    [
        pytest.param(TARGET, "us-east-1", (None, 30.0), id="plain-model-id-uses-function-region"),
        pytest.param(
            Target(provider="bedrock", model_id="us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            "us-east-1",
            (None, 30.0),
            id="us-inference-profile",
        ),
        pytest.param(
            Target(provider="bedrock", model_id="eu.amazon.nova-pro-v1:0", region="eu-central-1"),
            "eu-central-1",
            ("eu-central-1", 30.0),
            id="eu-inference-profile-with-region",
        ),
        pytest.param(
            Target(
                provider="bedrock", model_id="apac.amazon.nova-lite-v1:0", region="ap-southeast-2", timeout_seconds=8
            ),
            "ap-southeast-2",
            ("ap-southeast-2", 8.0),
            id="apac-inference-profile-with-timeout",
        ),
        pytest.param(
            Target(provider="bedrock", model_id="global.anthropic.claude-sonnet-4-20250514-v1:0"),
            "us-east-1",
            (None, 30.0),
            id="global-inference-profile",
        ),
        pytest.param(
            Target(provider="bedrock", model_id=ARN_PROFILE),
            "eu-west-1",
            ("eu-west-1", 30.0),
            id="arn-region-comes-from-the-arn",
        ),
        pytest.param(
            Target(provider="bedrock", model_id=ARN_PROFILE, region="eu-west-3"),
            "eu-west-3",
            ("eu-west-3", 30.0),
            id="explicit-region-wins-over-the-arn",
        ),
    ],
)
def test_model_ids_pass_unchanged_and_pick_the_region(
    target: Target, client_region: str | None, factory_call: tuple[str | None, float]
) -> None:
    client = default_client(factory_call[0], factory_call[1])
    factory = ClientFactorySpy(client)
    with Stubber(client) as stubber:
        stubber.add_response(
            "converse", converse_response(text("ok")), expected_request([user(text("hi"))], target.model_id)
        )
        completion = BedrockProvider(client_factory=factory).complete(
            chat(messages=USER_HI), target, Deadline.after(30)
        )
        stubber.assert_no_pending_responses()
    assert completion.text == "ok"
    assert factory.calls == [factory_call]
    assert client.meta.region_name == client_region


def test_clients_are_built_once_per_region_and_reused(client: BedrockRuntimeClient) -> None:
    factory = ClientFactorySpy(client)
    provider = BedrockProvider(client_factory=factory)
    other_region = Target(provider="bedrock", model_id=MODEL_ID, region="us-west-2")
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_response("converse", converse_response(text("ok")))
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(30))
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(30))
        provider.complete(chat(messages=USER_HI), other_region, Deadline.after(30))
        stubber.assert_no_pending_responses()
    assert factory.calls == [(None, 30.0), ("us-west-2", 30.0)]


def test_the_deadline_caps_the_read_timeout(client: BedrockRuntimeClient) -> None:
    """A retry or fallback late in the time budget must not wait past the request's deadline."""
    factory = ClientFactorySpy(client)
    provider = BedrockProvider(client_factory=factory)
    slow_target = Target(provider="bedrock", model_id=MODEL_ID, timeout_seconds=20)
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_response("converse", converse_response(text("ok")))
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(1.2))
        provider.complete(chat(messages=USER_HI), slow_target, Deadline.after(7.5))
        provider.complete(chat(messages=USER_HI), slow_target, Deadline.after(26))
    assert factory.calls == [(None, 2), (None, 8), (None, 20)]


@pytest.mark.parametrize(
    ("seconds_left", "target_timeout", "expected"),
    [
        (0.2, None, 1.0),
        (12.3, None, 13.0),
        (59.5, None, 60.0),
        (95.0, None, 90.0),
        (280.0, None, 270.0),
        (870.0, None, 840.0),
        (870.0, 20.0, 20.0),
        (300.0, 100.0, 90.0),
    ],
)
def test_a_read_may_wait_for_the_time_left_in_few_distinct_steps(
    seconds_left: float, target_timeout: float | None, expected: float
) -> None:
    """Long non-streamed answers (up to the 280 s budget) and streams (870 s) are not cut by a fixed timeout,
    and the cached clients stay few: whole seconds under a minute, half-minutes above, never past the deadline."""
    target = Target(provider="bedrock", model_id=MODEL_ID, timeout_seconds=target_timeout)
    deadline = Deadline(time.monotonic() + seconds_left)
    assert read_timeout(target, deadline) == expected


def test_default_client_makes_a_single_attempt_with_short_timeouts() -> None:
    client = default_client("eu-west-1", 12.0)
    options = vars(client.meta.config)  # the stubs do not declare Config's attributes
    assert client.meta.region_name == "eu-west-1"
    assert (options["connect_timeout"], options["read_timeout"]) == (CONNECT_TIMEOUT_SECONDS, 12.0)
    assert options["retries"]["total_max_attempts"] == 1


def test_default_client_without_region_uses_the_functions_region() -> None:
    assert default_client(None, 30.0).meta.region_name == "us-east-1"


def test_the_aws_sdk_is_imported_only_when_a_client_is_built() -> None:
    # Cold start: deployments that never call Bedrock must not pay for importing boto3 or building botocore's
    # session and clients (Powertools' logger imports the bare botocore package, which costs under a millisecond).
    code = (
        "import sys; from llm_gateway.providers.bedrock.provider import BedrockProvider; BedrockProvider(); "
        "print(sorted(name for name in ('boto3', 'botocore.session', 'botocore.client') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_expired_deadline_fails_without_calling_bedrock(
    provider: BedrockProvider, factory: ClientFactorySpy, stubber: Stubber
) -> None:
    expired = Deadline(expires_at=0.0)
    with pytest.raises(ProviderTimeoutError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, expired)
    assert caught.value.status == 504
    with pytest.raises(ProviderTimeoutError):
        provider.stream(chat(messages=USER_HI), TARGET, expired)
    assert factory.calls == []
