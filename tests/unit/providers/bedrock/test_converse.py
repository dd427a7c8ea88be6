"""Converse requests: OpenAI chat bodies translated for Converse, tool ids made valid, what Converse cannot
take refused before any call, cache points."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import ProviderRequestError
from llm_gateway.providers.bedrock.converse import (
    CONVERSATION_START_TEXT,
    EMPTY_OBJECT_SCHEMA,
    EMPTY_TOOL_RESULT_TEXT,
    tool_use_id,
)
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.unit.providers.bedrock.conftest import ClientFactorySpy
from tests.unit.providers.bedrock.converse_bodies import (
    PIXEL_B64,
    TARGET,
    TIME_SPEC,
    TIME_TOOL,
    TOOL_ROUND_MESSAGES,
    TOOL_ROUND_TURNS,
    USER_HI,
    WEATHER_SPEC,
    WEATHER_TOOL,
    assistant,
    chat,
    converse_response,
    expected_request,
    function_tool,
    image_message,
    openai_call,
    text,
    tool_result,
    tool_use,
    user,
)

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
