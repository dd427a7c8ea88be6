"""What a node of the budget tree has spent and has left in each of its capped windows, read from its counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from llm_gateway.domain.budget_tree import BudgetNode, Period, Spent, window_bounds
from llm_gateway.domain.stores import BudgetTree


@dataclass(frozen=True)
class WindowBudget:
    """One capped calendar window of a node: its bounds (UTC), caps (None: uncapped) and what was spent in it."""

    period: Period
    starts_at: datetime
    resets_at: datetime
    cap_tokens: int | None
    cap_micro_usd: int | None
    spent: Spent

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.cap_tokens is None else max(0, self.cap_tokens - self.spent.tokens)

    @property
    def remaining_micro_usd(self) -> int | None:
        return None if self.cap_micro_usd is None else max(0, self.cap_micro_usd - self.spent.micro_usd)


@dataclass(frozen=True)
class NodeBudget:
    node: BudgetNode
    windows: tuple[WindowBudget, ...]


def window_start(window: str) -> datetime:
    """The instant (UTC) a window named by `window_bounds` (`week:2026-11-16@Europe/Paris`) begins: its first local
    midnight."""
    period_and_label, time_zone = window.rsplit("@", 1)
    label = period_and_label.split(":", 1)[1]
    first = date.fromisoformat(label + "-01" if len(label) == 7 else label)
    return datetime(first.year, first.month, first.day, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def node_budget(tree: BudgetTree, node: BudgetNode, now: datetime) -> NodeBudget:
    """The node's windows holding `now`, one per capped period, with each counter's spend (reservations in flight
    included: they count against the cap until they settle)."""
    windows = []
    for cap in node.caps:
        if cap.tokens is None and cap.micro_usd is None:
            continue
        window, resets_at = window_bounds(cap.period, node.time_zone, now)
        spent = tree.spent(node.ref, window)
        windows.append(WindowBudget(cap.period, window_start(window), resets_at, cap.tokens, cap.micro_usd, spent))
    return NodeBudget(node, tuple(windows))
