"""Write units, read units and S3 requests per stored Responses API turn, as DynamoDB reports them.

A conversation continued turn after turn by `previous_response_id` is stored as the gateway stores it
(`DynamoResponseStore`: every item the model read and the response object, zlib-compressed, in the item up to 8 KB
and in an S3 object beyond), on DynamoDB Local with ResponsesTable created from template.yaml's own definition, every
call asking for `ReturnConsumedCapacity`. Each turn reads the previous response (the continuation) and writes its
own. S3 calls are counted by a stand-in client (S3 bills per request and stored byte, not per size of request).
The same conversation is also stored without a bucket (everything in the item) for comparison, until an item
passes DynamoDB's 400 KB limit.

Start DynamoDB Local as bench/usage_write_units.py says, then:

    .venv/bin/python bench/response_write_units.py --endpoint http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "gateway"), str(ROOT)]

from emulator.template import dynamodb_tables  # noqa: E402
from llm_gateway.dialects.openai_responses.state import document  # noqa: E402
from llm_gateway.domain.stores import StoredResponse  # noqa: E402
from llm_gateway.store.responses import DynamoResponseStore  # noqa: E402

# On-demand prices in us-east-1 (2026): per million write and read request units, per 1,000 S3 requests.
WRITE_UNIT_USD = 0.625 / 1_000_000
READ_UNIT_USD = 0.125 / 1_000_000
S3_PUT_USD = 0.005 / 1000
S3_GET_USD = 0.0004 / 1000
TURNS = (1, 2, 5, 10, 20, 50, 100)
PROFILES = {
    # (bytes of the user's input, bytes of the answer) a turn
    "chat": (400, 1500),
    "agent": (6000, 1000),
}


class CountingS3:
    """The S3 calls the store makes, counted and kept in memory."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls = {"PutObject": 0, "GetObject": 0, "DeleteObject": 0}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.calls["PutObject"] += 1
        self.objects[Key] = Body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls["GetObject"] += 1

        class Body:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def read(self) -> bytes:
                return self.data

        return {"Body": Body(self.objects[Key])}


def prose(rng: random.Random, size: int, words: list[str]) -> str:
    text: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(words)
        text.append(word)
        length += len(word) + 1
    return " ".join(text)


def consumed(client: Any) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []

    def ask(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "TOTAL"

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        capacity = parsed.get("ConsumedCapacity")
        if capacity:
            seen.append((model.name, float(capacity["CapacityUnits"])))

    for operation in ("PutItem", "GetItem", "DeleteItem"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", ask)
        client.meta.events.register(f"after-call.dynamodb.{operation}", record)
    return seen


def run(client: Any, table: str, profile: str, with_bucket: bool) -> list[dict[str, Any]]:
    rng = random.Random(26)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)
    ]
    user_bytes, answer_bytes = PROFILES[profile]
    s3 = CountingS3()
    store = DynamoResponseStore(client, table, s3 if with_bucket else None, "bench" if with_bucket else None)  # type: ignore[arg-type]
    calls = consumed(client)
    key_id = f"key_{uuid.uuid4().hex[:12]}"
    items: list[dict[str, Any]] = []
    previous: str | None = None
    rows = []
    for turn in range(1, max(TURNS) + 1):
        before = len(calls), dict(s3.calls)
        if previous is not None:
            found = store.get(key_id, "acme", previous, 0)
            assert found is not None
            stored_doc = json.loads(found.document)
            items = [*stored_doc["input"], *stored_doc["response"]["output"]]
        response_id = f"resp_{uuid.uuid4().hex}"
        items.append({"id": f"msg_{response_id[5:]}_in0", "type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": prose(rng, user_bytes, vocabulary)}]})  # fmt: skip
        output = [{"id": f"msg_{response_id[5:]}_0", "type": "message", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": prose(rng, answer_bytes, vocabulary), "annotations": [],
                                "logprobs": []}]}]  # fmt: skip
        usage = {"input_tokens": 1000 * turn, "output_tokens": 400, "total_tokens": 1000 * turn + 400}
        response = {"id": response_id, "object": "response", "status": "completed", "model": "claude-sonnet-4-5",
                    "output": output, "store": True, "previous_response_id": previous, "tools": [], "metadata": {},
                    "usage": usage}  # fmt: skip
        text = document(items, response)
        try:
            store.put(StoredResponse(response_id, key_id, "acme", 0, 10**10, text))
        except client.exceptions.ClientError as error:
            rows.append({"turn": turn, "error": error.response["Error"]["Code"]})
            break
        previous = response_id
        if turn in TURNS:
            made = calls[before[0] :]
            rows.append(
                {
                    "turn": turn,
                    "document_kb": round(len(text.encode()) / 1024, 1),
                    "compressed_kb": round(len(zlib.compress(text.encode())) / 1024, 1),
                    "write_units": sum(units for name, units in made if name == "PutItem"),
                    "read_units": sum(units for name, units in made if name == "GetItem"),
                    "s3_puts": s3.calls["PutObject"] - before[1]["PutObject"],
                    "s3_gets": s3.calls["GetObject"] - before[1]["GetObject"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB Local's URL")
    args = parser.parse_args()
    import boto3

    client = boto3.client(
        "dynamodb", endpoint_url=args.endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip
    table = f"bench-responses-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, **dynamodb_tables()["ResponsesTable"])
    print("| profile | turn | document KB | compressed KB | write units | read units | S3 PUT / GET | USD per turn |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for profile in PROFILES:
        for with_bucket in (True, False):
            for row in run(client, table, profile, with_bucket):
                label = profile + ("" if with_bucket else ", no bucket")
                if "error" in row:
                    print(f"| {label} | {row['turn']} | | | {row['error']} (item over 400 KB) | | | |")
                    continue
                usd = (
                    row["write_units"] * WRITE_UNIT_USD
                    + row["read_units"] * READ_UNIT_USD
                    + row["s3_puts"] * S3_PUT_USD
                    + row["s3_gets"] * S3_GET_USD
                )
                print(
                    f"| {label} | {row['turn']} | {row['document_kb']} | {row['compressed_kb']} | "
                    f"{row['write_units']:g} | {row['read_units']:g} | {row['s3_puts']} / {row['s3_gets']} | "
                    f"{usd:.7f} |"
                )


if __name__ == "__main__":
    main()
