"""Anthropic's message threads (beta `message-threads-2026-08-12`): a conversation kept on the gateway for a few
minutes so that each turn sends only its new messages.

`thread: {"type": "create"}` keeps the conversation, the reply included, under the reply's `id`;
`{"type": "continue", "previous_message_id": ...}` reads that conversation (its `system` and `tools` too) before the
request's own messages, so the model, budgets and usage see the whole context. A thread lives on the stored-responses
port (domain/stores.py ResponseStore) under the reply's `msg_` id, the key's own like every stored response. Whatever
cannot be continued (expired, unknown, another key's, another model) is Anthropic's 404 `thread_not_found`, and a
reply continued a second time Anthropic's 400 `thread_already_continued`: on both the SDKs' thread helper sends the
whole conversation again under a new thread. count_tokens reads a thread the same way, without continuing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from llm_gateway.dialects.anthropic_messages.schemas import CountTokensRequest, MessagesRequest
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.stores import ResponseStore, StoredResponse
from llm_gateway.errors import InvalidRequestError, NotFoundError

MESSAGE_THREADS_BETA = "message-threads-2026-08-12"
# Anthropic keeps a thread 5 minutes after its last request; each stored reply restarts the count.
THREAD_SECONDS = 300
# Fields a thread keeps from its `create`; a `continue` that sends them again is refused, as Anthropic does.
CREATE_ONLY_FIELDS = ("system", "tools")
THREAD_NOT_FOUND = "thread_not_found"
THREAD_ALREADY_CONTINUED = "thread_already_continued"
# The id of the item that marks a reply continued: its own id and this, so it is never a reply's.
CONTINUED_SUFFIX = "#continued"
# Ids the Messages API gives its replies; a stored response's `resp_` id is never a thread.
MESSAGE_ID_PREFIX = "msg_"

ThreadMode = Literal["create", "continue"]
R = TypeVar("R", MessagesRequest, CountTokensRequest)


def thread_not_found(message_id: str) -> NotFoundError:
    return NotFoundError(
        f"No usable thread state was found for previous_message_id '{message_id}'. Send the whole conversation "
        'again with thread: {"type": "create"}.',
        param="thread.previous_message_id",
        code=THREAD_NOT_FOUND,
    )


@dataclass(frozen=True)
class Threaded:
    """A Messages request with its thread read in: `request` and `body` are what the model reads (the stored
    conversation, then the new messages; no `thread` field), `betas` the request's without the threads beta (no
    provider takes it), `mode` the thread asked for (None: no thread), and `fields`/`messages`/`model` what a reply
    is stored with."""

    request: MessagesRequest
    body: str
    betas: tuple[str, ...]
    mode: ThreadMode | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    messages: list[Any] = field(default_factory=list)


def in_thread(
    request: MessagesRequest,
    body: str,
    betas: tuple[str, ...],
    store: ResponseStore | None,
    caller: Caller,
    *,
    now: int,
) -> Threaded:
    """The request read into its thread, if it names one: a `create` as sent, a `continue` after the stored
    conversation of `previous_message_id` with the thread's `system` and `tools`. A reply is continued once, as
    Anthropic's are: a second continue from it is Anthropic's 400 `thread_already_continued` (the SDKs' thread
    helper then sends the whole conversation under a new thread)."""
    read = _read(request.model_extra, request.model, body, betas, store=store, caller=caller, now=now, claim=True)
    if read is None:
        return Threaded(request, body, betas)
    mode, sent, fields, others = read
    return Threaded(_validated(sent, MessagesRequest), json.dumps(sent, ensure_ascii=False), others, mode, fields,
                    sent["messages"])  # fmt: skip


def counted_in_thread(
    request: CountTokensRequest,
    body: str,
    betas: tuple[str, ...],
    store: ResponseStore | None,
    caller: Caller,
    *,
    now: int,
) -> tuple[CountTokensRequest, str, tuple[str, ...]]:
    """A count_tokens request with `thread`, read as the Messages request would be: a `continue` counts the stored
    conversation before the new messages (the context the model would read), and does not continue the thread."""
    read = _read(request.model_extra, request.model, body, betas, store=store, caller=caller, now=now, claim=False)
    if read is None:
        return request, body, betas
    _, sent, _, others = read
    return _validated(sent, CountTokensRequest), json.dumps(sent, ensure_ascii=False), others


def _read(
    extra: Mapping[str, Any] | None,
    model: str,
    body: str,
    betas: tuple[str, ...],
    *,
    store: ResponseStore | None,
    caller: Caller,
    now: int,
    claim: bool,
) -> tuple[ThreadMode, dict[str, Any], dict[str, Any], tuple[str, ...]] | None:
    """The thread a request names (None: none): its mode, the body the model reads (no `thread`; a continue's
    stored messages, system and tools first), the fields the thread keeps, the betas without the threads beta.
    `claim`: a continue marks its previous reply continued."""
    thread = (extra or {}).get("thread")
    if thread is None:
        return None
    if MESSAGE_THREADS_BETA not in betas:
        raise InvalidRequestError(
            f"thread: message threads need the anthropic-beta header '{MESSAGE_THREADS_BETA}'.", param="thread"
        )
    mode, previous_id = _thread_param(thread)
    sent: dict[str, Any] = json.loads(body)
    del sent["thread"]
    others = tuple(beta for beta in betas if beta != MESSAGE_THREADS_BETA)
    if mode == "create":
        return mode, sent, {name: sent[name] for name in CREATE_ONLY_FIELDS if name in sent}, others
    for name in CREATE_ONLY_FIELDS:
        if name in sent:
            raise InvalidRequestError(
                f"{name}: a thread keeps the {name} of the request that created it; leave it out of a continue.",
                param=name,
            )
    stored = None
    if store is not None and previous_id.startswith(MESSAGE_ID_PREFIX):
        stored = store.get(caller.key_id, caller.tenant, previous_id, now)
    document = _document(stored)
    if store is None or stored is None or document is None or document.get("model") != model:
        raise thread_not_found(previous_id)
    if claim:
        _claim(store, caller, stored, now)
    fields = dict(document["fields"])
    return mode, {**sent, **fields, "messages": [*document["messages"], *sent["messages"]]}, fields, others


def _claim(store: ResponseStore, caller: Caller, previous: StoredResponse, now: int) -> None:
    """Mark `previous` continued (a small item of its own beside it, expiring with it), or refuse a second continue.
    Two continues racing may both pass: the store offers no conditional write, and the cost is only a branch."""
    marker = previous.response_id + CONTINUED_SUFFIX
    if store.get(caller.key_id, caller.tenant, marker, now) is not None:
        raise InvalidRequestError(
            f"The reply '{previous.response_id}' has already been continued, and each reply can be continued only "
            "once. Continue from the thread's most recent reply, or send the whole conversation again with "
            'thread: {"type": "create"}.',
            param="thread.previous_message_id",
            code=THREAD_ALREADY_CONTINUED,
        )
    store.put(StoredResponse(marker, caller.key_id, caller.tenant, now, previous.expires_at, "{}"))


def _validated(body: dict[str, Any], schema: type[R]) -> R:
    try:
        return schema.model_validate(body)
    except ValidationError as error:
        raise InvalidRequestError(
            f"The thread's conversation is not a valid request: {error}", param="messages"
        ) from None


def stored_thread(caller: Caller, threaded: Threaded, reply: Mapping[str, Any], *, now: int) -> StoredResponse:
    """The thread after `reply` (a message object), kept under the reply's id for THREAD_SECONDS."""
    messages = [*threaded.messages, {"role": "assistant", "content": list(reply.get("content") or [])}]
    document = {"model": threaded.request.model, "fields": dict(threaded.fields), "messages": messages}
    return StoredResponse(
        str(reply["id"]),
        caller.key_id,
        caller.tenant,
        now,
        now + THREAD_SECONDS,
        json.dumps(document, separators=(",", ":"), ensure_ascii=False),
    )


