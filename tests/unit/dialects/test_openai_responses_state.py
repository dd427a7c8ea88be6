"""Input items as the Responses dialect keeps and lists them: the short forms clients send (a message's text as a
string, tool outputs without a status) kept as OpenAI lists input items, conforming to its spec, and read back by a
continuation exactly as the short forms were read."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.dialects.openai_responses import state
from llm_gateway.dialects.openai_responses.request import conversation
from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.stores import StoredResponse
from tests.contract.test_openapi_conformance import violations

CALLER = Caller(tenant="acme", key_id="key_1", plan="standard")
NOW = 1_800_000_000
# What the OpenAI Agents SDKs send after a tool call: every item in its short form.
SHORT_FORMS: list[dict[str, Any]] = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "look this up"},
    {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"input": "word"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "a unit of language"},
    {"role": "assistant", "content": "a unit of language"},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and then?"}]},
]


class Responses:
    """The ResponseStore port in a dict, for one caller."""

    def __init__(self) -> None:
        self.kept: dict[str, StoredResponse] = {}

    def put(self, stored: StoredResponse) -> None:
        self.kept[stored.response_id] = stored

    def get(self, key_id: str, tenant: str, response_id: str, now: int) -> StoredResponse | None:
        return self.kept.get(response_id)

    def delete(self, key_id: str, tenant: str, response_id: str, now: int) -> bool:
        return self.kept.pop(response_id, None) is not None


def kept(store: Responses, body: dict[str, Any], response_id: str) -> state.Context:
    """The request in its context, stored as the API handler stores it (with an empty output)."""
    text = json.dumps(body)
    context = state.in_context(
        ResponsesRequest.model_validate(body), text, store, CALLER, response_id=response_id, now=NOW
    )
    response = {"id": response_id, "object": "response", "output": []}
    store.put(state.stored_response(CALLER, response_id, context.items, response, now=NOW, days=30))
    return context


def turns(request: ChatRequest) -> list[tuple[str, list[str]]]:
    return [(message.role, [type(block).__name__ for block in message.content]) for message in request.messages]


def test_short_forms_are_listed_as_the_spec_lists_input_items() -> None:
    store = Responses()
    kept(store, {"model": "echo", "input": SHORT_FORMS}, "resp_a")
    page = state.input_items_page(store.kept["resp_a"], {"order": "asc"})
    assert violations(page, "ResponseItemList") == []
    developer, user, call, output, assistant, explicit = page["data"]
    assert developer["content"] == [{"type": "input_text", "text": "Be brief."}]
    assert user["content"] == [{"type": "input_text", "text": "look this up"}]
    assert call["status"] == output["status"] == assistant["status"] == "completed"
    assert assistant["content"] == [
        {"type": "output_text", "text": "a unit of language", "annotations": [], "logprobs": []}
    ]
    assert explicit["content"] == SHORT_FORMS[-1]["content"] and "status" not in explicit
    assert all(item["id"] for item in page["data"])


def test_a_continuation_reads_the_kept_items_as_the_short_forms_were_read() -> None:
    store = Responses()
    kept(store, {"model": "echo", "input": SHORT_FORMS}, "resp_a")
    continued = kept(store, {"model": "echo", "input": "next", "previous_response_id": "resp_a"}, "resp_b")
    read_again = conversation(continued.request, continued.body)
    sent = {"model": "echo", "input": [*SHORT_FORMS, {"role": "user", "content": "next"}]}
    read_first = conversation(ResponsesRequest.model_validate(sent), json.dumps(sent))
    assert turns(read_again) == turns(read_first)
    # Every text the model reads (the system prompt included), in order, and the same tool calls and results.
    assert list(read_again.texts()) == list(read_first.texts())
