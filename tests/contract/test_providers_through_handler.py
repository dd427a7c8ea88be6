"""Providers behind the real API handler, driven by the official openai SDK through an in-process adapter.

Upstreams are a fake OpenAI-compatible server on 127.0.0.1 and an offline Bedrock (real botocore client,
event-stream bytes faked at the transport), so every status mapping, retry and fallback is the gateway's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event
from tests.fakes.handler_client import HandlerTransport, handler_client
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    chat_completion_json,
    delta_chunk,
    error_json,
    usage_chunk,
    usage_json,
)

USER = [{"role": "user", "content": "What is the weather in Paris and Rome?"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        yield first, second


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer]) -> None:
    first, second = upstreams
    models = {
        "gpt-proxy": {"targets": [{"provider": "openai", "model_id": "gpt-x", "base_url": first.base_url}]},
        "resilient": {
            "targets": [
                {"provider": "openai", "model_id": "primary", "base_url": first.base_url, "timeout_seconds": 0.3},
                {"provider": "openai", "model_id": "secondary", "base_url": second.base_url},
            ]
        },
        "claude": {"targets": [{"provider": "bedrock", "model_id": "us.anthropic.claude-sonnet-4-5-v1:0"}]},
    }
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))


def header(transport: HandlerTransport, name: str) -> str:
    headers = {k.lower(): v for k, v in transport.responses[-1]["multiValueHeaders"].items()}
    return str(headers[name.lower()][0])


@pytest.mark.usefixtures("registry")
def test_sdk_parses_a_completion_served_by_an_openai_compatible_upstream(
    api_handler: Handler, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    first, _ = upstreams
    first.enqueue(json=chat_completion_json("Sunny.", usage=usage_json(12, 2, cached_tokens=8)))
    sdk, transport = handler_client(api_handler)
    completion = sdk.chat.completions.create(model="gpt-proxy", messages=USER, temperature=0.1)
    assert completion.choices[0].message.content == "Sunny."
    assert completion.model == "gpt-proxy", "callers see the public model name"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.prompt_tokens_details.cached_tokens) == (12, 8)  # type: ignore[union-attr]
    assert first.last_request.body["model"] == "gpt-x"
    assert header(transport, "X-Gateway-Target") == "openai/gpt-x"


@pytest.mark.usefixtures("registry")
def test_sdk_accumulates_a_streamed_answer_with_two_tool_calls(
    api_handler: Handler, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    first, _ = upstreams
    first.enqueue(
        stream=[
            delta_chunk(role="assistant", content="Checking."),
            delta_chunk(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            ),
            delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
            delta_chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
            delta_chunk(
                tool_calls=[
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    }
                ]
            ),
            delta_chunk(finish_reason="tool_calls"),
            usage_chunk(20, 9),
        ]
    )
    sdk, _ = handler_client(api_handler)
    with sdk.chat.completions.stream(model="gpt-proxy", messages=USER, tools=[TOOL]) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking."
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_weather", {"city": "Rome"}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert first.last_request.body["stream_options"] == {"include_usage": True}


@pytest.mark.usefixtures("registry")
def test_upstream_429_is_a_429_with_retry_after(
    api_handler: Handler, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = upstreams
    # One target: it is retried once after its Retry-After, then the 429 reaches the caller.
    first.enqueue(status=429, headers={"Retry-After": "1"}, json=error_json("slow down", error_type="requests"))
    first.enqueue(status=429, headers={"Retry-After": "7"}, json=error_json("slow down", error_type="requests"))
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(model="gpt-proxy", messages=USER)
    assert limited.value.code == "upstream_rate_limited"
    assert header(transport, "Retry-After") == "7"
    assert len(first.requests) == 2


@pytest.mark.usefixtures("registry")
def test_upstream_500_then_success_is_retried(
    api_handler: Handler, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    first, _ = upstreams
    first.enqueue(status=500, json=error_json("overloaded", error_type="server_error"))
    sdk, _ = handler_client(api_handler)
    completion = sdk.chat.completions.create(model="gpt-proxy", messages=[{"role": "user", "content": "again"}])
    assert completion.choices[0].message.content
    assert len(first.requests) == 2


@pytest.mark.usefixtures("registry")
def test_upstream_timeout_then_fallback_to_the_second_target(
    api_handler: Handler, upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer]
) -> None:
    first, second = upstreams
    first.enqueue(delay=1.0)
    first.enqueue(delay=1.0)
    sdk, transport = handler_client(api_handler)
    completion = sdk.chat.completions.create(model="resilient", messages=[{"role": "user", "content": "hello"}])
    assert completion.choices[0].message.content
    assert header(transport, "X-Gateway-Target") == "openai/secondary"
    assert [r.body["model"] for r in second.requests] == ["secondary"]


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("scripted", "status", "code", "attempts"),
    [
        ({"body": b"<html>not json</html>"}, 502, "upstream_error", 2),
        (
            {"status": 400, "json": error_json("temperature too high", param="temperature")},
            400,
            "upstream_invalid_request",
            1,
        ),
        ({"status": 401, "json": error_json("bad key", error_type="invalid_api_key")}, 502, "upstream_auth_failed", 1),
    ],
)
def test_upstream_failures_map_to_openai_errors(
    api_handler: Handler,
    upstreams: tuple[FakeOpenAIServer, FakeOpenAIServer],
    scripted: dict[str, Any],
    status: int,
    code: str,
    attempts: int,
) -> None:
    first, _ = upstreams
    for _ in range(attempts):
        first.enqueue(**scripted)
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.APIStatusError) as failed:
        sdk.chat.completions.create(model="gpt-proxy", messages=USER)
    assert failed.value.status_code == status
    body = json.loads(transport.responses[-1]["body"])
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert (len(first.requests), first.pending) == (attempts, 0), "retried only when retrying can help"


@pytest.mark.usefixtures("registry")
def test_sdk_parses_a_bedrock_stream_with_tool_calls(api_handler: Handler, bedrock: FakeBedrockTransport) -> None:
    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        stream_event("contentBlockStop", {"contentBlockIndex": 0}),
        stream_event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}},
        ),
        stream_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city":'}}}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ' "Paris"}'}}}),
        stream_event("contentBlockStop", {"contentBlockIndex": 1}),
        stream_event("messageStop", {"stopReason": "tool_use"}),
        stream_event(
            "metadata",
            {"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}, "metrics": {"latencyMs": 300}},
        ),
    )
    sdk, transport = handler_client(api_handler)
    chunks = list(
        sdk.chat.completions.create(
            model="claude",
            messages=USER,
            tools=[TOOL],
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[list-item]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert text == "Let me check."
    assert (calls[0].index, calls[0].id, calls[0].function.name) == (0, "tu_1", "get_weather")  # type: ignore[union-attr]
    assert json.loads("".join(c.function.arguments or "" for c in calls if c.function)) == {"city": "Paris"}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 42
    assert header(transport, "X-Gateway-Target") == "bedrock/us.anthropic.claude-sonnet-4-5-v1:0"
    assert bedrock.sent[0].model_id == "us.anthropic.claude-sonnet-4-5-v1:0"


@pytest.mark.usefixtures("registry")
def test_a_bedrock_error_after_the_stream_began_is_an_sse_error_event(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    from tests.fakes.bedrock_transport import stream_exception

    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Partial"}}),
        stream_exception("modelStreamErrorException", "The model stopped unexpectedly"),
    )
    sdk, transport = handler_client(api_handler)
    stream = sdk.chat.completions.create(model="claude", messages=USER, stream=True)  # type: ignore[arg-type]
    received: list[str] = []

    def read_all() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match="stopped unexpectedly"):
        read_all()
    assert "".join(received) == "Partial"
    body = transport.responses[-1]["body"]
    assert body.rstrip().endswith("}") and "[DONE]" not in body
