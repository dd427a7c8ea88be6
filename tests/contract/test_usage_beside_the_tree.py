"""The budget tree shares the DynamoDB usage table: its nodes and counters are in no usage report and no roll-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from llm_gateway.domain.answers import Usage
from llm_gateway.domain.budget import Caps, Reservation, Settlement, Windows
from llm_gateway.domain.budget_tree import BudgetNode, NodeCap, plan_chain
from llm_gateway.domain.stores import Reserved
from llm_gateway.store.budget_tree import DynamoBudgetTree
from llm_gateway.store.usage import UsageStore
from tests.contract.conftest import Stack


def test_reports_and_the_roll_up_skip_the_trees_items(stack: Stack) -> None:
    table = stack.outputs["UsageTableName"]
    tree = DynamoBudgetTree(stack.dynamodb, table)
    day = datetime(2026, 11, 21, 10, tzinfo=UTC)
    team = BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("day", 1000),))
    tree.put_node(team)
    tree.reserve_chain(plan_chain((team,), 10, Decimal("0.001"), day))
    ledger = UsageStore(stack.dynamodb, table)
    reservation = Reservation("key_a", "acme", "free", "echo", Windows.at(day), day, 10, Decimal(0), 4)
    reserved = ledger.reserve(reservation, Caps(None, None, None))
    assert isinstance(reserved, Reserved)
    ledger.settle(Settlement(reservation, Usage(prompt_tokens=3, completion_tokens=2), Decimal(0)), reserved.stale)
    assert [(row.key_id, row.requests) for row in ledger.daily_usage()] == [("key_a", 1)]
    assert ledger.roll_up_finished_days(day + timedelta(days=2)) == 1
    assert [(row.key_id, row.requests) for row in ledger.daily_usage()] == [("key_a", 1)]
