"""The budget tree on the request path, lease mode (the default) and strict mode: a key in a team is charged at its
key, team and tenant in one atomic step before the model is called; the refusal names the scope; remaining budget
per scope in the headers; DynamoDB calls per chat request with a three-level chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.api.http import caller_of
from llm_gateway.authorizer import caller_context
from llm_gateway.domain.budget_tree import BudgetNode, NodeCap, window_bounds
from llm_gateway.store import dynamo
from llm_gateway.store.budget_tree import DynamoBudgetTree
from tests.conftest import Handler, LogOutput
from tests.contract.conftest import Stack
from tests.contract.test_metering import CountingEcho, counting_echo, metering_clock
from tests.fakes.proxy_events import api_event, call, chat_event

__all__ = ["counting_echo", "metering_clock"]

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def tree_of(stack: Stack, team_tokens: int | None = None, tenant_tokens: int | None = None) -> DynamoBudgetTree:
    tree = DynamoBudgetTree(stack.dynamodb, stack.outputs["UsageTableName"])
    tree.put_node(BudgetNode("key", "key_budget", "platform", "UTC", (NodeCap("month", 1_000_000),)))
    tree.put_node(BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("day", team_tokens),)))
    tree.put_node(BudgetNode("tenant", "acme", None, "Europe/Paris", (NodeCap("week", tenant_tokens, 5_000_000),)))
    return tree


def team_event(name: str = "chat-completions.json") -> dict[str, Any]:
    return api_event(name, keyId="key_budget", tenant="acme", team="platform")


def test_the_authorizer_context_carries_the_chain_and_the_caller_reads_it() -> None:
    from tests.contract.test_store_keys import record

    context = caller_context(record(team="platform"))
    assert context["team"] == "platform"
    assert caller_of({k: str(v) for k, v in context.items()}).team == "platform"
    assert "team" not in caller_context(record())


def test_a_chain_request_is_charged_at_every_level_and_settled_to_its_usage(stack: Stack, api_handler: Handler) -> None:
    tree = tree_of(stack, team_tokens=100_000, tenant_tokens=200_000)
    response = call(api_handler, team_event())
    assert response["statusCode"] == 200
    used = json.loads(response["body"])["usage"]["total_tokens"]
    for owner, period, tz in (
        ("key#key_budget", "month", "UTC"),
        ("team#platform", "day", "Asia/Tokyo"),
        ("tenant#acme", "week", "Europe/Paris"),
    ):
        window, _ = window_bounds(period, tz, NOON)  # type: ignore[arg-type]
        assert tree.spent(owner, window).tokens == used, "the reservation was replaced by the real usage"


def test_a_team_at_its_cap_refuses_with_the_scope_before_the_model(
    stack: Stack, api_handler: Handler, counting_echo: type[CountingEcho]
) -> None:
    tree = tree_of(stack, team_tokens=5_000)
    window, _ = window_bounds("day", "Asia/Tokyo", NOON)
    stack.dynamodb.put_item(
        TableName=stack.outputs["UsageTableName"],
        Item={"key_id": {"S": "team#platform"}, "period": {"S": window}, "tokens": {"N": "5000"}},
    )
    response = call(api_handler, team_event())
    assert response["statusCode"] == 429 and counting_echo.calls == 0
    error = json.loads(response["body"])["error"]
    assert error["code"] == "team_budget_exceeded" and error["param"] == "team"
    assert "cap 5000 tokens per day, spent 5000 tokens" in error["message"]
    assert "2026-11-22T15:00:00+00:00" in error["message"]  # midnight in Tokyo
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["retry-after"] == str(3 * 3600)
    # Nothing was charged anywhere: not the key's own windows, not the tenant.
    assert tree.spent("key#key_budget", window_bounds("month", "UTC", NOON)[0]).tokens == 0


def test_a_request_beyond_a_whole_team_cap_is_a_400_without_retry_after(stack: Stack, api_handler: Handler) -> None:
    tree_of(stack, team_tokens=10)
    response = call(api_handler, team_event())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "team_request_exceeds_budget"
    assert "retry-after" not in {k.lower() for k in response["headers"]}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # Lease mode: the key's budget item takes the request in its own windows and its rooms of the chain in one
        # update, and settles both in another. (The first request of the window refilled the rooms.)
        ("lease", ["UpdateItem", "UpdateItem"]),
        # Strict mode: the chain reserved in one transaction, the key's own windows in one update, then both settled.
        ("strict", ["TransactWriteItems", "UpdateItem", "TransactWriteItems", "UpdateItem"]),
    ],
)
def test_dynamodb_calls_per_chat_request_with_a_three_level_chain(
    stack: Stack, api_handler: Handler, monkeypatch: pytest.MonkeyPatch, mode: str, expected: list[str]
) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("GATEWAY_BUDGET_TREE_MODE", mode)
    reset_caches()
    tree_of(stack, team_tokens=1_000_000, tenant_tokens=2_000_000)
    call(api_handler, team_event())  # the first request builds the clients and reads the chain's nodes
    calls: list[str] = []
    client = dynamo.dynamodb_client()
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    response = call(api_handler, team_event())
    assert response["statusCode"] == 200
    assert calls == expected
    headers = {k.lower(): v for k, v in response["headers"].items()}
    if mode == "lease":  # the lease's update returns its values: the remaining budget per scope on DynamoDB too
        used = 2 * json.loads(response["body"])["usage"]["total_tokens"]
        remaining = int(headers["x-budget-remaining-tokens-team"])
        assert used <= 1_000_000 - remaining < 1_000_000 // 2
        assert int(headers["x-budget-remaining-tokens-tenant"]) > remaining
    else:  # a transaction returns none
        assert "x-budget-remaining-tokens-team" not in headers


@pytest.mark.parametrize("mode", ["lease", "strict"])
def test_the_remaining_budget_per_scope_goes_to_the_headers(tmp_path: Path, mode: str) -> None:
    from llm_gateway.api.headers import answer_headers
    from llm_gateway.config import Settings
    from llm_gateway.domain.budget import Demand
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.observability import current_request
    from llm_gateway.store.sqlite.budget_lease import SqliteLeaseBudgetTree
    from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
    from llm_gateway.store.sqlite.database import Database
    from llm_gateway.store.sqlite.usage import SqliteUsageStore

    database = Database(tmp_path / "gateway.sqlite3")
    # Lease mode: the lease's room after this request plus what the window had left ungranted.
    tree = (SqliteLeaseBudgetTree if mode == "lease" else SqliteBudgetTree)(database)
    tree.put_node(BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", 1000),)))
    tree.put_node(BudgetNode("tenant", "acme", None, "UTC", (NodeCap("month", 5000),)))
    meter = UsageMeter(SqliteUsageStore(database), Settings(), lambda: NOON, tree=tree)
    caller = Caller(tenant="acme", key_id="key_a", plan="standard", team="platform")
    metered = meter.reserve_demand(caller, "echo", Prices(), Demand(prompt_tokens=10, output_tokens=20))
    assert metered is not None and metered.chain is not None
    assert current_request().budget_remaining == {"team": 970, "tenant": 4970}
    headers = answer_headers(None, current_request(), Settings())
    assert headers["x-budget-remaining-tokens-team"] == "970"


def test_the_access_log_line_attributes_the_request(stack: Stack, api_handler: Handler, log_output: LogOutput) -> None:
    event = chat_event(
        {
            "model": "echo",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            "safety_identifier": "u-42",
        },
        keyId="key_budget",
        tenant="acme",
        team="platform",
    )
    event["headers"]["X-Claude-Code-Session-Id"] = "session-7"
    event.setdefault("multiValueHeaders", {})["X-Claude-Code-Session-Id"] = ["session-7"]
    assert call(api_handler, event)["statusCode"] == 200
    [line] = [line for line in log_output() if line["message"] == "request"]
    assert (line["tenant"], line["team"], line["session_id"], line["end_user"]) == (
        "acme",
        "platform",
        "session-7",
        "u-42",
    )


def test_the_end_user_as_each_dialect_names_it() -> None:
    from llm_gateway.domain.attribution import MAX_LENGTH, end_user, session_id

    assert end_user({"user": "old", "safety_identifier": "new"}) == "new"
    assert end_user({"user": "alice"}) == "alice"
    assert end_user({"metadata": {"user_id": "claude-user"}}) == "claude-user"
    assert end_user({"metadata": "not a mapping", "user": 7}) is None
    assert end_user({"user": "x" * 1000}) == "x" * MAX_LENGTH
    assert session_id((("anthropic-beta", "b"), ("x-claude-code-session-id", "s"))) == "s"


def test_a_failed_tree_settlement_is_logged_and_the_key_still_settles(tmp_path: Path) -> None:
    from llm_gateway.config import Settings
    from llm_gateway.domain.answers import Usage
    from llm_gateway.domain.budget import Demand
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.observability import current_request
    from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
    from llm_gateway.store.sqlite.database import Database
    from llm_gateway.store.sqlite.usage import SqliteUsageStore

    class Failing(SqliteBudgetTree):
        def settle_chain(self, reservation: Any, tokens: int, micro_usd: int) -> None:
            raise OSError("disk gone")

    database = Database(tmp_path / "gateway.sqlite3")
    tree = Failing(database)
    tree.put_node(BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", 1000),)))
    ledger = SqliteUsageStore(database)
    meter = UsageMeter(ledger, Settings(), lambda: NOON, tree=tree)
    caller = Caller(tenant="acme", key_id="key_a", plan="standard", team="platform")
    failures = current_request().usage_record_failures
    metered = meter.reserve_demand(caller, "echo", Prices(), Demand(prompt_tokens=10, output_tokens=20))
    meter.settle(metered, Usage(prompt_tokens=3, completion_tokens=4))
    assert current_request().usage_record_failures == failures + 1
    [row] = ledger.daily_usage(key_id="key_a")
    assert row.requests == 1
    # The charge stays as reserved: it can refuse too early, never let the team overspend.
    assert tree.spent("team#platform", window_bounds("day", "UTC", NOON)[0]).tokens == 30


def test_a_key_ledger_that_fails_after_the_chain_reserved_releases_the_chain(tmp_path: Path) -> None:
    from llm_gateway.config import Settings
    from llm_gateway.domain.budget import Demand
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
    from llm_gateway.store.sqlite.database import Database
    from llm_gateway.store.sqlite.usage import SqliteUsageStore

    class Failing(SqliteUsageStore):
        def reserve(self, reservation: Any, caps: Any) -> Any:
            raise OSError("disk gone")

    database = Database(tmp_path / "gateway.sqlite3")
    tree = SqliteBudgetTree(database)
    tree.put_node(BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", 1000),)))
    meter = UsageMeter(Failing(database), Settings(), lambda: NOON, tree=tree)
    caller = Caller(tenant="acme", key_id="key_a", plan="standard", team="platform")
    with pytest.raises(OSError):
        meter.reserve_demand(caller, "echo", Prices(), Demand(prompt_tokens=10, output_tokens=20))
    assert tree.spent("team#platform", window_bounds("day", "UTC", NOON)[0]).tokens == 0
