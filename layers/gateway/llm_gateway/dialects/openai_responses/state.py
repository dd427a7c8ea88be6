"""Stored responses in the Responses API's terms: what is kept of a response (every item the model read and the
response object), the history `previous_response_id` continues, `item_reference`s resolved from stored items, and
the input items list.

The store is the domain's port (domain/stores.py ResponseStore), addressed by the caller's key: another key's
response is exactly as absent as an unknown one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.stores import ResponseStore, StoredResponse
from llm_gateway.errors import InvalidRequestError, NotFoundError

DAY_SECONDS = 86_400
# OpenAI's input items list: 20 items a page unless asked, at most 100, newest first.
DEFAULT_PAGE = 20
MAX_PAGE = 100
# Item id prefixes by kind, as OpenAI's ids read.
_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
    "compaction": "cmp",
}
# Item kinds the Responses API lists with a `status` (its spec's ItemResource requires one), as the model's messages.
_WITH_STATUS = frozenset({"function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"})


def is_response_id(identifier: str) -> bool:
    return identifier.startswith("resp_")


def previous_not_found(response_id: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def response_not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", code="response_not_found")


@dataclass(frozen=True)
class Context:
    """A request with its stored history in `input` (what the model reads, and what budgets and usage count) and
    its body (JSON text) as the conversation reads it; `items` is every input item with its id, as it is kept."""

    request: ResponsesRequest
    body: str
    items: list[dict[str, Any]]


def in_context(
    request: ResponsesRequest, body: str, store: ResponseStore, caller: Caller, *, response_id: str, now: int
) -> Context:
    """The request continued from its previous response (if it names one) with its item references resolved:
    the previous response's input items and output come first, then the request's own items."""
    sent: dict[str, Any] = json.loads(body)
    history: list[dict[str, Any]] = []
    previous_id = request.previous_response_id
    if previous_id is not None:
        # The store keeps Anthropic's message threads (`msg_` ids) too: only a `resp_` id is a response.
        previous = store.get(caller.key_id, caller.tenant, previous_id, now) if is_response_id(previous_id) else None
        if previous is None:
            raise previous_not_found(previous_id)
        history = context_items(previous)
    own = [
        _listed(_with_id(_resolved(item, history, store, caller, now=now, path=f"input[{index}]"), response_id, index))
        for index, item in enumerate(as_items(sent.get("input")))
    ]
    items = history + own
    if previous_id is None and not any(item.get("type") == "item_reference" for item in as_items(sent.get("input"))):
        # Nothing to add: the request is read as it was sent and validated, not parsed again.
        return Context(request, body, items)
    expanded = {name: value for name, value in sent.items() if name != "previous_response_id"}
    expanded["input"] = items
    return Context(ResponsesRequest.model_validate(expanded), json.dumps(expanded, ensure_ascii=False), items)


def context_items(stored: StoredResponse) -> list[dict[str, Any]]:
    """What a continuation of `stored` reads before its own input: its input items, then its output."""
    document = json.loads(stored.document)
    return [*document["input"], *document["response"].get("output", [])]


def document(items: list[dict[str, Any]], response: dict[str, Any]) -> str:
    return json.dumps({"input": items, "response": response}, separators=(",", ":"), ensure_ascii=False)


def stored_response(
    caller: Caller, response_id: str, items: list[dict[str, Any]], response: dict[str, Any], *, now: int, days: int
) -> StoredResponse:
    return StoredResponse(
        response_id, caller.key_id, caller.tenant, now, now + days * DAY_SECONDS, document(items, response)
    )


def response_object(stored: StoredResponse) -> dict[str, Any]:
    response: dict[str, Any] = json.loads(stored.document)["response"]
    return response


def input_items_page(stored: StoredResponse, query: dict[str, str]) -> dict[str, Any]:
    """GET /responses/{id}/input_items: OpenAI's list object, newest first unless `order=asc`, `limit` items
    after the item `after`."""
    items: list[dict[str, Any]] = json.loads(stored.document)["input"]
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be 'asc' or 'desc'.", param="order")
    try:
        limit = int(query.get("limit", DEFAULT_PAGE))
    except ValueError:
        raise InvalidRequestError("limit must be an integer from 1 to 100.", param="limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError("limit must be an integer from 1 to 100.", param="limit")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequestError(f"No input item with id '{after}' in this response.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > limit,
    }


def as_items(value: Any) -> list[dict[str, Any]]:
    """The input as items: a text is one user message, as OpenAI lists it."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return [dict(item) for item in value or []]


def _with_id(item: dict[str, Any], response_id: str, index: int) -> dict[str, Any]:
    """The item with an id (its own, or one naming the response that read it, so a reference finds it)."""
    if item.get("id"):
        return item
    kind = str(item.get("type") or "message")
    prefix = _PREFIXES.get(kind, "item")
    return {"id": f"{prefix}_{response_id.removeprefix('resp_')}_in{index}", **item, "type": kind}


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the Responses API lists input items (the spec's ItemResource), which is how it is kept: a
    message's text as one content part (`output_text` in the model's own messages, which are output messages with
    annotations and a status; `input_text` in the others) and a status on tool calls and their outputs. Clients send
    the short forms (the Agents SDKs a message's `content` as a string, tool outputs without a status); the model
    reads the same either way."""
    kind = item.get("type")
    if kind in _WITH_STATUS:
        return {**item, "status": item.get("status") or "completed"}
    if kind != "message":
        return item
    assistant = item.get("role") == "assistant"
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "output_text" if assistant else "input_text", "text": content}]
    if not assistant or not isinstance(content, list):
        return {**item, "content": content}
    parts = [
        {"annotations": [], "logprobs": [], **part}
        if isinstance(part, dict) and part.get("type") == "output_text"
        else part
        for part in content
    ]
    return {**item, "content": parts, "status": item.get("status") or "completed"}


def _resolved(
    item: dict[str, Any], history: list[dict[str, Any]], store: ResponseStore, caller: Caller, *, now: int, path: str
) -> dict[str, Any]:
    """An item_reference as the item it names, found in the history being continued or in the response its id
    names (ids the gateway gives are `<kind>_<response>_<n>`); any other item as it is."""
    if item.get("type") != "item_reference":
        return item
    wanted = str(item.get("id") or "")
    for candidate in history:
        if candidate.get("id") == wanted:
            return candidate
    parts = wanted.split("_")
    if len(parts) >= 3:
        owner = store.get(caller.key_id, caller.tenant, f"resp_{parts[1]}", now)
        if owner is not None:
            document = json.loads(owner.document)
            for candidate in [*document["input"], *document["response"].get("output", [])]:
                if candidate.get("id") == wanted:
                    return dict(candidate)
    raise NotFoundError(f"Item with id '{wanted}' not found.", param=path, code="item_not_found")
