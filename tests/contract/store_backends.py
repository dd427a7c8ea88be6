"""The backends every store contract suite runs against: DynamoDB on moto (tables from template.yaml) and the
embedded SQLite database in a temporary directory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.domain.stores import BudgetTree, KeyRecords, ResponseStore, UsageLedger
from llm_gateway.store.budget_lease import DynamoLeaseBudgetTree
from llm_gateway.store.budget_tree import DynamoBudgetTree
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.responses import DynamoResponseStore
from llm_gateway.store.sqlite.budget_lease import SqliteLeaseBudgetTree
from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
from llm_gateway.store.sqlite.database import Database
from llm_gateway.store.sqlite.keys import SqliteKeyStore
from llm_gateway.store.sqlite.responses import SqliteResponseStore
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from llm_gateway.store.usage import UsageStore

BACKENDS = ["dynamodb", "sqlite"]


class OneCallAtATime:
    """A DynamoDB client whose calls moto applies one at a time. DynamoDB applies the updates of one item
    atomically; moto's in-process mock does not under threads, so without this a conditional update could pass
    its check twice. (The local gateway's moto endpoint applies its calls one at a time for the same reason.)"""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name == "get_paginator" or not callable(method):
            return method

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return locked


def sqlite_database(tmp_path: Path) -> Database:
    return Database(tmp_path / "data" / "gateway.sqlite3")


@pytest.fixture(params=BACKENDS)
def key_records(request: pytest.FixtureRequest, tmp_path: Path) -> KeyRecords:
    if request.param == "sqlite":
        return SqliteKeyStore(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    return KeyStore(stack.dynamodb, stack.outputs["KeysTableName"])


@pytest.fixture(params=BACKENDS)
def usage_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> UsageLedger:
    if request.param == "sqlite":
        return SqliteUsageStore(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    return UsageStore(OneCallAtATime(stack.dynamodb), stack.outputs["UsageTableName"])  # type: ignore[arg-type]


RESPONSES_BUCKET = "llm-gateway-test-responses"


@pytest.fixture(params=BACKENDS)
def response_store(request: pytest.FixtureRequest, tmp_path: Path) -> ResponseStore:
    if request.param == "sqlite":
        return SqliteResponseStore(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=RESPONSES_BUCKET)
    return DynamoResponseStore(stack.dynamodb, stack.outputs["ResponsesTableName"], s3, RESPONSES_BUCKET)


@pytest.fixture(params=[f"{backend}-{mode}" for backend in BACKENDS for mode in ("lease", "strict")])
def budget_tree(request: pytest.FixtureRequest, tmp_path: Path) -> BudgetTree:
    """Each backend in each mode of the budget tree (settings' budget_tree_mode)."""
    backend, mode = str(request.param).split("-")
    if backend == "sqlite":
        return (SqliteLeaseBudgetTree if mode == "lease" else SqliteBudgetTree)(sqlite_database(tmp_path))
    stack = request.getfixturevalue("stack")
    tree = DynamoLeaseBudgetTree if mode == "lease" else DynamoBudgetTree
    return tree(OneCallAtATime(stack.dynamodb), stack.outputs["UsageTableName"])  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The API function's settings for stored conversations on each backend: the embedded store in a temporary data
    directory, or the template's responses table (moto) with its bucket."""
    from tests.conftest import reset_caches

    if request.param == "sqlite":
        monkeypatch.setenv("GATEWAY_STORE", "sqlite")
        monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    else:
        stack = request.getfixturevalue("stack")
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=RESPONSES_BUCKET)
        monkeypatch.setenv("GATEWAY_RESPONSES_TABLE", stack.outputs["ResponsesTableName"])
        monkeypatch.setenv("GATEWAY_RESPONSES_BUCKET", RESPONSES_BUCKET)
    reset_caches()
    return str(request.param)
