"""Budget nodes as plain values, for the stores that keep them as one JSON document (SQLite) or one attribute."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.domain.budget_tree import BudgetNode, NodeCap


def node_to_json(node: BudgetNode) -> str:
    caps = [{"period": c.period, "tokens": c.tokens, "micro_usd": c.micro_usd} for c in node.caps]
    return json.dumps(
        {
            "scope": node.scope,
            "node_id": node.node_id,
            "parent": node.parent,
            "time_zone": node.time_zone,
            "caps": caps,
        },
        sort_keys=True,
    )


def node_from_json(text: str) -> BudgetNode:
    data: dict[str, Any] = json.loads(text)
    return BudgetNode(
        scope=data["scope"],
        node_id=data["node_id"],
        parent=data.get("parent"),
        time_zone=data.get("time_zone", "UTC"),
        caps=tuple(NodeCap(c["period"], c.get("tokens"), c.get("micro_usd")) for c in data.get("caps", [])),
    )
