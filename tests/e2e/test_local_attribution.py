"""Attribution on the local gateway (`make run`): the official SDKs name an end user, a Claude Code session and tags,
and `gatewayctl usage --group-by` reports them from the requests' usage events."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.conftest import LocalGateway, start_gateway, stop_gateway


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    started = start_gateway("AllowedTags=project,env")
    try:
        yield started
    finally:
        stop_gateway(started)


def test_sdk_requests_are_reported_by_model_session_end_user_and_tag(gateway: LocalGateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    tags = {"X-Gateway-Tags": "project=alpha,env=dev"}
    for _ in range(2):
        completion = client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "Hello, gateway"}],
            safety_identifier="openai-user",
            extra_headers=tags,
        )
        assert completion.choices[0].message.content
    stream = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a stream"}], stream=True, extra_headers=tags
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Gateway-Tags": "colour=red"}
        )
    assert "allowed tag names: env, project" in str(refused.value)

    claude = anthropic.Anthropic(base_url=gateway.root_url, api_key=gateway.key, max_retries=0)
    message = claude.messages.create(
        model="echo",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello from Claude Code"}],
        metadata={"user_id": "claude-user"},
        extra_headers={"X-Claude-Code-Session-Id": "session-e2e"},
    )
    assert message.content

    done = gateway.gatewayctl("usage", "--group-by", "model,session", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    by_session = {(row["model"], row["session"]): int(row["requests"]) for row in rows}
    # The refused request never resolved its model: it is a failed request of model "none".
    assert by_session == {("echo", "-"): 3, ("echo", "session-e2e"): 1, ("none", "-"): 1}, rows

    done = gateway.gatewayctl("usage", "--group-by", "end_user,tag", "--json")
    assert done.returncode == 0, done.stderr
    found = {
        (r["end_user"], r["tag:env"], r["tag:project"]): (r["requests"], r["failed"]) for r in json.loads(done.stdout)
    }
    assert found == {
        ("openai-user", "dev", "alpha"): (2, 0),
        ("-", "dev", "alpha"): (1, 0),
        ("-", "-", "-"): (1, 1),
        ("claude-user", "-", "-"): (1, 0),
    }, found
