"""The anthropic Node SDK's tool runner against `make run`'s gateway with its defaults: two turns on a message thread
(the second sends only the tool result), and a thread continued after its expiry, which the SDK's thread helper
survives by sending the whole conversation again."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import NODE_CLIENTS, client_environment, driver_command, needs, run_driver
from tests.e2e.threads import expire_thread

pytestmark = [pytest.mark.e2e, needs("@anthropic-ai/sdk")]

SCRIPT = "anthropic_tool_runner.mjs"


def test_the_tool_runner_runs_two_turns_on_a_thread(local_gateway: LocalGateway) -> None:
    seen = run_driver(SCRIPT, client_environment(local_gateway))
    first, second = seen["requests"]
    assert first == {"thread": {"type": "create"}, "messages": 1, "status": 200}
    # The second turn sends the tool result alone and names the first reply; the gateway reads the thread before it.
    assert second["thread"]["type"] == "continue" and second["messages"] == 1 and second["status"] == 200
    replies = seen["replies"]
    assert [reply["content"][0]["input"] for reply in replies] == [{"input": "look this up"}, {"input": "found"}]
    assert seen["calls"][0] == "look this up"
    # Echo counts every word it reads: the user's turn, the tool call and its result, not only the result.
    assert replies[1]["inputTokens"] > replies[0]["inputTokens"] + 1


def test_a_thread_continued_after_its_expiry_falls_back_to_the_whole_conversation(
    local_gateway: LocalGateway,
) -> None:
    driver = subprocess.Popen(
        driver_command(SCRIPT),
        cwd=NODE_CLIENTS,
        env={**client_environment(local_gateway), "PAUSE_AFTER_FIRST_TURN": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None and driver.stdin is not None
        first_id = json.loads(driver.stdout.readline())["first"]
        expire_thread(local_gateway, first_id)
        driver.stdin.write("go on\n")
        driver.stdin.flush()
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err[-4000:]
    seen = json.loads(out.strip().splitlines()[-1])
    created, lost, replayed = seen["requests"]
    assert created["thread"] == {"type": "create"} and created["status"] == 200
    assert lost["thread"] == {"type": "continue", "previous_message_id": first_id} and lost["status"] == 404
    # The helper's fallback: a new thread with the whole conversation (user turn, tool call, tool result).
    assert replayed == {"thread": {"type": "create"}, "messages": 3, "status": 200}
    assert [reply["content"][0]["input"] for reply in seen["replies"]] == [
        {"input": "look this up"},
        {"input": "found"},
    ]
