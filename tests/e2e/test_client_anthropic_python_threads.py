"""The anthropic Python SDK's tool runner when its message thread has expired on `make run`'s gateway: the continue
is a 404 `thread_not_found`, on which the SDK's thread helper sends the whole conversation under a new thread and
the turn succeeds (its two turns on a live thread: test_local_anthropic.py)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.threads import expire_thread

pytestmark = pytest.mark.e2e


def test_a_thread_continued_after_its_expiry_falls_back_to_the_whole_conversation(
    local_gateway: LocalGateway,
) -> None:
    from anthropic.lib.tools import beta_tool

    calls: list[str] = []

    @beta_tool
    def lookup(input: str) -> str:  # echo calls a tool with {"input": <the user's text>}
        """Look a word up."""
        calls.append(input)
        return "found"

    requests: list[dict[str, Any]] = []

    def seen(response: httpx2.Response) -> None:
        body = json.loads(response.request.content)
        requests.append(
            {"thread": body.get("thread"), "messages": len(body["messages"]), "status": response.status_code}
        )

    client = anthropic.Anthropic(
        base_url=local_gateway.root_url,
        api_key=local_gateway.key,
        max_retries=0,
        http_client=httpx2.Client(event_hooks={"response": [seen]}),
    )
    runner = client.beta.messages.tool_runner(
        model="echo",
        max_tokens=100,
        tools=[lookup],
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[{"role": "user", "content": "look this up"}],
        max_iterations=2,
    )
    turns = iter(runner)
    first = next(turns)
    expire_thread(local_gateway, first.id)
    second = next(turns)

    created, lost, replayed = requests
    assert created == {"thread": {"type": "create"}, "messages": 1, "status": 200}
    assert lost == {"thread": {"type": "continue", "previous_message_id": first.id}, "messages": 1, "status": 404}
    assert replayed == {"thread": {"type": "create"}, "messages": 3, "status": 200}
    assert calls[0] == "look this up"
    (call,) = second.content
    assert call.type == "tool_use" and call.input == {"input": "found"}
    # The replayed turn read the whole conversation: the user's turn, the tool call and its result.
    assert second.usage.input_tokens > first.usage.input_tokens + 1
