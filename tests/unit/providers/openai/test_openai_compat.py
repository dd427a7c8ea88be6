from __future__ import annotations

import json
import socket
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from llm_gateway.domain.answers import (
    Finish,
    NativeChunk,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.domain.tokens import estimate_text_tokens
from llm_gateway.errors import (
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)
from llm_gateway.providers.openai.provider import OpenAICompatProvider
from tests.conftest import LogOutput
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    chat_completion_json,
    delta_chunk,
    error_json,
    tool_call_json,
    usage_chunk,
    usage_json,
)
from tests.fakes.requests import openai_chat

KEY = "sk-test-0123456789abcdef"
SECRET = "gateway/openai"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def provider() -> Iterator[OpenAICompatProvider]:
    instance = OpenAICompatProvider(secret_reader={SECRET: KEY}.__getitem__)
    yield instance
    instance.close()


def target(server: FakeOpenAIServer, **fields: Any) -> Target:
    values: dict[str, Any] = {"base_url": server.base_url, "api_key_secret": SECRET, **fields}
    return Target(provider="openai", model_id="upstream-model", **values)


def request(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "public-name", "messages": MESSAGES, **fields})


def stream(provider: OpenAICompatProvider, server: FakeOpenAIServer, **fields: Any) -> list[StreamEvent]:
    """The events read from the upstream's chunks (the chunks themselves, passed on whole, left out)."""
    events = provider.stream(request(stream=True, **fields), target(server), Deadline.after(5))
    return [event for event in events if not isinstance(event, NativeChunk)]


