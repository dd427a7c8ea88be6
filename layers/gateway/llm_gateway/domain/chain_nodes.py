"""A caller's chain in the budget tree (its key, its team, its tenant), read through the BudgetTree port and cached."""

from __future__ import annotations

import time
from collections.abc import Callable

from llm_gateway.domain.budget_tree import BudgetNode, Scope
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.stores import BudgetTree


class ChainNodes:
    """A caller's chain in the budget tree (its key, its team, its tenant: the nodes that exist), read from the tree
    and kept in memory for `cache_seconds`, as the authorizer keeps key records: a changed cap applies within it."""

    def __init__(self, tree: BudgetTree, cache_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tree = tree
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[float, BudgetNode | None]] = {}

    def chain(self, caller: Caller) -> tuple[BudgetNode, ...]:
        """A key joins the tree through its team: a key in none has only its own windows (the usage ledger's), and
        costs no read here."""
        if not caller.team:
            return ()
        wanted: list[tuple[Scope, str]] = [("key", caller.key_id), ("team", caller.team), ("tenant", caller.tenant)]
        return tuple(node for node in (self._node(scope, node_id) for scope, node_id in wanted) if node is not None)

    def _node(self, scope: Scope, node_id: str) -> BudgetNode | None:
        entry = self._cache.get((scope, node_id))
        now = self._monotonic()
        if entry is not None and now - entry[0] < self._cache_seconds:
            return entry[1]
        node = self._tree.get_node(scope, node_id)
        self._cache[(scope, node_id)] = (now, node)
        return node
