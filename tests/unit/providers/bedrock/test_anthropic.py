"""The body InvokeModel gets for a caller's own Anthropic Messages body: the gateway's output cap and thinking
budget, betas and fields Bedrock refuses, cache_control, system turns, byte-identical signed blocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelTraits
from llm_gateway.errors import ProviderRequestError
from llm_gateway.providers.bedrock.anthropic import encode_body, invoke_model_body
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.conftest import LogOutput
from tests.fakes.bedrock_transport import FakeBedrockTransport
from tests.unit.providers.bedrock.anthropic_bodies import (
    ADAPTIVE,
    SONNET,
    SONNET_PROFILE,
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

# --- the body Bedrock gets ----------------------------------------------------------------------------------


def test_the_callers_body_goes_whole_without_model_and_stream(log_output: LogOutput) -> None:
    body = messages_body(
        system=[text("Be brief.")],
        stream=True,
        stop_sequences=["END"],
        temperature=0.3,
        tool_choice={"type": "auto"},
        # A field Bedrock may learn later, an explicit null included: Bedrock takes it or refuses it itself.
        some_future_field={"enabled": None},
    )
    sent = invoke_model_body(anthropic_request(body), SONNET)
    assert sent == bedrock_body(
        system=[text("Be brief.")],
        stop_sequences=["END"],
        temperature=0.3,
        tool_choice={"type": "auto"},
        some_future_field={"enabled": None},
    )
    assert list(sent)[-1] == "anthropic_version"
    assert body["model"] == "claude-sonnet-4-5" and body["stream"] is True, "the caller's body is not changed"
    assert not [line for line in log_output() if line["message"] == "fields Bedrock refuses not sent"]


def test_max_tokens_is_the_gateways_output_cap() -> None:
    body = messages_body(max_tokens=64000)
    assert invoke_model_body(anthropic_request(body, max_output_tokens=4096), SONNET)["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("budget", "cap", "sent_budget"),
    [
        pytest.param(2048, 4096, 2048, id="within-the-cap"),
        pytest.param(8000, 4096, 4095, id="cut-below-the-cap"),
        pytest.param(4096, 4096, 4095, id="equal-to-the-cap"),
        pytest.param(1024, 1025, 1024, id="minimum-budget-fits"),
    ],
)
def test_a_thinking_budget_fits_below_the_output_cap(budget: int, cap: int, sent_budget: int) -> None:
    body = messages_body(max_tokens=64000, thinking={"type": "enabled", "budget_tokens": budget})
    sent = invoke_model_body(anthropic_request(body, max_output_tokens=cap), SONNET)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": sent_budget}
    assert sent["max_tokens"] == cap


def test_an_output_cap_without_room_for_thinking_is_a_400_naming_max_tokens() -> None:
    body = messages_body(max_tokens=64000, thinking={"type": "enabled", "budget_tokens": 2000})
    with pytest.raises(ProviderRequestError) as caught:
        invoke_model_body(anthropic_request(body, max_output_tokens=1024), SONNET)
    assert caught.value.status == 400
    assert (caught.value.code, caught.value.param) == ("output_cap_too_small_for_reasoning", "max_tokens")
    assert "1024" in caught.value.message and "max_tokens" in caught.value.message


def test_a_budget_below_anthropics_minimum_is_left_for_bedrock_to_refuse() -> None:
    body = messages_body(thinking={"type": "enabled", "budget_tokens": 500})
    assert invoke_model_body(anthropic_request(body), SONNET)["thinking"] == {"type": "enabled", "budget_tokens": 500}


def test_sampling_parameters_the_models_traits_removed_are_not_sent() -> None:
    body = messages_body(temperature=0.7, top_p=0.9, top_k=40)
    # Claude 4.5 refuses temperature and top_p together: fitting kept temperature.
    sent = invoke_model_body(anthropic_request(body, top_p=None), SONNET)
    assert sent == bedrock_body(temperature=0.7, top_k=40)
    sent = invoke_model_body(anthropic_request(body, temperature=None, top_p=None, top_k=None), SONNET)
    assert sent == bedrock_body()


@pytest.mark.parametrize(
    ("header", "in_body", "sent", "dropped"),
    [
        pytest.param(
            ("claude-code-20250219", "interleaved-thinking-2025-05-14", "context-1m-2025-08-07"),
            None,
            ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"],
            ["claude-code-20250219"],
            id="claude-code-header-values",
        ),
        pytest.param(
            ("claude-code-20250219,fine-grained-tool-streaming-2025-05-14 , token-efficient-tools-2025-02-19",),
            None,
            ["token-efficient-tools-2025-02-19"],
            ["claude-code-20250219", "fine-grained-tool-streaming-2025-05-14"],
            id="one-comma-separated-value",
        ),
        pytest.param(("advanced-tool-use-2025-11-20",), None, ["tool-search-tool-2025-10-19"], [], id="bedrocks-name"),
        pytest.param(
            ("interleaved-thinking-2025-05-14",),
            ["interleaved-thinking-2025-05-14", "files-api-2025-04-14", "output-128k-2025-02-19"],
            ["interleaved-thinking-2025-05-14", "output-128k-2025-02-19"],
            ["files-api-2025-04-14"],
            id="body-and-header-each-once",
        ),
        pytest.param((), "effort-2025-11-24", ["effort-2025-11-24"], [], id="body-string"),
        pytest.param(
            ("prompt-caching-scope-2026-01-05", "mid-conversation-system-2026-04-07"),
            ["thinking-token-count-2026-05-13"],
            None,
            [
                "prompt-caching-scope-2026-01-05",
                "mid-conversation-system-2026-04-07",
                "thinking-token-count-2026-05-13",
            ],
            id="none-accepted-none-sent",
        ),
    ],
)
def test_betas_bedrock_accepts_go_in_the_body_and_the_others_are_logged(
    header: tuple[str, ...], in_body: Any, sent: list[str] | None, dropped: list[str], log_output: LogOutput
) -> None:
    body = messages_body() if in_body is None else messages_body(anthropic_beta=in_body)
    assert invoke_model_body(anthropic_request(body, betas=header), SONNET).get("anthropic_beta") == sent
    lines = [line for line in log_output() if line["message"] == "anthropic betas Bedrock refuses not sent"]
    assert [beta for line in lines for beta in line["betas"]] == dropped


def test_fields_bedrock_refuses_are_removed_and_named_in_the_log(log_output: LogOutput) -> None:
    refused: dict[str, Any] = {
        "metadata": {"user_id": "user_abc"},
        "service_tier": "auto",
        "container": "container_01",
        "inference_geo": "us",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "example"}],
        "speed": "fast",
        "diagnostics": {"enabled": True},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
    }
    sent = invoke_model_body(anthropic_request(messages_body(**refused)), SONNET)
    assert sent == bedrock_body()
    (line,) = [line for line in log_output() if line["message"] == "fields Bedrock refuses not sent"]
    assert sorted(line["fields"]) == sorted(refused)
    assert "user_abc" not in json.dumps(log_output()), "values are not logged"


@pytest.mark.parametrize(
    ("betas", "traits", "kept"),
    [
        pytest.param(("context-management-2025-06-27",), SONNET, {"context_management"}, id="context-management-beta"),
        pytest.param(("effort-2025-11-24",), SONNET, {"output_config"}, id="effort-beta"),
        pytest.param((), ADAPTIVE, {"output_config"}, id="model-takes-output-config"),
    ],
)
def test_fields_a_beta_or_the_model_enables_are_kept(
    betas: tuple[str, ...], traits: ModelTraits, kept: set[str]
) -> None:
    gated: dict[str, Any] = {
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "low"},
    }
    sent = invoke_model_body(anthropic_request(messages_body(**gated), betas=betas), traits)
    assert {name for name in gated if name in sent} == kept
    assert all(sent[name] == gated[name] for name in kept)


def test_cache_control_keeps_type_and_ttl_and_loses_scope_everywhere(log_output: LogOutput) -> None:
    def scoped() -> dict[str, Any]:
        # A body parsed from JSON shares no objects: each cache point is its own.
        return {"type": "ephemeral", "ttl": "1h", "scope": "global"}

    kept = {"type": "ephemeral", "ttl": "1h"}
    # A tool's input is the model's data, not a cache point: it passes as it is, whatever its keys.
    tool_input = {"cache_control": {"scope": "mine"}}
    messages = [
        {"role": "user", "content": [text("Read this.", cache_control=scoped())]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read", "input": tool_input}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [text("file text", cache_control=scoped())],
                    "cache_control": scoped(),
                }
            ],
        },
    ]
    tools = [
        {"name": "read", "input_schema": {"type": "object"}, "cache_control": scoped(), "defer_loading": True},
        {"name": "grep", "input_schema": {"type": "object"}, "custom": {"eager_input_streaming": True}},
    ]
    body = messages_body(
        messages, system=[text("System.", cache_control=scoped())], tools=tools, cache_control=scoped()
    )
    sent = invoke_model_body(anthropic_request(body), SONNET)
    assert sent == bedrock_body(
        [
            {"role": "user", "content": [text("Read this.", cache_control=kept)]},
            messages[1],
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [text("file text", cache_control=kept)],
                        "cache_control": kept,
                    }
                ],
            },
        ],
        system=[text("System.", cache_control=kept)],
        tools=[
            {"name": "read", "input_schema": {"type": "object"}, "cache_control": kept},
            {"name": "grep", "input_schema": {"type": "object"}},
        ],
        cache_control=kept,
    )
    assert sent["messages"][1]["content"][0]["input"] == {"cache_control": {"scope": "mine"}}
    (line,) = [line for line in log_output() if line["message"] == "fields Bedrock refuses not sent"]
    assert line["fields"] == [
        "tools[0].defer_loading",
        "tools[0].cache_control.scope",
        "tools[1].custom",
        "cache_control.scope",
        "system[0].cache_control.scope",
        "messages[0].content[0].cache_control.scope",
        "messages[2].content[0].cache_control.scope",
        "messages[2].content[0].content[0].cache_control.scope",
    ]


@pytest.mark.parametrize(
    ("effort", "max_tokens", "thinking"),
    [
        pytest.param(None, 10000, {"type": "enabled", "budget_tokens": 8000}, id="no-effort-is-high"),
        pytest.param("low", 10000, {"type": "enabled", "budget_tokens": 2000}, id="low"),
        pytest.param("medium", 10000, {"type": "enabled", "budget_tokens": 5000}, id="medium"),
        pytest.param("high", 10000, {"type": "enabled", "budget_tokens": 8000}, id="high"),
        pytest.param("max", 10000, {"type": "enabled", "budget_tokens": 9500}, id="max"),
        pytest.param("low", 5120, {"type": "enabled", "budget_tokens": 1024}, id="low-just-enough"),
        pytest.param("low", 5115, {"type": "disabled"}, id="too-small-a-budget-is-no-thinking"),
        pytest.param(None, 1000, {"type": "disabled"}, id="small-cap"),
    ],
)
def test_adaptive_thinking_becomes_a_budget_on_a_model_without_it(
    effort: str | None, max_tokens: int, thinking: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {"thinking": {"type": "adaptive"}}
    if effort is not None:
        fields["output_config"] = {"effort": effort}
    sent = invoke_model_body(anthropic_request(messages_body(max_tokens=max_tokens, **fields)), SONNET)
    assert sent["thinking"] == thinking
    # The model takes no output_config without the effort beta: the effort is spent on the budget instead.
    assert "output_config" not in sent


@pytest.mark.parametrize(
    "thinking",
    [{"type": "adaptive"}, {"type": "enabled", "budget_tokens": 2048}, {"type": "disabled"}],
    ids=["adaptive", "enabled", "disabled"],
)
def test_a_model_with_adaptive_thinking_gets_the_callers_thinking(thinking: dict[str, Any]) -> None:
    body = messages_body(max_tokens=10000, thinking=thinking, output_config={"effort": "medium"})
    sent = invoke_model_body(anthropic_request(body), ADAPTIVE)
    assert (sent["thinking"], sent["output_config"]) == (thinking, {"effort": "medium"})


def reminder(value: str, **fields: Any) -> dict[str, Any]:
    return text(f"<system-reminder>\n{value}\n</system-reminder>", **fields)


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}


@pytest.mark.parametrize(
    ("messages", "sent"),
    [
        pytest.param(
            [
                {"role": "user", "content": "A"},
                {"role": "assistant", "content": "B"},
                {"role": "system", "content": "S"},
                {"role": "user", "content": "C"},
            ],
            [
                {"role": "user", "content": "A"},
                {"role": "assistant", "content": "B"},
                {"role": "user", "content": [reminder("S"), text("C")]},
            ],
            id="before-the-next-user-turn",
        ),
        pytest.param(
            [{"role": "user", "content": [text("A")]}, {"role": "system", "content": "S"}],
            [{"role": "user", "content": [text("A"), reminder("S")]}],
            id="ending-the-conversation",
        ),
        pytest.param(
            [
                {"role": "user", "content": "A"},
                {"role": "system", "content": "S"},
                {"role": "assistant", "content": "B"},
            ],
            [{"role": "user", "content": [text("A"), reminder("S")]}, {"role": "assistant", "content": "B"}],
            id="before-an-assistant-turn",
        ),
        pytest.param(
            [
                {"role": "system", "content": "S"},
                {"role": "assistant", "content": "B"},
                {"role": "user", "content": "C"},
            ],
            [
                {"role": "user", "content": [reminder("S")]},
                {"role": "assistant", "content": "B"},
                {"role": "user", "content": "C"},
            ],
            id="no-user-turn-to-join",
        ),
        pytest.param(
            [
                {"role": "user", "content": "A"},
                {"role": "assistant", "content": [TOOL_USE]},
                {"role": "system", "content": "S"},
                {"role": "user", "content": [TOOL_RESULT, text("go on")]},
            ],
            [
                {"role": "user", "content": "A"},
                {"role": "assistant", "content": [TOOL_USE]},
                {"role": "user", "content": [TOOL_RESULT, reminder("S"), text("go on")]},
            ],
            id="after-the-tool-results",
        ),
        pytest.param(
            [
                {"role": "user", "content": "A"},
                {"role": "system", "content": [text("S1"), text("S2", cache_control={"type": "ephemeral"})]},
                {"role": "system", "content": "S3"},
                {"role": "user", "content": "C"},
            ],
            [
                {"role": "user", "content": "A"},
                {
                    "role": "user",
                    "content": [
                        reminder("S1"),
                        reminder("S2", cache_control={"type": "ephemeral"}),
                        reminder("S3"),
                        text("C"),
                    ],
                },
            ],
            id="text-blocks-and-several-system-turns",
        ),
    ],
)
def test_system_turns_inside_messages_become_system_reminders_in_user_turns(
    messages: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> None:
    assert invoke_model_body(anthropic_request(messages_body(messages)), SONNET)["messages"] == sent


def test_the_request_goes_to_invoke_model_with_the_profile_as_model_id(
    provider: BedrockProvider, stubber: Stubber
) -> None:
    body = messages_body(metadata={"user_id": "u"}, stream=False)
    stubber.add_response(
        "invoke_model", invoke_response(anthropic_message(text("ok"))), expected_invoke(bedrock_body())
    )
    completion = provider.complete(
        anthropic_request(body, betas=("claude-code-20250219",)), TARGET, Deadline.after(10), SONNET
    )
    assert completion.text == "ok"


# A conversation of thinking, tool use across turns, documents with citations and a server tool: everything in it
# is the model's own or the caller's, and must reach Bedrock exactly as sent.
SIGNED_HISTORY: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "Paris is in France. Größe: 105 km²."},
                "title": "Notes",
                "citations": {"enabled": True},
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            text("Where is Paris? Then check the weather."),
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The notes say France.", "signature": "EqQBCkgIARABGAIiQL+sig=="},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
            {
                "type": "text",
                "text": "Paris is in France.",
                "citations": [
                    {
                        "type": "char_location",
                        "cited_text": "Paris is in France.",
                        "document_index": 0,
                        "document_title": "Notes",
                        "start_char_index": 0,
                        "end_char_index": 19,
                    }
                ],
            },
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "Paris weather"}},
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {"type": "web_search_result", "url": "https://example.com", "title": "W", "encrypted_content": "x"}
                ],
            },
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris", "unit": None}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": [text("18C")], "is_error": False}],
    },
]


def test_thinking_signatures_and_every_block_reach_bedrock_byte_identical(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_json(200, anthropic_message(text("Sunny, 18C.")))
    body = messages_body(
        SIGNED_HISTORY,
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[WEATHER_TOOL, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    )
    request = anthropic_request(body, betas=("interleaved-thinking-2025-05-14",))
    provider.complete(request, TARGET, Deadline.after(10), SONNET)
    [sent] = transport.sent
    assert sent.url.endswith("/invoke") and sent.model_id == SONNET_PROFILE
    assert sent.json() == bedrock_body(
        SIGNED_HISTORY,
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=body["tools"],
        anthropic_beta=["interleaved-thinking-2025-05-14"],
    )
    # Not only equal once parsed: the history's bytes are the caller's, non-ASCII text and explicit nulls included.
    assert encode_body({"messages": SIGNED_HISTORY})[1:-1] in sent.body
