"""The budget tree (domain/stores.py BudgetTree) in the DynamoDB usage table: node records and window counters.

A counter is an item of the usage table (`key_id` = its node, `team#platform`; `period` = its window,
`day:2026-11-22@Asia/Tokyo`) holding `tokens` and `micro_usd`, about 80 bytes: one write unit per update, two in
a transaction. Strict mode reserves every counter of the chain in one TransactWriteItems, each update conditional
on its cap, and settles them in another: all or none, so no level can be charged without the others. Node records
(tenants and teams with their caps) are items `key_id` = `nodes#team`, `period` = the node's id, so one Query lists
a scope. Counters expire by TTL `retention_days` after their window ends. Lease mode (store/budget_lease.py) keeps
its leases beside them; `spent` reads a window the same way in either mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.budget_lease import LeaseState, OpenReservation, Room, spent_through_leases
from llm_gateway.domain.budget_tree import (
    BudgetNode,
    ChainRefused,
    ChainReservation,
    ChainReserved,
    Charge,
    Scope,
    Spent,
)
from llm_gateway.domain.keys import utcnow
from llm_gateway.store.budget_nodes import node_from_json, node_to_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

NODES_PREFIX = "nodes#"
# Lease mode keeps a key's rooms in its budget item (store/budget_lease.py): `L<tag>t`, `L<tag>m`, `L<tag>f`,
# `L<tag>e` per room, its open reservations as `r_<id>`; a window's rooms are found by its holder records,
# `period` = `<window>|lease|<key id> <month>` in the window's own partition.
ROOM_PREFIX = "L"
ROOM_FIELDS = "tmfe"
RESERVATION_PREFIX = "r_"
HOLDER_MARK = "|lease|"
BATCH_READ = 100  # BatchGetItem's most keys per call
# TransactWriteItems fails as a whole when another transaction holds one of its items; such conflicts pass.
CONFLICT_ATTEMPTS = 5


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _cap_condition(attribute: str, placeholder: str, cap: int, demand: int, values: dict[str, Any]) -> str:
    """The counter stays within `cap` with `demand` (at least 1) added; a window not written yet counts as 0."""
    values[placeholder] = _n(cap - max(demand, 1))
    if cap - max(demand, 1) < 0:
        return f"{attribute} <= {placeholder}"  # false for a missing counter too: nothing fits
    return f"(attribute_not_exists({attribute}) OR {attribute} <= {placeholder})"


class DynamoBudgetTree:
    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 400) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def _update(self, charge: Charge, tokens: int, micro: int, condition: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":tokens": _n(tokens),
            ":micro": _n(micro),
            ":expires": _n(int((charge.resets_at + self._retention).timestamp())),
        }
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key_id": {"S": charge.owner}, "period": {"S": charge.window}},
            "UpdateExpression": "ADD tokens :tokens, micro_usd :micro SET expires_at = :expires",
            "ExpressionAttributeValues": values,
        }
        if condition:
            conditions = []
            if charge.cap_tokens is not None:
                conditions.append(_cap_condition("tokens", ":captokens", charge.cap_tokens, tokens, values))
            if charge.cap_micro_usd is not None:
                conditions.append(_cap_condition("micro_usd", ":capmicro", charge.cap_micro_usd, micro, values))
            update["ConditionExpression"] = " AND ".join(conditions)
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": update}

    def _grant(self, charge: Charge, tokens: int, micro: int) -> dict[str, Any]:
        """The window's counter grants `tokens` and `micro` to a key's room (lease mode), on the condition that it
        stays within its caps (a window not written yet counts as 0)."""
        values: dict[str, Any] = {
            ":tokens": _n(tokens),
            ":micro": _n(micro),
            ":expires": _n(int((charge.resets_at + self._retention).timestamp())),
        }
        conditions = []
        for attribute, cap, grant in (
            ("tokens", charge.cap_tokens, tokens),
            ("micro_usd", charge.cap_micro_usd, micro),
        ):
            if cap is not None and grant:
                values[f":cap{attribute}"] = _n(cap - grant)
                conditions.append(f"(attribute_not_exists({attribute}) OR {attribute} <= :cap{attribute})")
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key_id": {"S": charge.owner}, "period": {"S": charge.window}},
            "UpdateExpression": "ADD tokens :tokens, micro_usd :micro SET expires_at = :expires",
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return {"Update": update}

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        if not reservation.charges:
            return ChainReserved()
        items = [self._update(c, reservation.tokens, reservation.micro_usd, True) for c in reservation.charges]
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return ChainReserved()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
                for index, reason in enumerate(reasons):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        charge = reservation.charges[index]
                        item = reason.get("Item")
                        spent = _spent(item) if item else self.committed(charge.owner, charge.window)
                        return ChainRefused(index, spent)
                if attempt + 1 == CONFLICT_ATTEMPTS:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if not reservation.charges:
            return
        token_delta, micro_delta = tokens - reservation.tokens, micro_usd - reservation.micro_usd
        items = [self._update(c, token_delta, micro_delta, False) for c in reservation.charges]
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code != "TransactionCanceledException" or attempt + 1 == CONFLICT_ATTEMPTS:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def committed(self, owner: str, window: str) -> Spent:
        """The window's counter as it stands: what it charged (strict mode) or granted to leases (lease mode)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"key_id": {"S": owner}, "period": {"S": window}},
            ConsistentRead=True,
        ).get("Item")
        return _spent(item) if item else Spent()

    def spent(self, owner: str, window: str, now: datetime | None = None) -> Spent:
        """The counter minus what the window's leases hold unused (none in strict mode), so a window reads the same
        in either mode."""
        moment = now or utcnow()
        unused = [state.unused(tag, moment) for _, tag, state in self.leases_of(owner, window)]
        return spent_through_leases(self.committed(owner, window), unused)

    def leases_of(self, owner: str, window: str) -> Iterator[tuple[dict[str, Any], str, LeaseState]]:
        """The rooms of a window (lease mode): each budget item holding one, the room's tag and the item's rooms and
        reservations as read."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="key_id = :owner AND begins_with(period, :mark)",
            ExpressionAttributeValues={":owner": {"S": owner}, ":mark": {"S": window + HOLDER_MARK}},
            ConsistentRead=True,
        )
        holders = [holder for page in pages for holder in page.get("Items", []) if "tag" in holder]
        for start in range(0, len(holders), BATCH_READ):
            batch = holders[start : start + BATCH_READ]
            items = self._read_many([{"key_id": h["lease_key"], "period": h["lease_window"]} for h in batch])
            for holder in batch:
                item = items.get((holder["lease_key"]["S"], holder["lease_window"]["S"]))
                if item:
                    key = {"key_id": holder["lease_key"], "period": holder["lease_window"]}
                    yield key, str(holder["tag"]["S"]), lease_state(item)

    def _read_many(self, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by (key_id, period), strongly consistent, in one BatchGetItem (and its unprocessed keys again)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                found[(item["key_id"]["S"], item["period"]["S"])] = item
            request = dict(response.get("UnprocessedKeys") or {})
        return found

    def put_node(self, node: BudgetNode) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "key_id": {"S": NODES_PREFIX + node.scope},
                "period": {"S": node.node_id},
                "node": {"S": node_to_json(node)},
            },
        )

    def get_node(self, scope: Scope, node_id: str) -> BudgetNode | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"key_id": {"S": NODES_PREFIX + scope}, "period": {"S": node_id}},
            ConsistentRead=True,
        ).get("Item")
        return node_from_json(item["node"]["S"]) if item else None

    def list_nodes(self, scope: Scope) -> list[BudgetNode]:
        nodes: list[BudgetNode] = []
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="key_id = :scope",
            ExpressionAttributeValues={":scope": {"S": NODES_PREFIX + scope}},
            ConsistentRead=True,
        )
        for page in pages:
            nodes.extend(node_from_json(item["node"]["S"]) for item in page.get("Items", []))
        return sorted(nodes, key=lambda node: node.node_id)


def lease_state(item: dict[str, Any]) -> LeaseState:
    """A budget item's rooms and open reservations (store/budget_lease.py writes them)."""
    fields: dict[str, dict[str, int]] = {}
    reservations = {}
    for name, value in item.items():
        if name.startswith(RESERVATION_PREFIX):
            reservations[name[len(RESERVATION_PREFIX) :]] = OpenReservation.decode(value["S"])
        elif name.startswith(ROOM_PREFIX) and len(name) == 8 and name[-1] in ROOM_FIELDS:
            fields.setdefault(name[1:-1], {})[name[-1]] = int(value["N"])
    rooms = {
        tag: Room(found.get("t", 0), found.get("m", 0), found.get("f"), found.get("e", 0))
        for tag, found in fields.items()
    }
    return LeaseState(rooms, reservations)


def _spent(item: dict[str, Any]) -> Spent:
    return Spent(int(item.get("tokens", {}).get("N", 0)), int(item.get("micro_usd", {}).get("N", 0)))