def recorded(
    events: Iterator[tuple[str, Mapping[str, Any]]], save: Callable[[Mapping[str, Any]], None]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The stream's events unchanged; at `message_stop`, before it goes out, `save` gets the message they built."""
    message: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    partial_json: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = dict(data.get("message") or {})
        elif name == "content_block_start":
            blocks[int(data["index"])] = dict(data.get("content_block") or {})
        elif name == "content_block_delta":
            _apply_delta(blocks, partial_json, int(data["index"]), data.get("delta") or {})
        elif name == "message_stop" and message:
            for index, text in partial_json.items():
                blocks[index]["input"] = json.loads(text) if text else {}
            save({**message, "content": [blocks[index] for index in sorted(blocks)]})
        yield name, data


def _apply_delta(
    blocks: dict[int, dict[str, Any]], partial_json: dict[int, str], index: int, delta: Mapping[str, Any]
) -> None:
    block = blocks.setdefault(index, {})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + str(delta.get("text", ""))
    elif kind == "input_json_delta":
        partial_json[index] = partial_json.get(index, "") + str(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
    elif kind == "signature_delta":
        block["signature"] = block.get("signature", "") + str(delta.get("signature", ""))
    elif kind == "citations_delta":
        block.setdefault("citations", []).append(delta.get("citation"))


def _thread_param(thread: Any) -> tuple[ThreadMode, str]:
    if isinstance(thread, dict) and thread.get("type") == "create":
        return "create", ""
    if isinstance(thread, dict) and thread.get("type") == "continue":
        previous = thread.get("previous_message_id")
        if isinstance(previous, str) and previous:
            return "continue", previous
        raise InvalidRequestError(
            "thread.previous_message_id: a continue names the id of the previous reply.",
            param="thread.previous_message_id",
        )
    raise InvalidRequestError('thread: expected {"type": "create"} or {"type": "continue", ...}.', param="thread")


def _document(stored: StoredResponse | None) -> dict[str, Any] | None:
    """A stored thread's document; None for anything else (a stored Responses API response has no `messages`)."""
    if stored is None:
        return None
    document = json.loads(stored.document)
    return document if isinstance(document, dict) and "messages" in document and "fields" in document else None
