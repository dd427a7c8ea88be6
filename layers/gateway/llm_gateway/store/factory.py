"""The stores the settings choose: DynamoDB tables (deployed) or the embedded database in the data directory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway.config import Settings
from llm_gateway.domain.stores import BudgetTree, KeyRecords, ResponseStore, UsageEvents, UsageLedger
from llm_gateway.errors import ConfigurationError

if TYPE_CHECKING:
    from llm_gateway.store.sqlite.database import Database


def _database(settings: Settings) -> Database:
    from llm_gateway.store.sqlite.database import database

    if settings.data_dir is None:
        raise ConfigurationError("GATEWAY_STORE is sqlite but GATEWAY_DATA_DIR is not set")
    return database(settings.data_dir)


def key_records(settings: Settings) -> KeyRecords:
    if settings.store == "sqlite":
        from llm_gateway.store.sqlite.keys import SqliteKeyStore

        return SqliteKeyStore(_database(settings))
    if not settings.keys_table:
        raise ConfigurationError("GATEWAY_KEYS_TABLE is not set")
    from llm_gateway.store.dynamo import dynamodb_client
    from llm_gateway.store.keys import KeyStore

    return KeyStore(dynamodb_client(), settings.keys_table)


def usage_ledger(settings: Settings) -> UsageLedger | None:
    """None when the settings name no usage store (no budgets, no usage records)."""
    if settings.store == "sqlite":
        from llm_gateway.store.sqlite.usage import SqliteUsageStore

        return SqliteUsageStore(_database(settings))
    if not settings.usage_table:
        return None
    from llm_gateway.store.dynamo import dynamodb_client
    from llm_gateway.store.usage import UsageStore

    return UsageStore(dynamodb_client(), settings.usage_table, settings.usage_retention_days)


def response_store(settings: Settings) -> ResponseStore | None:
    """None when the settings name no responses table: the Responses API then stores nothing."""
    if settings.store == "sqlite":
        from llm_gateway.store.sqlite.responses import SqliteResponseStore

        return SqliteResponseStore(_database(settings))
    if not settings.responses_table:
        return None
    from llm_gateway.store.dynamo import dynamodb_client, s3_client
    from llm_gateway.store.responses import DynamoResponseStore

    bucket = settings.responses_bucket
    return DynamoResponseStore(dynamodb_client(), settings.responses_table, s3_client() if bucket else None, bucket)


def budget_tree(settings: Settings) -> BudgetTree | None:
    """The budget tree's nodes and counters, beside the usage ledger (None without one), in the settings' mode."""
    lease = settings.budget_tree_mode == "lease"
    if settings.store == "sqlite":
        from llm_gateway.store.sqlite.budget_lease import SqliteLeaseBudgetTree
        from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree

        return (SqliteLeaseBudgetTree if lease else SqliteBudgetTree)(_database(settings))
    if not settings.usage_table:
        return None
    from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree
    from llm_gateway.store.budget_tree import DynamoBudgetTree
    from llm_gateway.store.dynamo import dynamodb_client

    tree = DynamoLeaseBudgetTree if lease else DynamoBudgetTree
    return tree(dynamodb_client(), settings.usage_table, settings.usage_retention_days)


def usage_events(settings: Settings) -> UsageEvents | None:
    """None when the settings name no usage events table: requests then leave no usage event."""
    if settings.store == "sqlite":
        from llm_gateway.store.sqlite.usage_events import SqliteUsageEvents

        return SqliteUsageEvents(_database(settings), settings.usage_events_retention_days)
    if not settings.usage_events_table:
        return None
    from llm_gateway.store.dynamo import dynamodb_client
    from llm_gateway.store.usage_events import DynamoUsageEvents

    return DynamoUsageEvents(dynamodb_client(), settings.usage_events_table, settings.usage_events_retention_days)
