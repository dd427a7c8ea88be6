"""How gatewayctl shows the budget tree's nodes (the admin API's Node): a row per team or tenant with its caps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_gateway.domain.budget_tree import PERIODS


def node_row(node: Mapping[str, Any]) -> list[str]:
    caps = {cap["period"]: cap for cap in node["caps"]}

    def cap(period: str, kind: str) -> str:
        value = caps.get(period, {}).get(kind)
        return "-" if value is None else str(value)

    return [
        node["id"],
        node["parent"] or "-",
        node["time_zone"],
        *(cap(period, kind) for period in PERIODS for kind in ("tokens", "usd")),
    ]


NODE_HEADERS = [
    "ID",
    "TENANT",
    "TIME ZONE",
    "TOKENS/DAY",
    "USD/DAY",
    "TOKENS/WEEK",
    "USD/WEEK",
    "TOKENS/MONTH",
    "USD/MONTH",
]
