"""The budget tree through the local gateway: a team created and a key issued in it with gatewayctl, the team's cap
refusing over HTTP with the scope named, what is left per scope in the headers."""

from __future__ import annotations

import json

from tests.e2e.conftest import LocalGateway
from tests.e2e.test_local_gateway import assert_openai_error, call

# The echo model answers 8 tokens at most: a request reserves its prompt estimate plus max_tokens.
CHAT = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello"}]}


def test_a_teams_cap_refuses_its_keys_with_the_scope_named(local_gateway: LocalGateway) -> None:
    created = local_gateway.gatewayctl(
        "teams", "create", "platform", "--tenant", "tree", "--time-zone", "Asia/Tokyo", "--tokens-per-day", "60"
    )
    assert created.returncode == 0, created.stderr
    issued = local_gateway.gatewayctl(
        "keys", "create", "--tenant", "tree", "--team", "platform", "--plan", "premium", "--json"
    )
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)["key"]
    statuses, remaining = [], []
    # Each request reserves its worst case (the prompt estimate and max_tokens) and settles to the little echo uses.
    for _ in range(40):
        status, headers, body = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
        statuses.append(status)
        if status != 200:
            refused = (headers, body)
            break
        remaining.append(int(headers["x-budget-remaining-tokens-team"]))
    assert 200 in statuses and statuses[-1] == 429, (statuses, remaining)
    # What is left shrinks as requests settle; a header can be momentarily lower while the previous answer's
    # settlement is still to come (it runs after the answer is out), never negative.
    assert remaining[-1] < remaining[0] and all(0 <= left <= 60 for left in remaining), remaining
    headers, body = refused
    assert_openai_error(body, "team_budget_exceeded")
    assert body["error"]["param"] == "team" and "cap 60 tokens per day" in body["error"]["message"]
    assert int(headers["retry-after"]) <= 24 * 3600
    listed = local_gateway.gatewayctl("keys", "list", "--tenant", "tree", "--json")
    assert json.loads(listed.stdout)[0]["team"] == "platform"
