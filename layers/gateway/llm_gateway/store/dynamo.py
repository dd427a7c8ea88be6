"""The DynamoDB client and item (de)serialization shared by the stores."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


DYNAMODB_CONNECTIONS = 64


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    """One client per container; AWS_ENDPOINT_URL_DYNAMODB points it at a local endpoint when set."""
    import boto3
    from botocore.config import Config

    # Standard retry mode retries throttles and transient errors with backoff; 3 attempts keep the worst case
    # to seconds, far inside the request's time budget. A Lambda environment serves one request at a time, but
    # the local gateway serves many from one process: a pool smaller than its concurrent calls would open and
    # drop a connection for every call beyond it (botocore's default is 10).
    config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=DYNAMODB_CONNECTIONS)
    return boto3.client("dynamodb", config=config)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item; None values are left out."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def as_int(value: Any) -> int | None:
    return None if value is None else int(Decimal(value))


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    """One S3 client per container (the stored responses' large documents)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 3}))
