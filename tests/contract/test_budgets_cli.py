"""`gatewayctl budgets show` and `keys list` filters, through the admin API's routes on a stack (moto) and on the local
gateway's embedded database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gatewayctl.deployment import Deployment
from gatewayctl.stores import budget_tree
from llm_gateway.domain.budget_tree import BudgetNode, NodeCap, plan_chain
from tests.contract.conftest import Stack
from tests.contract.test_teams_cli import deployment, run

__all__ = ["deployment"]


def spend(deployment: Deployment, tokens: int) -> None:
    """Spend recorded as a settled request leaves it: the tree's own reservation, then its settlement."""
    tree = budget_tree(deployment)
    team = BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", 1000),))
    reservation = plan_chain((team,), tokens + 100, Decimal(0), datetime.now(UTC))
    tree.reserve_chain(reservation)
    tree.settle_chain(reservation, tokens, 0)


def test_a_teams_budget_shows_what_was_spent(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        deployment, capsys, "teams", "create", "platform", "--tenant", "acme", "--tokens-per-day", "1000"
    )
    assert code == 0, err
    spend(deployment, 300)
    code, out, err = run(deployment, capsys, "budgets", "show", "team", "platform", "--json")
    assert code == 0, err
    [budget] = json.loads(out)
    assert budget["windows"][0]["tokens"] == {"cap": 1000, "spent": 300, "remaining": 700}
    code, out, _ = run(deployment, capsys, "budgets", "show", "team", "platform")
    assert out.splitlines()[1].split()[:3] == ["team", "platform", "day"] and "700" in out
    code, _, err = run(deployment, capsys, "budgets", "show", "team", "ghost")
    assert code == 1 and "No team 'ghost'" in err


def test_a_keys_budget_is_its_chain_and_keys_list_filters(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    on_stack = Deployment("test stack", "us-east-1", stack.outputs)
    run(on_stack, capsys, "teams", "create", "platform", "--tenant", "acme", "--tokens-per-day", "1000")
    _, out, _ = run(
        on_stack, capsys, "keys", "create", "--tenant", "acme", "--team", "platform", "--plan", "free", "--json"
    )
    key_id = json.loads(out)["key_id"]
    run(on_stack, capsys, "keys", "create", "--tenant", "acme", "--plan", "free")
    spend(on_stack, 250)
    code, out, _ = run(on_stack, capsys, "budgets", "show", "key", key_id, "--json")
    assert code == 0 and [(b["scope"], b["windows"][0]["tokens"]["spent"]) for b in json.loads(out)] == [("team", 250)]

    _, out, _ = run(on_stack, capsys, "keys", "list", "--team", "platform", "--status", "active", "--json")
    assert [key["key_id"] for key in json.loads(out)] == [key_id]
    _, out, _ = run(on_stack, capsys, "keys", "list", "--search", key_id[-6:], "--json")
    assert [key["key_id"] for key in json.loads(out)] == [key_id]
    _, out, _ = run(on_stack, capsys, "keys", "list", "--status", "revoked")
    assert out.strip() == "No keys matching the filters."
