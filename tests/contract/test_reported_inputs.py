"""Inputs replayed from other gateways' bug reports, sent by the openai SDK through the real API handler.

Bedrock is offline (real botocore client, bytes faked at the transport); OpenAI-compatible upstreams are the fake
server on 127.0.0.1, which can refuse over-long requests as vLLM does with --max-model-len.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from llm_gateway.config import shipped_registry_text
from llm_gateway.domain.budget import CONTEXT_HEADROOM_TOKENS
from llm_gateway.domain.estimate import estimate_prompt_tokens
from tests.conftest import Handler, LogOutput
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event, stream_exception
from tests.fakes.handler_client import HandlerTransport, handler_client
from tests.fakes.openai_server import CHAT_TEMPLATE_TOKENS, FakeOpenAIServer
from tests.fakes.requests import openai_chat

SHIPPED = json.loads(shipped_registry_text())["models"]
HELLO = [{"role": "user", "content": "Hello"}]
SONNET_US = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_GLOBAL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_PLAIN = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CONVERSE_OK = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hi."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10},
    "metrics": {"latencyMs": 100},
}


@pytest.fixture
def vllm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(max_model_len=4096) as server:
        yield server


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, vllm: FakeOpenAIServer) -> None:
    llama_target = {"provider": "openai", "model_id": "meta-llama/Llama-3.1-8B-Instruct", "base_url": vllm.base_url}
    models = {
        "claude-sonnet-4-5": SHIPPED["claude-sonnet-4-5"],
        # An operator's own entry, without traits: the registry cannot tell the plain id is wrong.
        "claude-hand-typed": {
            "targets": [
                {"provider": "bedrock", "model_id": SONNET_US},
                {"provider": "bedrock", "model_id": SONNET_PLAIN},
            ]
        },
        "llama": {"targets": [llama_target], "traits": {"limits": {"context_window": 4096}}},
        "llama-without-traits": {"targets": [llama_target]},
    }
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))


def error_body(transport: HandlerTransport) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(transport.responses[-1]["body"])["error"]
    return body


def headers(transport: HandlerTransport) -> dict[str, str]:
    return {k.lower(): v[0] for k, v in transport.responses[-1]["multiValueHeaders"].items()}


# 1. Sampling parameters the model refuses ------------------------------------------------------------------------


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
def test_temperature_and_top_p_reach_claude_4_5_as_temperature_only(
    api_handler: Handler, bedrock: FakeBedrockTransport, log_output: LogOutput, stream: bool
) -> None:
    if stream:
        bedrock.reply_stream(
            stream_event("messageStart", {"role": "assistant"}),
            stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi."}}),
            stream_event("messageStop", {"stopReason": "end_turn"}),
            stream_event("metadata", {"usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10}}),
        )
    else:
        bedrock.reply_json(200, CONVERSE_OK)
    sdk, _ = handler_client(api_handler)
    answer = sdk.chat.completions.create(
        model="claude-sonnet-4-5", temperature=0.3, top_p=0.9, messages=HELLO, stream=stream
    )
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices) if stream else None
    assert (text if stream else answer.choices[0].message.content) == "Hi."  # type: ignore[union-attr]
    (sent,) = bedrock.sent
    assert sent.model_id == SONNET_US
    assert sent.json()["inferenceConfig"] == {"maxTokens": 4096, "temperature": 0.3}
    # Dropped, and said so: the log line names the parameter and why.
    (line,) = [r for r in log_output() if r["message"] == "sampling parameter not sent"]
    assert line["parameter"] == "top_p" and "temperature" in line["reason"]


# 2. Tool call ids from another provider ---------------------------------------------------------------------------

FOREIGN_ID = "call_" + "Zx8|Qw2-Lm" * 8  # 85 characters with "|", as another provider mints them


@pytest.mark.usefixtures("registry")
def test_tool_call_ids_from_another_provider_reach_bedrock_valid_and_paired(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_json(200, CONVERSE_OK)
    sdk, _ = handler_client(api_handler)
    sdk.chat.completions.create(
        model="claude-sonnet-4-5",
        tools=[{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
        messages=[
            {"role": "user", "content": "What time is it?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": FOREIGN_ID, "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": FOREIGN_ID, "content": "12:00"},
        ],
    )
    turns = bedrock.sent[0].json()["messages"]
    tool_use_id = turns[1]["content"][0]["toolUse"]["toolUseId"]
    assert turns[2]["content"][0]["toolResult"]["toolUseId"] == tool_use_id
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool_use_id)


# 3. Context overflow ----------------------------------------------------------------------------------------------

TOO_LONG = "The model returned the following errors: Input is too long for requested model."


@pytest.mark.usefixtures("registry")
def test_bedrock_context_overflow_is_context_length_exceeded(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_error(400, "ValidationException", TOO_LONG)
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as failed:
        sdk.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert failed.value.code == "context_length_exceeded"
    assert error_body(transport)["param"] == "messages"
    assert len(bedrock.sent) == 1, "an overflow is not retried, nor sent to the fallback target"


@pytest.mark.usefixtures("registry")
def test_bedrock_context_overflow_before_a_stream_is_a_400(api_handler: Handler, bedrock: FakeBedrockTransport) -> None:
    bedrock.reply_error(400, "ValidationException", TOO_LONG)
    sdk, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as failed:
        list(sdk.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO, stream=True))
    assert failed.value.code == "context_length_exceeded"


@pytest.mark.usefixtures("registry")
def test_bedrock_context_overflow_inside_a_stream_ends_it_with_that_code(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_exception("validationException", TOO_LONG),
    )
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO, stream=True))
    last = transport.responses[-1]["body"].strip().splitlines()[-1]
    assert json.loads(last.removeprefix("data: "))["error"]["code"] == "context_length_exceeded"


# 4. Upstream error codes kept -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_an_upstreams_context_length_exceeded_reaches_the_caller_with_its_code_type_and_param(
    api_handler: Handler, vllm: FakeOpenAIServer, stream: bool
) -> None:
    vllm.enqueue(
        status=400,
        json={
            "error": {
                "message": "This model's maximum context length is 4096 tokens. However, your messages resulted in "
                "5000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    )
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as failed:
        list(sdk.chat.completions.create(model="llama", messages=HELLO, stream=True)) if stream else (
            sdk.chat.completions.create(model="llama", messages=HELLO)
        )
    assert failed.value.code == "context_length_exceeded"
    body = error_body(transport)
    assert (body["type"], body["param"], body["code"]) == (
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )


# 5. A fallback target that can never work --------------------------------------------------------------------------

ON_DEMAND = (
    f"Invocation of model ID {SONNET_PLAIN} with on-demand throughput isn\u2019t supported. Retry your request with "
    "the ID or ARN of an inference profile that contains this model."
)


@pytest.mark.usefixtures("registry")
def test_a_throttled_first_target_and_an_on_demand_refusal_is_a_429_with_retry_after(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_error(
        429, "ThrottlingException", "Too many requests, please wait before trying again.", {"Retry-After": "5"}
    )
    bedrock.reply_error(400, "ValidationException", ON_DEMAND)
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.RateLimitError) as failed:
        sdk.chat.completions.create(model="claude-hand-typed", messages=HELLO)
    assert failed.value.code == "upstream_rate_limited"
    assert headers(transport)["retry-after"] == "5"
    assert [sent.model_id for sent in bedrock.sent] == [SONNET_US, SONNET_PLAIN]


@pytest.mark.usefixtures("registry")
def test_an_on_demand_refusal_alone_is_the_gateways_502_not_the_callers_400(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_error(400, "ValidationException", ON_DEMAND)
    bedrock.reply_error(400, "ValidationException", ON_DEMAND)
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(model="claude-hand-typed", messages=HELLO)
    assert failed.value.status_code == 502
    assert error_body(transport)["code"] == "upstream_inference_profile_required"


@pytest.mark.usefixtures("registry")
def test_the_shipped_sonnet_falls_back_to_an_invokable_target_when_the_first_is_throttled(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "5"})
    bedrock.reply_json(200, CONVERSE_OK)
    sdk, transport = handler_client(api_handler)
    answer = sdk.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert answer.choices[0].message.content == "Hi."
    assert [sent.model_id for sent in bedrock.sent] == [SONNET_US, SONNET_GLOBAL]
    assert headers(transport)["x-gateway-target"] == f"bedrock/{SONNET_GLOBAL}"


# 6. An output cap the model cannot take ----------------------------------------------------------------------------


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_a_one_word_prompt_gets_a_cap_that_fits_a_4096_token_window(
    api_handler: Handler, vllm: FakeOpenAIServer, stream: bool
) -> None:
    sdk, _ = handler_client(api_handler)
    answer = sdk.chat.completions.create(model="llama", messages=HELLO, stream=stream)
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices) if stream else None
    assert (text if stream else answer.choices[0].message.content) == "Hello"  # type: ignore[union-attr]
    estimate = estimate_prompt_tokens(openai_chat({"model": "llama", "messages": HELLO}))
    assert vllm.last_request.body["max_completion_tokens"] == 4096 - estimate - CONTEXT_HEADROOM_TOKENS


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_without_the_models_window_the_gateway_learns_it_from_the_refusal_of_its_own_cap(
    api_handler: Handler, vllm: FakeOpenAIServer, stream: bool
) -> None:
    sdk, _ = handler_client(api_handler)
    answer = sdk.chat.completions.create(model="llama-without-traits", messages=HELLO, stream=stream)
    text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices) if stream else None
    assert (text if stream else answer.choices[0].message.content) == "Hello"  # type: ignore[union-attr]
    prompt = len(HELLO[0]["content"].split()) + CHAT_TEMPLATE_TOKENS  # as the fake vLLM counts and states it
    sent = [request.body["max_completion_tokens"] for request in vllm.requests]
    assert sent == [4096, 4096 - prompt], "the plan's cap, refused; then once with a cap that fits the stated window"
    # The window is remembered for the target: the next request fits at once.
    sdk.chat.completions.create(model="llama-without-traits", messages=HELLO)
    estimate = estimate_prompt_tokens(openai_chat({"model": "llama", "messages": HELLO}))
    assert len(vllm.requests) == 3
    assert vllm.last_request.body["max_completion_tokens"] == 4096 - estimate - CONTEXT_HEADROOM_TOKENS


@pytest.mark.usefixtures("registry")
def test_a_limit_the_caller_named_is_never_changed_and_its_refusal_reaches_the_caller(
    api_handler: Handler, vllm: FakeOpenAIServer
) -> None:
    sdk, transport = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as failed:
        sdk.chat.completions.create(model="llama-without-traits", messages=HELLO, max_tokens=4096)
    assert [request.body["max_tokens"] for request in vllm.requests] == [4096], "not retried"
    assert failed.value.code == "context_length_exceeded"
    assert error_body(transport)["type"] == "BadRequestError", "vLLM's own type is kept"
