"""Stored responses through the real API handler, driven by the official openai SDK, on SQLite and on DynamoDB
with S3 (moto): store, continue with previous_response_id (the history reaches the model and is counted in usage and
budgets), retrieve, input items, item references, delete; and another key gets exactly what an unknown id gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from llm_gateway.domain.stores import UsageLedger
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from tests.conftest import Handler, reset_caches
from tests.contract.store_backends import backend
from tests.fakes.handler_client import CALLER, handler_client

__all__ = ["backend"]

STRANGER = {**CALLER, "principalId": "key_0c0c0c0c0c0c", "keyId": "key_0c0c0c0c0c0c"}
OTHER_TENANT = {**CALLER, "tenant": "globex"}


def test_a_stored_response_is_continued_retrieved_listed_and_deleted(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    first = client.responses.create(model="echo", input="one two three", instructions="Be brief.")
    assert first.to_dict()["store"] is True and first.output_text == "one two three"
    second = client.responses.create(model="echo", input="four five", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "four five"
    # The model read the first turn (3 words), its answer (3) and the new input (2): echo counts every word it reads.
    assert first.usage is not None and first.usage.input_tokens == 3 + 2  # instructions included
    assert second.usage is not None and second.usage.input_tokens == 3 + 3 + 2

    again = client.responses.retrieve(second.id)
    assert again.id == second.id and again.output_text == "four five" and again.previous_response_id == first.id
    items = client.responses.input_items.list(second.id, order="asc")
    texts = [item.content[0].text for item in items.data]  # type: ignore[union-attr]
    assert texts == ["one two three", "one two three", "four five"]
    assert [item.role for item in items.data] == ["user", "assistant", "user"]  # type: ignore[union-attr]
    newest = client.responses.input_items.list(second.id, limit=1)
    assert newest.data[0].id == items.data[-1].id and newest.has_more
    assert [item.id for item in client.responses.input_items.list(second.id, limit=1)] == [
        item.id for item in reversed(items.data)
    ]  # the SDK pages through them with `after`

    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    assert client.responses.retrieve(first.id).id == first.id


def test_store_false_keeps_nothing(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    response = client.responses.create(model="echo", input="forget this", store=False)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_a_streamed_response_is_stored_when_its_last_event_arrives(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    events = list(client.responses.create(model="echo", input="streamed words", stream=True))
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed" and final.store is True
    assert client.responses.retrieve(final.id).output_text == "streamed words"
    second = client.responses.create(model="echo", input="next", previous_response_id=final.id, stream=True)
    assert [event.type for event in second][-1] == "response.completed"


def test_an_item_reference_is_the_stored_item(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    first = client.responses.create(model="echo", input="remember me")
    item = first.output[0]
    assert item.id is not None
    second = client.responses.create(
        model="echo", input=[{"type": "item_reference", "id": item.id}, {"role": "user", "content": "again"}]
    )  # type: ignore[list-item]
    assert second.usage is not None and second.usage.input_tokens == 2 + 1
    listed = client.responses.input_items.list(second.id, order="asc").data
    assert listed[0].id == item.id and listed[0].content[0].text == "remember me"  # type: ignore[union-attr]


def _error(call: Callable[[], Any]) -> tuple[type[Exception], dict[str, Any]]:
    with pytest.raises(openai.APIStatusError) as raised:
        call()
    body = raised.value.body
    assert isinstance(body, dict)
    return type(raised.value), body


@pytest.mark.parametrize("stranger", [STRANGER, OTHER_TENANT], ids=["another-key", "another-tenant"])
def test_another_key_gets_what_an_unknown_id_gets_on_every_route(
    api_handler: Handler, backend: str, stranger: dict[str, Any]
) -> None:
    owner, _ = handler_client(api_handler)
    other, _ = handler_client(api_handler, stranger)
    mine = owner.responses.create(model="echo", input="private words")
    item = mine.output[0].id
    assert item is not None
    unknown = "resp_" + "0" * len(mine.id.removeprefix("resp_"))
    unknown_item = item.replace(mine.id.removeprefix("resp_"), unknown.removeprefix("resp_"))

    def calls(response_id: str, item_id: str) -> list[Callable[[], Any]]:
        return [
            lambda: other.responses.retrieve(response_id),
            lambda: other.responses.input_items.list(response_id),
            lambda: other.responses.delete(response_id),
            lambda: other.responses.create(model="echo", input="hi", previous_response_id=response_id),
            lambda: other.responses.create(model="echo", input=[{"type": "item_reference", "id": item_id}]),  # type: ignore[list-item]
        ]

    for theirs, missing in zip(calls(mine.id, item), calls(unknown, unknown_item), strict=True):
        kind, body = _error(theirs)
        missing_kind, missing_body = _error(missing)
        assert kind is missing_kind
        # The same status, type, code and param, and the same message but for the id asked about.
        assert body["message"].replace(mine.id.removeprefix("resp_"), "X") == missing_body["message"].replace(
            unknown.removeprefix("resp_"), "X"
        )
        assert {k: v for k, v in body.items() if k != "message"} == {
            k: v for k, v in missing_body.items() if k != "message"
        }
    assert kind is openai.BadRequestError or kind is openai.NotFoundError
    # And the owner still has it whole.
    assert owner.responses.retrieve(mine.id).output_text == "private words"


def test_budgets_and_usage_count_the_history(
    api_handler: Handler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STORE", "sqlite")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    reset_caches()
    client, _ = handler_client(api_handler)
    first = client.responses.create(model="echo", input="one two three")
    client.responses.create(model="echo", input="four five", previous_response_id=first.id)
    ledger: UsageLedger = SqliteUsageStore(database(tmp_path))
    [day] = ledger.daily_usage(key_id=CALLER["keyId"])
    # 3 read by the first turn, 3 + 3 + 2 by the second.
    assert day.requests == 2 and day.prompt_tokens == 3 + 8
