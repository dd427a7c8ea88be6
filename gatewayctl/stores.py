"""A deployment's stores as gatewayctl opens them for the admin API's routes in-process: its DynamoDB tables, or the
local gateway's embedded database."""

from __future__ import annotations

from gatewayctl.deployment import Deployment
from llm_gateway.domain.stores import BudgetTree, KeyRecords, UsageEvents, UsageLedger
from llm_gateway.store.budget_tree import DynamoBudgetTree
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.keys import SqliteKeyStore
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from llm_gateway.store.sqlite.usage_events import SqliteUsageEvents
from llm_gateway.store.usage import UsageStore
from llm_gateway.store.usage_events import DynamoUsageEvents


def key_records(deployment: Deployment) -> KeyRecords:
    if deployment.data_dir is not None:
        return SqliteKeyStore(database(deployment.data_dir))
    return KeyStore(deployment.client("dynamodb"), deployment.output("KeysTableName"))


def usage_ledger(deployment: Deployment) -> UsageLedger:
    if deployment.data_dir is not None:
        return SqliteUsageStore(database(deployment.data_dir))
    return UsageStore(deployment.client("dynamodb"), deployment.output("UsageTableName"))


def budget_tree(deployment: Deployment) -> BudgetTree:
    if deployment.data_dir is not None:
        return SqliteBudgetTree(database(deployment.data_dir))
    return DynamoBudgetTree(deployment.client("dynamodb"), deployment.output("UsageTableName"))


def usage_events(deployment: Deployment) -> UsageEvents | None:
    """None for a stack deployed before it had a usage events table."""
    if deployment.data_dir is not None:
        return SqliteUsageEvents(database(deployment.data_dir))
    if "UsageEventsTableName" not in deployment.outputs:
        return None
    return DynamoUsageEvents(deployment.client("dynamodb"), deployment.output("UsageEventsTableName"))
