"""The Anthropic Messages surface on its own: requests read into the conversation model, answers and streams
rendered in Anthropic's shapes, errors in Anthropic's error shape, the model list's pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.api.anthropic.messages import betas
from llm_gateway.api.http import validation_error
from llm_gateway.dialects.anthropic_messages.answer import message_json
from llm_gateway.dialects.anthropic_messages.errors import error_body
from llm_gateway.dialects.anthropic_messages.models import model_page
from llm_gateway.dialects.anthropic_messages.request import conversation
from llm_gateway.dialects.anthropic_messages.schemas import CountTokensRequest, MessagesRequest
from llm_gateway.dialects.anthropic_messages.stream import EventProducer, sse_events
from llm_gateway.domain.answers import (
    Completion,
    Finish,
    NativeChunk,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import (
    DocumentBlock,
    ImageBlock,
    Native,
    OpaqueBlock,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolChoice,
    ToolResultBlock,
)
from llm_gateway.domain.registry import ModelEntry, Target
from llm_gateway.errors import (
    AuthenticationError,
    InvalidRequestError,
    PermissionDeniedError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

EPHEMERAL = {"type": "ephemeral"}
PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"


def read(body: dict[str, Any], *headers: tuple[str, str]) -> Any:
    text = json.dumps(body)
    return conversation(MessagesRequest.model_validate_json(text), text, betas(headers))


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}], **fields}


# --- requests ------------------------------------------------------------------------------------------------


def test_every_block_kind_is_read_into_the_conversation_model() -> None:
    body = request(
        system=[{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:", "citations": None},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "Terms",
                        "cache_control": EPHEMERAL,
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
                    {"type": "search_result", "source": "https://example.com", "title": "t", "content": []},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Hmm.", "signature": "sig=="},
                    {"type": "redacted_thinking", "data": "opaque=="},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found", "is_error": True},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "two"}]},
                ],
            },
        ],
    )
    chat = read(body)
    assert chat.system == (TextBlock("Be brief.", cache=True, path="system[0]"),)
    user, assistant, results = chat.messages
    text, inline, linked, pdf, plain, other = user.content
    assert text == TextBlock("Look:", extra={"citations": None}, path="messages[0].content[0]")
    assert (inline, linked) == (
        ImageBlock(media_type="image/png", base64=PNG, path="messages[0].content[1]"),
        ImageBlock(url="https://example.com/a.png", path="messages[0].content[2]"),
    )
    assert pdf == DocumentBlock(
        media_type="application/pdf", base64=PDF, name="Terms", cache=True, path="messages[0].content[3]"
    )
    assert (plain.text, plain.media_type) == ("plain", "text/plain")
    assert isinstance(other, OpaqueBlock) and (other.dialect, other.type, other.data["title"]) == (
        "anthropic",
        "search_result",
        "t",
    )
    assert assistant.content == (
        ReasoningBlock("Hmm.", signature="sig==", path="messages[1].content[0]"),
        ReasoningBlock(redacted="opaque==", path="messages[1].content[1]"),
        ToolCallBlock("toolu_1", "lookup", '{"q": "x"}', path="messages[1].content[2]"),
    )
    first, second = results.content
    assert isinstance(first, ToolResultBlock) and (first.tool_call_id, first.is_error) == ("toolu_1", True)
    assert first.content == (TextBlock("found", path="messages[2].content[0].content"),)
    assert isinstance(second, ToolResultBlock) and second.content[0] == TextBlock(
        "two", path="messages[2].content[1].content[0]"
    )
    assert chat.native == Native("anthropic", json.dumps(body)) and chat.native.body == body


def test_settings_tools_and_what_the_gateway_does_not_interpret() -> None:
    chat = read(
        request(
            stop_sequences=["END", ""],
            temperature=0.2,
            top_k=5,
            stream=True,
            metadata={"user_id": "u-1"},
            context_management={"edits": []},
            tools=[
                {"name": "lookup", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            ],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
            thinking={"type": "enabled", "budget_tokens": 2048},
        ),
        ("anthropic-beta", "interleaved-thinking-2025-05-14, context-1m-2025-08-07"),
        ("anthropic-beta", "claude-code-20250219"),
        ("anthropic-version", "2023-06-01"),
    )
    assert (chat.max_output_tokens, chat.temperature, chat.top_k, chat.stop, chat.stream) == (
        1024,
        0.2,
        5,
        ("END",),
        True,
    )
    assert chat.extra == {"metadata": {"user_id": "u-1"}, "context_management": {"edits": []}}
    lookup, search = chat.tools
    assert (lookup.name, lookup.parameters, lookup.cache) == ("lookup", {"type": "object"}, True)
    assert (search.name, search.parameters, search.extra) == (
        "web_search",
        None,
        {"max_uses": 3, "type": "web_search_20250305"},
    )
    assert chat.tool_choice == ToolChoice("required", None, False)
    assert (chat.reasoning.enabled, chat.reasoning.budget_tokens) == (True, 2048)
    assert chat.betas == ("interleaved-thinking-2025-05-14", "context-1m-2025-08-07", "claude-code-20250219")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"thinking": {"type": "disabled"}}, (False, None, None)),
        ({"thinking": {"type": "adaptive"}}, (True, "high", None)),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, (True, "low", None)),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, (True, "high", None)),
        ({}, None),
    ],
)
def test_thinking_settings(fields: dict[str, Any], expected: tuple[bool, str | None, int | None] | None) -> None:
    reasoning = read(request(**fields)).reasoning
    assert (None if reasoning is None else (reasoning.enabled, reasoning.effort, reasoning.budget_tokens)) == expected


def test_a_system_turn_mid_conversation_becomes_a_reminder_in_a_user_turn() -> None:
    chat = read(
        request(
            messages=[
                {"role": "user", "content": "say pong"},
                {"role": "system", "content": "Tools are available."},
            ]
        )
    )
    assert chat.messages[1].role == "user"
    assert chat.messages[1].content[0].text == "<system-reminder>\nTools are available.\n</system-reminder>"
    assert chat.last_user_text() == "say pong", "the echo model answers the user, not the harness"


def test_count_tokens_requests_carry_no_generation_settings() -> None:
    text = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "a b"}]})
    chat = conversation(CountTokensRequest.model_validate_json(text), text)
    assert (chat.max_output_tokens, chat.stream, chat.stop) == (None, False, ())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (request(max_tokens=0), "max_tokens"),
        (request(temperature=1.5), "temperature"),
        (request(messages=[]), "messages"),
        (request(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (request(thinking={"type": "enabled"}), "thinking"),
        (request(thinking={"type": "enabled", "budget_tokens": 512}), "thinking.budget_tokens"),
        (request(tools=[{"name": "f"}]), "tools[0]"),
        (request(tools=[{"name": "f", "input_schema": {}}], tool_choice={"type": "tool", "name": "g"}), None),
        (
            request(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}]),
            "messages[0].content[0].input",
        ),
    ],
)
def test_invalid_requests_are_a_400_naming_the_field(body: dict[str, Any], param: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        MessagesRequest.model_validate(body)
    error = validation_error([{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()])
    assert error.status == 400
    assert error.param == param


# --- answers -------------------------------------------------------------------------------------------------

COMPLETION = Completion(
    (
        ReasoningBlock("Hmm.", signature="sig"),
        ReasoningBlock(redacted="opaque"),
        TextBlock("Sunny."),
        ToolCallBlock("toolu_1", "lookup", '{"city": "Paris"}'),
        OpaqueBlock(
            "anthropic",
            "server_tool_use",
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
        ),
        OpaqueBlock("openai", "input_audio", {"type": "input_audio"}),
    ),
    "tool_use",
    Usage(1300, 40, cached_tokens=1000, cache_write_tokens=200, reasoning_tokens=10),
)


def test_a_message_is_built_from_the_conversation_model() -> None:
    message = json.loads(message_json(COMPLETION, message_id="msg_1", model="claude"))
    assert message == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Sunny."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"city": "Paris"}},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000,
            "output_tokens": 40,
        },
    }


@pytest.mark.parametrize(
    ("reason", "expected"), [("content_filter", "refusal"), ("max_tokens", "max_tokens"), ("pause_turn", "pause_turn")]
)
def test_stop_reasons(reason: Any, expected: str) -> None:
    completion = Completion((TextBlock("x"),), reason, Usage(1, 1), stop_sequence=None)
    assert json.loads(message_json(completion, message_id="m", model="c"))["stop_reason"] == expected


def test_a_native_message_goes_back_as_the_model_sent_it() -> None:
    payload = {
        "id": "msg_bdrk_1",
        "type": "message",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi", "citations": [{"type": "char_location"}]}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1, "service_tier": "standard"},
        "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3},
    }
    completion = Completion((TextBlock("Hi"),), "end_turn", Usage(3, 1), native=Native("anthropic", payload))
    sent = json.loads(message_json(completion, message_id="ignored", model="claude-sonnet-4-5"))
    expected = {k: v for k, v in payload.items() if k != "amazon-bedrock-invocationMetrics"}
    assert sent == {**expected, "model": "claude-sonnet-4-5"}


def produce(events: list[Any]) -> list[tuple[str, Any]]:
    return [(name, dict(data)) for name, data in EventProducer(message_id="msg_1", model="claude").events(iter(events))]


def test_a_stream_is_built_block_by_block() -> None:
    events = produce(
        [
            ReasoningDelta("Hmm"),
            ReasoningSignature("sig"),
            RedactedReasoning("opaque"),
            TextDelta("Sun"),
            TextDelta("ny."),
            ToolCallStart(0, "toolu_1", "lookup"),
            ToolCallArgumentsDelta(0, '{"city": '),
            ToolCallArgumentsDelta(0, '"Paris"}'),
            Finish("tool_use"),
            UsageReport(Usage(1300, 40, cached_tokens=1000, cache_write_tokens=200)),
        ]
    )
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # fmt: skip
    assert events[0][1]["message"]["model"] == "claude" and events[0][1]["message"]["content"] == []
    assert [data["index"] for name, data in events if name == "content_block_start"] == [0, 1, 2, 3]
    assert events[3][1]["delta"] == {"type": "thinking_delta", "thinking": "Hmm"}
    assert events[4][1]["delta"] == {"type": "signature_delta", "signature": "sig"}
    assert events[6][1]["content_block"] == {"type": "redacted_thinking", "data": "opaque"}
    assert events[12][1]["content_block"] == {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    assert events[14][1]["delta"] == {"type": "input_json_delta", "partial_json": '"Paris"}'}
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 1000,
            "output_tokens": 40,
        },
    }


def test_a_native_stream_is_forwarded_with_the_public_model_name() -> None:
    start = {
        "type": "message_start",
        "message": {"id": "msg_bdrk", "model": "anthropic.claude", "usage": {"input_tokens": 9}},
    }
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    stop = {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 9}}
    events = produce(
        [
            NativeChunk("anthropic", start, "message_start"),
            NativeChunk("anthropic", delta, "content_block_delta"),
            TextDelta("Hi"),
            Finish("end_turn"),
            NativeChunk("anthropic", stop, "message_stop"),
            UsageReport(Usage(9, 1)),
        ]
    )
    assert events == [
        (
            "message_start",
            {"type": "message_start", "message": {"id": "msg_bdrk", "model": "claude", "usage": {"input_tokens": 9}}},
        ),
        ("content_block_delta", delta),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_an_error_after_the_stream_began_is_an_error_event() -> None:
    def failing() -> Any:
        yield TextDelta("Hel")
        raise ProviderRateLimitError("Bedrock is throttling", retry_after=2)

    frames = list(sse_events(EventProducer(message_id="m", model="c").events(failing())))
    assert frames[-1] == (
        'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Bedrock is throttling",'
        '"code":"upstream_rate_limited"}}\n\n'
    )
    assert all(frame.startswith("event: ") for frame in frames), "Anthropic's SDKs skip unnamed events"


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (InvalidRequestError("bad", param="max_tokens"), "invalid_request_error"),
        (AuthenticationError("who?"), "authentication_error"),
        (PermissionDeniedError("no"), "permission_error"),
        (ProviderError("down"), "api_error"),
        (ProviderTimeoutError("slow"), "timeout_error"),
    ],
)
def test_errors_take_anthropics_types(error: Any, error_type: str) -> None:
    body = error_body(error, "req-1")
    assert body["type"] == "error" and body["request_id"] == "req-1"
    assert (body["error"]["type"], body["error"]["message"]) == (error_type, error.message)


def entry() -> ModelEntry:
    return ModelEntry(targets=(Target(provider="echo", model_id="echo"),))


@pytest.mark.parametrize(
    ("limit", "after", "before", "ids", "more"),
    [
        (20, None, None, ["a", "b", "c", "d"], False),
        (2, None, None, ["a", "b"], True),
        (2, "b", None, ["c", "d"], False),
        (1, "b", None, ["c"], True),
        (2, None, "d", ["b", "c"], True),
        (5, None, "b", ["a"], False),
    ],
)
def test_the_model_list_pages(limit: int, after: str | None, before: str | None, ids: list[str], more: bool) -> None:
    page = model_page([(name, entry()) for name in "abcd"], limit=limit, after_id=after, before_id=before)
    assert ([model["id"] for model in page["data"]], page["has_more"]) == (ids, more)
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])
    assert page["data"][0]["type"] == "model" and page["data"][0]["created_at"] == "1970-01-01T00:00:00Z"
