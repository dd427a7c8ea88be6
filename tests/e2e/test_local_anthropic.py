"""The Anthropic Messages API of `make run`'s gateway as its real clients use it: the official anthropic SDK
(create, stream, tools, thinking, count_tokens, models, typed errors) and Claude Code itself (`claude -p`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from tests.e2e.conftest import ROOT, LocalGateway, child_environment
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk

pytestmark = pytest.mark.e2e

CLAUDE = ROOT / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
LOOKUP = {"name": "lookup", "description": "Look a word up", "input_schema": {"type": "object"}}


def sdk(gateway: LocalGateway, key: str | None = None, **options: Any) -> anthropic.Anthropic:
    """The SDK as Claude Code's users configure it: the host alone as base URL (the SDK adds /v1/messages)."""
    return anthropic.Anthropic(base_url=gateway.root_url, api_key=key or gateway.key, max_retries=0, **options)


def new_key(gateway: LocalGateway, *options: str) -> dict[str, Any]:
    created = gateway.gatewayctl("keys", "create", "--tenant", "anthropic-e2e", "--plan", "premium", *options, "--json")
    assert created.returncode == 0, created.stderr
    issued: dict[str, Any] = json.loads(created.stdout)
    return issued


def test_create_answers_in_anthropics_shape(local_gateway: LocalGateway) -> None:
    message = sdk(local_gateway).messages.create(
        model="echo",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello from the anthropic SDK"}],
    )
    assert message.type == "message" and message.role == "assistant" and message.model == "echo"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from the anthropic SDK"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)


