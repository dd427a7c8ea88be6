"""100 concurrent callers on 20 keys of one team whose cap is 30 requests' worth, on DynamoDB Local, lease and strict.

The contract suite runs the same scenario on moto (tests/contract/test_store_budget_tree.py), whose calls the tests
apply one at a time; this runs it on DynamoDB Local, AWS's own implementation, with 100 threads and 100 connections
at once, through `DynamoLeaseBudgetTree` and `DynamoBudgetTree`. Each caller tries three requests of 10 tokens; a
key may spend 20 tokens a day, the team 300. Printed per mode: requests served, the team's spend (`spent`) and what
its counter granted (`committed`), the most any key spent, and how long the 300 attempts took (start DynamoDB Local
as bench/usage_write_units.py says):

    .venv/bin/python bench/chain_concurrency.py --endpoint http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "gateway")]

CALLERS, KEYS, ATTEMPTS = 100, 20, 3
DEMAND, KEY_CAP, TEAM_CAP = 10, 20, 300
NOON = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local's endpoint")
    args = parser.parse_args()
    for mode in ("lease", "strict"):
        print(run(args.endpoint, mode))


def run(endpoint: str, mode: str) -> str:
    import boto3
    from botocore.config import Config

    from emulator.template import dynamodb_tables, load_template
    from llm_gateway.domain.budget_tree import BudgetNode, ChainReserved, NodeCap, plan_chain, window_bounds
    from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree
    from llm_gateway.store.budget_tree import DynamoBudgetTree

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(max_pool_connections=CALLERS),
    )
    table = f"usage-concurrency-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **dynamodb_tables(load_template(ROOT / "template.yaml"))["UsageTable"])
    tree = (DynamoLeaseBudgetTree if mode == "lease" else DynamoBudgetTree)(client, table)
    served: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CALLERS)

    def chain(key: str) -> tuple[BudgetNode, ...]:
        return (
            BudgetNode("key", key, "platform", "UTC", (NodeCap("day", KEY_CAP),)),
            BudgetNode("team", "platform", "acme", "UTC", (NodeCap("day", TEAM_CAP),)),
        )

    def caller(number: int) -> None:
        key = f"key_{number % KEYS:02d}"
        barrier.wait()
        for _ in range(ATTEMPTS):
            try:
                outcome = tree.reserve_chain(plan_chain(chain(key), DEMAND, Decimal("0.0001"), NOON))
            except Exception as error:  # counted and printed: a failed request is a finding
                with lock:
                    failures.append(type(error).__name__)
                continue
            if isinstance(outcome, ChainReserved):
                with lock:
                    served.append(key)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    window, _ = window_bounds("day", "UTC", NOON)
    team = tree.spent("team#platform", window, NOON).tokens
    granted = tree.committed("team#platform", window).tokens
    most = max(tree.spent(f"key#key_{n:02d}", window, NOON).tokens for n in range(KEYS))
    return (
        f"{mode}: {len(served)} of {CALLERS * ATTEMPTS} requests served; team spent {team} of its cap {TEAM_CAP} "
        f"(granted {granted}); most spent by a key {most} of its cap {KEY_CAP}; failed requests {len(failures)}; "
        f"{seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