def texts(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def test_complete_sends_the_request_upstream_and_maps_the_answer(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(json=chat_completion_json("Hi!", usage=usage_json(12, 3, cached_tokens=8)))
    upstream = target(server, base_url=server.base_url + "/", query={"api-version": "2024-10-21"})

    completion = provider.complete(
        request(temperature=0.5, seed=7, top_k=40, stream_options={"include_usage": True}),
        upstream,
        Deadline.after(5),
    )

    assert (completion.text, completion.stop_reason, completion.tool_calls) == ("Hi!", "end_turn", ())
    assert completion.usage == Usage(prompt_tokens=12, completion_tokens=3, cached_tokens=8)
    sent = server.last_request
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/chat/completions", {"api-version": "2024-10-21"})
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert "api-key" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "upstream-model",
        "messages": MESSAGES,
        "temperature": 0.5,
        "seed": 7,
        "top_k": 40,
        "stream": False,
    }


def test_complete_maps_tool_calls(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    calls = [tool_call_json("call_a", "lookup", '{"q": "Paris"}'), tool_call_json("call_b", "lookup", "{}")]
    server.enqueue(
        json=chat_completion_json(None, tool_calls=calls, finish_reason="tool_calls", usage=usage_json(9, 4))
    )

    completion = provider.complete(request(tools=[TOOL]), target(server), Deadline.after(5))

    assert completion.text == ""
    assert completion.stop_reason == "tool_use"
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        ("call_a", "lookup", '{"q": "Paris"}'),
        ("call_b", "lookup", "{}"),
    ]
    assert server.last_request.body["tools"] == [TOOL]


@pytest.mark.parametrize(
    ("upstream", "mapped"),
    [
        ("length", "max_tokens"),
        ("content_filter", "content_filter"),
        ("function_call", "tool_use"),
        ("tool_calls", "tool_use"),
        ("end_turn", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_complete_maps_finish_reasons(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, upstream: str | None, mapped: str
) -> None:
    server.enqueue(json=chat_completion_json("x", finish_reason=upstream, usage=usage_json(1, 1)))
    assert provider.complete(request(), target(server), Deadline.after(5)).stop_reason == mapped


def test_stream_yields_text_then_finish_and_usage_and_always_asks_for_usage(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    # The fake's default answer streams the last user message word by word, like OpenAI would.
    events = stream(provider, server)

    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("hello"), TextDelta(" there")]
    assert events[-2:] == [Finish("end_turn"), UsageReport(Usage(prompt_tokens=4, completion_tokens=2))]
    body = server.last_request.body
    assert (body["model"], body["stream"], body["stream_options"]) == ("upstream-model", True, {"include_usage": True})


def test_stream_reassembles_frames_split_across_reads(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    frames: list[Any] = [
        ": keep-alive comment\n\n",
        delta_chunk(role="assistant", content=""),
        "event: message\r\ndata: " + json.dumps(delta_chunk(content="Grüße, ")) + "\r\n\r\n",
        delta_chunk(content="wörld"),
        delta_chunk(finish_reason="length"),
        usage_chunk(5, 2),
    ]
    # Three bytes per read: frame boundaries, CRLF pairs and the UTF-8 of ü and ö are all cut apart.
    server.enqueue(stream=frames, split=3)

    events = stream(provider, server)

    assert texts(events) == "Grüße, wörld"
    assert events[-2:] == [Finish("max_tokens"), UsageReport(Usage(5, 2))]


def test_stream_of_two_tool_calls_keeps_indexes_ids_and_argument_fragments(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    def call_delta(index: int, **fields: Any) -> dict[str, Any]:
        return delta_chunk(tool_calls=[{"index": index, **fields}])

    server.enqueue(
        stream=[
            delta_chunk(role="assistant"),
            call_delta(0, id="call_1", type="function", function={"name": "weather", "arguments": ""}),
            call_delta(0, function={"arguments": '{"city": '}),
            call_delta(0, function={"arguments": '"Paris"}'}),
            call_delta(1, id="call_2", type="function", function={"name": "time", "arguments": '{"tz"'}),
            call_delta(1, function={"arguments": ': "CET"}'}),
            delta_chunk(finish_reason="tool_calls"),
            usage_chunk(20, 11),
        ]
    )

    events = stream(provider, server, tools=[TOOL])

    assert events == [
        ToolCallStart(0, "call_1", "weather"),
        ToolCallArgumentsDelta(0, '{"city": '),
        ToolCallArgumentsDelta(0, '"Paris"}'),
        ToolCallStart(1, "call_2", "time"),
        ToolCallArgumentsDelta(1, '{"tz"'),
        ToolCallArgumentsDelta(1, ': "CET"}'),
        Finish("tool_use"),
        UsageReport(Usage(20, 11)),
    ]


def test_stream_tool_calls_without_upstream_indexes_follow_order_of_appearance(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        stream=[
            delta_chunk(tool_calls=[{"id": "a", "function": {"name": "one", "arguments": '{"x":'}}]),
            delta_chunk(tool_calls=[{"function": {"arguments": "1}"}}]),
            # Some servers number every call 0: a new id at a taken index is still a new call.
            delta_chunk(tool_calls=[{"index": 0, "id": "b", "function": {"name": "two", "arguments": "{}"}}]),
            delta_chunk(finish_reason="tool_calls"),
            usage_chunk(3, 3),
        ]
    )

    events = stream(provider, server, tools=[TOOL])

    assert events[:5] == [
        ToolCallStart(0, "a", "one"),
        ToolCallArgumentsDelta(0, '{"x":'),
        ToolCallArgumentsDelta(0, "1}"),
        ToolCallStart(1, "b", "two"),
        ToolCallArgumentsDelta(1, "{}"),
    ]


def test_default_fake_streams_a_required_tool_call(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    events = stream(provider, server, tools=[TOOL], tool_choice="required")

    assert events[0] == ToolCallStart(0, "call_fake_0", "lookup")
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallArgumentsDelta))
    assert json.loads(arguments) == {"input": "hello there"}
    assert events[-2] == Finish("tool_use")
    assert isinstance(events[-1], UsageReport)


def test_stream_answered_with_a_whole_completion_is_replayed(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(json=chat_completion_json("all at once", usage=usage_json(4, 3)))

    assert stream(provider, server) == [TextDelta("all at once"), Finish("end_turn"), UsageReport(Usage(4, 3))]


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500", "Retry-After": "2"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_rate_limit_carries_retry_after(
    provider: OpenAICompatProvider,
    server: FakeOpenAIServer,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    server.enqueue(status=429, headers=headers, json=error_json("Rate limit reached for org-secret", error_type="x"))

    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert caught.value.retry_after == retry_after
    assert (caught.value.status, caught.value.retryable) == (429, True)
    assert "org-secret" not in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 418])
def test_server_errors_are_retryable(provider: OpenAICompatProvider, server: FakeOpenAIServer, status: int) -> None:
    server.enqueue(status=status, body=b"<html>Bad gateway</html>")

    with pytest.raises(ProviderError) as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert type(caught.value) is ProviderError
    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status", [400, 409, 422])
def test_request_errors_carry_the_upstream_message(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, status: int
) -> None:
    server.enqueue(status=status, json=error_json("'temperature' must be at most 2", param="temperature"))

    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert caught.value.status == 400
    assert caught.value.message == "'temperature' must be at most 2"
    assert caught.value.param == "temperature"


def test_an_unknown_upstream_model_is_the_gateways_misconfiguration(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(status=404, json=error_json("The model `gpt-x` does not exist"))

    with pytest.raises(ProviderError) as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "upstream_not_found", False)


def test_request_error_in_ollama_style_carries_its_message(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(status=400, json={"error": 'model "llama9" not found'})

    with pytest.raises(ProviderRequestError, match='model "llama9" not found'):
        provider.complete(request(), target(server), Deadline.after(5))


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_gateway_credentials_are_not_retryable(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, status: int
) -> None:
    server.enqueue(status=status, json=error_json(f"Incorrect API key provided: {KEY}"))

    with pytest.raises(ProviderError) as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert (caught.value.status, caught.value.retryable) == (502, False)
    assert "gateway's credentials" in caught.value.message
    assert "caller's API key is not at fault" in caught.value.message
    assert KEY not in caught.value.message


def test_errors_before_the_first_streamed_event_raise_from_the_first_pull(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(status=429, headers={"Retry-After": "7"}, json=error_json("slow down"))
    events = provider.stream(request(stream=True), target(server), Deadline.after(5))

    assert server.requests == []  # nothing is sent until the stream is consumed
    with pytest.raises(ProviderRateLimitError) as caught:
        next(events)
    assert caught.value.retry_after == 7.0


def test_read_timeout_is_a_provider_timeout(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(delay=2, json=chat_completion_json("late", usage=usage_json(1, 1)))
    started = time.monotonic()

    with pytest.raises(ProviderTimeoutError) as caught:
        provider.complete(request(), target(server, timeout_seconds=0.2), Deadline.after(5))

    assert caught.value.status == 504
    assert time.monotonic() - started < 1.5


def test_the_deadline_caps_the_read_timeout(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(delay=2, stream=[delta_chunk(content="late")])
    started = time.monotonic()

    events = provider.stream(request(stream=True), target(server, timeout_seconds=30), Deadline.after(0.2))

    with pytest.raises(ProviderTimeoutError):
        next(events)

    assert time.monotonic() - started < 1.5


def test_a_stream_that_stalls_after_its_headers_times_out(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(stream=[delta_chunk(content="slow")], frame_delay=2)
    started = time.monotonic()

    with pytest.raises(ProviderTimeoutError):
        list(provider.stream(request(stream=True), target(server, timeout_seconds=0.2), Deadline.after(5)))

    assert time.monotonic() - started < 1.5


def test_an_expired_deadline_sends_nothing(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    with pytest.raises(ProviderTimeoutError):
        provider.complete(request(), target(server), Deadline(time.monotonic() - 1))

    assert server.requests == []


def test_a_refused_connection_is_a_retryable_provider_error(provider: OpenAICompatProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Target(provider="openai", model_id="m", base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ProviderError) as caught:
        provider.complete(request(), closed, Deadline.after(5))

    assert type(caught.value) is ProviderError
    assert caught.value.retryable


@pytest.mark.parametrize(
    "answer",
    [
        {"body": b"{not json"},
        {"json": {"id": "x", "object": "chat.completion"}},
        {"json": {"choices": []}},
        {"json": {"choices": [{"index": 0, "finish_reason": "stop"}]}},
    ],
)
def test_malformed_upstream_answers_are_provider_errors(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, answer: dict[str, Any]
) -> None:
    server.enqueue(**answer)

    with pytest.raises(ProviderError, match="malformed upstream response") as caught:
        provider.complete(request(), target(server), Deadline.after(5))

    assert (caught.value.status, caught.value.retryable) == (502, True)


def test_an_error_frame_mid_stream_raises_after_the_earlier_events(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(
        stream=[delta_chunk(content="Once upon"), delta_chunk(content=" a time")],
        error={"message": "The server had an error while processing your request.", "type": "server_error"},
    )
    events = provider.stream(request(stream=True), target(server), Deadline.after(5))

    assert [next(events), next(events)] == [
        NativeChunk("openai", delta_chunk(content="Once upon")),
        TextDelta("Once upon"),
    ]
    assert [next(events), next(events)] == [NativeChunk("openai", delta_chunk(content=" a time")), TextDelta(" a time")]
    with pytest.raises(ProviderError, match="The server had an error while processing your request"):
        next(events)


def test_an_sse_error_event_is_a_provider_error(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(stream=[delta_chunk(content="a"), 'event: error\ndata: {"message": "Overloaded"}\n\n'])

    with pytest.raises(ProviderError, match="Overloaded"):
        stream(provider, server)


def test_a_stream_that_stops_before_finishing_is_an_error(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    server.enqueue(stream=[delta_chunk(content="Once upon")], done=False)
    received: list[StreamEvent] = []

    with pytest.raises(ProviderError, match="stream ended early"):
        received.extend(provider.stream(request(stream=True), target(server), Deadline.after(5)))

    assert received == [NativeChunk("openai", delta_chunk(content="Once upon")), TextDelta("Once upon")]


def test_a_dropped_connection_mid_stream_is_an_error(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(stream=[delta_chunk(content="Once upon")], done=False, abort=True)

    with pytest.raises(ProviderError) as caught:
        stream(provider, server)

    assert caught.value.retryable


def test_a_finished_stream_without_done_is_accepted(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(stream=[delta_chunk(content="ok"), delta_chunk(finish_reason="stop"), usage_chunk(2, 1)], done=False)

    assert stream(provider, server) == [TextDelta("ok"), Finish("end_turn"), UsageReport(Usage(2, 1))]


def test_a_malformed_stream_frame_is_an_error(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    server.enqueue(stream=[delta_chunk(content="a"), "data: {broken\n\n"])

    with pytest.raises(ProviderError, match="malformed upstream response"):
        stream(provider, server)


def test_missing_usage_is_estimated_and_logged_without_text(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, log_output: LogOutput
) -> None:
    server.enqueue(json=chat_completion_json("twelve chars"))
    server.enqueue(stream=[delta_chunk(content="twelve chars"), delta_chunk(finish_reason="stop")])

    completion = provider.complete(request(), target(server), Deadline.after(5))
    events = stream(provider, server)

    # The gateway's bounded estimates: the prompt's as the reservation counts it, the output text's.
    expected = Usage(estimate_prompt_tokens(request()), estimate_text_tokens("twelve chars"), estimated=True)
    assert completion.usage == expected
    assert events[-1] == UsageReport(expected)
    warnings = [line for line in log_output() if "estimated" in line["message"]]
    assert [line["streamed"] for line in warnings] == [False, True]
    assert all(line["target"] == "openai/upstream-model" for line in warnings)
    logged = json.dumps(log_output())
    assert "hello there" not in logged
    assert "twelve chars" not in logged


def test_the_connection_is_pooled_and_reused(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    upstream = target(server)

    provider.complete(request(), upstream, Deadline.after(5))
    stream(provider, server)
    server.enqueue(status=400, json=error_json("bad"))
    with pytest.raises(ProviderRequestError):
        provider.complete(request(), upstream, Deadline.after(5))
    provider.complete(request(), upstream, Deadline.after(5))

    ports = {sent.client_port for sent in server.requests}
    assert len(server.requests) == 4
    assert len(ports) == 1, "every call should reuse the one kept-alive connection"


def test_an_abandoned_stream_does_not_poison_the_pool(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    events = provider.stream(request(stream=True), target(server), Deadline.after(5))
    assert isinstance(events, Generator)
    assert isinstance(next(events), NativeChunk)
    events.close()  # the consumer gave up halfway: the unread rest must not reach the next call

    completion = provider.complete(request(), target(server), Deadline.after(5))

    assert completion.text == "hello there"


def test_the_key_can_come_from_the_named_environment_variable(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_OPENAI_KEY", "sk-from-env")
    provider.complete(request(), target(server, api_key_secret=None, api_key_env="LOCAL_OPENAI_KEY"), Deadline.after(5))

    assert server.last_request.headers["authorization"] == "Bearer sk-from-env"


def test_an_unset_key_variable_is_a_gateway_misconfiguration(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.complete(request(), target(server, api_key_secret=None, api_key_env="UNSET_KEY"), Deadline.after(5))

    assert caught.value.retryable is False
    assert server.requests == []


def test_a_target_without_a_key_sends_no_credentials(provider: OpenAICompatProvider, server: FakeOpenAIServer) -> None:
    provider.complete(request(), target(server, api_key_secret=None), Deadline.after(5))

    assert "authorization" not in server.last_request.headers
    assert "api-key" not in server.last_request.headers


def test_azure_style_targets_send_the_key_in_an_api_key_header(
    provider: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    azure = target(server, auth_header="api-key", query={"api-version": "preview"})

    provider.complete(request(), azure, Deadline.after(5))

    sent = server.last_request
    assert sent.headers["api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.query == {"api-version": "preview"}


def test_the_key_never_reaches_logs_or_error_messages(
    provider: OpenAICompatProvider, server: FakeOpenAIServer, log_output: LogOutput
) -> None:
    server.enqueue(status=401, json=error_json(f"Incorrect API key provided: {KEY}"))
    server.enqueue(status=400, json=error_json(f"Your key {KEY} may not set 'seed'"))
    server.enqueue(stream=[delta_chunk(content="a")], error={"message": f"key {KEY} revoked"})
    with pytest.raises(ProviderError) as rejected:
        provider.complete(request(), target(server), Deadline.after(5))
    with pytest.raises(ProviderRequestError) as refused:
        provider.complete(request(), target(server), Deadline.after(5))
    with pytest.raises(ProviderError) as failed:
        stream(provider, server)
    messages = [rejected.value.message, refused.value.message, failed.value.message]

    assert messages[1] == "Your key [redacted] may not set 'seed'"
    assert messages[2].endswith("key [redacted] revoked")
    assert all(KEY not in message for message in messages)
    lines = log_output()
    assert len(lines) >= 3, "the failures are logged"
    assert KEY not in json.dumps(lines)
