"""Usage events (domain/stores.py UsageEvents) in their own DynamoDB table: one item per finished request, a breakdown
per key and finished day, and the day the rollup has done.

The table's partition key is the key id, so a key's events spread no wider than its budget item does and one Query
reads a key's day (sort key `e#2026-11-22T15:04:05.123456Z#<request id>`) or its breakdowns (`b#2026-11-22#000`).
An event is one PutItem of an item under 1 KB (every caller-chosen string is bounded, domain/attribution.py):
exactly one write unit, and the table has no index to write again
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html). Every item expires by
TTL (`expires_at`) `retention_days` after its day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.stores import EventGroup, UsageEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EVENT_PREFIX = "e#"
BREAKDOWN_PREFIX = "b#"
# The rollup's mark lives under a partition key no key id can be (key ids hold no `#`).
MARK_KEY = {"key_id": {"S": "#rollup"}, "sk": {"S": "through"}}
# Groups per breakdown item: each is at most about 700 bytes, so a part stays well under DynamoDB's 400 KB item.
GROUPS_PER_ITEM = 400


def event_sort_key(event: UsageEvent) -> str:
    return f"{EVENT_PREFIX}{event.at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{event.request_id}"


def tags_text(tags: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{name}={value}" for name, value in tags)


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, _, value in (part.partition("=") for part in text.split(",") if part))


def event_item(event: UsageEvent, expires_at: int) -> dict[str, Any]:
    """The event's DynamoDB item: absent optional values and zero counts are left out, which keeps it small."""
    item: dict[str, Any] = {
        "key_id": {"S": event.key_id},
        "sk": {"S": event_sort_key(event)},
        "tenant": {"S": event.tenant},
        "plan": {"S": event.plan},
        "model": {"S": event.model},
        "status": {"N": str(event.status)},
        "expires_at": {"N": str(expires_at)},
    }
    optional = {"team": event.team, "session": event.session_id, "end_user": event.end_user}
    optional["tags"] = tags_text(event.tags) or None
    item.update({name: {"S": value} for name, value in optional.items() if value})
    counts = {
        "failed": int(event.failed),
        "prompt": event.prompt_tokens,
        "cached": event.cached_tokens,
        "cache_write": event.cache_write_tokens,
        "completion": event.completion_tokens,
        "cost_micro_usd": event.cost_micro_usd,
    }
    item.update({name: {"N": str(count)} for name, count in counts.items() if count})
    return item


def _event(item: dict[str, Any]) -> UsageEvent:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value else None

    def count(name: str) -> int:
        value = item.get(name)
        return int(value["N"]) if value else 0

    at, _, request_id = item["sk"]["S"].removeprefix(EVENT_PREFIX).partition("#")
    return UsageEvent(
        request_id=request_id,
        at=datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
        key_id=item["key_id"]["S"],
        tenant=text("tenant") or "",
        plan=text("plan") or "",
        model=text("model") or "",
        status=count("status"),
        team=text("team"),
        failed=bool(count("failed")),
        prompt_tokens=count("prompt"),
        cached_tokens=count("cached"),
        cache_write_tokens=count("cache_write"),
        completion_tokens=count("completion"),
        cost_micro_usd=count("cost_micro_usd"),
        session_id=text("session"),
        end_user=text("end_user"),
        tags=parse_tags(text("tags") or ""),
    )


def group_row(group: EventGroup) -> list[Any]:
    """A group as JSON: its attributes (tags as `name=value,...`), then its figures."""
    tags = tags_text(group.tags)
    return [group.tenant, group.team, group.plan, group.model, group.session_id, group.end_user, tags, *group.figures]


def group_of(row: list[Any]) -> EventGroup:
    tenant, team, plan, model, session, end_user, tags, *figures = row
    return EventGroup(tenant, team, plan, model, session, end_user, parse_tags(tags), tuple(int(f) for f in figures))


class DynamoUsageEvents:
    """The usage events port on DynamoDB (the UsageEventsTable)."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int = 90) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def _expiry(self, day: date) -> int:
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        return int((day_end + self._retention).timestamp())

    def record(self, event: UsageEvent) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=event_item(event, self._expiry(event.day)),
                # A retried call finds the event written: it stays one event.
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _query(self, key_id: str, first: str, last: str) -> list[dict[str, Any]]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="key_id = :key AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={":key": {"S": key_id}, ":first": {"S": first}, ":last": {"S": last}},
        )
        return [item for page in pages for item in page.get("Items", [])]

    def events(self, key_id: str, day: date) -> list[UsageEvent]:
        prefix = f"{EVENT_PREFIX}{day.isoformat()}T"
        return [_event(item) for item in self._query(key_id, prefix, prefix + "~")]

    def put_breakdown(self, key_id: str, day: date, groups: list[EventGroup]) -> None:
        parts = [groups[start : start + GROUPS_PER_ITEM] for start in range(0, len(groups), GROUPS_PER_ITEM)]
        for number, part in enumerate(parts):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "key_id": {"S": key_id},
                    "sk": {"S": f"{BREAKDOWN_PREFIX}{day.isoformat()}#{number:03d}"},
                    "groups": {"S": json.dumps([group_row(group) for group in part], separators=(",", ":"))},
                    "expires_at": {"N": str(self._expiry(day))},
                },
            )
        # Parts a larger earlier breakdown of the day left beyond this one's (a rollup run again after more events).
        prefix = f"{BREAKDOWN_PREFIX}{day.isoformat()}#"
        for item in self._query(key_id, f"{prefix}{len(parts):03d}", f"{prefix}~"):
            self._client.delete_item(TableName=self._table, Key={"key_id": item["key_id"], "sk": item["sk"]})

    def breakdowns(self, key_id: str, since: date, until: date) -> dict[date, list[EventGroup]]:
        found: dict[date, list[EventGroup]] = {}
        first, last = f"{BREAKDOWN_PREFIX}{since.isoformat()}", f"{BREAKDOWN_PREFIX}{until.isoformat()}#~"
        for item in self._query(key_id, first, last):
            day = date.fromisoformat(item["sk"]["S"].removeprefix(BREAKDOWN_PREFIX).partition("#")[0])
            found.setdefault(day, []).extend(group_of(row) for row in json.loads(item["groups"]["S"]))
        return found

    def rolled_up_through(self) -> date | None:
        item = self._client.get_item(TableName=self._table, Key=MARK_KEY, ConsistentRead=True).get("Item")
        return date.fromisoformat(item["day"]["S"]) if item else None

    def set_rolled_up_through(self, day: date) -> None:
        self._client.put_item(TableName=self._table, Item={**MARK_KEY, "day": {"S": day.isoformat()}})
