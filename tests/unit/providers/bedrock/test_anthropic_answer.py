"""InvokeModel's Anthropic answers read into completions and kept whole, and the Anthropic path's failures."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import Native, OpaqueBlock, ReasoningBlock, TextBlock, ToolCallBlock
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
from tests.unit.providers.bedrock.anthropic_bodies import (
    SONNET,
    TARGET,
    WEATHER_TOOL,
    anthropic_message,
    anthropic_request,
    bedrock_body,
    expected_invoke,
    invoke_response,
    messages_body,
    text,
)

# --- non-streamed answers -----------------------------------------------------------------------------------


def test_the_answer_is_read_into_blocks_and_kept_whole(provider: BedrockProvider, stubber: Stubber) -> None:
    citation = {"type": "char_location", "cited_text": "Paris", "document_index": 0, "start_char_index": 0}
    server_call = {"type": "server_tool_use", "id": "srvtoolu_2", "name": "web_search", "input": {"query": "q"}}
    payload = anthropic_message(
        {"type": "thinking", "thinking": "Let me check.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque=="},
        text("Paris.", citations=[citation]),
        server_call,
        {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Paris"}},
        stop_reason="tool_use",
        usage={
            "input_tokens": 20,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 1000,
            "output_tokens": 50,
        },
    )
    stubber.add_response("invoke_model", invoke_response(payload), expected_invoke(bedrock_body()))
    completion = provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert completion == Completion(
        (
            ReasoningBlock("Let me check.", signature="sig-1", path="content[0]"),
            ReasoningBlock(redacted="opaque==", path="content[1]"),
            TextBlock("Paris.", extra={"citations": [citation]}, path="content[2]"),
            OpaqueBlock("anthropic", "server_tool_use", server_call, path="content[3]"),
            ToolCallBlock("toolu_02", "get_weather", '{"city": "Paris"}', path="content[4]"),
        ),
        "tool_use",
        Usage(1320, 50, cached_tokens=1000, cache_write_tokens=300),
        native=Native("anthropic", payload),
    )
    assert completion.native is not None and completion.native.body == payload


@pytest.mark.parametrize(
    ("reason", "stop_reason"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "stop_sequence"),
        ("max_tokens", "max_tokens"),
        ("tool_use", "tool_use"),
        ("refusal", "refusal"),
        ("pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "max_tokens"),
        ("a_reason_added_later", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons(provider: BedrockProvider, stubber: Stubber, reason: str | None, stop_reason: str) -> None:
    sequence = "END" if reason == "stop_sequence" else None
    payload = anthropic_message(text("x"), stop_reason=reason, stop_sequence=sequence)
    stubber.add_response("invoke_model", invoke_response(payload))
    completion = provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert (completion.stop_reason, completion.stop_sequence) == (stop_reason, sequence)
    assert completion.native is not None and completion.native.body["stop_reason"] == reason


def test_tool_use_across_turns(provider: BedrockProvider, stubber: Stubber) -> None:
    first = messages_body([{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER_TOOL])
    call = {"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {"city": "Paris"}}
    stubber.add_response(
        "invoke_model",
        invoke_response(anthropic_message(text("Checking."), call, stop_reason="tool_use")),
        expected_invoke(bedrock_body(first["messages"], tools=[WEATHER_TOOL])),
    )
    completion = provider.complete(anthropic_request(first), TARGET, Deadline.after(10), SONNET)
    assert completion.tool_calls == (ToolCallBlock("toolu_03", "get_weather", '{"city": "Paris"}', path="content[1]"),)
    assert completion.native is not None
    history = [
        *first["messages"],
        {"role": "assistant", "content": completion.native.body["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_03", "content": "18C"}]},
    ]
    stubber.add_response(
        "invoke_model",
        invoke_response(anthropic_message(text("18C in Paris."))),
        expected_invoke(bedrock_body(history, tools=[WEATHER_TOOL])),
    )
    second = provider.complete(
        anthropic_request(messages_body(history, tools=[WEATHER_TOOL])), TARGET, Deadline.after(10), SONNET
    )
    assert second.text == "18C in Paris."


def test_an_answer_without_usage_cannot_be_metered(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    payload = anthropic_message(text("hi"))
    del payload["usage"]
    transport.reply_json(200, payload)
    with pytest.raises(ProviderError, match="metered") as caught:
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert caught.value.status == 502


def test_an_answer_that_is_not_a_message_is_a_provider_error(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_json(200, {"outputs": [{"text": "not Anthropic's shape"}]})
    with pytest.raises(ProviderError, match="Anthropic message") as caught:
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert caught.value.retryable


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "invalid beta flag",
        "messages.1.content.0.thinking.signature: Field required",
        "speed: Extra inputs are not permitted",
    ],
)
def test_bedrocks_validation_message_reaches_the_caller_as_a_400(
    provider: BedrockProvider, stubber: Stubber, message: str
) -> None:
    stubber.add_client_error("invoke_model", service_error_code="ValidationException", service_message=message)
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert caught.value.status == 400 and not caught.value.retryable
    assert message in caught.value.message


def test_a_prompt_too_long_is_a_context_overflow(provider: BedrockProvider, stubber: Stubber) -> None:
    stubber.add_client_error(
        "invoke_model",
        service_error_code="ValidationException",
        service_message="prompt is too long: 200049 tokens > 200000 maximum",
    )
    with pytest.raises(GatewayError) as caught:
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert (caught.value.status, caught.value.code) == (400, "context_length_exceeded")


def test_throttling_is_a_429_with_bedrocks_retry_after(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many tokens", {"Retry-After": "3"})
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)
    assert caught.value.retryable and caught.value.retry_after == 3.0
    assert caught.value.headers == {"Retry-After": "3"}


def test_an_output_cap_too_small_for_thinking_calls_nothing(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    body = messages_body(thinking={"type": "enabled", "budget_tokens": 4000})
    with pytest.raises(ProviderRequestError):
        provider.complete(anthropic_request(body, max_output_tokens=512), TARGET, Deadline.after(10), SONNET)
    with pytest.raises(ProviderRequestError):
        provider.stream(anthropic_request(body, max_output_tokens=512), TARGET, Deadline.after(10), SONNET)
    assert transport.sent == []


def test_an_expired_deadline_calls_nothing(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    with pytest.raises(ProviderTimeoutError):
        provider.complete(anthropic_request(messages_body()), TARGET, Deadline(expires_at=0.0), SONNET)
    with pytest.raises(ProviderTimeoutError):
        provider.stream(anthropic_request(messages_body()), TARGET, Deadline(expires_at=0.0), SONNET)
    assert transport.sent == []
