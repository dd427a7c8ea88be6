"""Key records in the DynamoDB keys table (partition key: the key's SHA-256; GSIs by key id and tenant)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from llm_gateway.domain.keys import KeyRecord, TokenLimits
from llm_gateway.domain.stores import KeyNotFoundError, KeyStateError
from llm_gateway.store.dynamo import as_int, from_item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ID_INDEX = "key_id-index"
TENANT_INDEX = "tenant-index"
# The most items one TransactWriteItems call may hold.
TRANSACTION_ITEMS = 100


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def record_to_item(record: KeyRecord) -> dict[str, Any]:
    return to_item(
        {
            "key_hash": record.key_hash,
            "key_id": record.key_id,
            "key_hint": record.key_hint,
            "tenant": record.tenant,
            "plan": record.plan,
            "models": list(record.models) if record.models is not None else None,
            "status": record.status,
            "created_at": _iso(record.created_at),
            "expires_at": _iso(record.expires_at),
            "revoked_at": _iso(record.revoked_at),
            "rotated_from": record.rotated_from,
            "api_key_id": record.api_key_id,
            "usage_identifier": record.usage_identifier,
            "tokens_per_minute": record.limits.tokens_per_minute,
            "tokens_per_day": record.limits.tokens_per_day,
            "usd_per_month": record.limits.usd_per_month,
            "team": record.team,
        }
    )


def record_from_item(item: dict[str, Any]) -> KeyRecord:
    values = from_item(item)
    models = values.get("models")
    usd = values.get("usd_per_month")
    created_at = _time(values["created_at"])
    assert created_at is not None  # nosec B101 # narrows the type: every record is written with created_at
    return KeyRecord(
        key_id=str(values["key_id"]),
        key_hash=str(values["key_hash"]),
        key_hint=str(values.get("key_hint", "")),
        tenant=str(values["tenant"]),
        plan=str(values["plan"]),
        models=tuple(str(m) for m in models) if models is not None else None,
        # Anything but an explicit "active" (a typo, a status set by hand) is refused: fail closed.
        status="active" if values.get("status") == "active" else "revoked",
        created_at=created_at,
        expires_at=_time(values.get("expires_at")),
        revoked_at=_time(values.get("revoked_at")),
        rotated_from=values.get("rotated_from"),
        api_key_id=str(values["api_key_id"]),
        usage_identifier=str(values["usage_identifier"]),
        limits=TokenLimits(
            tokens_per_minute=as_int(values.get("tokens_per_minute")),
            tokens_per_day=as_int(values.get("tokens_per_day")),
            usd_per_month=None if usd is None else Decimal(usd),
        ),
        team=values.get("team"),
    )


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    }


class KeyStore:
    """The key records (domain/stores.py KeyRecords) on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        # Strongly consistent: a revocation is visible to the very next lookup.
        response = self._client.get_item(TableName=self._table, Key={"key_hash": {"S": key_hash}}, ConsistentRead=True)
        item = response.get("Item")
        return record_from_item(item) if item else None

    def get_by_id(self, key_id: str) -> KeyRecord:
        """The key's current record: its active secret, else its newest (a rotated key has one record per
        secret, all with the key's id)."""
        records = self.records_of(key_id)
        if not records:
            raise KeyNotFoundError(f"No key with id {key_id}")
        return max(records, key=lambda record: (record.status == "active", record.created_at))

    def records_of(self, key_id: str) -> list[KeyRecord]:
        """Every record of the key (one per secret it has had), oldest first."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=KEY_ID_INDEX,
            KeyConditionExpression="key_id = :key_id",
            ExpressionAttributeValues={":key_id": {"S": key_id}},
        )
        records = [record_from_item(item) for page in pages for item in page.get("Items", [])]
        return sorted(records, key=lambda record: record.created_at)

    def list(self, tenant: str | None = None) -> list[KeyRecord]:
        return sorted(self._iter(tenant), key=lambda record: (record.tenant, record.created_at))

    def _iter(self, tenant: str | None) -> Iterator[KeyRecord]:
        if tenant is None:
            pages = self._client.get_paginator("scan").paginate(TableName=self._table)
        else:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=TENANT_INDEX,
                KeyConditionExpression="tenant = :tenant",
                ExpressionAttributeValues={":tenant": {"S": tenant}},
            )
        for page in pages:
            for item in page.get("Items", []):
                yield record_from_item(item)

    def create(self, record: KeyRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=record_to_item(record),
                ConditionExpression="attribute_not_exists(key_hash)",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise KeyStateError("A key with this secret already exists") from error
            raise

    def revoke(self, record: KeyRecord, at: datetime) -> KeyRecord:
        try:
            self._client.update_item(**self._revoke_update(record, at))
        except ClientError as error:
            if _condition_failed(error):
                raise KeyStateError(f"Key {record.key_id} is not active") from error
            raise
        return record.revoked(at)

    def rotate(self, old: KeyRecord, new: KeyRecord, at: datetime, retiring: Sequence[KeyRecord] = ()) -> KeyRecord:
        """Write the new record, revoke the old one as of `at` (later than now: the end of its grace period) and
        end the grace of each `retiring` record at `at`, in one transaction: all happen or none."""
        put = {
            "TableName": self._table,
            "Item": record_to_item(new),
            "ConditionExpression": "attribute_not_exists(key_hash)",
        }
        room = TRANSACTION_ITEMS - 2
        if len(retiring) > room:
            # More graces to end than one transaction holds: the rest end first, on their own. Should the rotation
            # then fail, they have ended early, which refuses old secrets sooner, never later.
            self.end_grace(retiring[room:], at)
            retiring = retiring[:room]
        items: list[Any] = [{"Put": put}, {"Update": self._revoke_update(old, at)}]
        items += [{"Update": self._grace_update(record, at)} for record in retiring]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _condition_failed(error):
                raise KeyStateError(f"Key {old.key_id} is not active, or the new key collides") from error
            raise
        return old.revoked(at)

    def end_grace(self, records: Sequence[KeyRecord], at: datetime) -> None:
        """Refuse these rotated-out secrets from `at` on, in transactions of at most 100 (DynamoDB's limit: a key
        rotated often with long grace periods can hold more); KeyStateError when one is active."""
        for start in range(0, len(records), TRANSACTION_ITEMS):
            batch = records[start : start + TRANSACTION_ITEMS]
            try:
                self._client.transact_write_items(
                    TransactItems=[{"Update": self._grace_update(record, at)} for record in batch]
                )
            except ClientError as error:
                if _condition_failed(error):
                    raise KeyStateError(f"Key {batch[0].key_id} changed while its grace period was ended") from error
                raise

    def update(self, record: KeyRecord, models: tuple[str, ...] | None, limits: TokenLimits) -> KeyRecord:
        """Change a key's allowed models and limits (None: every model / the plan's default)."""
        values = record_to_item(replace(record, models=models, limits=limits))
        fields = ("models", "tokens_per_minute", "tokens_per_day", "usd_per_month")
        sets = [name for name in fields if name in values]
        removals = [name for name in fields if name not in values]
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(f"{name} = :{name}" for name in sets))
        if removals:
            clauses.append("REMOVE " + ", ".join(removals))
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key_hash": {"S": record.key_hash}},
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": "attribute_exists(key_hash)",
        }
        if sets:
            request["ExpressionAttributeValues"] = {f":{name}": values[name] for name in sets}
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if _condition_failed(error):
                raise KeyNotFoundError(f"No key with id {record.key_id}") from error
            raise
        return replace(record, models=models, limits=limits)

    def set_api_key_id(self, record: KeyRecord, api_key_id: str) -> KeyRecord:
        self._client.update_item(
            TableName=self._table,
            Key={"key_hash": {"S": record.key_hash}},
            UpdateExpression="SET api_key_id = :id",
            ExpressionAttributeValues={":id": {"S": api_key_id}},
        )
        return replace(record, api_key_id=api_key_id)

    def set_plan(self, record: KeyRecord, plan: str) -> KeyRecord:
        self._set(record, "plan", {"S": plan})
        return replace(record, plan=plan)

    def set_expiry(self, record: KeyRecord, expires_at: datetime | None) -> KeyRecord:
        self._set(record, "expires_at", None if expires_at is None else {"S": expires_at.isoformat()})
        return replace(record, expires_at=expires_at)

    def _set(self, record: KeyRecord, name: str, value: Any) -> None:
        """Set one attribute of an existing record (None removes it); KeyNotFoundError when the record is gone."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key_hash": {"S": record.key_hash}},
            "ConditionExpression": "attribute_exists(key_hash)",
            "ExpressionAttributeNames": {"#name": name},
        }
        if value is None:
            request["UpdateExpression"] = "REMOVE #name"
        else:
            request["UpdateExpression"] = "SET #name = :value"
            request["ExpressionAttributeValues"] = {":value": value}
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if _condition_failed(error):
                raise KeyNotFoundError(f"No key {record.key_id}") from None
            raise

    def set_team(self, record: KeyRecord, team: str | None) -> KeyRecord:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"key_hash": {"S": record.key_hash}},
            "ConditionExpression": "attribute_exists(key_hash)",
        }
        if team is None:
            request["UpdateExpression"] = "REMOVE team"
        else:
            request["UpdateExpression"] = "SET team = :team"
            request["ExpressionAttributeValues"] = {":team": {"S": team}}
        try:
            self._client.update_item(**request)
        except ClientError as error:
            if _condition_failed(error):
                raise KeyNotFoundError(f"No key {record.key_id}") from None
            raise
        return replace(record, team=team)

    def delete(self, record: KeyRecord) -> None:
        self._client.delete_item(TableName=self._table, Key={"key_hash": {"S": record.key_hash}})

    def _revoke_update(self, record: KeyRecord, at: datetime) -> Any:
        return {
            "TableName": self._table,
            "Key": {"key_hash": {"S": record.key_hash}},
            "UpdateExpression": "SET #status = :revoked, revoked_at = :at",
            "ConditionExpression": "#status = :active",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":revoked": {"S": "revoked"},
                ":active": {"S": "active"},
                ":at": {"S": at.isoformat()},
            },
        }

    def _grace_update(self, record: KeyRecord, at: datetime) -> Any:
        return {
            "TableName": self._table,
            "Key": {"key_hash": {"S": record.key_hash}},
            "UpdateExpression": "SET revoked_at = :at",
            "ConditionExpression": "#status = :revoked",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":revoked": {"S": "revoked"}, ":at": {"S": at.isoformat()}},
        }
