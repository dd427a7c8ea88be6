"""What the stream tests of both Bedrock paths share (one loop reads ConverseStream and InvokeModelWithResponseStream):
the events a stream gave before the error it ended with, a deadline the test expires, the exceptions Bedrock sends
inside a stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from llm_gateway.domain.answers import StreamEvent
from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)


def collect(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], GatewayError | None]:
    """The events produced before the stream ended, and the error it ended with, if any."""
    produced: list[StreamEvent] = []
    try:
        for event in events:
            produced.append(event)
    except GatewayError as error:
        return produced, error
    return produced, None


@dataclass(frozen=True)
class SwitchableDeadline(Deadline):
    """A deadline the test expires at a chosen moment of the stream, instead of sleeping until it does."""

    switch: dict[str, bool] = field(default_factory=lambda: {"expired": False})

    def remaining(self) -> float:
        return 0.0 if self.switch["expired"] else 10.0


# The exceptions Bedrock streams after the 200, as (exception type, the gateway's error, retryable): those of both
# streams' event unions, and InvokeModelWithResponseStream's modelTimeoutException, which ConverseStream's lacks.
_FIELDS = ("exception_type", "error_class", "retryable")
_IN_BOTH = [
    pytest.param("modelStreamErrorException", ProviderError, True, id="model-stream-error"),
    pytest.param("throttlingException", ProviderRateLimitError, True, id="throttling"),
    pytest.param("internalServerException", ProviderError, True, id="internal-server"),
    pytest.param("serviceUnavailableException", ProviderError, True, id="service-unavailable"),
    pytest.param("validationException", ProviderRequestError, False, id="validation"),
]
CONVERSE_STREAM_EXCEPTIONS = pytest.mark.parametrize(_FIELDS, _IN_BOTH)
INVOKE_STREAM_EXCEPTIONS = pytest.mark.parametrize(
    _FIELDS, [*_IN_BOTH, pytest.param("modelTimeoutException", ProviderTimeoutError, True, id="model-timeout")]
)