def test_a_stream_arrives_as_events_and_accumulates(local_gateway: LocalGateway) -> None:
    with sdk(local_gateway).messages.stream(
        model="echo", max_tokens=100, messages=[{"role": "user", "content": "one two three four"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["one", " two", " three", " four"]
    assert final.content[0].text == "one two three four"  # type: ignore[union-attr]
    assert (final.stop_reason, final.usage.output_tokens, final.usage.input_tokens) == ("end_turn", 4, 4)


def test_thinking_comes_back_signed_and_goes_back_unchanged(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    question = {"role": "user", "content": "Is it raining?"}
    with client.messages.stream(
        model="echo", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=[question]
    ) as stream:
        first = stream.get_final_message()
    thinking, text = first.content
    assert thinking.type == "thinking" and len(thinking.signature) == 64
    assert text.type == "text" and text.text == "Is it raining?"
    assert first.usage.output_tokens > 3, "thinking is counted as output"

    follow_up = client.messages.create(
        model="echo",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": "Sure?"}],  # type: ignore[list-item]
    )
    assert follow_up.content[-1].text == "Sure?"  # type: ignore[union-attr]


def test_tool_use_across_turns(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    ask = {"role": "user", "content": "serendipity"}
    call = client.messages.create(
        model="echo",
        max_tokens=100,
        tools=[LOOKUP],
        tool_choice={"type": "any"},
        messages=[ask],  # type: ignore[list-item]
    )
    (tool_use,) = call.content
    assert tool_use.type == "tool_use" and tool_use.name == "lookup"
    assert (tool_use.input, call.stop_reason) == ({"input": "serendipity"}, "tool_use")

    result = {"type": "tool_result", "tool_use_id": tool_use.id, "content": "a happy accident"}
    answer = client.messages.create(
        model="echo",
        max_tokens=100,
        tools=[LOOKUP],  # type: ignore[list-item]
        messages=[ask, {"role": "assistant", "content": call.content}, {"role": "user", "content": [result]}],  # type: ignore[list-item]
    )
    assert answer.content[0].text == "a happy accident"  # type: ignore[union-attr]

    with client.messages.stream(
        model="echo",
        max_tokens=100,
        tools=[LOOKUP],
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[ask],  # type: ignore[list-item]
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].input == {"input": "serendipity"}  # type: ignore[union-attr]


def test_count_tokens_and_the_model_list(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    counted = client.messages.count_tokens(
        model="echo", system="Be brief.", messages=[{"role": "user", "content": "count these four words"}]
    )
    assert counted.input_tokens == 6
    models = client.models.list(limit=1000)
    assert [model.id for model in models.data] == ["echo", "fake-upstream"]
    assert models.data[0].type == "model" and models.has_more is False


def test_typed_errors(local_gateway: LocalGateway) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        sdk(local_gateway, "sk-llmgw-" + "NoSuchKey".ljust(43, "0")).messages.create(
            model="echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(local_gateway).messages.create(model="claude-9", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        sdk(local_gateway).messages.create(model="echo", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert invalid.value.body["type"] == "error"  # type: ignore[index]
    assert "max_tokens" in invalid.value.message

    issued = new_key(local_gateway, "--tokens-per-day", "60")
    limited = sdk(local_gateway, issued["key"])

    def spend() -> None:
        for _ in range(20):
            limited.messages.create(model="echo", max_tokens=10, messages=[{"role": "user", "content": "a b c"}])

    with pytest.raises(anthropic.RateLimitError) as refused:
        spend()
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(refused.value.response.headers["retry-after"]) > 0


def test_an_openai_compatible_model_answers_the_anthropic_route(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer
) -> None:
    upstream.enqueue(
        stream=[
            delta_chunk(role="assistant", content="Bon"),
            delta_chunk(content="jour"),
            delta_chunk(finish_reason="stop"),
            usage_chunk(9, 2),
        ]
    )
    with sdk(local_gateway).messages.stream(
        model="fake-upstream",
        max_tokens=50,
        system="Answer in French.",
        metadata={"user_id": "user-42"},
        messages=[{"role": "user", "content": "Hello"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Bonjour"  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 2)
    sent = upstream.last_request.body
    assert sent["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    assert (sent["model"], sent["max_completion_tokens"], sent["user"]) == ("gpt-fake", 50, "user-42")


@pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code is not installed (make install installs it with npm)")
def test_claude_code_runs_headless_against_the_gateway(local_gateway: LocalGateway, tmp_path: Path) -> None:
    issued = new_key(local_gateway)
    environment = {
        **child_environment(),
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": local_gateway.root_url,
        "ANTHROPIC_API_KEY": issued["key"],
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    environment.pop("ANTHROPIC_AUTH_TOKEN", None)
    ran = subprocess.run(
        [str(CLAUDE), "-p", "Say hello to the gateway", "--model", "echo"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Say hello to the gateway"
    report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
    assert report.returncode == 0, report.stderr
    (day,) = json.loads(report.stdout)
    assert day["requests"] >= 1 and day["prompt_tokens"] > 100, "Claude Code's system prompt and tools are metered"


def test_the_sdk_tool_runner_keeps_its_conversation_in_a_thread(local_gateway: LocalGateway) -> None:
    """The tool runner threads by default (message-threads beta): the second turn sends only the tool result and
    `tool_choice`, and the gateway reads the thread's history and tools back in."""
    from anthropic.lib.tools import beta_tool

    calls: list[str] = []

    @beta_tool
    def lookup(input: str) -> str:  # echo calls a tool with {"input": <the user's text>}
        """Look a word up."""
        calls.append(input)
        return "found"

    statuses: list[int] = []
    http = httpx2.Client(event_hooks={"response": [lambda response: statuses.append(response.status_code)]})
    runner = sdk(local_gateway, http_client=http).beta.messages.tool_runner(
        model="echo",
        max_tokens=100,
        tools=[lookup],
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[{"role": "user", "content": "look this up"}],
        max_iterations=2,
    )
    replies = list(runner)
    assert len(replies) == 2 and len(calls) == 2
    assert statuses == [200, 200]  # the continue found its thread: no 404 and no replay
    # The second turn read the whole thread (user turn, tool call, tool result), not only the tool result.
    assert replies[1].usage.input_tokens > replies[0].usage.input_tokens
