"""Usage and budget counters in the DynamoDB usage table: a budget item per key and month, a rollup per key and day.

The budget item (sort key `2026-11`) holds the key's current windows (tokens this minute and the last, today and
yesterday, USD this month; reservations included) and the exact usage of the days not yet rolled up (requests,
failed requests, prompt and completion tokens, cost). A chat request touches it twice, and nothing else: one
conditional update reserves, one update settles. Past windows are pruned at settlement, and once a day the rollup
function moves each finished day's usage into a rollup item (sort key `2026-11-22`) in one transaction, so the
budget item stays far under 1 KB: one write unit per update
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html). In lease mode a key
with a budget chain keeps its leases of the chain's windows in the same item (store/budget_lease.py adds them to
`reserve_update` and `settle_update`), so its request too is these two updates, a refill aside. Only rollup items
carry `day`, the sort key of the tenant index, so the index never sees a chat request's writes. Every item
expires by TTL `retention_days` after its month ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.budget import QUOTA_PREFIX, Caps, Reservation, Settlement, WindowTotals
from llm_gateway.domain.stores import SETTLEMENT_WINDOW, USAGE_FIELDS, DailyUsage, Refused, Reserved
from llm_gateway.store.dynamo import from_item
from llm_gateway.store.expressions import Update

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TENANT_INDEX = "tenant-day-index"
MINUTE_PREFIX = "budget_min_"
DAY_PREFIX = "budget_day_"


def _n(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}


def _totals(item: dict[str, Any], names: dict[str, str]) -> WindowTotals:
    def count(placeholder: str) -> int | None:
        name = names.get(placeholder)
        return None if name is None else int(item.get(name, 0))

    return WindowTotals(minute_tokens=count("#minute"), day_tokens=count("#day"), period_requests=count("#quota"))


class UsageStore:
    """The usage ledger (domain/stores.py UsageLedger) on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 400) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def reserve_update(self, reservation: Reservation, caps: Caps) -> Update:
        """The reservation as parts of an update of the key's budget item: its windows take the reservation, each
        capped one on the condition that it stays within its cap (a window not written yet counts as 0)."""
        windows = reservation.windows
        update = Update(
            names={"#day": DAY_PREFIX + windows.day, "#minute": MINUTE_PREFIX + windows.minute, "#plan": "plan"},
            values={
                ":tokens": _n(reservation.tokens),
                ":usd": _n(reservation.usd),
                ":tenant": {"S": reservation.tenant},
                ":plan": {"S": reservation.plan},
                ":expires": _n(self.expiry(reservation.made_at)),
            },
            sets=["tenant = :tenant", "#plan = :plan", "expires_at = if_not_exists(expires_at, :expires)"],
            adds=["#day :tokens", "#minute :tokens", "budget_usd :usd"],
        )
        for placeholder, cap in (("#minute", caps.minute), ("#day", caps.day)):
            if cap is not None:
                update.values[f":cap{placeholder[1:]}"] = _n(cap)
                update.conditions.append(
                    f"(attribute_not_exists({placeholder}) OR {placeholder} <= :cap{placeholder[1:]})"
                )
        if caps.usd is not None:
            update.values[":capusd"] = _n(caps.usd)
            update.conditions.append("(attribute_not_exists(budget_usd) OR budget_usd <= :capusd)")
        if reservation.quota_counter is not None:
            # The key's requests in its plan's quota period, for x-ratelimit-remaining-requests.
            update.names["#quota"] = reservation.quota_counter
            update.values[":one"] = _n(1)
            update.adds.append("#quota :one")
        return update

    @staticmethod
    def refused(old: dict[str, Any], update: Update) -> Refused:
        """The refusal as the item held the windows (`old`, plain values) when the update `reserve_update` made
        was refused."""
        names = update.names
        return Refused(
            {
                "minute": int(old.get(names["#minute"], 0)),
                "day": int(old.get(names["#day"], 0)),
                "month": Decimal(old.get("budget_usd", 0)),
            },
            _totals(old, names),
        )

    def reserved(self, item: dict[str, Any], reservation: Reservation, update: Update, taken: bool) -> Reserved:
        """The reservation in, from the item (plain values) with it (`taken`) or as it was before it."""
        totals = _totals(item, update.names)
        if not taken:
            totals = WindowTotals(
                None if totals.minute_tokens is None else totals.minute_tokens + reservation.tokens,
                None if totals.day_tokens is None else totals.day_tokens + reservation.tokens,
                None if totals.period_requests is None else totals.period_requests + 1,
            )
        return Reserved(self._stale(item, reservation), totals)

    def reserve(self, reservation: Reservation, caps: Caps) -> Reserved | Refused:
        update = self.reserve_update(reservation, caps)
        request = update.request(self._table, self.item_key(reservation))
        request["ReturnValues"] = "ALL_NEW"
        if update.conditions:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._client.update_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return self.refused(from_item(dict(error.response.get("Item", {}))), update)  # type: ignore[call-overload]
        return self.reserved(from_item(response.get("Attributes", {})), reservation, update, taken=True)

    @staticmethod
    def settle_update(settlement: Settlement, stale: tuple[str, ...] = ()) -> Update:
        """The settlement as parts of an update of the key's budget item: the reservation replaced by the real
        usage, the request counted, past windows' counters removed."""
        reservation = settlement.reservation
        windows = reservation.windows
        usage = settlement.usage
        update = Update(
            names={
                "#day": DAY_PREFIX + windows.day,
                "#minute": MINUTE_PREFIX + windows.minute,
                "#count": ("failed_" if settlement.failed else "requests_") + windows.day,
            },
            values={":tokens": _n(settlement.token_delta), ":usd": _n(settlement.usd_delta), ":one": _n(1)},
            adds=["#day :tokens", "#minute :tokens", "budget_usd :usd", "#count :one"],
        )
        if usage is not None:
            figures: dict[str, int | Decimal] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": settlement.cost,
            }
            # Cache figures and the estimated count only when there are any: most calls have none, and items
            # stay small.
            for name, extra in (
                ("cached_tokens", usage.cached_tokens),
                ("cache_write_tokens", usage.cache_write_tokens),
                ("estimated", int(usage.estimated)),
            ):
                if extra:
                    figures[name] = extra
            for name, figure in figures.items():
                update.names[f"#{name}"] = f"{name}_{windows.day}"
                update.values[f":{name}"] = _n(figure)
                update.adds.append(f"#{name} :{name}")
        for i, name in enumerate(stale):
            update.names[f"#stale{i}"] = name
            update.removes.append(f"#stale{i}")
        return update

    def settle(self, settlement: Settlement, stale: tuple[str, ...] = ()) -> None:
        """Replace the reservation by the real usage and count the request; prune past windows' counters."""
        update = self.settle_update(settlement, stale)
        self._client.update_item(**update.request(self._table, self.item_key(settlement.reservation)))

    def roll_up_finished_days(self, now: datetime) -> int:
        """Move the usage of every day that ended at least SETTLEMENT_WINDOW before `now` out of the keys'
        budget items into rollup items, one transaction per key and day; returns how many were moved.

        Each transaction adds the day's figures to its rollup and removes them from the budget item on the
        condition that they are still what was read, so a settlement landing in between cancels it (the next
        run moves the day) and no figure is counted twice or lost.
        """
        moved = 0
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="attribute_not_exists(#day)",
            ExpressionAttributeNames={"#day": "day"},
        )
        for page in pages:
            for raw in page.get("Items", []):
                item = from_item(raw)
                if not _is_key_usage(item):
                    continue
                for row in _days(item):
                    ended = datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC) + timedelta(days=1)
                    if ended + SETTLEMENT_WINDOW <= now and self._move(item, row):
                        moved += 1
        return moved

    def _move(self, item: dict[str, Any], row: DailyUsage) -> bool:
        suffix = row.day.strftime("%d")
        figures = row.figures()
        names = {f"#{field}": f"{field}_{suffix}" for field in USAGE_FIELDS}
        values = {f":{field}": _n(value) for field, value in figures.items()}
        unchanged = [
            f"#{field} = :{field}" if f"{field}_{suffix}" in item else f"attribute_not_exists(#{field})"
            for field in USAGE_FIELDS
        ]
        rollup_key = {"key_id": {"S": row.key_id}, "period": {"S": row.day.isoformat()}}
        day_start = datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC)
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": rollup_key,
                            "UpdateExpression": (
                                "SET tenant = :tenant, #plan = :plan, #day = :day, "
                                "expires_at = if_not_exists(expires_at, :expires) "
                                "ADD " + ", ".join(f"{field} :{field}" for field in USAGE_FIELDS)
                            ),
                            "ExpressionAttributeNames": {"#plan": "plan", "#day": "day"},
                            "ExpressionAttributeValues": {
                                **values,
                                ":tenant": {"S": row.tenant},
                                ":plan": {"S": row.plan},
                                ":day": {"S": row.day.isoformat()},
                                ":expires": _n(self.expiry(day_start)),
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"key_id": {"S": row.key_id}, "period": {"S": str(item["period"])}},
                            "UpdateExpression": "REMOVE " + ", ".join(names),
                            "ConditionExpression": " AND ".join(unchanged),
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": {
                                name: value for name, value in values.items() if f"{name[1:]}_{suffix}" in item
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return False
        return True

    def daily_usage(
        self, *, key_id: str | None = None, tenant: str | None = None, since: date | None = None
    ) -> list[DailyUsage]:
        """Usage per key and day (operator reports), oldest first; every given filter applies. A day's figures
        are its rollup's plus what its key's budget item still holds (a day not rolled up yet, or a settlement
        that came after the roll-up)."""
        totals: dict[tuple[str, date], DailyUsage] = {}
        for item in self._items(key_id, tenant, since):
            rows = [_rollup(item)] if "day" in item else list(_days(item))
            for row in rows:
                earlier = totals.get((row.key_id, row.day))
                totals[(row.key_id, row.day)] = row if earlier is None else _added(earlier, row)
        rows = list(totals.values())
        if since is not None:
            rows = [row for row in rows if row.day >= since]
        if tenant is not None:
            rows = [row for row in rows if row.tenant == tenant]
        return sorted(rows, key=lambda row: (row.day, row.tenant, row.key_id))

    def _items(self, key_id: str | None, tenant: str | None, since: date | None) -> Iterator[dict[str, Any]]:
        first = since.strftime("%Y-%m") if since else "0000-00"
        names = {"#period": "period"}
        if key_id is not None:
            pages = [
                self._client.get_paginator("query").paginate(
                    TableName=self._table,
                    KeyConditionExpression="key_id = :key AND #period >= :first",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":key": {"S": key_id}, ":first": {"S": first}},
                )
            ]
        elif tenant is not None:
            # Rollups through the tenant index; budget items (not in the index) by a filtered scan.
            pages = [
                self._client.get_paginator("query").paginate(
                    TableName=self._table,
                    IndexName=TENANT_INDEX,
                    KeyConditionExpression="tenant = :tenant AND #day >= :first",
                    ExpressionAttributeNames={"#day": "day"},
                    ExpressionAttributeValues={":tenant": {"S": tenant}, ":first": {"S": first}},
                ),
                self._client.get_paginator("scan").paginate(
                    TableName=self._table,
                    FilterExpression="tenant = :tenant AND #period >= :first AND attribute_not_exists(#day)",
                    ExpressionAttributeNames={**names, "#day": "day"},
                    ExpressionAttributeValues={":tenant": {"S": tenant}, ":first": {"S": first}},
                ),
            ]
        else:
            pages = [self._client.get_paginator("scan").paginate(TableName=self._table)]
        for paginator in pages:
            for page in paginator:
                for item in page.get("Items", []):
                    values = from_item(item)
                    if _is_key_usage(values) and str(values["period"]) >= first:
                        yield values

    @staticmethod
    def item_key(reservation: Reservation) -> dict[str, Any]:
        """The key's budget item for the month of the reservation."""
        return {"key_id": {"S": reservation.key_id}, "period": {"S": reservation.windows.month}}

    def expiry(self, at: datetime) -> int:
        """The retention period counted from the end of the item's month, so TTL never takes a month's
        counters while the month still runs."""
        first = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = (first + timedelta(days=32)).replace(day=1)
        return int((month_end + self._retention).timestamp())

    @staticmethod
    def _stale(attributes: dict[str, Any], reservation: Reservation) -> tuple[str, ...]:
        """Counters of windows no request can still settle into: minutes before the previous one, past days, past
        quota periods' request counts."""
        made = reservation.made_at.astimezone(UTC)
        keep_minutes = {made.strftime("%d%H%M"), (made - timedelta(minutes=1)).strftime("%d%H%M")}
        keep_days = {made.strftime("%d"), (made - timedelta(days=1)).strftime("%d")}
        stale = [
            name
            for name in attributes
            if (name.startswith(MINUTE_PREFIX) and name.removeprefix(MINUTE_PREFIX) not in keep_minutes)
            or (name.startswith(DAY_PREFIX) and name.removeprefix(DAY_PREFIX) not in keep_days)
            or (name.startswith(QUOTA_PREFIX) and name != reservation.quota_counter)
        ]
        return tuple(sorted(stale))


