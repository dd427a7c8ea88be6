"""The budget tree in lease mode (domain/budget_lease.py) on DynamoDB: one conditional update per request.

A key's lease item (`key_id` = `lease#key#key_a`, `period` = the windows it leases from) holds each charge's rooms
(`t0`, `m0`, ...: tokens and micro-dollars it may still reserve), what each window had left ungranted at its last
grant (`f0`, ...: for the remaining-budget headers) and its open reservations (`r_<id>` = "tokens micro expiry").
A request is one `UpdateItem` on it, conditional on every capped room, returning the new values; a settlement is
another. Only a short lease costs a `TransactWriteItems`: the counters that grant (each conditional on its cap), the
lease item (conditional on its rooms as read) and, for a new lease item, one holder record per window (`key_id` =
the window's node, `period` = `<window>|lease|<lease item>`), which is how `spent` finds a window's leases, and a
window with nothing left to grant takes back what its other leases hold unused before it refuses.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.budget_lease import (
    RECLAIM_INTERVAL,
    LeaseState,
    Refill,
    RefillRefused,
    fits_lease,
    lease_owner,
    lease_window,
    open_reservation,
    plan_refill,
    reclaim,
)
from llm_gateway.domain.budget_tree import ChainRefused, ChainReservation, ChainReserved, Charge, Spent
from llm_gateway.store.budget_tree import HOLDER_MARK, RESERVATION_PREFIX, DynamoBudgetTree, _n, lease_state

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A refill races the key's other requests and its siblings' refills; each lost race means another request got in,
# so the attempts are many and cheap (a read and a transaction).
REFILL_ATTEMPTS = 25


def _canceled(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _failed_condition(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoLeaseBudgetTree(DynamoBudgetTree):
    """The BudgetTree port (domain/stores.py) in lease mode; nodes are stored as in strict mode."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 400) -> None:
        super().__init__(client, table_name, retention_days)
        self._reclaim_lock = threading.Lock()
        self._reclaimed_at: dict[tuple[str, str], datetime] = {}

    def _lease_key(self, reservation: ChainReservation) -> dict[str, Any]:
        return {"key_id": {"S": lease_owner(reservation.holder)}, "period": {"S": lease_window(reservation)}}

    def _expiry(self, reservation: ChainReservation) -> int:
        return int((max(c.resets_at for c in reservation.charges) + self._retention).timestamp())

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        if not reservation.charges:
            return ChainReserved()
        direct = True  # the common case: the lease holds the request
        reclaimed = False
        for attempt in range(REFILL_ATTEMPTS):
            if direct:
                reserved = self._reserve_in_lease(reservation)
                if reserved is not None:
                    return reserved
            state, committed = self._read(reservation)
            direct = fits_lease(reservation, state)  # a settlement gave room back meanwhile
            if direct:
                continue
            refill = plan_refill(reservation, state, committed, reservation.made_at)
            if isinstance(refill, RefillRefused):
                if not reclaimed and self._may_reclaim(reservation, refill.index):
                    reclaimed = True
                    if self._reclaim(reservation, refill.index):
                        continue
                charge = reservation.charges[refill.index]
                return ChainRefused(refill.index, self.spent(charge.owner, charge.window, reservation.made_at))
            try:
                self._client.transact_write_items(
                    TransactItems=self._refill_items(reservation, state, committed, refill)  # type: ignore[arg-type]
                )
            except ClientError as error:
                if not _canceled(error):
                    raise
                time.sleep(random.uniform(0, 0.004 * (attempt + 1)))  # noqa: S311 # nosec B311 # jitter, not secrecy
                continue
            deltas = refill.room_deltas(reservation)
            return ChainReserved(
                left=tuple(
                    None if charge.cap_tokens is None else room + delta[0] + charge.cap_tokens - spent.tokens - grant
                    for charge, room, delta, spent, grant in zip(
                        reservation.charges, state.token_rooms, deltas, committed, refill.token_grants, strict=True
                    )
                )
            )
        raise RuntimeError(f"the lease of {reservation.holder} could not be refilled in {REFILL_ATTEMPTS} attempts")

    def _reserve_in_lease(self, reservation: ChainReservation) -> ChainReserved | None:
        """The request in one conditional update of the lease item; None when a capped room is short."""
        names = {"#open": RESERVATION_PREFIX + reservation.reservation_id}
        values: dict[str, Any] = {
            ":tokens": _n(-reservation.tokens),
            ":micro": _n(-reservation.micro_usd),
            ":open": {"S": open_reservation(reservation).encode()},
        }
        additions, conditions = [], []
        for index, charge in enumerate(reservation.charges):
            additions += [f"t{index} :tokens", f"m{index} :micro"]
            if charge.cap_tokens is not None:
                values[":needtokens"] = _n(max(reservation.tokens, 1))
                conditions.append(f"t{index} >= :needtokens")
            if charge.cap_micro_usd is not None:
                values[":needmicro"] = _n(max(reservation.micro_usd, 1))
                conditions.append(f"m{index} >= :needmicro")
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._lease_key(reservation),
                UpdateExpression="SET #open = :open ADD " + ", ".join(additions),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _failed_condition(error):
                return None
            raise
        item = response.get("Attributes", {})
        return ChainReserved(
            left=tuple(
                None
                if charge.cap_tokens is None
                else int(item[f"t{index}"]["N"]) + int(item.get(f"f{index}", {}).get("N", 0))
                for index, charge in enumerate(reservation.charges)
            )
        )

    def _read(self, reservation: ChainReservation) -> tuple[LeaseState, tuple[Spent, ...]]:
        item = self._client.get_item(TableName=self._table, Key=self._lease_key(reservation), ConsistentRead=True).get(
            "Item"
        )
        count = len(reservation.charges)
        state = lease_state(item, count) if item else LeaseState.empty(count)
        committed = tuple(self.committed(c.owner, c.window) for c in reservation.charges)
        return state, committed

    def _grant(self, charge: Charge, tokens: int, micro: int) -> dict[str, Any]:
        """The window's counter grants `tokens` and `micro` to a lease, on the condition that it stays within its caps
        (a window not written yet counts as 0)."""
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

    def _may_reclaim(self, reservation: ChainReservation, index: int) -> bool:
        """At most one look for unused leases per window and RECLAIM_INTERVAL in this process: a window at its cap
        refuses every request, and each look reads all of the window's leases."""
        charge = reservation.charges[index]
        window = (charge.owner, charge.window)
        with self._reclaim_lock:
            last = self._reclaimed_at.get(window)
            if last is not None and abs(reservation.made_at - last) < RECLAIM_INTERVAL:
                return False
            self._reclaimed_at[window] = reservation.made_at
            return True

    def _reclaim(self, reservation: ChainReservation, index: int) -> bool:
        """Take back what the other leases of charge `index`'s window hold unused, each in one transaction with the
        window's counter (a lease that changed meanwhile keeps its room); whether anything came back."""
        charge = reservation.charges[index]
        own = self._lease_key(reservation)
        took = False
        for key, position, state in list(self.leases_of(charge.owner, charge.window)):
            outcome = reclaim(state, position, reservation.made_at)
            if key == own or outcome is None:
                continue
            after, taken = outcome
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            additions, conditions = [], []
            for i, (old_t, old_m, new_t, new_m) in enumerate(
                zip(state.token_rooms, state.micro_rooms, after.token_rooms, after.micro_rooms, strict=True)
            ):
                values.update({f":t{i}": _n(new_t - old_t), f":m{i}": _n(new_m - old_m)})
                values.update({f":oldt{i}": _n(old_t), f":oldm{i}": _n(old_m)})
                additions += [f"t{i} :t{i}", f"m{i} :m{i}"]
                conditions += [f"t{i} = :oldt{i}", f"m{i} = :oldm{i}"]
            expression = "ADD " + ", ".join(additions)
            gone = [rid for rid in state.reservations if rid not in after.reservations]
            if gone:
                names = {f"#gone{i}": RESERVATION_PREFIX + rid for i, rid in enumerate(gone)}
                expression += " REMOVE " + ", ".join(names)
                conditions += [f"attribute_exists({name})" for name in names]
            lease_update: dict[str, Any] = {
                "TableName": self._table,
                "Key": key,
                "UpdateExpression": expression,
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeValues": values,
            }
            if names:
                lease_update["ExpressionAttributeNames"] = names
            counter: dict[str, Any] = {
                "TableName": self._table,
                "Key": {"key_id": {"S": charge.owner}, "period": {"S": charge.window}},
                "UpdateExpression": "ADD tokens :tokens, micro_usd :micro",
                "ExpressionAttributeValues": {":tokens": _n(-taken.tokens), ":micro": _n(-taken.micro_usd)},
            }
            try:
                self._client.transact_write_items(
                    TransactItems=[{"Update": lease_update}, {"Update": counter}]  # type: ignore[typeddict-item]
                )
            except ClientError as error:
                if not _canceled(error):
                    raise
                continue
            took = True
        return took

    def _refill_items(
        self, reservation: ChainReservation, state: LeaseState, committed: tuple[Spent, ...], refill: Refill
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for charge, tokens, micro in zip(reservation.charges, refill.token_grants, refill.micro_grants, strict=True):
            if tokens or micro:
                items.append(self._grant(charge, tokens, micro))
        names = {"#open": RESERVATION_PREFIX + reservation.reservation_id}
        values: dict[str, Any] = {
            ":open": {"S": open_reservation(reservation).encode()},
            ":expires": _n(self._expiry(reservation)),
        }
        additions, settings, conditions = [], ["#open = :open", "expires_at = :expires"], []
        for index, (charge, (token_delta, micro_delta)) in enumerate(
            zip(reservation.charges, refill.room_deltas(reservation), strict=True)
        ):
            values[f":t{index}"], values[f":m{index}"] = _n(token_delta), _n(micro_delta)
            additions += [f"t{index} :t{index}", f"m{index} :m{index}"]
            if charge.cap_tokens is not None:
                left = charge.cap_tokens - committed[index].tokens - refill.token_grants[index]
                values[f":f{index}"] = _n(left)
                settings.append(f"f{index} = :f{index}")
            if state.exists:
                values[f":oldt{index}"] = _n(state.token_rooms[index])
                values[f":oldm{index}"] = _n(state.micro_rooms[index])
                conditions += [f"t{index} = :oldt{index}", f"m{index} = :oldm{index}"]
        expression = "SET " + ", ".join(settings) + " ADD " + ", ".join(additions)
        if refill.expired:
            expired = {f"#expired{i}": RESERVATION_PREFIX + rid for i, rid in enumerate(refill.expired)}
            names.update(expired)
            expression += " REMOVE " + ", ".join(expired)
            conditions += [f"attribute_exists({name})" for name in expired]
        if not state.exists:
            conditions.append("attribute_not_exists(t0)")
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._lease_key(reservation),
                    "UpdateExpression": expression,
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        )
        if not state.exists:
            lease = self._lease_key(reservation)
            for index, charge in enumerate(reservation.charges):
                holder_period = charge.window + HOLDER_MARK + lease["key_id"]["S"] + " " + lease["period"]["S"]
                items.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "key_id": {"S": charge.owner},
                                "period": {"S": holder_period},
                                "lease_key": lease["key_id"],
                                "lease_window": lease["period"],
                                "charge": _n(index),
                                "expires_at": _n(int((charge.resets_at + self._retention).timestamp())),
                            },
                        }
                    }
                )
        return items

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if not reservation.charges:
            return
        names = {"#open": RESERVATION_PREFIX + reservation.reservation_id}
        additions = ", ".join(f"t{i} :tokens, m{i} :micro" for i in range(len(reservation.charges)))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._lease_key(reservation),
                UpdateExpression=f"ADD {additions} REMOVE #open",
                ConditionExpression="attribute_exists(#open)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":tokens": _n(reservation.tokens - tokens),
                    ":micro": _n(reservation.micro_usd - micro_usd),
                },
            )
        except ClientError as error:
            if not _failed_condition(error):
                raise
            # The reservation expired and a refill returned it already: what was used still counts.
            self._client.update_item(
                TableName=self._table,
                Key=self._lease_key(reservation),
                UpdateExpression=f"ADD {additions}",
                ExpressionAttributeValues={":tokens": _n(-tokens), ":micro": _n(-micro_usd)},
            )
