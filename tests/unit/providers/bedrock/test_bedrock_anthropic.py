"""Bedrock's native Anthropic path: InvokeModel, InvokeModelWithResponseStream and CountTokens with the caller's own
Anthropic Messages body, against real bedrock-runtime clients that never leave the process.

Non-streamed calls and CountTokens go through botocore's Stubber, which checks the exact request (the body compared
as JSON); streams, and answers Stubber cannot produce, go through FakeBedrockTransport (real event-stream bytes,
see tests/fakes/bedrock_transport.py). Requests are built as the Anthropic surface builds them: the caller's body as
`native`, the anthropic-beta header's values as `betas`, the fitted parameters beside them.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llm_gateway.config import shipped_registry_text
from llm_gateway.domain.answers import (
    Completion,
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
from llm_gateway.domain.conversation import (
    ChatRequest,
    Message,
    Native,
    OpaqueBlock,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
)
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import BedrockTraits, ModelRegistry, ModelTraits, Target
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
)
from llm_gateway.providers.bedrock.anthropic import (
    ANTHROPIC_VERSION,
    anthropic_traits,
    encode_body,
    foundation_model_id,
    invoke_model_body,
)
from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from tests.conftest import LogOutput
from tests.fakes.bedrock_transport import (
    FakeBedrockTransport,
    JsonBody,
    invoke_chunk,
    stream_event,
    stream_exception,
)
from tests.fakes.requests import openai_chat

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

SONNET_PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TARGET = Target(provider="bedrock", model_id=SONNET_PROFILE)
SHIPPED = ModelRegistry.model_validate_json(shipped_registry_text())
# The shipped traits: an Anthropic model without adaptive thinking and without output_config.
SONNET = SHIPPED.get("claude-sonnet-4-5").traits
NOVA = SHIPPED.get("nova-lite").traits
# A model of Claude 4.6's kind: adaptive thinking and output_config without a beta.
ADAPTIVE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True, adaptive_thinking=True, output_config=True))

USER_HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
JSON = "application/json"


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
    assert attempts == [], "a Bedrock unit test tried to open a network connection"


@pytest.fixture
def client() -> BedrockRuntimeClient:
    # The production factory, so the retry and timeout configuration under test is the one deployed.
    return default_client("us-east-1", 30.0)


@pytest.fixture
def provider(client: BedrockRuntimeClient) -> BedrockProvider:
    return BedrockProvider(client_factory=lambda region, timeout: client)


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


_FROM_BODY: Any = object()


def anthropic_request(
    body: dict[str, Any],
    *,
    betas: tuple[str, ...] = (),
    max_output_tokens: Any = _FROM_BODY,
    temperature: Any = _FROM_BODY,
    top_p: Any = _FROM_BODY,
    top_k: Any = _FROM_BODY,
) -> ChatRequest:
    """The request the Anthropic surface makes of `body`: the fitted values default to the body's own. Its
    messages are a stand-in: the native path reads the body, never the parsed blocks."""

    def fitted(name: str, value: Any) -> Any:
        return body.get(name) if value is _FROM_BODY else value

    return ChatRequest(
        model="claude-sonnet-4-5",
        messages=(Message("user", (TextBlock("hi"),)),),
        max_output_tokens=fitted("max_tokens", max_output_tokens),
        temperature=fitted("temperature", temperature),
        top_p=fitted("top_p", top_p),
        top_k=fitted("top_k", top_k),
        stream=bool(body.get("stream")),
        native=Native("anthropic", body),
        betas=betas,
    )


def messages_body(messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages or USER_HI, **fields}


def bedrock_body(messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """What Bedrock gets for messages_body(messages, **fields) when no rule changes anything else."""
    return {"max_tokens": 1024, "messages": messages or USER_HI, **fields, "anthropic_version": ANTHROPIC_VERSION}


def expected_invoke(body: dict[str, Any], model_id: str = SONNET_PROFILE) -> dict[str, Any]:
    return {"modelId": model_id, "body": JsonBody(body), "contentType": JSON, "accept": JSON}


def anthropic_message(
    *content: dict[str, Any],
    stop_reason: str | None = "end_turn",
    stop_sequence: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage or {"input_tokens": 12, "output_tokens": 3},
    }


def invoke_response(payload: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": JSON}


def text(value: str, **fields: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **fields}


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
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


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


def collect(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], GatewayError | None]:
    """The events produced before the stream ended, and the error it ended with, if any."""
    produced: list[StreamEvent] = []
    try:
        for event in events:
            produced.append(event)
    except GatewayError as error:
        return produced, error
    return produced, None


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


@pytest.mark.parametrize(
    ("exception_type", "error_class", "retryable"),
    [
        pytest.param("modelStreamErrorException", ProviderError, True, id="model-stream-error"),
        pytest.param("throttlingException", ProviderRateLimitError, True, id="throttling"),
        pytest.param("internalServerException", ProviderError, True, id="internal-server"),
        pytest.param("serviceUnavailableException", ProviderError, True, id="service-unavailable"),
        pytest.param("modelTimeoutException", ProviderTimeoutError, True, id="model-timeout"),
        pytest.param("validationException", ProviderRequestError, False, id="validation"),
    ],
)
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


@dataclass(frozen=True)
class SwitchableDeadline(Deadline):
    """A deadline the test expires at a chosen moment of the stream, instead of sleeping until it does."""

    switch: dict[str, bool] = field(default_factory=lambda: {"expired": False})

    def remaining(self) -> float:
        return 0.0 if self.switch["expired"] else 10.0


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


# --- CountTokens --------------------------------------------------------------------------------------------


def test_count_tokens_asks_bedrock_for_the_foundation_model(provider: BedrockProvider, stubber: Stubber) -> None:
    # An Anthropic count_tokens body: no max_tokens, betas, a field Bedrock refuses.
    body = {"model": "claude-sonnet-4-5", "messages": USER_HI, "system": "Be brief.", "metadata": {"user_id": "u"}}
    expected = {
        "messages": USER_HI,
        "system": "Be brief.",
        "anthropic_beta": ["context-1m-2025-08-07"],
        "max_tokens": 1,
        "anthropic_version": ANTHROPIC_VERSION,
    }
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 17},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(expected)}}},
    )
    request = anthropic_request(body, betas=("claude-code-20250219", "context-1m-2025-08-07"))
    assert provider.count_tokens(request, TARGET, Deadline.after(10), SONNET) == 17


def test_count_tokens_keeps_a_thinking_budget_below_max_tokens(provider: BedrockProvider, stubber: Stubber) -> None:
    body = {"model": "claude-sonnet-4-5", "messages": USER_HI, "thinking": {"type": "enabled", "budget_tokens": 4000}}
    expected = {
        "messages": USER_HI,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "max_tokens": 4001,
        "anthropic_version": ANTHROPIC_VERSION,
    }
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 9},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(expected)}}},
    )
    assert provider.count_tokens(anthropic_request(body), TARGET, Deadline.after(10), SONNET) == 9


@pytest.mark.parametrize(
    ("model_id", "foundation"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("au.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        (
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123", None),
    ],
)
def test_count_tokens_takes_the_foundation_model_behind_a_profile(model_id: str, foundation: str | None) -> None:
    assert foundation_model_id(model_id) == foundation


def test_count_tokens_strips_the_profile_prefix_on_the_wire(provider: BedrockProvider, stubber: Stubber) -> None:
    target = Target(provider="bedrock", model_id="global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    stubber.add_response(
        "count_tokens",
        {"inputTokens": 3},
        {"modelId": SONNET_MODEL, "input": {"invokeModel": {"body": JsonBody(bedrock_body())}}},
    )
    assert provider.count_tokens(anthropic_request(messages_body()), target, Deadline.after(10), SONNET) == 3


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 403),
        ("ValidationException", 400),
        ("ResourceNotFoundException", 404),
    ],
)
def test_count_tokens_leaves_it_to_the_gateways_estimate_when_bedrock_cannot_count(
    provider: BedrockProvider, stubber: Stubber, code: str, status: int, log_output: LogOutput
) -> None:
    stubber.add_client_error("count_tokens", service_error_code=code, service_message="no", http_status_code=status)
    assert provider.count_tokens(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET) is None
    assert [
        line
        for line in log_output()
        if line["message"] == "Bedrock did not count the tokens; the gateway estimates them"
    ]


def test_count_tokens_raises_throttling_for_the_router(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "1"})
    with pytest.raises(ProviderRateLimitError):
        provider.count_tokens(anthropic_request(messages_body()), TARGET, Deadline.after(10), SONNET)


@pytest.mark.parametrize(
    ("request_", "traits", "target"),
    [
        pytest.param(openai_chat({"model": "claude", "messages": USER_HI}), SONNET, TARGET, id="openai-dialect"),
        pytest.param(anthropic_request(messages_body()), NOVA, TARGET, id="not-an-anthropic-model"),
        pytest.param(anthropic_request(messages_body()), None, TARGET, id="no-traits"),
        pytest.param(
            anthropic_request(messages_body()),
            SONNET,
            Target(
                provider="bedrock", model_id="arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x"
            ),
            id="no-foundation-model",
        ),
    ],
)
def test_count_tokens_has_no_count_for_other_requests(
    provider: BedrockProvider,
    transport: FakeBedrockTransport,
    request_: ChatRequest,
    traits: ModelTraits | None,
    target: Target,
) -> None:
    assert provider.count_tokens(request_, target, Deadline.after(10), traits) is None
    assert transport.sent == []


# --- Converse for everything else -----------------------------------------------------------------------------


def converse_response(value: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": value}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6},
        "metrics": {"latencyMs": 100},
    }


@pytest.mark.parametrize(
    ("request_", "traits"),
    [
        pytest.param(openai_chat({"model": "claude", "messages": USER_HI}), SONNET, id="openai-dialect-on-claude"),
        pytest.param(anthropic_request(messages_body()), NOVA, id="anthropic-dialect-on-nova"),
        pytest.param(anthropic_request(messages_body()), None, id="anthropic-dialect-without-traits"),
    ],
)
def test_converse_serves_every_other_request(
    provider: BedrockProvider, stubber: Stubber, request_: ChatRequest, traits: ModelTraits | None
) -> None:
    assert anthropic_traits(request_, traits) is None
    stubber.add_response("converse", converse_response("ok"))
    completion = provider.complete(request_, TARGET, Deadline.after(10), traits)
    assert completion.text == "ok" and completion.native is None


def test_converse_stream_serves_openai_dialect_requests_on_claude(
    provider: BedrockProvider, transport: FakeBedrockTransport
) -> None:
    transport.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ok"}}),
        stream_event("messageStop", {"stopReason": "end_turn"}),
        stream_event(
            "metadata", {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}, "metrics": {"latencyMs": 1}}
        ),
    )
    request = openai_chat({"model": "claude", "messages": USER_HI, "stream": True})
    assert list(provider.stream(request, TARGET, Deadline.after(10), SONNET)) == [
        TextDelta("ok"),
        Finish("end_turn"),
        UsageReport(Usage(5, 1)),
    ]
    assert transport.sent[0].url.endswith("/converse-stream")
