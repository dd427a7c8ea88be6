"""The stored responses port (domain/stores.py ResponseStore) on DynamoDB, with large documents in S3.

One item per response, keyed by (key_id, response_id): a key can only ever address its own items. The document is
zlib-compressed; up to INLINE_BYTES it is in the item itself, beyond that in an S3 object and the item points at
it. On-demand DynamoDB bills a write per started KB and S3 one PUT per object whatever its size, so above 8 KB
(8 write units) the object is cheaper, and it lifts DynamoDB's 400 KB item limit (docs/benchmarks.md).
Expiry is DynamoDB's TTL on `expires_at` and the bucket's lifecycle rule of the same number of days; a read checks
`expires_at` itself, since TTL deletes expired items only within days.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from llm_gateway.domain.stores import StoredResponse

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

# Compressed documents up to this size stay in the item: 8 write units, the price of one S3 PUT and its pointer.
INLINE_BYTES = 8 * 1024
OBJECT_PREFIX = "responses/"


def object_key(key_id: str, response_id: str) -> str:
    return f"{OBJECT_PREFIX}{key_id}/{response_id}"


class DynamoResponseStore:
    def __init__(
        self, dynamodb: DynamoDBClient, table: str, s3: S3Client | None = None, bucket: str | None = None
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._s3 = s3
        self._bucket = bucket

    def put(self, stored: StoredResponse) -> None:
        packed = zlib.compress(stored.document.encode("utf-8"))
        item: dict[str, Any] = {
            "key_id": {"S": stored.key_id},
            "response_id": {"S": stored.response_id},
            "tenant": {"S": stored.tenant},
            "created_at": {"N": str(stored.created_at)},
            "expires_at": {"N": str(stored.expires_at)},
        }
        if len(packed) <= INLINE_BYTES or self._s3 is None or not self._bucket:
            item["document"] = {"B": packed}
        else:
            key = object_key(stored.key_id, stored.response_id)
            # The object first: an item never points at an object that is not there.
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=packed, ContentType="application/zlib")
            item["document_object"] = {"S": key}
        self._dynamodb.put_item(TableName=self._table, Item=item)

    def get(self, key_id: str, tenant: str, response_id: str, now: int) -> StoredResponse | None:
        found = self._dynamodb.get_item(
            TableName=self._table,
            Key={"key_id": {"S": key_id}, "response_id": {"S": response_id}},
            # A client continues a response the moment it has it.
            ConsistentRead=True,
        ).get("Item")
        if found is None or found["tenant"]["S"] != tenant or int(found["expires_at"]["N"]) <= now:
            return None
        packed = self._document(found)
        if packed is None:
            return None
        return StoredResponse(
            response_id,
            key_id,
            tenant,
            int(found["created_at"]["N"]),
            int(found["expires_at"]["N"]),
            zlib.decompress(packed).decode("utf-8"),
        )

    def delete(self, key_id: str, tenant: str, response_id: str, now: int) -> bool:
        try:
            old = self._dynamodb.delete_item(
                TableName=self._table,
                Key={"key_id": {"S": key_id}, "response_id": {"S": response_id}},
                ConditionExpression="tenant = :tenant AND expires_at > :now",
                ExpressionAttributeValues={":tenant": {"S": tenant}, ":now": {"N": str(now)}},
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        pointer = old.get("document_object")
        if pointer is not None and self._s3 is not None and self._bucket:
            self._s3.delete_object(Bucket=self._bucket, Key=pointer["S"])
        return True

    def _document(self, item: dict[str, Any]) -> bytes | None:
        if "document" in item:
            return bytes(item["document"]["B"])
        if self._s3 is None or not self._bucket:
            return None
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=item["document_object"]["S"])["Body"]
        except self._s3.exceptions.NoSuchKey:
            # The lifecycle rule removed it (it runs by whole days, never before the item expires) or a delete
            # was cut between the item and the object: a miss, as for an expired item.
            return None
        return bytes(body.read())