def _rollup(item: dict[str, Any]) -> DailyUsage:
    return DailyUsage(
        key_id=str(item["key_id"]),
        tenant=str(item.get("tenant", "")),
        plan=str(item.get("plan", "")),
        day=date.fromisoformat(str(item["day"])),
        requests=int(item.get("requests", 0)),
        failed=int(item.get("failed", 0)),
        prompt_tokens=int(item.get("prompt_tokens", 0)),
        completion_tokens=int(item.get("completion_tokens", 0)),
        cost_usd=Decimal(item.get("cost_usd", 0)),
        cached_tokens=int(item.get("cached_tokens", 0)),
        cache_write_tokens=int(item.get("cache_write_tokens", 0)),
        estimated=int(item.get("estimated", 0)),
    )


def _added(a: DailyUsage, b: DailyUsage) -> DailyUsage:
    return replace(
        a,
        requests=a.requests + b.requests,
        failed=a.failed + b.failed,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=a.cost_usd + b.cost_usd,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        estimated=a.estimated + b.estimated,
    )


def _is_key_usage(item: dict[str, Any]) -> bool:
    """A key's budget item or rollup, not one of the budget tree's items sharing the table (store/budget_tree.py:
    their partition keys, `team#platform` or `nodes#team`, hold a `#`, which key ids never do)."""
    return "#" not in str(item["key_id"])


def _days(item: dict[str, Any]) -> Iterator[DailyUsage]:
    """The usage a budget item holds, per day."""
    year, month = (int(part) for part in str(item["period"]).split("-"))
    days = {name.rsplit("_", 1)[1] for name in item if name.startswith(("requests_", "failed_"))}
    for day in sorted(days):
        yield DailyUsage(
            key_id=str(item["key_id"]),
            tenant=str(item.get("tenant", "")),
            plan=str(item.get("plan", "")),
            day=date(year, month, int(day)),
            requests=int(item.get(f"requests_{day}", 0)),
            failed=int(item.get(f"failed_{day}", 0)),
            prompt_tokens=int(item.get(f"prompt_tokens_{day}", 0)),
            completion_tokens=int(item.get(f"completion_tokens_{day}", 0)),
            cost_usd=Decimal(item.get(f"cost_usd_{day}", 0)),
            cached_tokens=int(item.get(f"cached_tokens_{day}", 0)),
            cache_write_tokens=int(item.get(f"cache_write_tokens_{day}", 0)),
            estimated=int(item.get(f"estimated_{day}", 0)),
        )
