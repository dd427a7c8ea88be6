"""Write calls and write units per chat request with a three-level budget chain (key > team > tenant), strict mode.

A key of a team of a tenant, each node capping its own window (the key a month in UTC, the team a day in Tokyo, the
tenant a week in Paris), makes chat requests through the gateway's own code (`UsageMeter.reserve_demand` and
`settle` on `UsageStore` and `DynamoBudgetTree`); every write asks for `ReturnConsumedCapacity="INDEXES"` and the
usage table is created from template.yaml's own definition. Run it on DynamoDB Local (see
bench/usage_write_units.py for starting it):

    .venv/bin/python bench/chain_write_units.py --endpoint http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "gateway"), str(ROOT / "bench")]

REQUESTS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local's endpoint")
    args = parser.parse_args()
    print(measure(args.endpoint))


def measure(endpoint: str) -> str:
    import boto3
    from usage_write_units import _consumed_capacity

    from emulator.template import dynamodb_tables, load_template
    from llm_gateway.config import Settings
    from llm_gateway.domain.answers import Usage
    from llm_gateway.domain.budget import Demand
    from llm_gateway.domain.budget_tree import BudgetNode, NodeCap
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.store.budget_tree import DynamoBudgetTree
    from llm_gateway.store.usage import UsageStore

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = f"usage-bench-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **dynamodb_tables(load_template(ROOT / "template.yaml"))["UsageTable"])
    tree = DynamoBudgetTree(client, table)
    tree.put_node(BudgetNode("key", "key_5f1c2a9b7e3d", "platform", "UTC", (NodeCap("month", 10**9, 10**9),)))
    tree.put_node(BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("day", 10**9, 10**9),)))
    tree.put_node(BudgetNode("tenant", "acme", None, "Europe/Paris", (NodeCap("week", 10**9, 10**9),)))
    consumed = _consumed_capacity(client)
    now = datetime(2026, 11, 22, 6, tzinfo=UTC)
    meter = UsageMeter(UsageStore(client, table), Settings(), lambda: now, tree=tree)
    caller = Caller(tenant="acme", key_id="key_5f1c2a9b7e3d", plan="standard", team="platform")
    prices = Prices(input_per_1k=Decimal("0.0033"), output_per_1k=Decimal("0.0165"))
    units, calls = [], Counter[str]()
    # DynamoDB Local reports 2 units for any TransactWriteItems, whatever its number of items (measured: 1, 2, 3 and
    # 5 items all report 2.0); DynamoDB bills 2 per item of up to 1 KB
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling).
    billed: list[float] = []
    items = 3  # one counter per node: each caps one window
    for i in range(REQUESTS):
        now += timedelta(seconds=17 * i)
        consumed.clear()
        metered = meter.reserve_demand(caller, "claude", prices, Demand(prompt_tokens=200, output_tokens=1024))
        meter.settle(metered, Usage(prompt_tokens=140, completion_tokens=180))
        units.append(sum(c["CapacityUnits"] for _, c in consumed))
        billed.append(sum(2 * items if name == "TransactWriteItems" else c["CapacityUnits"] for name, c in consumed))
        calls.update(name for name, _ in consumed)
    per_request = {name: count / REQUESTS for name, count in sorted(calls.items())}
    return (
        f"usage table {table} on {endpoint}; {REQUESTS} chat requests of one key with a key > team > tenant chain\n"
        f"write calls per request: {per_request}\n"
        f"write units per request as DynamoDB Local reports them: median {statistics.median(units)}, max {max(units)}\n"
        f"write units per request as DynamoDB bills them (2 per transactional item): median "
        f"{statistics.median(billed)}, max {max(billed)}"
    )


if __name__ == "__main__":
    main()
