"""The Responses API routes: POST /responses, through the same use cases as chat completions (allow-lists,
fitting, budgets, usage records, fallbacks, streaming), POST /responses/compact (the same, answering a summary),
and the stored responses (GET and DELETE /responses/{id}, GET /responses/{id}/input_items), each the caller's key's
own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llm_gateway.api.http import EVENT_STREAM, Reply
from llm_gateway.config import get_settings
from llm_gateway.dialects.openai_responses import compaction, state
from llm_gateway.dialects.openai_responses.answer import ResponseWriter, compact
from llm_gateway.dialects.openai_responses.request import conversation
from llm_gateway.dialects.openai_responses.schemas import CompactRequest, ResponsesRequest
from llm_gateway.dialects.openai_responses.stream import EventProducer, sse_events, sse_frame
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.domain.stores import ResponseStore
from llm_gateway.errors import GatewayError

if TYPE_CHECKING:
    from llm_gateway.gateway import Answer, Gateway

TARGET_HEADER = "X-Gateway-Target"


@lru_cache(maxsize=1)
def response_store() -> ResponseStore | None:
    """The stored responses of this execution environment (None: none configured, nothing stored)."""
    from llm_gateway.store.factory import response_store as configured

    return configured(get_settings())


def response_id(api: ApiRequest) -> str:
    return f"resp_{api.request_id.replace('-', '')}" if api.request_id else "resp_gateway"


def responses(gateway: Gateway, request: ResponsesRequest, body: str, api: ApiRequest) -> Reply:
    """POST /responses: a response object, or a stream of the Responses API's typed events; stored unless
    `store: false` (OpenAI's default), continuing `previous_response_id` with its whole history."""
    if compaction.triggered(json.loads(body)):
        return _compaction_response(gateway, request, body, api)
    store = response_store()
    identifier = response_id(api)
    now = int(gateway.clock())
    items: list[dict[str, Any]] = []
    read, sent = request, body
    if store is not None:
        context = state.in_context(request, body, store, api.caller, response_id=identifier, now=now)
        read, sent, items = context.request, context.body, context.items
    keep = store is not None and request.store is not False
    chat = conversation(read, sent, hosted=_hosted(gateway, request.model, api))
    writer = ResponseWriter(request, identifier, now, chat.model, stored=keep)

    def save(response: dict[str, Any]) -> None:
        if store is not None and keep:
            days = gateway.settings.responses_expiry_days
            store.put(state.stored_response(api.caller, identifier, items, response, now=now, days=days))

    if not chat.stream:
        answer = gateway.complete(chat, api)
        text = writer.answer(answer.completion, int(gateway.clock()))
        # Before the answer goes out: a client continues a response the moment it has it.
        save(json.loads(text))
        return Reply(text, headers={TARGET_HEADER: answer.target}, finish=answer.settle)
    streamed = gateway.stream(chat, api)
    producer = EventProducer(writer, gateway.clock)
    return Reply(sse_events(producer, streamed.events, save), EVENT_STREAM, {TARGET_HEADER: streamed.target})


def compact_conversation(gateway: Gateway, request: CompactRequest, body: str, api: ApiRequest) -> Reply:
    """POST /responses/compact: the key's model summarises the conversation (its previous response's history
    included) under the key's budgets like any request, and the answer is the `response.compaction` object: the
    user messages, then a compaction item that a later request reads back as the summary. Nothing is stored."""
    identifier = response_id(api)
    now = int(gateway.clock())
    answer, items = _summarised(gateway, compaction.summary_body(json.loads(body)), api, identifier, now)
    compacted = compaction.compacted(
        request, identifier, now, compaction.kept_items(items, identifier), answer.completion
    )
    return Reply(compact(compacted), headers={TARGET_HEADER: answer.target}, finish=answer.settle)


def _hosted(gateway: Gateway, model: str, api: ApiRequest) -> bool:
    """Whether every target of the model serves the Responses API itself, so that what only such an upstream runs
    (hosted tools, `include`s) reaches it; an unknown or forbidden model is answered by the request's own path."""
    try:
        _, entry = gateway.model(model, api.caller)
    except GatewayError:
        return False
    return all(target.responses_api for target in entry.targets)


def _summarised(
    gateway: Gateway, body: dict[str, Any], api: ApiRequest, identifier: str, now: int
) -> tuple[Answer, list[dict[str, Any]]]:
    """The model's summary of the conversation in `body` (a summary request of compaction.py), its history
    resolved from the store, and the conversation's items (the summary prompt left out)."""
    store = response_store()
    read, text = ResponsesRequest.model_validate(body), compact(body)
    if store is not None:
        context = state.in_context(read, text, store, api.caller, response_id=identifier, now=now)
        read, text, items = context.request, context.body, context.items[:-1]
    else:
        items = state.as_items(body["input"])[:-1]
    return gateway.complete(conversation(read, text), api), items


def _compaction_response(gateway: Gateway, request: ResponsesRequest, body: str, api: ApiRequest) -> Reply:
    """POST /responses whose input ends with a `compaction_trigger` (Codex's remote compaction): a response whose
    one output item is the compaction item of the model's summary, as a JSON object or its stream of events."""
    identifier = response_id(api)
    now = int(gateway.clock())
    answer, items = _summarised(gateway, compaction.triggered_body(json.loads(body)), api, identifier, now)
    keep = response_store() is not None and request.store is not False
    writer = ResponseWriter(request, identifier, now, request.model, stored=keep)
    item = compaction.compaction_item(request.model, identifier, answer.completion)
    done = writer.response("completed", [item], answer.completion.usage, completed_at=int(gateway.clock()))
    store = response_store()
    if store is not None and keep:
        days = gateway.settings.responses_expiry_days
        store.put(state.stored_response(api.caller, identifier, items, done, now=now, days=days))
    headers = {TARGET_HEADER: answer.target}
    if not request.stream:
        return Reply(compact(done), headers=headers, finish=answer.settle)
    events = compaction.compaction_events(writer.response("in_progress", [], None), done)

    def frames() -> Iterator[str]:
        try:
            yield from (sse_frame(event) for event in events)
        finally:
            answer.settle()

    return Reply(frames(), EVENT_STREAM, headers)


def _stored(gateway: Gateway, api: ApiRequest, identifier: str) -> Any:
    store = response_store()
    found = (
        None
        if store is None or not state.is_response_id(identifier)
        else store.get(api.caller.key_id, api.caller.tenant, identifier, int(gateway.clock()))
    )
    if found is None:
        raise state.response_not_found(identifier)
    return found


def retrieve(gateway: Gateway, api: ApiRequest, identifier: str) -> Reply:
    """GET /responses/{id}: the stored response object."""
    return Reply(compact(state.response_object(_stored(gateway, api, identifier))))


def input_items(gateway: Gateway, api: ApiRequest, identifier: str, query: dict[str, str]) -> Reply:
    """GET /responses/{id}/input_items: every item the model read for it, a page at a time."""
    return Reply(compact(state.input_items_page(_stored(gateway, api, identifier), query)))


def delete(gateway: Gateway, api: ApiRequest, identifier: str) -> Reply:
    """DELETE /responses/{id}: gone for good (its large document too)."""
    store = response_store()
    caller = api.caller
    if (
        store is None
        or not state.is_response_id(identifier)
        or not store.delete(caller.key_id, caller.tenant, identifier, int(gateway.clock()))
    ):
        raise state.response_not_found(identifier)
    return Reply(compact({"id": identifier, "object": "response", "deleted": True}))
