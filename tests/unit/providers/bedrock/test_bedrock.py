"""The Bedrock provider against real bedrock-runtime clients that never leave the process.

Non-streamed calls go through botocore's Stubber, which checks the exact Converse request; streamed calls (and
transport failures Stubber cannot produce) go through FakeBedrockTransport, see tests/fakes/bedrock_transport.py.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from urllib3 import HTTPSConnectionPool
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from llm_gateway.domain.answers import (
    Completion,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.conversation import ChatRequest, Message, ReasoningBlock, TextBlock, ToolCallBlock
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import BedrockTraits, ModelTraits, Target
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)
from llm_gateway.providers.bedrock.converse import (
    CONVERSATION_START_TEXT,
    EMPTY_OBJECT_SCHEMA,
    EMPTY_TOOL_RESULT_TEXT,
    tool_use_id,
)
from llm_gateway.providers.bedrock.provider import (
    CONNECT_TIMEOUT_SECONDS,
    BedrockProvider,
    default_client,
    read_timeout,
)
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event, stream_exception
from tests.fakes.requests import openai_chat

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
TARGET = Target(provider="bedrock", model_id=MODEL_ID)
USER_HI = [{"role": "user", "content": "hi"}]
PIXEL = b"\x89PNG\r\n\x1a\n fake image bytes"
PIXEL_B64 = base64.b64encode(PIXEL).decode()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a socket fails the test, so a gap in the stubbing cannot reach AWS."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("a Bedrock unit test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    # botocore turns the refusal into EndpointConnectionError, which a test expecting a 502 could swallow.
    assert attempts == [], "a Bedrock unit test tried to open a network connection"


@dataclass
class ClientFactorySpy:
    """Hands the provider one prepared client and records which (region, read timeout) it asked for."""

    client: BedrockRuntimeClient
    calls: list[tuple[str | None, float]] = field(default_factory=list)

    def __call__(self, region: str | None, read_timeout: float) -> BedrockRuntimeClient:
        self.calls.append((region, read_timeout))
        return self.client


@pytest.fixture
def client() -> BedrockRuntimeClient:
    # The production factory, so the retry and timeout configuration under test is the one deployed.
    return default_client("us-east-1", 30.0)


@pytest.fixture
def factory(client: BedrockRuntimeClient) -> ClientFactorySpy:
    return ClientFactorySpy(client)


@pytest.fixture
def provider(factory: ClientFactorySpy) -> BedrockProvider:
    return BedrockProvider(client_factory=factory)


@pytest.fixture
def stubber(client: BedrockRuntimeClient) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def transport(client: BedrockRuntimeClient) -> Iterator[FakeBedrockTransport]:
    fake = FakeBedrockTransport()
    fake.install(client)
    yield fake
    fake.assert_no_pending_replies()


def chat(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "claude", **fields})


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}}


def tool_result(call_id: str, *texts: str) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": call_id, "content": [text(value) for value in texts]}}


def openai_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_tool(name: str, **function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **function}}


def converse_response(
    *blocks: dict[str, Any], stop_reason: str = "end_turn", usage: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks)}},
        "stopReason": stop_reason,
        "usage": usage or {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 250},
    }


def expected_request(messages: list[dict[str, Any]], model_id: str = MODEL_ID, **rest: Any) -> dict[str, Any]:
    return {"modelId": model_id, "messages": messages, **rest}


WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = function_tool("get_weather", description="Current weather", parameters=WEATHER_SCHEMA)
WEATHER_SPEC = {
    "toolSpec": {"name": "get_weather", "description": "Current weather", "inputSchema": {"json": WEATHER_SCHEMA}}
}
TIME_TOOL = function_tool("get_time")
TIME_SPEC = {"toolSpec": {"name": "get_time", "inputSchema": {"json": EMPTY_OBJECT_SCHEMA}}}

# The history of a finished tool round: two calls, their two results and a follow-up question.
TOOL_ROUND_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            openai_call("call_1", "get_weather", '{"city": "Paris"}'),
            openai_call("call_2", "get_weather", '{"city": "Rome"}'),
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C, clear"}]},
    {"role": "user", "content": "And which is warmer?"},
]
TOOL_ROUND_TURNS = [
    user(text("Weather in Paris and Rome?")),
    assistant(
        text("Checking both."),
        tool_use("call_1", "get_weather", {"city": "Paris"}),
        tool_use("call_2", "get_weather", {"city": "Rome"}),
    ),
    user(tool_result("call_1", "18C, sunny"), tool_result("call_2", "24C, clear"), text("And which is warmer?")),
]


# --- request translation ------------------------------------------------------------------------------------

REQUEST_CASES = [
    pytest.param(
        {"messages": USER_HI},
        expected_request([user(text("hi"))]),
        id="plain-user-message",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "   "},
            ]
        },
        expected_request([user(text("hi"))], system=[text("Be brief."), text("Use metric units.")]),
        id="system-and-developer-go-to-system",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
                {"role": "assistant", "content": "four"},
                {"role": "assistant", "content": [{"type": "text", "text": "five"}]},
                {"role": "user", "content": "six"},
            ]
        },
        expected_request(
            [user(text("one"), text("two"), text("three")), assistant(text("four"), text("five")), user(text("six"))]
        ),
        id="consecutive-same-role-turns-merge",
    ),
    pytest.param(
        {"messages": [{"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "hi"}]},
        expected_request([user(text(CONVERSATION_START_TEXT)), assistant(text("How can I help?")), user(text("hi"))]),
        id="leading-assistant-turn-gets-a-user-turn-first",
    ),
    pytest.param(
        {"messages": [{"role": "system", "content": "Tell a joke."}]},
        expected_request([user(text(CONVERSATION_START_TEXT))], system=[text("Tell a joke.")]),
        id="system-only-conversation-gets-a-user-turn",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": " "}]},
                {"role": "user", "content": "again"},
            ]
        },
        expected_request([user(text("hi"), text("again"))]),
        id="blank-text-is-never-sent",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": "Say something rude."},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "I won't."}]},
                {"role": "assistant", "refusal": "Still no."},
                {"role": "user", "content": "ok"},
            ]
        },
        expected_request(
            [user(text("Say something rude.")), assistant(text("I won't."), text("Still no.")), user(text("ok"))]
        ),
        id="assistant-refusals-stay-in-the-history",
    ),
    pytest.param(
        {"messages": TOOL_ROUND_MESSAGES, "tools": [WEATHER_TOOL], "tool_choice": "auto"},
        expected_request(TOOL_ROUND_TURNS, toolConfig={"tools": [WEATHER_SPEC], "toolChoice": {"auto": {}}}),
        id="tool-round-trip-results-in-one-user-turn",
    ),
    pytest.param(
        {"messages": TOOL_ROUND_MESSAGES},
        expected_request(
            TOOL_ROUND_TURNS,
            toolConfig={"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": EMPTY_OBJECT_SCHEMA}}}]},
        ),
        id="tool-history-without-tools-still-sends-tool-config",
    ),
    pytest.param(
        {"messages": TOOL_ROUND_MESSAGES, "tools": [TIME_TOOL, WEATHER_TOOL], "tool_choice": "none"},
        expected_request(TOOL_ROUND_TURNS, toolConfig={"tools": [WEATHER_SPEC]}),
        id="tool-choice-none-with-tool-history-offers-only-the-used-tools",
    ),
    pytest.param(
        {"messages": USER_HI, "tools": [WEATHER_TOOL], "tool_choice": "none"},
        expected_request([user(text("hi"))]),
        id="tool-choice-none-offers-no-tools",
    ),
    pytest.param(
        {"messages": USER_HI, "tools": [WEATHER_TOOL, TIME_TOOL]},
        expected_request([user(text("hi"))], toolConfig={"tools": [WEATHER_SPEC, TIME_SPEC]}),
        id="tools-without-tool-choice-leave-the-choice-to-the-model",
    ),
    pytest.param(
        {"messages": USER_HI, "tools": [WEATHER_TOOL], "tool_choice": "required"},
        expected_request([user(text("hi"))], toolConfig={"tools": [WEATHER_SPEC], "toolChoice": {"any": {}}}),
        id="tool-choice-required-is-any",
    ),
    pytest.param(
        {
            "messages": USER_HI,
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        },
        expected_request(
            [user(text("hi"))],
            toolConfig={"tools": [WEATHER_SPEC, TIME_SPEC], "toolChoice": {"tool": {"name": "get_time"}}},
        ),
        id="named-tool-choice",
    ),
    pytest.param(
        {"messages": USER_HI, "tools": [function_tool("get_time", description=" ")]},
        expected_request([user(text("hi"))], toolConfig={"tools": [TIME_SPEC]}),
        id="blank-tool-description-is-left-out",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": "time?"},
                {"role": "assistant", "tool_calls": [openai_call("call_9", "get_time", "")]},
                {"role": "tool", "tool_call_id": "call_9", "content": ""},
            ],
            "tools": [TIME_TOOL],
        },
        expected_request(
            [
                user(text("time?")),
                assistant(tool_use("call_9", "get_time", {})),
                user(tool_result("call_9", EMPTY_TOOL_RESULT_TEXT)),
            ],
            toolConfig={"tools": [TIME_SPEC]},
        ),
        id="empty-arguments-and-empty-tool-result",
    ),
    pytest.param(
        {
            "messages": USER_HI,
            "max_tokens": 100,
            "max_completion_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["END", "", "STOP"],
        },
        expected_request(
            [user(text("hi"))],
            inferenceConfig={"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END", "STOP"]},
        ),
        id="inference-config-max-completion-tokens-wins",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": "Write a haiku."},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "Here it is:"}, {"type": "text", "text": "\n"}],
                },
            ]
        },
        expected_request([user(text("Write a haiku.")), assistant(text("Here it is:"))]),
        id="final-assistant-turn-ends-without-whitespace",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": "Continue:"}, {"role": "assistant", "content": "Once upon a time "}]},
        expected_request([user(text("Continue:")), assistant(text("Once upon a time"))]),
        id="final-assistant-prefill-trimmed",
    ),
    pytest.param(
        {"messages": [{"role": "assistant", "content": "Hi! "}, {"role": "user", "content": "hi "}]},
        expected_request([user(text(CONVERSATION_START_TEXT)), assistant(text("Hi! ")), user(text("hi "))]),
        id="only-a-final-assistant-turn-is-trimmed",
    ),
    pytest.param(
        {
            "messages": USER_HI,
            "tools": [function_tool("get_time", parameters={"properties": {"tz": {"type": "string"}}})],
        },
        expected_request(
            [user(text("hi"))],
            toolConfig={
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_time",
                            "inputSchema": {"json": {"type": "object", "properties": {"tz": {"type": "string"}}}},
                        }
                    }
                ]
            },
        ),
        id="tool-parameters-without-a-type-are-an-object",
    ),
    pytest.param(
        {
            "messages": USER_HI,
            "frequency_penalty": 0,
            "presence_penalty": 0.0,
            "logprobs": False,
            "response_format": {"type": "text"},
            "user": "end-user-42",
            "metadata": {"session": "s1"},
            "store": False,
            "parallel_tool_calls": True,
            "seed": None,
        },
        expected_request([user(text("hi"))]),
        id="openai-parameters-that-change-nothing-pass",
    ),
    pytest.param(
        {"messages": USER_HI, "max_tokens": 100, "stop": "END", "temperature": 0},
        expected_request(
            [user(text("hi"))], inferenceConfig={"maxTokens": 100, "temperature": 0, "stopSequences": ["END"]}
        ),
        id="inference-config-legacy-max-tokens-and-single-stop",
    ),
]


@pytest.mark.parametrize(("fields", "converse_params"), REQUEST_CASES)
def test_translates_the_request_to_converse(
    provider: BedrockProvider, stubber: Stubber, fields: dict[str, Any], converse_params: dict[str, Any]
) -> None:
    stubber.add_response("converse", converse_response(text("ok")), converse_params)
    completion = provider.complete(chat(**fields), TARGET, Deadline.after(10))
    assert completion.text == "ok"


FOREIGN_ID = "call_" + "aB3|xY9-" * 10  # 85 characters with "|": an id minted by another provider


def test_foreign_tool_call_ids_become_valid_tool_use_ids_that_still_pair_up(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    mapped = tool_use_id(FOREIGN_ID)
    messages = [
        {"role": "user", "content": "time?"},
        {"role": "assistant", "tool_calls": [openai_call(FOREIGN_ID, "get_time", "{}")]},
        {"role": "tool", "tool_call_id": FOREIGN_ID, "content": "noon"},
    ]
    stubber.add_response(
        "converse",
        converse_response(text("It is noon.")),
        expected_request(
            [user(text("time?")), assistant(tool_use(mapped, "get_time", {})), user(tool_result(mapped, "noon"))],
            toolConfig={"tools": [TIME_SPEC]},
        ),
    )
    provider.complete(chat(messages=messages, tools=[TIME_TOOL]), TARGET, Deadline.after(10))


@pytest.mark.parametrize(
    "call_id",
    [FOREIGN_ID, "toolu_01A|b", "call.with.dots:and:colons", "x" * 65, "ünïcode", "call 1"],
)
def test_a_replacement_tool_use_id_is_valid_stable_and_distinct(call_id: str) -> None:
    mapped = tool_use_id(call_id)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", mapped)
    assert mapped == tool_use_id(call_id), "deterministic, so toolUse and toolResult match"
    assert mapped != tool_use_id(call_id + "x")


@pytest.mark.parametrize("call_id", ["call_1", "tooluse_AbC-123_x", "x" * 64])
def test_valid_tool_use_ids_pass_unchanged(call_id: str) -> None:
    assert tool_use_id(call_id) == call_id


@pytest.mark.parametrize(
    ("media_type", "image_format"),
    [
        pytest.param("image/png", "png", id="png"),
        pytest.param("image/jpeg", "jpeg", id="jpeg"),
        pytest.param("image/jpg", "jpeg", id="jpg-alias"),
        pytest.param("image/gif", "gif", id="gif"),
        pytest.param("image/webp", "webp", id="webp"),
        pytest.param("IMAGE/PNG", "png", id="media-type-is-case-insensitive"),
    ],
)
def test_data_url_images_are_sent_as_bytes(
    provider: BedrockProvider, stubber: Stubber, media_type: str, image_format: str
) -> None:
    # Line-wrapped base64, as some encoders produce it, decodes to the same bytes.
    wrapped = "\n".join(PIXEL_B64[i : i + 8] for i in range(0, len(PIXEL_B64), 8))
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{wrapped}", "detail": "low"}},
    ]
    image = {"image": {"format": image_format, "source": {"bytes": PIXEL}}}
    stubber.add_response(
        "converse", converse_response(text("a cat")), expected_request([user(text("What is this?"), image)])
    )
    completion = provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))
    assert completion.text == "a cat"


def image_message(url: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Describe images."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}],
        },
    ]


REJECTED_CASES = [
    pytest.param(
        image_message("https://example.com/cat.png"), "messages[1].content[1]", "data URL", id="https-image-url"
    ),
    pytest.param(
        image_message("http://example.com/cat.png"), "messages[1].content[1]", "data URL", id="http-image-url"
    ),
    pytest.param(image_message("s3://bucket/cat.png"), "messages[1].content[1]", "data URL", id="other-scheme"),
    pytest.param(image_message(f"data:image/bmp;base64,{PIXEL_B64}"), "messages[1].content[1]", "png, jpeg", id="bmp"),
    pytest.param(image_message("data:image/png,rawbytes"), "messages[1].content[1]", "base64", id="not-base64"),
    pytest.param(image_message("data:image/png;base64"), "messages[1].content[1]", "base64", id="no-data"),
    pytest.param(
        image_message("data:image/png;base64,not*base64!"), "messages[1].content[1]", "base64", id="bad-base64"
    ),
    pytest.param(image_message("data:image/png;base64,"), "messages[1].content[1]", "base64", id="empty-image"),
    pytest.param(
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [openai_call("c1", "get_time", "{}"), openai_call("c2", "get_time", "[1]")],
            },
        ],
        "messages[1].tool_calls[1].function.arguments",
        "JSON object",
        id="tool-arguments-not-an-object",
    ),
    pytest.param(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [openai_call("c1", "get_time", "{oops")]},
        ],
        "messages[1].tool_calls[0].function.arguments",
        "JSON object",
        id="tool-arguments-not-json",
    ),
]


@pytest.mark.parametrize(("messages", "param", "hint"), REJECTED_CASES)
def test_requests_bedrock_cannot_take_are_refused_before_any_call(
    provider: BedrockProvider,
    factory: ClientFactorySpy,
    stubber: Stubber,
    messages: list[dict[str, Any]],
    param: str,
    hint: str,
) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(messages=messages), TARGET, Deadline.after(10))
    assert (caught.value.status, caught.value.param) == (400, param)
    assert hint in caught.value.message
    assert factory.calls == []  # no client was even built, let alone called


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"frequency_penalty": 0.5}, "frequency_penalty", id="frequency-penalty"),
        pytest.param({"presence_penalty": -1}, "presence_penalty", id="presence-penalty"),
        pytest.param({"logit_bias": {"50256": -100}}, "logit_bias", id="logit-bias"),
        pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
        pytest.param({"seed": 7}, "seed", id="seed"),
        pytest.param({"response_format": {"type": "json_object"}}, "response_format", id="json-mode"),
        pytest.param({"reasoning_effort": "low"}, "reasoning_effort", id="reasoning-effort"),
        pytest.param({"top_k": 40}, "top_k", id="vendor-extra"),
        pytest.param({"parallel_tool_calls": False, "tools": [TIME_TOOL]}, "parallel_tool_calls", id="parallel-off"),
        pytest.param(
            {"tools": [TIME_TOOL, function_tool("list_all", parameters={"type": "array"})]},
            "tools[1].function.parameters",
            id="tool-schema-not-an-object",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "hi", "audio_hint": "speak"}]},
            "messages[0].audio_hint",
            id="unknown-message-field",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "annotations": [1]}]}]},
            "messages[0].content[0].annotations",
            id="unknown-part-field",
        ),
        pytest.param({"tools": [{**TIME_TOOL, "defer": True}]}, "tools[0].defer", id="unknown-tool-field"),
    ],
)
def test_openai_parameters_converse_cannot_express_are_a_400_naming_them(
    provider: BedrockProvider, factory: ClientFactorySpy, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(**{"messages": USER_HI, **fields}), TARGET, Deadline.after(10))
    assert (caught.value.status, caught.value.param) == (400, param)
    assert factory.calls == []


def test_cache_control_marks_become_cache_points_and_neutral_fields_pass(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    ephemeral = {"type": "ephemeral"}
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": ephemeral}]},
        {
            "role": "user",
            "name": "alice",
            "content": [{"type": "text", "text": "hi", "cache_control": ephemeral, "annotations": None}],
        },
    ]
    tool = {**TIME_TOOL, "cache_control": ephemeral, "function": {**TIME_TOOL["function"], "strict": True}}
    cache_point = {"cachePoint": {"type": "default"}}
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [user(text("hi"), cache_point)],
            system=[{"text": "Be brief."}, cache_point],
            toolConfig={"tools": [TIME_SPEC, cache_point]},
        ),
    )
    assert provider.complete(chat(messages=messages, tools=[tool]), TARGET, Deadline.after(10)).text == "ok"


def png(width: int, height: int, padding: int = 0) -> bytes:
    """A PNG header (signature and IHDR) of the given size, padded to reach a byte size."""
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * (4 + padding)


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def image_part(image: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url(image)}}


@pytest.mark.parametrize(
    ("images", "param", "code"),
    [
        pytest.param([png(9000, 100)], "messages[0].content[1]", "image_too_large", id="too-wide"),
        pytest.param([png(100, 8001)], "messages[0].content[1]", "image_too_large", id="too-tall"),
        pytest.param([png(10, 10, padding=3_932_161)], "messages[0].content[1]", "image_too_large", id="over-3.75-mb"),
        pytest.param([png(10, 10)] * 21, "messages", "too_many_images", id="more-than-20"),
    ],
)
def test_images_beyond_converses_limits_are_refused_before_any_call(
    provider: BedrockProvider, factory: ClientFactorySpy, images: list[bytes], param: str, code: str
) -> None:
    content = [{"type": "text", "text": "What are these?"}, *(image_part(image) for image in images)]
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert factory.calls == []


def test_images_at_converses_limits_are_sent(provider: BedrockProvider, stubber: Stubber) -> None:
    images = [png(8000, 8000), *[png(1, 1)] * 19]
    content = [{"type": "text", "text": "What are these?"}, *(image_part(image) for image in images)]
    blocks = [{"image": {"format": "png", "source": {"bytes": image}}} for image in images]
    stubber.add_response(
        "converse", converse_response(text("pixels")), expected_request([user(text("What are these?"), *blocks)])
    )
    provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))


def test_remote_image_url_message_tells_the_caller_what_to_send(provider: BedrockProvider) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(messages=image_message("https://example.com/cat.png")), TARGET, Deadline.after(10))
    assert caught.value.code == "image_url_not_supported"
    assert "does not fetch" in caught.value.message
    assert "data:image/png;base64," in caught.value.message


# --- response translation -----------------------------------------------------------------------------------

RESPONSE_CASES = [
    pytest.param(
        converse_response(
            {"reasoningContent": {"reasoningText": {"text": "The user greets me.", "signature": "sig"}}},
            text("Hello"),
            text(" there"),
        ),
        Completion(
            (ReasoningBlock("The user greets me.", signature="sig"), TextBlock("Hello"), TextBlock(" there")),
            "end_turn",
            Usage(12, 3),
        ),
        id="reasoning-with-its-signature-then-text-blocks",
    ),
    pytest.param(
        converse_response({"reasoningContent": {"redactedContent": b"\x00opaque"}}, text("ok")),
        Completion(
            (ReasoningBlock(redacted=base64.b64encode(b"\x00opaque").decode()), TextBlock("ok")),
            "end_turn",
            Usage(12, 3),
        ),
        id="redacted-reasoning-kept-as-base64",
    ),
    pytest.param(
        converse_response(
            tool_use("tooluse_1", "get_weather", {"city": "Paris"}),
            tool_use("tooluse_2", "get_time", {}),
            stop_reason="tool_use",
        ),
        Completion(
            (
                ToolCallBlock("tooluse_1", "get_weather", '{"city": "Paris"}'),
                ToolCallBlock("tooluse_2", "get_time", "{}"),
            ),
            "tool_use",
            Usage(12, 3),
        ),
        id="tool-calls-only-have-no-text",
    ),
    pytest.param(
        converse_response(
            text("Let me check."), tool_use("tooluse_1", "get_time", {"tz": "UTC"}), stop_reason="tool_use"
        ),
        Completion(
            (TextBlock("Let me check."), ToolCallBlock("tooluse_1", "get_time", '{"tz": "UTC"}')),
            "tool_use",
            Usage(12, 3),
        ),
        id="text-and-tool-call",
    ),
    pytest.param(converse_response(), Completion((), "end_turn", Usage(12, 3)), id="no-content-at-all"),
    pytest.param(
        converse_response(
            text("cached"),
            usage={
                "inputTokens": 20,
                "outputTokens": 7,
                "totalTokens": 1327,
                "cacheReadInputTokens": 1000,
                "cacheWriteInputTokens": 300,
            },
        ),
        Completion((TextBlock("cached"),), "end_turn", Usage(1320, 7, cached_tokens=1000, cache_write_tokens=300)),
        id="usage-counts-cache-reads-and-writes-as-prompt",
    ),
    pytest.param(
        converse_response(
            text("x"), usage={"inputTokens": 5, "outputTokens": 1, "totalTokens": 6, "cacheReadInputTokens": 40}
        ),
        Completion((TextBlock("x"),), "end_turn", Usage(45, 1, cached_tokens=40)),
        id="usage-with-cache-read-only",
    ),
]


@pytest.mark.parametrize(("response", "completion"), RESPONSE_CASES)
def test_translates_the_response(
    provider: BedrockProvider, stubber: Stubber, response: dict[str, Any], completion: Completion
) -> None:
    stubber.add_response("converse", response, expected_request([user(text("hi"))]))
    assert provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10)) == completion


# Stop reasons are walked, streamed and not, in test_error_table.py.


def test_a_response_without_usage_cannot_be_metered(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    # Stubber would refuse this response as invalid, so it comes over the fake HTTP transport instead.
    transport.reply_json(
        200, {"output": {"message": {"role": "assistant", "content": [text("hi")]}}, "stopReason": "end_turn"}
    )
    with pytest.raises(ProviderError, match="metered") as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.status == 502


# --- errors -------------------------------------------------------------------------------------------------

ACCESS_DENIED_MESSAGE = (
    "User: arn:aws:sts::123456789012:assumed-role/gateway-ApiFunctionRole/gw is not authorized to perform: "
    "bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/" + MODEL_ID
)


# Every mapped Bedrock exception is walked, streamed and not, in test_error_table.py.


def test_validation_errors_carry_bedrocks_message(provider: BedrockProvider, stubber: Stubber) -> None:
    stubber.add_client_error(
        "converse", service_error_code="ValidationException", service_message="temperature must be <= 1"
    )
    with pytest.raises(ProviderRequestError, match="temperature must be <= 1"):
        provider.complete(chat(messages=USER_HI, temperature=1.5), TARGET, Deadline.after(10))


def test_access_denied_blames_the_gateway_without_leaking_arns_or_accounts(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="AccessDeniedException",
        service_message=ACCESS_DENIED_MESSAGE,
        http_status_code=403,
    )
    with pytest.raises(ProviderError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    message = caught.value.message
    assert "IAM role" in message and "not an error in the request" in message
    assert MODEL_ID in message and "bedrock:InvokeModel" in message
    assert "123456789012" not in message
    assert "assumed-role" not in message and "arn:" not in message


def test_throttling_passes_on_retry_after(provider: BedrockProvider, transport: FakeBedrockTransport) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "3"})
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retry_after == 3.0
    assert caught.value.headers == {"Retry-After": "3"}


def test_throttling_without_retry_after_leaves_backoff_to_the_router(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests")
    with pytest.raises(ProviderRateLimitError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retry_after is None


def test_botocore_does_not_retry_behind_the_routers_back(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(503, "ServiceUnavailableException", "busy")
    with pytest.raises(ProviderError) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert caught.value.retryable
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    ("failure", "error_class", "status"),
    [
        pytest.param(ReadTimeoutError(endpoint_url="https://bedrock"), ProviderTimeoutError, 504, id="read-timeout"),
        pytest.param(
            ConnectTimeoutError(endpoint_url="https://bedrock"), ProviderTimeoutError, 504, id="connect-timeout"
        ),
        pytest.param(EndpointConnectionError(endpoint_url="https://bedrock"), ProviderError, 502, id="no-connection"),
    ],
)
def test_maps_transport_failures(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    failure: Exception,
    error_class: type[GatewayError],
    status: int,
) -> None:
    transport.fail_with(failure)
    with pytest.raises(error_class) as caught:
        provider.complete(chat(messages=USER_HI), TARGET, Deadline.after(10))
    assert type(caught.value) is error_class
    assert caught.value.status == status and caught.value.retryable
    assert len(transport.sent) == 1


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


def collect(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], GatewayError | None]:
    """The events produced before the stream ended, and the error it ended with, if any."""
    produced: list[StreamEvent] = []
    try:
        for event in events:
            produced.append(event)
    except GatewayError as error:
        return produced, error
    return produced, None


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


@pytest.mark.parametrize(
    ("exception_type", "error_class", "retryable"),
    [
        pytest.param("modelStreamErrorException", ProviderError, True, id="model-stream-error"),
        pytest.param("throttlingException", ProviderRateLimitError, True, id="throttling"),
        pytest.param("internalServerException", ProviderError, True, id="internal-server"),
        pytest.param("serviceUnavailableException", ProviderError, True, id="service-unavailable"),
        pytest.param("validationException", ProviderRequestError, False, id="validation"),
    ],
)
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


@dataclass(frozen=True)
class SwitchableDeadline(Deadline):
    """A deadline the test expires at a chosen moment of the stream, instead of sleeping until it does."""

    switch: dict[str, bool] = field(default_factory=lambda: {"expired": False})

    def remaining(self) -> float:
        return 0.0 if self.switch["expired"] else 10.0


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


# --- reasoning through Converse (OpenAI's reasoning_effort on Anthropic's models) ----------------------------

CLAUDE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True))
ADAPTIVE_CLAUDE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True, adaptive_thinking=True))


@pytest.mark.parametrize(
    ("effort", "max_tokens", "thinking"),
    [
        pytest.param("low", 8000, {"type": "enabled", "budget_tokens": 1024}, id="low"),
        pytest.param("medium", 8000, {"type": "enabled", "budget_tokens": 2048}, id="medium"),
        pytest.param("high", 8000, {"type": "enabled", "budget_tokens": 4096}, id="high"),
        pytest.param("high", 3000, {"type": "enabled", "budget_tokens": 2999}, id="budget-below-the-output-cap"),
    ],
)
def test_reasoning_effort_becomes_claudes_thinking_budget(
    provider: BedrockProvider, stubber: Stubber, effort: str, max_tokens: int, thinking: dict[str, Any]
) -> None:
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [user(text("hi"))],
            inferenceConfig={"maxTokens": max_tokens},
            additionalModelRequestFields={"thinking": thinking},
        ),
    )
    request = chat(messages=USER_HI, reasoning_effort=effort, max_tokens=max_tokens)
    assert provider.complete(request, TARGET, Deadline.after(10), CLAUDE).text == "ok"


def test_reasoning_effort_on_a_model_with_adaptive_thinking_is_its_effort_level(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [user(text("hi"))],
            inferenceConfig={"maxTokens": 8000},
            additionalModelRequestFields={"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
        ),
    )
    request = chat(messages=USER_HI, reasoning_effort="minimal", max_tokens=8000)
    assert provider.complete(request, TARGET, Deadline.after(10), ADAPTIVE_CLAUDE).text == "ok"


def test_an_output_cap_too_small_for_a_thinking_budget_is_a_400(provider: BedrockProvider) -> None:
    with pytest.raises(ProviderRequestError) as refused:
        provider.complete(
            chat(messages=USER_HI, reasoning_effort="low", max_tokens=800), TARGET, Deadline.after(10), CLAUDE
        )
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        400,
        "output_cap_too_small_for_reasoning",
        "max_tokens",
    )


def test_signed_reasoning_goes_back_and_unsigned_reasoning_does_not(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    signed = ChatRequest(
        model="claude",
        messages=(
            Message("user", (TextBlock("Weather?"),)),
            Message(
                "assistant",
                (ReasoningBlock("Think.", signature="sig"), ReasoningBlock("Unsigned."), TextBlock("Sunny.")),
            ),
            Message("user", (TextBlock("Sure?"),)),
        ),
    )
    stubber.add_response(
        "converse",
        converse_response(text("ok")),
        expected_request(
            [
                user(text("Weather?")),
                assistant(
                    {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "sig"}}}, text("Sunny.")
                ),
                user(text("Sure?")),
            ]
        ),
    )
    assert provider.complete(signed, TARGET, Deadline.after(10), CLAUDE).text == "ok"
