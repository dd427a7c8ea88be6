"""POST /responses/compact through the real API handler, driven by the official openai SDK's
`client.responses.compact`: the key's model writes the summary under the key's budget (reserved, settled and
recorded like any request), the answer is OpenAI's `response.compaction` object (the user messages, then one
compaction item), and the compaction item is read back as that summary by a later request; with and without a
response store (`previous_response_id` only with one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from llm_gateway.dialects.openai_responses.compaction import SUMMARY_PROMPT
from llm_gateway.dialects.openai_responses.sealed import compaction_summary
from llm_gateway.domain.stores import UsageLedger
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from tests.conftest import Handler, reset_caches
from tests.contract.store_backends import backend
from tests.contract.test_openapi_conformance import violations
from tests.fakes.handler_client import CALLER, handler_client

__all__ = ["backend"]

HISTORY: list[Any] = [
    {"role": "user", "content": "Fix the failing build."},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "The test imports a module that moved."}],
    },
    {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"cmd": "pytest"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "1 failed"},
    {"role": "user", "content": "Now update the import."},
]
SHELL = {"type": "function", "name": "shell", "parameters": {"type": "object"}}


def summary_of(item: Any) -> str | None:
    return compaction_summary(item.encrypted_content)


def test_a_conversation_compacts_into_its_user_messages_and_one_compaction_item(
    api_handler: Handler, backend: str
) -> None:
    client, transport = handler_client(api_handler)
    compacted = client.responses.compact(model="echo", input=HISTORY, instructions="You are a coding agent.")
    # The object as OpenAI's published spec defines it.
    assert violations(json.loads(transport.responses[-1]["body"]), "CompactResource") == []
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    *kept, item = compacted.output
    assert [message.content[0].text for message in kept] == ["Fix the failing build.", "Now update the import."]  # type: ignore[union-attr]
    assert item.type == "compaction" and item.id.startswith("cmp_")
    # echo answers the last user message: the summary prompt, which the model read after the whole conversation.
    assert summary_of(item) == SUMMARY_PROMPT
    words = sum(len(text.split()) for text in ["You are a coding agent.", "Fix the failing build."])
    assert compacted.usage.input_tokens > words and compacted.usage.output_tokens == len(SUMMARY_PROMPT.split())

    # Sent back (as Codex does with its new history), the compaction item reads as the summary.
    following: list[Any] = [entry.model_dump(exclude_none=True) for entry in compacted.output]
    answer = client.responses.create(model="echo", input=[*following, {"role": "user", "content": "Go on."}])
    assert answer.output_text == "Go on."
    assert answer.usage is not None and answer.usage.input_tokens > len(SUMMARY_PROMPT.split())
    history = client.responses.input_items.list(answer.id, order="asc")
    assert [entry.type for entry in history.data][-2:] == ["compaction", "message"]


def test_tools_of_the_history_are_offered_but_not_called(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    compacted = client.responses.compact(model="echo", input=HISTORY, extra_body={"tools": [SHELL]})
    assert compacted.output[-1].type == "compaction"


def test_a_previous_response_is_compacted_with_its_history(api_handler: Handler, backend: str) -> None:
    client, _ = handler_client(api_handler)
    first = client.responses.create(model="echo", input="first words here")
    compacted = client.responses.compact(model="echo", input="and more", previous_response_id=first.id)
    *kept, item = compacted.output
    assert [message.content[0].text for message in kept] == ["first words here", "and more"]  # type: ignore[union-attr]
    assert item.type == "compaction"
    # It read the first turn (3 words), its answer (3), the new input (2) and the summary prompt.
    assert compacted.usage.input_tokens == 3 + 3 + 2 + len(SUMMARY_PROMPT.split())
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.compact(model="echo", input="x", previous_response_id="resp_" + "0" * 32)
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "previous_response_not_found"


def test_compaction_is_metered_like_any_request(
    api_handler: Handler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STORE", "sqlite")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    reset_caches()
    client, _ = handler_client(api_handler)
    compacted = client.responses.compact(model="echo", input="one two three")
    ledger: UsageLedger = SqliteUsageStore(database(tmp_path))
    [day] = ledger.daily_usage(key_id=CALLER["keyId"])
    assert day.requests == 1 and day.prompt_tokens == compacted.usage.input_tokens == 3 + len(SUMMARY_PROMPT.split())
    assert day.completion_tokens == compacted.usage.output_tokens


def test_bad_compaction_requests_are_400s_that_change_nothing(api_handler: Handler) -> None:
    client, transport = handler_client(api_handler)
    for body, param in [
        ({"input": "x"}, "model"),
        ({"model": "echo", "input": [{"type": "message", "role": "robot", "content": "x"}]}, None),
        ({"model": "echo", "input": [{"type": "compaction", "encrypted_content": "gAAAA-openai"}]}, None),
    ]:
        with pytest.raises(openai.BadRequestError) as raised:
            client.post("/responses/compact", body=body, cast_to=object)
        error = raised.value.body
        assert isinstance(error, dict) and error["type"] == "invalid_request_error", error
        if param is not None:
            assert error["param"] == param
    assert all(json.loads(reply["body"])["error"] for reply in transport.responses)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_a_compaction_trigger_is_answered_with_one_compaction_item(
    api_handler: Handler, backend: str, streamed: bool
) -> None:
    """Codex's remote compaction: its history ending in a `compaction_trigger` item, sent to POST /responses."""
    client, _ = handler_client(api_handler)
    body: dict[str, Any] = {"model": "echo", "input": [*HISTORY, {"type": "compaction_trigger"}], "store": False}
    if not streamed:
        response = client.responses.create(**body)
    else:
        events = list(client.responses.create(**body, stream=True))
        assert [event.type for event in events] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed",
        ]
        assert [event.sequence_number for event in events] == list(range(5))
        response = events[-1].response  # type: ignore[union-attr]
    [item] = response.output
    assert item.type == "compaction" and summary_of(item) == SUMMARY_PROMPT
    assert response.status == "completed" and response.usage is not None
    assert response.usage.output_tokens == len(SUMMARY_PROMPT.split())
    # The summary request read the history, not the trigger: a model would refuse an item it does not know.
    assert response.usage.input_tokens > len(SUMMARY_PROMPT.split()) + 8
    assert violations(response.model_dump(mode="json", exclude_none=False), "Response") == []
    next_turn = [item.model_dump(exclude_none=True), {"role": "user", "content": "Go on."}]
    assert client.responses.create(model="echo", input=next_turn, store=False).output_text == "Go on."
