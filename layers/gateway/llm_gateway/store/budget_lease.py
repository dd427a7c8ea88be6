"""The budget tree in lease mode (domain/budget_lease.py) on DynamoDB, folded into the key's own budget item.

A key's rooms live in its budget item of the month (store/usage.py: `key_id` = the key, `period` = `2026-11`), beside
its own windows: per room (a capped window of its chain, `<tag>` = domain/budget_lease.py `room_tag`) `L<tag>t` and
`L<tag>m` (tokens and micro-dollars it may still reserve), `L<tag>f` (what the window had left ungranted at its last
grant, for the remaining-budget headers) and `L<tag>e` (when the window ends), and its open reservations (`r_<id>` =
"tokens micro expiry tags"). So a chat request is one conditional `UpdateItem` that checks the key's own caps and its
rooms together and takes the request from both, and a settlement another: 2 write units for an item under 1 KB
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html). The update that finds
a room short returns the item as it was (`ReturnValuesOnConditionCheckFailure`), so the refusal or the refill needs no
second read of it. Only a short room costs a `TransactWriteItems`: the counters that grant (each conditional on its
cap), the budget item (conditional on its rooms as read, with the request's own reservation) and, for a new room,
a holder record in the window's partition (`period` = `<window>|lease|<key id> <month>`), which is how `spent` and the
reclaim of siblings' unused rooms find a window's rooms. Rooms of ended windows are pruned at settlement, as the
item's past windows are.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.budget import Caps, Reservation, Settlement, exceeded_windows
from llm_gateway.domain.budget_lease import (
    RECLAIM_INTERVAL,
    LeaseState,
    Refill,
    RefillRefused,
    fits_lease,
    open_reservation,
    plan_refill,
    reclaim,
    remaining,
    room_tags,
    settled_deltas,
)
from llm_gateway.domain.budget_tree import ChainRefused, ChainReservation, ChainReserved, Spent
from llm_gateway.domain.stores import LeasedReserved, Refused, Reserved
from llm_gateway.store.budget_tree import (
    HOLDER_MARK,
    RESERVATION_PREFIX,
    ROOM_FIELDS,
    ROOM_PREFIX,
    DynamoBudgetTree,
    _n,
    lease_state,
)
from llm_gateway.store.dynamo import from_item
from llm_gateway.store.expressions import Update
from llm_gateway.store.usage import UsageStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A refill races the key's other requests and its siblings' refills; each lost race means another request got in,
# so the attempts are many and cheap (a read and a transaction).
REFILL_ATTEMPTS = 25


def _canceled(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _failed_condition(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _room(tag: str, field: str) -> str:
    return f"{ROOM_PREFIX}{tag}{field}"


def budget_item_key(chain: ChainReservation) -> dict[str, Any]:
    """The budget item of the chain's key (`holder` = `key#key_a`) for the UTC month of the request."""
    if not chain.holder.startswith("key#"):
        raise ValueError(f"a lease is held by a key, not {chain.holder!r}")
    month = chain.made_at.astimezone(UTC).strftime("%Y-%m")
    return {"key_id": {"S": chain.holder.removeprefix("key#")}, "period": {"S": month}}


@dataclass(frozen=True)
class _Ledger:
    """The key's own windows riding along in the same update (None of it on the chain-only path)."""

    reservation: Reservation
    caps: Caps
    update: Update


