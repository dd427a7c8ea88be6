"""Usage and budget counters in the DynamoDB usage table: one item per key and month.

The item holds the key's budget counters (tokens per day and per minute, USD per month, reservations
included) and its exact usage per day (requests, failed requests, prompt and completion tokens, cost).
A request touches it twice: one conditional update reserves, one update settles. Minute counters are
pruned at settlement, so an item stays small; the item itself expires by TTL after the retention period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.budget import Caps, Reservation, Settlement, Window
from llm_gateway.store.dynamo import from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TENANT_INDEX = "tenant-index"
MINUTE_PREFIX = "budget_min_"
DAY_PREFIX = "budget_day_"
USAGE_FIELDS = ("requests", "failed", "prompt_tokens", "completion_tokens", "cost_usd")


def _n(value: int | Decimal) -> dict[str, str]:
    return {"N": str(value)}


@dataclass(frozen=True)
class Reserved:
    """The reservation is in; `stale` names counters of past windows to prune at settlement."""

    stale: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """A window refused the reservation; `current` holds the refusing totals."""

    current: dict[Window, int | Decimal]


@dataclass(frozen=True)
class DailyUsage:
    key_id: str
    tenant: str
    plan: str
    day: date
    requests: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


class UsageStore:
    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 400) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def reserve(self, reservation: Reservation, caps: Caps) -> Reserved | Refused:
        windows = reservation.windows
        names = {"#day": DAY_PREFIX + windows.day, "#minute": MINUTE_PREFIX + windows.minute}
        values: dict[str, Any] = {
            ":tokens": _n(reservation.tokens),
            ":usd": _n(reservation.usd),
            ":tenant": {"S": reservation.tenant},
            ":plan": {"S": reservation.plan},
            ":expires": _n(self._expiry(reservation.made_at)),
        }
        conditions = []
        for placeholder, cap in (("#minute", caps.minute), ("#day", caps.day)):
            if cap is not None:
                values[f":cap{placeholder[1:]}"] = _n(cap)
                conditions.append(f"(attribute_not_exists({placeholder}) OR {placeholder} <= :cap{placeholder[1:]})")
        if caps.usd is not None:
            values[":capusd"] = _n(caps.usd)
            conditions.append("(attribute_not_exists(budget_usd) OR budget_usd <= :capusd)")
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(reservation),
            "UpdateExpression": (
                "SET tenant = :tenant, #plan = :plan, expires_at = if_not_exists(expires_at, :expires) "
                "ADD #day :tokens, #minute :tokens, budget_usd :usd"
            ),
            "ExpressionAttributeNames": {**names, "#plan": "plan"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._client.update_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = from_item(dict(error.response.get("Item", {})))  # type: ignore[call-overload]
            return Refused(
                {
                    "minute": int(old.get(names["#minute"], 0)),
                    "day": int(old.get(names["#day"], 0)),
                    "month": Decimal(old.get("budget_usd", 0)),
                }
            )
        return Reserved(self._stale(response.get("Attributes", {}), reservation))

    def settle(self, settlement: Settlement, stale: tuple[str, ...] = ()) -> None:
        """Replace the reservation by the real usage and count the request; prune past windows' counters."""
        reservation = settlement.reservation
        windows = reservation.windows
        usage = settlement.usage
        names = {
            "#day": DAY_PREFIX + windows.day,
            "#minute": MINUTE_PREFIX + windows.minute,
            "#count": ("failed_" if settlement.failed else "requests_") + windows.day,
        }
        values: dict[str, Any] = {
            ":tokens": _n(settlement.token_delta),
            ":usd": _n(settlement.usd_delta),
            ":one": _n(1),
        }
        additions = ["#day :tokens", "#minute :tokens", "budget_usd :usd", "#count :one"]
        if usage is not None:
            names.update(
                {
                    "#prompt": f"prompt_tokens_{windows.day}",
                    "#completion": f"completion_tokens_{windows.day}",
                    "#cost": f"cost_usd_{windows.day}",
                }
            )
            values.update(
                {
                    ":prompt": _n(usage.prompt_tokens),
                    ":completion": _n(usage.completion_tokens),
                    ":cost": _n(settlement.cost),
                }
            )
            additions += ["#prompt :prompt", "#completion :completion", "#cost :cost"]
        expression = "ADD " + ", ".join(additions)
        if stale:
            removals = {f"#stale{i}": name for i, name in enumerate(stale)}
            names.update(removals)
            expression += " REMOVE " + ", ".join(removals)
        self._client.update_item(
            TableName=self._table,
            Key=self._key(reservation),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def daily_usage(
        self, *, key_id: str | None = None, tenant: str | None = None, since: date | None = None
    ) -> list[DailyUsage]:
        """Usage per key and day (operator reports), oldest first; every given filter applies."""
        rows = [row for item in self._items(key_id, tenant, since) for row in _days(item)]
        if since is not None:
            rows = [row for row in rows if row.day >= since]
        if tenant is not None:
            rows = [row for row in rows if row.tenant == tenant]
        return sorted(rows, key=lambda row: (row.day, row.tenant, row.key_id))

    def _items(self, key_id: str | None, tenant: str | None, since: date | None) -> Iterator[dict[str, Any]]:
        first = since.strftime("%Y-%m") if since else "0000-00"
        if key_id is not None:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="key_id = :key AND #period >= :first",
                ExpressionAttributeNames={"#period": "period"},
                ExpressionAttributeValues={":key": {"S": key_id}, ":first": {"S": first}},
            )
        elif tenant is not None:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=TENANT_INDEX,
                KeyConditionExpression="tenant = :tenant AND #period >= :first",
                ExpressionAttributeNames={"#period": "period"},
                ExpressionAttributeValues={":tenant": {"S": tenant}, ":first": {"S": first}},
            )
        else:
            pages = self._client.get_paginator("scan").paginate(TableName=self._table)
        for page in pages:
            for item in page.get("Items", []):
                values = from_item(item)
                if str(values["period"]) >= first:
                    yield values

    @staticmethod
    def _key(reservation: Reservation) -> dict[str, Any]:
        return {"key_id": {"S": reservation.key_id}, "period": {"S": reservation.windows.month}}

    def _expiry(self, at: datetime) -> int:
        """The retention period counted from the end of the item's month, so TTL never takes a month's
        counters while the month still runs."""
        first = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_end = (first + timedelta(days=32)).replace(day=1)
        return int((month_end + self._retention).timestamp())

    @staticmethod
    def _stale(attributes: dict[str, Any], reservation: Reservation) -> tuple[str, ...]:
        """Counters of windows no request can still settle into: minutes before the previous one, past days."""
        made = reservation.made_at.astimezone(UTC)
        keep_minutes = {made.strftime("%d%H%M"), (made - timedelta(minutes=1)).strftime("%d%H%M")}
        keep_days = {made.strftime("%d"), (made - timedelta(days=1)).strftime("%d")}
        stale = [
            name
            for name in attributes
            if (name.startswith(MINUTE_PREFIX) and name.removeprefix(MINUTE_PREFIX) not in keep_minutes)
            or (name.startswith(DAY_PREFIX) and name.removeprefix(DAY_PREFIX) not in keep_days)
        ]
        return tuple(sorted(stale))


def _days(item: dict[str, Any]) -> Iterator[DailyUsage]:
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
        )
