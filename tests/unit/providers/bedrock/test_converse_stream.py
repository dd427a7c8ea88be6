"""ConverseStream read into stream events: text, numbered tool calls, usage once, errors mid-stream, cut streams,
connection failures, the deadline, an abandoned stream's connection."""

from __future__ import annotations

import json
from collections.abc import Generator

import pytest
from urllib3 import HTTPSConnectionPool
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from llm_gateway.domain.answers import (
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event, stream_exception
from tests.unit.providers.bedrock.converse_bodies import (
    MODEL_ID,
    TARGET,
    TIME_TOOL,
    USER_HI,
    WEATHER_TOOL,
    chat,
    image_message,
    text,
    user,
)
from tests.unit.providers.bedrock.streams import CONVERSE_STREAM_EXCEPTIONS, SwitchableDeadline, collect

# --- streaming ----------------------------------------------------------------------------------------------


def stream_usage(**tokens: int) -> bytes:
    usage = {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16, **tokens}
    return stream_event("metadata", {"usage": usage, "metrics": {"latencyMs": 300}})


def text_delta(index: int, value: str) -> bytes:
    return stream_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": value}})


def block_stop(index: int) -> bytes:
    return stream_event("contentBlockStop", {"contentBlockIndex": index})


def tool_start(index: int, call_id: str, name: str) -> bytes:
    return stream_event(
        "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": call_id, "name": name}}}
    )


def tool_delta(index: int, fragment: str) -> bytes:
    return stream_event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}})


def message_stop(reason: str = "end_turn") -> bytes:
    return stream_event("messageStop", {"stopReason": reason})


MESSAGE_START = stream_event("messageStart", {"role": "assistant"})
# A pool object only names the host in urllib3's errors; creating one opens no connection.
BEDROCK_POOL = HTTPSConnectionPool("bedrock-runtime.us-east-1.amazonaws.com")


def test_stream_sends_the_same_converse_request_and_yields_text(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    body = transport.reply_stream(
        MESSAGE_START,
        text_delta(0, "Hel"),
        text_delta(0, "lo"),
        block_stop(0),
        message_stop(),
        stream_usage(),
    )
    request = chat(messages=[{"role": "system", "content": "Be brief."}, *USER_HI], max_tokens=20)
    events = list(provider.stream(request, TARGET, Deadline.after(10)))
    assert events == [TextDelta("Hel"), TextDelta("lo"), Finish("end_turn"), UsageReport(Usage(12, 4))]
    [sent] = transport.sent
    assert sent.url.endswith("/converse-stream") and sent.model_id == MODEL_ID
    assert sent.json() == {
        "messages": [user(text("hi"))],
        "system": [text("Be brief.")],
        "inferenceConfig": {"maxTokens": 20},
    }
    assert body.closed


def test_stream_numbers_tool_calls_from_zero_between_text_blocks(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(
        MESSAGE_START,
        text_delta(0, "Checking."),
        block_stop(0),
        tool_start(1, "tooluse_a", "get_weather"),
        tool_delta(1, '{"city": '),
        tool_delta(1, '"Paris"}'),
        block_stop(1),
        text_delta(2, " And the time:"),
        stream_event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"reasoningContent": {"text": "hmm"}}}),
        block_stop(2),
        tool_start(3, "tooluse_b", "get_time"),
        tool_delta(3, ""),
        block_stop(3),
        message_stop("tool_use"),
        stream_usage(),
    )
    events = list(provider.stream(chat(messages=USER_HI, tools=[WEATHER_TOOL, TIME_TOOL]), TARGET, Deadline.after(10)))
    assert events == [
        TextDelta("Checking."),
        ToolCallStart(0, "tooluse_a", "get_weather"),
        ToolCallArgumentsDelta(0, '{"city": '),
        ToolCallArgumentsDelta(0, '"Paris"}'),
        TextDelta(" And the time:"),
        ReasoningDelta("hmm"),
        ToolCallStart(1, "tooluse_b", "get_time"),
        # A call that streamed no arguments still ends up with valid JSON, like the non-streamed answer.
        ToolCallArgumentsDelta(1, "{}"),
        Finish("tool_use"),
        UsageReport(Usage(12, 4)),
    ]
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallArgumentsDelta) and e.index == 0)
    assert json.loads(arguments) == {"city": "Paris"}


