"""Embeddings through the API function: the official SDK's floats and base64, a key's model list, the budget and the
usage record on the usage table (moto)."""

from __future__ import annotations

import array
import json
from datetime import UTC, datetime

import openai
import pytest

from emulator.lambda_context import LocalLambdaContext
from llm_gateway.store import dynamo
from tests.conftest import Handler
from tests.contract.conftest import Stack
from tests.fakes.handler_client import handler_client
from tests.fakes.proxy_events import api_event


@pytest.fixture(autouse=True)
def metering_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm_gateway.metering.utcnow", lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC))


def test_the_openai_sdk_gets_the_same_vectors_as_floats_and_as_base64(api_handler: Handler) -> None:
    client, transport = handler_client(api_handler)
    texts = ["Retrieval needs vectors", "from the same gateway"]
    decoded = client.embeddings.create(model="echo-embedding", input=texts)  # the SDK asks for base64
    assert json.loads(transport.responses[-1]["body"])["data"][0]["embedding"][:4].isascii()
    floats = client.embeddings.create(model="echo-embedding", input=texts, encoding_format="float")
    # The same float32 numbers: base64 carries them bit for bit, floats in 9 significant digits, which read back
    # as a float32 give the same value.
    assert [array.array("f", item.embedding) for item in decoded.data] == [
        array.array("f", item.embedding) for item in floats.data
    ]
    assert decoded.usage.prompt_tokens == 7
    sized = client.embeddings.create(model="echo-embedding", input="short", dimensions=64)
    assert len(sized.data[0].embedding) == 64
    assert client.models.retrieve("echo-embedding").id == "echo-embedding"
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model="echo", input="hello")
    assert chat_model.value.code == "unsupported_model"
    with pytest.raises(openai.BadRequestError) as embedding_model:
        client.chat.completions.create(model="echo-embedding", messages=[{"role": "user", "content": "hi"}])
    assert embedding_model.value.code == "unsupported_model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17-ultra")


def test_a_key_limited_to_other_models_cannot_see_or_embed_with_this_one(api_handler: Handler) -> None:
    caller = {"principalId": "k", "tenant": "acme", "keyId": "k", "plan": "standard", "models": "echo"}
    client, _ = handler_client(api_handler, caller)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("echo-embedding")
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="echo-embedding", input="hello")


def test_embeddings_reserve_and_settle_input_tokens_in_two_dynamodb_calls(stack: Stack, api_handler: Handler) -> None:
    context = LocalLambdaContext(function_name="ApiFunction")
    api_handler(api_event("embeddings.json"), context)  # the first request builds the clients
    calls: list[str] = []
    dynamo.dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    response = api_handler(api_event("embeddings.json"), context)
    assert response["statusCode"] == 200
    assert calls == ["UpdateItem", "UpdateItem"]
    item = stack.dynamodb.get_item(
        TableName=stack.outputs["UsageTableName"],
        Key={"key_id": {"S": "key_5f1c2a9b7e3d"}, "period": {"S": "2026-11"}},
    )["Item"]
    assert (item["requests_22"]["N"], item["prompt_tokens_22"]["N"], item["completion_tokens_22"]["N"]) == (
        "2",
        "10",
        "0",
    )
    assert item["budget_day_22"]["N"] == "10", "the reservation settled to the real usage"


def test_a_batch_larger_than_the_whole_budget_is_a_400_naming_the_input(stack: Stack, api_handler: Handler) -> None:
    response = api_handler(
        api_event("embeddings.json", tokensPerMinute=3), LocalLambdaContext(function_name="ApiFunction")
    )
    error = json.loads(response["body"])["error"]
    assert (response["statusCode"], error["code"], error["param"]) == (400, "request_exceeds_budget", "input")
    assert "send fewer or shorter inputs" in error["message"]
