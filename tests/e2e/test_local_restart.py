"""Restart the local gateway on the same data directory: keys, usage, budgets, usage-plan quotas and the demo key
are still there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import start_gateway, stop_gateway
from tests.e2e.test_local_gateway import CHAT, call

pytestmark = pytest.mark.e2e


def usage_by_tenant(rows: list[dict[str, object]]) -> dict[str, tuple[object, object]]:
    return {str(row["tenant"]): (row["requests"], row["completion_tokens"]) for row in rows}


def test_a_restart_keeps_keys_usage_budgets_and_the_demo_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    first = start_gateway(demo_key=None, data_dir=data_dir)
    try:
        for _ in range(2):
            assert call(first, "POST", "/chat/completions", CHAT, {"x-api-key": first.key})[0] == 200
        created = first.gatewayctl(
            "keys", "create", "--tenant", "acme", "--plan", "premium", "--tokens-per-day", "60", "--json"
        )
        assert created.returncode == 0, created.stderr
        issued = json.loads(created.stdout)
        body = {**CHAT, "max_tokens": 8}
        statuses = [call(first, "POST", "/chat/completions", body, {"x-api-key": issued["key"]})[0]]
        while statuses[-1] == 200 and len(statuses) < 20:
            statuses.append(call(first, "POST", "/chat/completions", body, {"x-api-key": issued["key"]})[0])
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        free = json.loads(first.gatewayctl("keys", "create", "--tenant", "free", "--plan", "free", "--json").stdout)
        for _ in range(3):  # the e2e free plan's quota is 3 a day
            assert call(first, "POST", "/chat/completions", CHAT, {"x-api-key": free["key"]})[0] == 200
        listed = first.gatewayctl("keys", "list", "--json")
        used = first.gatewayctl("usage", "--json")
        assert used.returncode == 0, used.stderr
    finally:
        assert stop_gateway(first) == 0
    assert (data_dir / "gateway.sqlite3").exists()

    second = start_gateway(demo_key=None, data_dir=data_dir)
    try:
        assert second.key == first.key, "the demo key comes back from the data directory"
        # The key is known and on its plan again, and its day's budget is still used up.
        status, _, refused = call(second, "POST", "/chat/completions", body, {"x-api-key": issued["key"]})
        assert (status, refused["error"]["code"]) == (429, "token_budget_exceeded")
        assert call(second, "POST", "/chat/completions", CHAT, {"x-api-key": second.key})[0] == 200
        # The same records, on the same API Gateway keys (kept in the data directory too).
        assert json.loads(second.gatewayctl("keys", "list", "--json").stdout) == json.loads(listed.stdout)
        # The usage plan's quota period carried on: the free plan's third request was the last of the day.
        assert call(second, "POST", "/chat/completions", CHAT, {"x-api-key": free["key"]})[0] == 429
        before = usage_by_tenant(json.loads(used.stdout))
        after = usage_by_tenant(json.loads(second.gatewayctl("usage", "--json").stdout))
        assert after["acme"] == before["acme"]
        demo_requests, _ = before["demo"]
        assert after["demo"][0] == int(str(demo_requests)) + 1, "the demo key's usage carried on"
    finally:
        stop_gateway(second)