def test_stream_reports_usage_once_with_cache_tokens(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(
        MESSAGE_START,
        text_delta(0, "x"),
        message_stop(),
        message_stop(),
        stream_usage(inputTokens=3, cacheReadInputTokens=500, cacheWriteInputTokens=100),
        stream_usage(),
    )
    events = list(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert events[-2:] == [Finish("end_turn"), UsageReport(Usage(603, 4, cached_tokens=500, cache_write_tokens=100))]
    assert sum(isinstance(e, Finish) for e in events) == 1
    assert sum(isinstance(e, UsageReport) for e in events) == 1


@CONVERSE_STREAM_EXCEPTIONS
def test_error_event_mid_stream_is_raised_after_the_events_before_it(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    exception_type: str,
    error_class: type[GatewayError],
    retryable: bool,
) -> None:
    body = transport.reply_stream(
        MESSAGE_START,
        text_delta(0, "Once upon"),
        text_delta(0, " a time"),
        stream_exception(exception_type, "the model stopped"),
        text_delta(0, " never delivered"),
    )
    events, error = collect(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert events == [TextDelta("Once upon"), TextDelta(" a time")]
    assert type(error) is error_class
    assert error is not None and error.retryable is retryable
    assert "the model stopped" in error.message
    assert body.closed


def test_stream_cut_without_usage_is_an_error(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    transport.reply_stream(MESSAGE_START, text_delta(0, "partial"), message_stop())
    events, error = collect(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert events == [TextDelta("partial"), Finish("end_turn")]
    assert isinstance(error, ProviderError) and "metered" in error.message


def test_stream_cut_before_the_model_finished_is_an_error(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(MESSAGE_START, text_delta(0, "partial"))
    events, error = collect(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert events == [TextDelta("partial")]
    assert isinstance(error, ProviderError) and error.retryable


def test_tool_arguments_for_a_call_never_started_are_an_error(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(MESSAGE_START, tool_delta(1, "{}"), message_stop("tool_use"), stream_usage())
    _, error = collect(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert isinstance(error, ProviderError) and "content block 1" in error.message


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        pytest.param(
            Urllib3ReadTimeoutError(BEDROCK_POOL, "/converse-stream", "Read timed out."),
            ProviderTimeoutError,
            id="read-timeout",
        ),
        pytest.param(ProtocolError("Connection broken", ConnectionResetError()), ProviderError, id="connection-reset"),
    ],
)
def test_connection_failures_mid_stream(
    provider: BedrockProvider, transport: FakeBedrockTransport, failure: Exception, error_class: type[GatewayError]
) -> None:
    body = transport.reply_stream(MESSAGE_START, text_delta(0, "partial"), failure=failure)
    events, error = collect(provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10)))
    assert events == [TextDelta("partial")]
    assert type(error) is error_class
    assert body.closed


def test_errors_before_the_stream_starts_raise_when_it_is_requested(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "2"})
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retry_after == 2.0


def test_remote_image_in_a_stream_request_is_refused_before_any_call(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    with pytest.raises(ProviderRequestError):
        provider.stream(chat(messages=image_message("https://example.com/cat.png")), TARGET, Deadline.after(10))
    assert transport.sent == []


def test_stream_stops_when_the_deadline_passes(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    deadline = SwitchableDeadline(expires_at=0.0)
    first_text, second_text = MESSAGE_START + text_delta(0, "slow"), text_delta(0, " and slower")

    def expire_after_first_text(chunk_number: int) -> None:
        # Chunks are 13 bytes: once the first text event has been handed over, time runs out.
        if chunk_number * 13 >= len(first_text):
            deadline.switch["expired"] = True

    body = transport.reply_stream(
        first_text, second_text, message_stop(), stream_usage(), on_chunk=expire_after_first_text
    )
    events, error = collect(provider.stream(chat(messages=USER_HI), TARGET, deadline))
    # The event that was already on its way is delivered; nothing after it is waited for.
    assert events == [TextDelta("slow"), TextDelta(" and slower")]
    assert isinstance(error, ProviderTimeoutError) and error.status == 504
    assert body.closed


def test_abandoned_stream_releases_the_connection(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    body = transport.reply_stream(MESSAGE_START, text_delta(0, "a"), text_delta(0, "b"), message_stop(), stream_usage())
    events = provider.stream(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert next(events) == TextDelta("a")
    assert isinstance(events, Generator)
    events.close()
    assert body.closed
