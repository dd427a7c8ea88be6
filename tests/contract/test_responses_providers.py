"""The Responses API on every provider behind the real handler, through the openai SDK: an offline Bedrock
(ConverseStream, signed reasoning, tool calls, an error after the stream began) and a fake OpenAI-compatible
server (the request translated to chat completions, structured output, fields chat has too, fallbacks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event, stream_exception
from tests.fakes.handler_client import handler_client
from tests.fakes.openai_server import FakeOpenAIServer, chat_completion_json, delta_chunk, usage_chunk, usage_json

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SIGNATURE = "EqQBCkYIBRgCKkD-signed-by-the-model"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch, upstream: FakeOpenAIServer) -> None:
    models = {
        "gpt-proxy": {"targets": [{"provider": "openai", "model_id": "gpt-x", "base_url": upstream.base_url}]},
        "claude": {
            "targets": [{"provider": "bedrock", "model_id": "us.anthropic.claude-sonnet-4-5-v1:0"}],
            "traits": {"bedrock": {"anthropic_messages": True, "source": "a test"}},
        },
    }
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))


def converse_body(bedrock: FakeBedrockTransport, index: int = -1) -> dict[str, Any]:
    return dict(json.loads(bedrock.sent[index].body))


def test_bedrock_streams_reasoning_text_and_a_tool_call_as_typed_events(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Weather tool."}}}
        ),
        stream_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": SIGNATURE}}}
        ),
        stream_event("contentBlockStop", {"contentBlockIndex": 0}),
        stream_event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}},
        ),
        stream_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city":'}}}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ' "Paris"}'}}}),
        stream_event("contentBlockStop", {"contentBlockIndex": 1}),
        stream_event("messageStop", {"stopReason": "tool_use"}),
        stream_event("metadata", {"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}, "metrics": {}}),
    )
    client, _ = handler_client(api_handler)
    events = list(
        client.responses.create(
            model="claude",
            input="Weather in Paris?",
            tools=[WEATHER],  # type: ignore[list-item]
            reasoning={"effort": "low"},
            include=["reasoning.encrypted_content"],
            stream=True,
            store=False,
        )
    )
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1]
    assert final.type == "response.completed"
    reasoning, call = final.response.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"} and call.call_id == "tu_1"
    assert final.response.usage is not None and final.response.usage.total_tokens == 42
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"city": "Paris"}

    # The next turn sends the items back: the signed reasoning reaches Bedrock as the model signed it.
    bedrock.reply_json(
        200,
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Sunny."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 50, "outputTokens": 2, "totalTokens": 52},
        },
    )
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    history += [item.model_dump(exclude_none=True) for item in final.response.output]
    history.append({"type": "function_call_output", "call_id": "tu_1", "output": "sunny"})
    second = client.responses.create(
        model="claude",
        input=history,
        tools=[WEATHER],
        reasoning={"effort": "low"},
        store=False,  # type: ignore[list-item]
    )
    assert second.output_text == "Sunny."
    assistant = converse_body(bedrock)["messages"][1]
    assert assistant["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Weather tool.", "signature": SIGNATURE}}
    }
    assert assistant["content"][1]["toolUse"]["toolUseId"] == "tu_1"


def test_a_bedrock_failure_after_the_first_event_ends_in_error_and_response_failed(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Partial"}}),
        stream_exception("modelStreamErrorException", "The model stopped unexpectedly"),
    )
    client, transport = handler_client(api_handler)
    events = list(client.responses.create(model="claude", input="hi", stream=True, store=False))
    kinds = [event.type for event in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and "stopped unexpectedly" in failed.error.message
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "[DONE]" not in transport.responses[-1]["body"]


def test_bedrock_refuses_structured_output_naming_text_format(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    client, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(
            model="claude",
            input="hi",
            text={"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}},
        )
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "text.format"
    assert bedrock.sent == []


def test_bedrock_takes_what_codex_sends_beside_the_conversation(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_json(
        200,
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10},
        },
    )
    client, _ = handler_client(api_handler)
    response = client.responses.create(
        model="claude",
        instructions="You are a coding agent.",
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        include=[],
        prompt_cache_key="session-1",
        store=False,
        truncation="disabled",
    )
    assert response.output_text == "Hi."
    sent = converse_body(bedrock)
    assert sent["system"] == [{"text": "You are a coding agent."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_an_openai_compatible_upstream_gets_a_chat_completion_request(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    upstream.enqueue(json=chat_completion_json('{"city": "Oslo"}', usage=usage_json(20, 5, cached_tokens=16)))
    client, _ = handler_client(api_handler)
    response = client.responses.create(
        model="gpt-proxy",
        instructions="Answer in JSON.",
        input=[
            {"role": "user", "content": "Where?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
        text={"format": {"type": "json_schema", "name": "place", "schema": {"type": "object"}, "strict": True}},
        prompt_cache_key="session-1",
        max_output_tokens=100,
        store=False,
    )
    assert response.output_text == '{"city": "Oslo"}'
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 16
    sent = upstream.last_request.body
    assert sent["model"] == "gpt-x" and sent["prompt_cache_key"] == "session-1"
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": {"type": "object"}, "strict": True},
    }
    assert [message["role"] for message in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["max_completion_tokens"] == 100
    assert "input" not in sent and "store" not in sent


def test_an_openai_compatible_upstream_stream_becomes_typed_events(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    upstream.enqueue(
        stream=[delta_chunk(role="assistant", content="Hel"), delta_chunk(content="lo"), usage_chunk(5, 2)]
    )
    client, _ = handler_client(api_handler)
    with client.responses.stream(model="gpt-proxy", input="Say hello", store=False) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Hel", "lo"] and final.output_text == "Hello"
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (5, 2)
    assert upstream.last_request.body["stream"] is True


def test_an_openai_compatible_upstream_refuses_what_chat_cannot_express(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    client, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="gpt-proxy", input="hi", truncation="auto")
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "truncation"
    assert upstream.requests == []
