"""The stored responses port's contract (domain/stores.py ResponseStore), run against DynamoDB with S3 (moto) and
SQLite alike: put and get by (key, id), nothing of one key visible to another, expiry, delete, large documents."""

from __future__ import annotations

import json

from llm_gateway.domain.stores import ResponseStore, StoredResponse
from tests.contract.store_backends import response_store

__all__ = ["response_store"]

NOW = 1_800_000_000
DAY = 86_400


def stored(
    response_id: str = "resp_1", key_id: str = "key_a", tenant: str = "acme", document: str = '{"a":1}', days: int = 30
) -> StoredResponse:
    return StoredResponse(response_id, key_id, tenant, NOW, NOW + days * DAY, document)


def test_a_stored_response_is_read_back_whole(response_store: ResponseStore) -> None:
    response_store.put(stored())
    assert response_store.get("key_a", "acme", "resp_1", NOW) == stored()
    assert response_store.get("key_a", "acme", "resp_2", NOW) is None


def test_no_other_key_or_tenant_reads_or_deletes_it(response_store: ResponseStore) -> None:
    response_store.put(stored())
    assert response_store.get("key_b", "acme", "resp_1", NOW) is None
    assert response_store.get("key_a", "globex", "resp_1", NOW) is None
    assert response_store.delete("key_b", "acme", "resp_1", NOW) is False
    assert response_store.delete("key_a", "globex", "resp_1", NOW) is False
    assert response_store.get("key_a", "acme", "resp_1", NOW) == stored()


def test_the_same_id_under_two_keys_is_two_responses(response_store: ResponseStore) -> None:
    response_store.put(stored(document='"a"'))
    response_store.put(stored(key_id="key_b", document='"b"'))
    assert response_store.get("key_a", "acme", "resp_1", NOW).document == '"a"'  # type: ignore[union-attr]
    assert response_store.get("key_b", "acme", "resp_1", NOW).document == '"b"'  # type: ignore[union-attr]


def test_an_expired_response_is_a_miss_and_cannot_be_deleted(response_store: ResponseStore) -> None:
    response_store.put(stored(days=1))
    assert response_store.get("key_a", "acme", "resp_1", NOW + DAY - 1) is not None
    assert response_store.get("key_a", "acme", "resp_1", NOW + DAY) is None
    assert response_store.delete("key_a", "acme", "resp_1", NOW + DAY) is False


def test_a_deleted_response_is_gone(response_store: ResponseStore) -> None:
    response_store.put(stored())
    assert response_store.delete("key_a", "acme", "resp_1", NOW) is True
    assert response_store.get("key_a", "acme", "resp_1", NOW) is None
    assert response_store.delete("key_a", "acme", "resp_1", NOW) is False


def test_a_document_beyond_dynamodbs_item_limit_is_stored_and_deleted(response_store: ResponseStore) -> None:
    # 1.5 MB of text that compresses badly (DynamoDB's item limit is 400 KB, compressed or not).
    words = [f"{(n * 2654435761) % 4294967296:x}" for n in range(180_000)]
    document = json.dumps({"input": [{"type": "message", "role": "user", "content": " ".join(words)}]})
    assert len(document) > 1_500_000
    response_store.put(stored(document=document))
    assert response_store.get("key_a", "acme", "resp_1", NOW).document == document  # type: ignore[union-attr]
    assert response_store.get("key_b", "acme", "resp_1", NOW) is None
    assert response_store.delete("key_a", "acme", "resp_1", NOW) is True
    assert response_store.get("key_a", "acme", "resp_1", NOW) is None


def test_a_large_document_lives_in_the_bucket_and_a_small_one_in_the_item(stack: object) -> None:
    import boto3

    from llm_gateway.store.responses import DynamoResponseStore, object_key

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket")
    table = stack.outputs["ResponsesTableName"]  # type: ignore[attr-defined]
    store = DynamoResponseStore(stack.dynamodb, table, s3, "bucket")  # type: ignore[attr-defined]
    store.put(stored(response_id="resp_small"))
    large = json.dumps([f"{(n * 2654435761) % 4294967296:x}" for n in range(20_000)])
    store.put(stored(response_id="resp_large", document=large))
    objects = [item["Key"] for item in s3.list_objects_v2(Bucket="bucket").get("Contents", [])]
    assert objects == [object_key("key_a", "resp_large")]
    store.delete("key_a", "acme", "resp_large", NOW)
    assert s3.list_objects_v2(Bucket="bucket").get("KeyCount") == 0