class DynamoLeaseBudgetTree(DynamoBudgetTree):
    """The BudgetTree port (domain/stores.py) in lease mode, and the LeasedLedger port: a key's own windows and its
    rooms in one item. Nodes are stored as in strict mode."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 400) -> None:
        super().__init__(client, table_name, retention_days)
        self._ledger = UsageStore(client, table_name, retention_days)
        self._reclaim_lock = threading.Lock()
        self._reclaimed_at: dict[tuple[str, str], datetime] = {}

    def reserve_chain(self, reservation: ChainReservation) -> ChainReserved | ChainRefused:
        if not reservation.charges:
            return ChainReserved()
        outcome = self._reserve(reservation, None)
        assert not isinstance(outcome, Refused)  # nosec B101 # nothing but the chain was asked
        return outcome if isinstance(outcome, ChainRefused) else outcome.chain

    def reserve_leased(
        self, reservation: Reservation, caps: Caps, chain: ChainReservation
    ) -> LeasedReserved | Refused | ChainRefused:
        return self._reserve(chain, _Ledger(reservation, caps, self._ledger.reserve_update(reservation, caps)))

    def settle_chain(self, reservation: ChainReservation, tokens: int, micro_usd: int) -> None:
        if reservation.charges:
            self._settle(reservation, tokens, micro_usd, Update())

    def settle_leased(
        self, settlement: Settlement, stale: tuple[str, ...], chain: ChainReservation, tokens: int, micro_usd: int
    ) -> None:
        self._settle(chain, tokens, micro_usd, self._ledger.settle_update(settlement, stale))

    def _reserve(self, chain: ChainReservation, ledger: _Ledger | None) -> LeasedReserved | Refused | ChainRefused:
        own = ledger.update if ledger else Update(sets=["expires_at = if_not_exists(expires_at, :l_expires)"])
        if ledger is None:
            own.values[":l_expires"] = _n(self._ledger.expiry(chain.made_at))
        key = budget_item_key(chain)
        reclaimed = False
        item: dict[str, Any] | None = None  # None: try the one update first
        for attempt in range(REFILL_ATTEMPTS):
            if item is None:
                taken, item = self._take(chain, own, key)
                if taken:
                    return self._reserved(chain, ledger, item, taken=True)
            if ledger is not None:  # which condition failed: the key's own caps, or a room (read from the item)
                refused = self._ledger.refused(from_item(item), own)
                if exceeded_windows(ledger.caps, refused.current):
                    return refused
            state = lease_state(item)
            if fits_lease(chain, state):  # a settlement gave room back meanwhile
                item = None
                continue
            committed = tuple(self.committed(c.owner, c.window) for c in chain.charges)
            refill = plan_refill(chain, state, committed, chain.made_at)
            if isinstance(refill, RefillRefused):
                if not reclaimed and self._may_reclaim(chain, refill.index):
                    reclaimed = True
                    if self._reclaim(chain, refill.index, key):
                        continue
                charge = chain.charges[refill.index]
                return ChainRefused(refill.index, self.spent(charge.owner, charge.window, chain.made_at))
            try:
                self._client.transact_write_items(
                    TransactItems=self._refill_items(chain, own, key, state=state, committed=committed, refill=refill)  # type: ignore[arg-type]
                )
            except ClientError as error:
                if not _canceled(error):
                    raise
                time.sleep(random.uniform(0, 0.004 * (attempt + 1)))  # noqa: S311 # nosec B311 # jitter, not secrecy
                item = self._read_item(key)
                continue
            return self._reserved(chain, ledger, self._refilled(chain, item, committed, refill), taken=False)
        raise RuntimeError(f"the rooms of {chain.holder} could not be refilled in {REFILL_ATTEMPTS} attempts")

    def _take(self, chain: ChainReservation, own: Update, key: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """The request in one conditional update of the budget item: (True, the item after) or, a cap of the key or
        a room refusing, (False, the item as it was)."""
        update = own.plus(self._take_update(chain))
        request = update.request(self._table, key)
        request["ReturnValues"] = "ALL_NEW"
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._client.update_item(**request)
        except ClientError as error:
            if _failed_condition(error):
                return False, dict(error.response.get("Item", {}))  # type: ignore[call-overload]
            raise
        return True, dict(response.get("Attributes", {}))

    @staticmethod
    def _take_update(chain: ChainReservation) -> Update:
        update = Update(
            names={"#l_open": RESERVATION_PREFIX + chain.reservation_id},
            values={
                ":l_open": {"S": open_reservation(chain).encode()},
                ":l_tokens": _n(-chain.tokens),
                ":l_micro": _n(-chain.micro_usd),
            },
            sets=["#l_open = :l_open"],
        )
        for charge, tag in zip(chain.charges, room_tags(chain), strict=True):
            update.adds += [f"{_room(tag, 't')} :l_tokens", f"{_room(tag, 'm')} :l_micro"]
            # A missing room fails its comparison: the refill opens it.
            if charge.cap_tokens is not None:
                update.values[":l_needtokens"] = _n(max(chain.tokens, 1))
                update.conditions.append(f"{_room(tag, 't')} >= :l_needtokens")
            if charge.cap_micro_usd is not None:
                update.values[":l_needmicro"] = _n(max(chain.micro_usd, 1))
                update.conditions.append(f"{_room(tag, 'm')} >= :l_needmicro")
        return update

    def _reserved(
        self, chain: ChainReservation, ledger: _Ledger | None, item: dict[str, Any], taken: bool
    ) -> LeasedReserved:
        state = lease_state(item)
        reserved = ChainReserved(left=remaining(chain, state.rooms))
        if ledger is None:
            return LeasedReserved(None, reserved)
        key = self._ledger.reserved(from_item(item), ledger.reservation, ledger.update, taken)
        current = set(room_tags(chain))
        ended = tuple(
            _room(tag, field) for tag in state.ended(chain.made_at) if tag not in current for field in ROOM_FIELDS
        )
        stale = tuple(name for name in ended if name in item)
        return LeasedReserved(Reserved(key.stale + stale, key.totals), reserved)

    def _read_item(self, key: dict[str, Any]) -> dict[str, Any]:
        response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return dict(response.get("Item", {}))

    def _refilled(
        self, chain: ChainReservation, item: dict[str, Any], committed: tuple[Spent, ...], refill: Refill
    ) -> dict[str, Any]:
        """The rooms as the refill left them, in the item's own shape (a transaction returns no values)."""
        after = dict(item)
        for tag, (tokens, micro) in refill.room_deltas(chain).items():
            for field, delta in (("t", tokens), ("m", micro)):
                after[_room(tag, field)] = _n(int(item.get(_room(tag, field), {}).get("N", 0)) + delta)
        for index, (charge, tag) in enumerate(zip(chain.charges, room_tags(chain), strict=True)):
            after[_room(tag, "e")] = _n(int(charge.resets_at.timestamp()))
            if charge.cap_tokens is not None:
                after[_room(tag, "f")] = _n(charge.cap_tokens - committed[index].tokens - refill.token_grants[index])
        return after

    def _refill_items(
        self,
        chain: ChainReservation,
        own: Update,
        key: dict[str, Any],
        *,
        state: LeaseState,
        committed: tuple[Spent, ...],
        refill: Refill,
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for charge, tokens, micro in zip(chain.charges, refill.token_grants, refill.micro_grants, strict=True):
            if tokens or micro:
                items.append(self._grant(charge, tokens, micro))
        update = Update(
            names={"#l_open": RESERVATION_PREFIX + chain.reservation_id},
            values={":l_open": {"S": open_reservation(chain).encode()}},
            sets=["#l_open = :l_open"],
        )
        tags = room_tags(chain)
        for i, (tag, (token_delta, micro_delta)) in enumerate(refill.room_deltas(chain).items()):
            update.values[f":l_t{i}"], update.values[f":l_m{i}"] = _n(token_delta), _n(micro_delta)
            update.adds += [f"{_room(tag, 't')} :l_t{i}", f"{_room(tag, 'm')} :l_m{i}"]
            room = state.rooms.get(tag)
            if room is None:
                update.conditions.append(f"attribute_not_exists({_room(tag, 't')})")
            elif tag in tags:  # the grants were computed from these rooms
                update.values[f":l_oldt{i}"], update.values[f":l_oldm{i}"] = _n(room.tokens), _n(room.micro_usd)
                update.conditions += [f"{_room(tag, 't')} = :l_oldt{i}", f"{_room(tag, 'm')} = :l_oldm{i}"]
        for i, (charge, tag) in enumerate(zip(chain.charges, tags, strict=True)):
            update.values[f":l_e{i}"] = _n(int(charge.resets_at.timestamp()))
            update.sets.append(f"{_room(tag, 'e')} = :l_e{i}")
            if charge.cap_tokens is not None:
                left = charge.cap_tokens - committed[i].tokens - refill.token_grants[i]
                update.values[f":l_f{i}"] = _n(left)
                update.sets.append(f"{_room(tag, 'f')} = :l_f{i}")
        for i, rid in enumerate(refill.expired):
            update.names[f"#l_expired{i}"] = RESERVATION_PREFIX + rid
            update.removes.append(f"#l_expired{i}")
            update.conditions.append(f"attribute_exists(#l_expired{i})")
        items.append({"Update": own.plus(update).request(self._table, key)})
        holder = f"{key['key_id']['S']} {key['period']['S']}"
        for charge, tag in zip(chain.charges, tags, strict=True):
            if tag in state.rooms:
                continue
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "key_id": {"S": charge.owner},
                            "period": {"S": charge.window + HOLDER_MARK + holder},
                            "lease_key": key["key_id"],
                            "lease_window": key["period"],
                            "tag": {"S": tag},
                            "expires_at": _n(int((charge.resets_at + self._retention).timestamp())),
                        },
                    }
                }
            )
        return items

    def _settle(self, chain: ChainReservation, tokens: int, micro_usd: int, own: Update) -> None:
        """Give each room back what the reservation took beyond what was used, and close the reservation; `own`:
        the key's own windows' settlement, in the same update."""
        key = budget_item_key(chain)
        for still_open in (True, False):
            token_delta, micro_delta = settled_deltas(chain, tokens, micro_usd, still_open)
            update = Update(
                names={"#l_open": RESERVATION_PREFIX + chain.reservation_id},
                values={":l_tokens": _n(token_delta), ":l_micro": _n(micro_delta)},
            )
            for tag in room_tags(chain):
                update.adds += [f"{_room(tag, 't')} :l_tokens", f"{_room(tag, 'm')} :l_micro"]
            if still_open:
                update.removes.append("#l_open")
                update.conditions.append("attribute_exists(#l_open)")
            else:
                # The reservation expired and a refill returned it already: what was used still counts.
                update.names.clear()
            try:
                self._client.update_item(**own.plus(update).request(self._table, key))
                return
            except ClientError as error:
                if not (still_open and _failed_condition(error)):
                    raise

    def _may_reclaim(self, reservation: ChainReservation, index: int) -> bool:
        """At most one look for unused rooms per window and RECLAIM_INTERVAL in this process: a window at its cap
        refuses every request, and each look reads all of the window's rooms."""
        charge = reservation.charges[index]
        window = (charge.owner, charge.window)
        with self._reclaim_lock:
            last = self._reclaimed_at.get(window)
            if last is not None and abs(reservation.made_at - last) < RECLAIM_INTERVAL:
                return False
            self._reclaimed_at[window] = reservation.made_at
            return True

    def _reclaim(self, reservation: ChainReservation, index: int, own: dict[str, Any]) -> bool:
        """Take back what the other keys' rooms in charge `index`'s window hold unused, each in one transaction with
        the window's counter (a budget item whose rooms changed meanwhile keeps them); whether anything came back."""
        charge = reservation.charges[index]
        took = False
        for key, tag, state in list(self.leases_of(charge.owner, charge.window)):
            if key == own:
                continue
            deltas, taken, expired = reclaim(state, tag, reservation.made_at)
            if not (deltas or expired):
                continue
            update = Update()
            for i, (room_tag, (token_delta, micro_delta)) in enumerate(deltas.items()):
                room = state.rooms[room_tag]
                update.values.update({f":t{i}": _n(token_delta), f":m{i}": _n(micro_delta)})
                update.values.update({f":oldt{i}": _n(room.tokens), f":oldm{i}": _n(room.micro_usd)})
                update.adds += [f"{_room(room_tag, 't')} :t{i}", f"{_room(room_tag, 'm')} :m{i}"]
                update.conditions += [f"{_room(room_tag, 't')} = :oldt{i}", f"{_room(room_tag, 'm')} = :oldm{i}"]
            for i, rid in enumerate(expired):
                update.names[f"#gone{i}"] = RESERVATION_PREFIX + rid
                update.removes.append(f"#gone{i}")
                update.conditions.append(f"attribute_exists(#gone{i})")
            items: list[dict[str, Any]] = [{"Update": update.request(self._table, key)}]
            if taken.tokens or taken.micro_usd:
                items.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"key_id": {"S": charge.owner}, "period": {"S": charge.window}},
                            "UpdateExpression": "ADD tokens :tokens, micro_usd :micro",
                            "ExpressionAttributeValues": {
                                ":tokens": _n(-taken.tokens),
                                ":micro": _n(-taken.micro_usd),
                            },
                        }
                    }
                )
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as error:
                if not _canceled(error):
                    raise
                continue
            took = took or bool(taken.tokens or taken.micro_usd)
        return took
