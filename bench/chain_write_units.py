"""Write calls and write units per chat request with a three-level budget chain (key > team > tenant), lease and
strict mode side by side.

A key of a team of a tenant, each node capping its own window (the key a month in UTC, the team a day in Tokyo, the
tenant a week in Paris), makes 1,000 chat requests over a month (one every 43 minutes, so the team's window rolls
over 30 times, the tenant's 4 times) through the gateway's own code (`UsageMeter.reserve_demand` and `settle` on
`UsageStore` and `DynamoLeaseBudgetTree` or `DynamoBudgetTree`; the daily roll-up runs at 00:30 UTC as scheduled,
outside the requests' figures); every write asks for
`ReturnConsumedCapacity="INDEXES"` and the usage table is created from template.yaml's own definition. After each
request the key's budget item is read back and its size computed by DynamoDB's item-size rule (names and values in
bytes, numbers about 1 byte per 2 digits plus 1), since a write costs a unit per started KB of it. Run it on DynamoDB
Local (see bench/usage_write_units.py for starting it):

    .venv/bin/python bench/chain_write_units.py --endpoint http://127.0.0.1:8000

`--root` measures another checkout (e.g. main in a git worktree), so before and after come from one script.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "gateway"), str(ROOT / "bench")]

REQUESTS = 1000
STEP = timedelta(minutes=43)
# A transactional write costs 2 units per item of up to 1 KB
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling);
# DynamoDB Local reports 2 for any TransactWriteItems, whatever its number of items (measured: 1, 2, 3 and 5 items
# all report 2.0). A conditional write whose condition fails is billed too, 1 unit for an item of up to 1 KB
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate);
# DynamoDB Local returns no consumed capacity with the error, so the bench counts it as 1.
TRANSACTION_UNITS_PER_ITEM = 2


class WriteLog:
    """Every write of a DynamoDB client: its operation, whose item it is (`chain`: the budget tree's counters, holder
    records and lease items, partition keys with `#`, and every transaction; `ledger`: the key's own budget item,
    which in lease mode holds the key's rooms of its chain too), the units DynamoDB Local reports and the units by
    the billing rule."""

    def __init__(self, client: Any) -> None:
        self.writes: list[tuple[str, str, float, float]] = []
        self._pending: list[tuple[str, int]] = []
        for operation in ("UpdateItem", "TransactWriteItems"):
            client.meta.events.register(f"provide-client-params.dynamodb.{operation}", self._ask)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._record)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"
        if model.name == "TransactWriteItems":
            self._pending.append(("chain", len(params["TransactItems"])))
        else:
            self._pending.append(("chain" if "#" in params["Key"]["key_id"]["S"] else "ledger", 0))

    def _record(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        owner, items = self._pending.pop(0)
        capacity = parsed.get("ConsumedCapacity")
        capacities = capacity if isinstance(capacity, list) else [capacity] if capacity else []
        reported = sum(c["CapacityUnits"] for c in capacities)
        # A failed condition returns no capacity with its error; it is billed as one unit.
        billed = float(TRANSACTION_UNITS_PER_ITEM * items) if model.name == "TransactWriteItems" else reported or 1.0
        self.writes.append((model.name, owner, reported or billed, billed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local's endpoint")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    args = parser.parse_args()
    sys.path[:0] = [str(args.root), str(args.root / "layers" / "gateway")]
    for mode in ("lease", "strict"):
        where, per_request, sizes = measure(args.endpoint, mode, args.requests, args.root)
        print(report(mode, args.requests, where, per_request))
        print(
            f"  the key's budget item after each request: median {statistics.median(sizes):.0f} bytes, "
            f"max {max(sizes)} bytes"
        )


def item_size(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rule: each attribute's name and value in bytes, a number about 1 byte per two
    significant digits plus 1 (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            size += (len(digits) + 1) // 2 + 1
    return size


def measure(
    endpoint: str, mode: str, requests: int, root: Path = ROOT
) -> tuple[str, list[list[tuple[str, str, float, float]]], list[int]]:
    """Per request: its writes (operation, owner, units DynamoDB Local reports, units by the billing rule); and the
    size of the key's budget item after each request (bytes)."""
    import boto3

    from emulator.template import dynamodb_tables, load_template
    from llm_gateway.config import Settings
    from llm_gateway.domain.answers import Usage
    from llm_gateway.domain.budget import Demand
    from llm_gateway.domain.budget_tree import BudgetNode, NodeCap
    from llm_gateway.domain.caller import Caller
    from llm_gateway.domain.registry import Prices
    from llm_gateway.metering import UsageMeter
    from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree
    from llm_gateway.store.budget_tree import DynamoBudgetTree
    from llm_gateway.store.usage import UsageStore

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    table = f"usage-bench-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **dynamodb_tables(load_template(root / "template.yaml"))["UsageTable"])
    tree = (DynamoLeaseBudgetTree if mode == "lease" else DynamoBudgetTree)(client, table)
    tree.put_node(BudgetNode("key", "key_5f1c2a9b7e3d", "platform", "UTC", (NodeCap("month", 10**9, 10**9),)))
    tree.put_node(BudgetNode("team", "platform", "acme", "Asia/Tokyo", (NodeCap("day", 10**9, 10**9),)))
    tree.put_node(BudgetNode("tenant", "acme", None, "Europe/Paris", (NodeCap("week", 10**9, 10**9),)))
    log = WriteLog(client)
    now = datetime(2026, 11, 1, 6, tzinfo=UTC)
    ledger = UsageStore(client, table)
    meter = UsageMeter(ledger, Settings(), lambda: now, tree=tree)
    caller = Caller(tenant="acme", key_id="key_5f1c2a9b7e3d", plan="standard", team="platform")
    prices = Prices(input_per_1k=Decimal("0.0033"), output_per_1k=Decimal("0.0165"))
    per_request, sizes = [], []
    rollup = datetime.combine(now.date() + timedelta(days=1), time(0, 30), UTC)
    for _ in range(requests):
        now += STEP
        if now >= rollup:  # UsageRollupFunction at 00:30 UTC, as scheduled; not a request's writes
            ledger.roll_up_finished_days(now)
            rollup += timedelta(days=1)
        log.writes.clear()
        metered = meter.reserve_demand(caller, "claude", prices, Demand(prompt_tokens=200, output_tokens=1024))
        meter.settle(metered, Usage(prompt_tokens=140, completion_tokens=180))
        per_request.append(list(log.writes))
        item_key = {"key_id": {"S": caller.key_id}, "period": {"S": now.strftime("%Y-%m")}}
        sizes.append(item_size(client.get_item(TableName=table, Key=item_key, ConsistentRead=True)["Item"]))
    return f"usage table {table} on {endpoint}", per_request, sizes


def report(mode: str, requests: int, where: str, per_request: list[list[tuple[str, str, float, float]]]) -> str:
    def mean(pick: Any) -> float:
        return statistics.fmean(sum(pick(w) for w in writes) for writes in per_request)

    def counted(operation: str) -> float:
        return mean(lambda w: w[0] == operation)

    local = [sum(w[2] for w in writes) for writes in per_request]
    billed = [sum(w[3] for w in writes) for writes in per_request]
    return (
        f"{mode} mode ({where}): {requests} chat requests of one key with a key > team > tenant chain, a month\n"
        f"  write calls per request: UpdateItem {counted('UpdateItem'):.3f}, "
        f"TransactWriteItems {counted('TransactWriteItems'):.3f}\n"
        f"  write units per request, DynamoDB Local: mean {statistics.fmean(local):.3f}, median "
        f"{statistics.median(local)}, max {max(local)}\n"
        f"  write units per request, billing rule: mean {statistics.fmean(billed):.3f}, median "
        f"{statistics.median(billed)}, max {max(billed)}\n"
        f"  of which transactions and the tree's own items (DynamoDB Local / billing rule): "
        f"{mean(lambda w: w[2] * (w[1] == 'chain')):.3f} / "
        f"{mean(lambda w: w[3] * (w[1] == 'chain')):.3f}; the key's own budget item: "
        f"{mean(lambda w: w[2] * (w[1] == 'ledger')):.3f} / {mean(lambda w: w[3] * (w[1] == 'ledger')):.3f}"
    )


if __name__ == "__main__":
    main()
