"""The DynamoDB client and item (de)serialization shared by the stores."""

from __future__ import annotations

import platform
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


DYNAMODB_CONNECTIONS = 64
# Names the gateway in the User-Agent of its DynamoDB calls (CloudTrail's userAgent field).
USER_AGENT = "llm-gateway"


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    """One client per container; AWS_ENDPOINT_URL_DYNAMODB points it at a local endpoint when set."""
    import boto3

    return boto3.client("dynamodb", config=dynamodb_config())


def dynamodb_config() -> Config:
    """The DynamoDB client's settings, chosen for a chat request's two UpdateItem calls (measured in
    bench/handler_cpu.py; docs/benchmarks.md).

    - Standard retry mode retries throttles and transient errors with backoff; 3 attempts keep the worst case to
      seconds, far inside the request's time budget.
    - A pool of DYNAMODB_CONNECTIONS: a Lambda environment serves one request at a time, but the local gateway and
      managed instances serve many from one process, and a pool smaller than the concurrent calls would open and
      drop a connection for every call beyond it (botocore's default is 10).
    - A fixed User-Agent (`user_agent`): botocore otherwise rebuilds and sanitises its User-Agent header of about 36
      components twice per call, about 120 µs of a 400 µs UpdateItem.
    - No client-side parameter validation (`parameter_validation`, which AWS documents may be turned off): the
      requests are built by the stores' own code, DynamoDB validates them again, and the tests validate every
      request against the service model (tests/conftest.py).
    """
    import boto3
    import botocore
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=DYNAMODB_CONNECTIONS,
        user_agent=f"{USER_AGENT} Boto3/{boto3.__version__} Botocore/{botocore.__version__} "
        f"Python/{platform.python_version()}",
        parameter_validation=False,
    )


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
