"""A key's life on the local gateway (`make run`): a rotated secret serves through its grace period and no longer,
both secrets spend one key's budgets, and a new plan takes the key to another usage plan's quota."""

from __future__ import annotations

import time
from datetime import datetime

from tests.e2e.conftest import LocalGateway
from tests.e2e.test_local_admin import auth
from tests.e2e.test_local_gateway import call

CHAT = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello"}]}
# Long enough for the requests inside it on a busy machine, short enough to wait out.
GRACE_SECONDS = 4


def tokens(answer: dict[str, object]) -> int:
    usage = answer["usage"]
    assert isinstance(usage, dict)
    return int(usage["prompt_tokens"]) + int(usage["completion_tokens"])


def test_a_key_rotated_with_a_grace_serves_both_secrets_until_the_grace_ends(local_gateway: LocalGateway) -> None:
    headers = auth(local_gateway)
    team = {"id": "grace-e2e", "tenant": "grace", "caps": [{"period": "day", "tokens": 100000}]}
    assert call(local_gateway, "POST", "/admin/teams", team, headers)[0] == 201
    status, _, created = call(
        local_gateway, "POST", "/admin/keys", {"tenant": "grace", "plan": "premium", "team": "grace-e2e"}, headers
    )
    assert status == 201, created
    old_key, key_id = created["key"], created["record"]["key_id"]
    status, _, rotated = call(
        local_gateway, "POST", f"/admin/keys/{key_id}/rotate", {"grace_period_seconds": GRACE_SECONDS}, headers
    )
    assert status == 201, rotated
    new_key, ends = rotated["key"], datetime.fromisoformat(rotated["previous"]["revoked_at"])
    spent = 0
    for key in (old_key, new_key):
        status, _, answer = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})
        assert status == 200, answer
        spent += tokens(answer)
    assert time.time() < ends.timestamp(), "both requests ran inside the grace period"
    # Both secrets are one key: one usage row, and the team's window counts each request once.
    status, _, usage = call(local_gateway, "GET", f"/admin/usage?key={key_id}&group_by=key", headers=headers)
    assert status == 200 and [(row["key"], row["requests"]) for row in usage["data"]] == [(key_id, 2)], usage
    status, _, budget = call(local_gateway, "GET", "/admin/budgets/team/grace-e2e", headers=headers)
    assert status == 200 and budget["windows"][0]["tokens"]["spent"] == spent, budget
    time.sleep(max(0.0, ends.timestamp() - time.time()) + 0.2)
    status, _, refused = call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": old_key})
    assert status == 401, refused
    assert call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": new_key})[0] == 200
    status, _, listed = call(local_gateway, "GET", "/admin/keys?status=revoked&q=grace", headers=headers)
    assert [k["key_hint"] for k in listed["data"]] == [created["record"]["key_hint"]]


def test_a_new_plan_moves_the_key_to_that_usage_plans_quota(local_gateway: LocalGateway) -> None:
    """The e2e free plan allows 3 requests a day; premium has no such quota."""
    headers = auth(local_gateway)
    status, _, created = call(local_gateway, "POST", "/admin/keys", {"tenant": "mover", "plan": "free"}, headers)
    assert status == 201, created
    key, key_id = created["key"], created["record"]["key_id"]
    statuses = [call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, _, moved = call(local_gateway, "PATCH", f"/admin/keys/{key_id}", {"plan": "premium"}, headers)
    assert status == 200 and moved["plan"] == "premium", moved
    # The local API Gateway keeps a key's plan for a second, as API Gateway caches it briefly too.
    deadline = time.monotonic() + 10
    while (status := call(local_gateway, "POST", "/chat/completions", CHAT, {"x-api-key": key})[0]) != 200:
        assert status == 429 and time.monotonic() < deadline
        time.sleep(0.25)
    moved_back = local_gateway.gatewayctl("keys", "update", key_id, "--plan", "free", "--expires", "7d", "--json")
    assert moved_back.returncode == 0, moved_back.stderr
