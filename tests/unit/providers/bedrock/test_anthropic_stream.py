"""InvokeModelWithResponseStream read into stream events: the native events and their meaning in order, tool calls,
usage from the events then Bedrock's metrics, errors, cut streams, the deadline."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
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
    ProviderTimeoutError,
)
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.fakes.bedrock_transport import FakeBedrockTransport, invoke_chunk, stream_exception
from tests.unit.providers.bedrock.anthropic_bodies import (
    SONNET,
    SONNET_PROFILE,
    TARGET,
    WEATHER_TOOL,
    anthropic_request,
    bedrock_body,
    messages_body,
)
from tests.unit.providers.bedrock.streams import INVOKE_STREAM_EXCEPTIONS, SwitchableDeadline, collect

# --- streams ------------------------------------------------------------------------------------------------

METRICS = {
    "inputTokenCount": 20,
    "outputTokenCount": 61,
    "invocationLatency": 1500,
    "firstByteLatency": 400,
    "cacheReadInputTokenCount": 1000,
    "cacheWriteInputTokenCount": 300,
}
MESSAGE_START: dict[str, Any] = {
    "type": "message_start",
    "message": {
        "id": "msg_bdrk_02",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 1000,
            "output_tokens": 1,
        },
    },
}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage or {"output_tokens": 61},
    }


def message_stop(metrics: dict[str, int] | None = None) -> dict[str, Any]:
    return {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics or METRICS}


def chunks(*events: dict[str, Any]) -> list[bytes]:
    return [invoke_chunk(event) for event in events]


def native(event: dict[str, Any]) -> NativeChunk:
    return NativeChunk("anthropic", event, event=event["type"])


def parsed(events: list[StreamEvent]) -> list[StreamEvent]:
    return [event for event in events if not isinstance(event, NativeChunk)]


def test_a_streamed_answer_gives_the_native_events_and_their_meaning_in_order(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    thinking = block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
    thought_1, thought_2 = (
        delta(0, type="thinking_delta", thinking="Paris is "),
        delta(0, type="thinking_delta", thinking="in France."),
    )
    signature = delta(0, type="signature_delta", signature="EqQBCkgIARABGAIiQL+sig==")
    redacted = block_start(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"})
    answer = block_start(2, {"type": "text", "text": ""})
    words = delta(2, type="text_delta", text="Checking the weather.")
    call = block_start(3, {"type": "tool_use", "id": "toolu_04", "name": "get_weather", "input": {}})
    arguments_1, arguments_2 = (
        delta(3, type="input_json_delta", partial_json=""),
        delta(3, type="input_json_delta", partial_json='{"city": "Paris"}'),
    )
    stop = message_delta("tool_use", output_tokens=61)
    events = [
        MESSAGE_START,
        thinking, thought_1, thought_2, signature, block_stop(0),
        redacted, block_stop(1),
        answer, words, block_stop(2),
        call, arguments_1, arguments_2, block_stop(3),
        stop, message_stop(),
    ]  # fmt: skip
    body = transport.reply_stream(*chunks(*events))
    request = anthropic_request(messages_body(stream=True, tools=[WEATHER_TOOL]), betas=("claude-code-20250219",))
    produced = list(provider.stream(request, TARGET, Deadline.after(10), SONNET))
    assert produced == [
        native(MESSAGE_START),
        native(thinking),
        native(thought_1), ReasoningDelta("Paris is "),
        native(thought_2), ReasoningDelta("in France."),
        native(signature), ReasoningSignature("EqQBCkgIARABGAIiQL+sig=="),
        native(block_stop(0)),
        native(redacted), RedactedReasoning("EmwKAhgBEgy3va3p"),
        native(block_stop(1)),
        native(answer),
        native(words), TextDelta("Checking the weather."),
        native(block_stop(2)),
        native(call), ToolCallStart(0, "toolu_04", "get_weather"),
        native(arguments_1),
        native(arguments_2), ToolCallArgumentsDelta(0, '{"city": "Paris"}'),
        native(block_stop(3)),
        native(stop), Finish("tool_use"),
        # Bedrock's own metrics are not Anthropic's event: the caller gets message_stop as Anthropic sends it.
        NativeChunk("anthropic", {"type": "message_stop"}, event="message_stop"),
        UsageReport(Usage(1320, 61, cached_tokens=1000, cache_write_tokens=300)),
    ]  # fmt: skip
    [sent] = transport.sent
    assert sent.url.endswith("/invoke-with-response-stream") and sent.model_id == SONNET_PROFILE
    assert sent.json() == bedrock_body(tools=[WEATHER_TOOL])
    assert body.closed


def test_streamed_tool_calls_are_numbered_from_zero_and_always_carry_json(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(
        *chunks(
            MESSAGE_START,
            block_start(0, {"type": "text", "text": "Both."}),
            block_stop(0),
            block_start(1, {"type": "server_tool_use", "id": "srvtoolu_3", "name": "web_search", "input": {}}),
            delta(1, type="input_json_delta", partial_json='{"query": "q"}'),
            block_stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_05", "name": "get_time", "input": {}}),
            block_stop(2),
            block_start(3, {"type": "tool_use", "id": "toolu_06", "name": "get_weather", "input": {}}),
            delta(3, type="input_json_delta", partial_json='{"city": "Rome"}'),
            block_stop(3),
            message_delta("tool_use"),
            message_stop(),
        )
    )
    produced = parsed(list(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)))
    assert produced[:-1] == [
        TextDelta("Both."),
        ToolCallStart(0, "toolu_05", "get_time"),
        ToolCallArgumentsDelta(0, "{}"),
        ToolCallStart(1, "toolu_06", "get_weather"),
        ToolCallArgumentsDelta(1, '{"city": "Rome"}'),
        Finish("tool_use"),
    ]


@pytest.mark.parametrize(
    ("start_usage", "delta_usage", "metrics", "usage"),
    [
        pytest.param(
            {"input_tokens": 20, "output_tokens": 1},
            {"output_tokens": 61},
            {},
            Usage(20, 61),
            id="message-start-and-delta",
        ),
        pytest.param(
            {"input_tokens": 20, "output_tokens": 1},
            {"input_tokens": 25, "cache_read_input_tokens": 1000, "output_tokens": 61},
            {},
            Usage(1025, 61, cached_tokens=1000),
            id="delta-counts-are-cumulative",
        ),
        pytest.param(
            None,
            {"output_tokens": 61},
            METRICS,
            Usage(1320, 61, cached_tokens=1000, cache_write_tokens=300),
            id="invocation-metrics-fill-in",
        ),
        pytest.param(
            None, None, METRICS, Usage(1320, 61, cached_tokens=1000, cache_write_tokens=300), id="metrics-only"
        ),
    ],
)
def test_stream_usage_comes_from_the_events_then_bedrocks_metrics(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    start_usage: dict[str, int] | None,
    delta_usage: dict[str, int] | None,
    metrics: dict[str, int],
    usage: Usage,
) -> None:
    message = {name: value for name, value in MESSAGE_START["message"].items() if name != "usage"}
    if start_usage is not None:
        message["usage"] = start_usage
    start = {"type": "message_start", "message": message}
    stop_delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    if delta_usage is not None:
        stop_delta["usage"] = delta_usage
    stop = {"type": "message_stop", **({"amazon-bedrock-invocationMetrics": metrics} if metrics else {})}
    transport.reply_stream(*chunks(start, delta(0, type="text_delta", text="x"), stop_delta, stop))
    produced = list(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert produced[-1] == UsageReport(usage)
    assert sum(isinstance(event, UsageReport) for event in produced) == 1


@INVOKE_STREAM_EXCEPTIONS
def test_an_error_event_mid_stream_is_raised_after_the_events_before_it(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    exception_type: str,
    error_class: type[GatewayError],
    retryable: bool,
) -> None:
    words = delta(0, type="text_delta", text="Once upon")
    body = transport.reply_stream(
        *chunks(MESSAGE_START, words),
        stream_exception(exception_type, "the model stopped"),
        *chunks(delta(0, type="text_delta", text=" never delivered")),
    )
    produced, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert produced == [native(MESSAGE_START), native(words), TextDelta("Once upon")]
    assert type(error) is error_class
    assert error is not None and error.retryable is retryable and "the model stopped" in error.message
    assert body.closed


def test_an_anthropic_error_event_is_a_provider_error_not_forwarded(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    transport.reply_stream(*chunks(MESSAGE_START, overloaded))
    produced, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert produced == [native(MESSAGE_START)]
    assert isinstance(error, ProviderError) and error.retryable and "Overloaded" in error.message


def test_a_stream_cut_before_message_stop_is_an_error(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(*chunks(MESSAGE_START, delta(0, type="text_delta", text="partial"), message_delta()))
    produced, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert parsed(produced) == [TextDelta("partial"), Finish("end_turn")]
    assert isinstance(error, ProviderError) and error.retryable and "before the model finished" in error.message


def test_a_stream_without_usage_cannot_be_metered(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    start = {"type": "message_start", "message": {k: v for k, v in MESSAGE_START["message"].items() if k != "usage"}}
    stop_delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    transport.reply_stream(*chunks(start, stop_delta, {"type": "message_stop"}))
    produced, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert parsed(produced) == [Finish("end_turn")]
    assert isinstance(error, ProviderError) and "metered" in error.message


def test_a_chunk_that_is_not_an_anthropic_event_is_an_error(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(*chunks(MESSAGE_START, {"no_type": True}))
    _, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET))
    assert isinstance(error, ProviderError) and "Anthropic event" in error.message


def test_errors_before_the_stream_starts_raise_when_it_is_requested(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "2"})
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert caught.value.retry_after == 2.0


def test_a_stream_stops_when_the_deadline_passes(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    deadline = SwitchableDeadline(expires_at=0.0)
    first = invoke_chunk(MESSAGE_START) + invoke_chunk(delta(0, type="text_delta", text="slow"))

    def expire_after_first_text(chunk_number: int) -> None:
        # Chunks are 13 bytes: once the first text event has been handed over, time runs out.
        if chunk_number * 13 >= len(first):
            deadline.switch["expired"] = True

    body = transport.reply_stream(
        first,
        *chunks(delta(0, type="text_delta", text=" and slower"), message_delta(), message_stop()),
        on_chunk=expire_after_first_text,
    )
    produced, error = collect(provider.stream(anthropic_request(messages_body()), TARGET, deadline, SONNET))
    assert parsed(produced) == [TextDelta("slow"), TextDelta(" and slower")]
    assert isinstance(error, ProviderTimeoutError) and error.status == 504
    assert body.closed


def test_an_abandoned_stream_releases_the_connection(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    body = transport.reply_stream(
        *chunks(MESSAGE_START, delta(0, type="text_delta", text="a"), message_delta(), message_stop())
    )
    events = provider.stream(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert next(events) == native(MESSAGE_START)
    assert isinstance(events, Generator)
    events.close()
    assert body.closed
