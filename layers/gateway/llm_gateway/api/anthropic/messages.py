"""The Anthropic surface's routes: POST /messages, POST /messages/count_tokens, and GET /models for clients
that send `anthropic-version`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llm_gateway.api.http import EVENT_STREAM, Reply
from llm_gateway.config import get_settings
from llm_gateway.dialects.anthropic_messages import threads
from llm_gateway.dialects.anthropic_messages.answer import message_json
from llm_gateway.dialects.anthropic_messages.models import model_info, model_page
from llm_gateway.dialects.anthropic_messages.schemas import (
    CountTokensRequest,
    MessagesRequest,
)
from llm_gateway.dialects.anthropic_messages.stream import EventProducer, sse_events
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.domain.stores import ResponseStore
from llm_gateway.errors import InvalidRequestError, ModelNotFoundError

if TYPE_CHECKING:
    from llm_gateway.gateway import Gateway
from llm_gateway.dialects.anthropic_messages.request import conversation

TARGET_HEADER = "X-Gateway-Target"
BETA_HEADER = "anthropic-beta"


@lru_cache(maxsize=1)
def thread_store() -> ResponseStore | None:
    """Where this execution environment keeps message threads: the stored-responses store (None: none
    configured, so no thread can be continued and the SDKs resend the whole conversation)."""
    from llm_gateway.store.factory import response_store

    return response_store(get_settings())


def messages(gateway: Gateway, request: MessagesRequest, body: str, api: ApiRequest) -> Reply:
    """POST /messages: a message, or a stream of Anthropic's server-sent events; with `thread` (the
    message-threads beta), the stored conversation first and the reply kept for the next turn."""
    store = thread_store() if (request.model_extra or {}).get("thread") is not None else None
    threaded = threads.in_thread(request, body, betas(api.headers), store, api.caller, now=int(gateway.clock()))
    chat = conversation(threaded.request, threaded.body, threaded.betas)
    message_id = f"msg_{api.request_id.replace('-', '')}" if api.request_id else "msg_gateway"

    def save(reply: Mapping[str, Any]) -> None:
        if store is not None and threaded.mode is not None:
            store.put(threads.stored_thread(api.caller, threaded, reply, now=int(gateway.clock())))

    if not chat.stream:
        answer = gateway.complete(chat, api)
        text = message_json(answer.completion, message_id=message_id, model=chat.model)
        # Before the answer goes out: a client continues the thread the moment it has the reply.
        save(json.loads(text))
        return Reply(text, headers={TARGET_HEADER: answer.target}, finish=answer.settle)
    streamed = gateway.stream(chat, api)
    producer = EventProducer(message_id=message_id, model=chat.model)
    events = threads.recorded(producer.events(streamed.events), save)
    return Reply(sse_events(events), EVENT_STREAM, {TARGET_HEADER: streamed.target})


def count_tokens(gateway: Gateway, request: CountTokensRequest, body: str, api: ApiRequest) -> Reply:
    """POST /messages/count_tokens: {"input_tokens": N} for the conversation (a thread's stored one first), as the
    model's provider counts it (Bedrock's CountTokens for Anthropic's models, the echo model's word count), else the
    gateway's estimate."""
    store = thread_store() if (request.model_extra or {}).get("thread") is not None else None
    read = threads.counted_in_thread(request, body, betas(api.headers), store, api.caller, now=int(gateway.clock()))
    chat = conversation(*read)
    return Reply(json.dumps({"input_tokens": gateway.count_tokens(chat, api)}))


def models(gateway: Gateway, api: ApiRequest, query: Mapping[str, str]) -> Reply:
    """GET /models in Anthropic's shape: {"data": [...], "has_more", "first_id", "last_id"}, paged by `limit`
    (1-1000, default 20), `after_id` and `before_id`."""
    raw_limit = query.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be an integer from 1 to 1000.", param="limit")
    # The Messages API serves chat models only: embedding models are no choice of Anthropic clients.
    chat_models = [(name, entry) for name, entry in gateway.models(api.caller) if entry.kind == "chat"]
    page = model_page(chat_models, limit=limit, after_id=query.get("after_id"), before_id=query.get("before_id"))
    return Reply(json.dumps(page))


def model(gateway: Gateway, api: ApiRequest, name: str) -> Reply:
    """GET /models/{model_id} in Anthropic's shape (a ModelInfo object); 404 for a model the key may not use and
    for an embedding model, which the Messages API cannot call."""
    found, entry = gateway.model(name, api.caller)
    if entry.kind != "chat":
        raise ModelNotFoundError(name)
    return Reply(json.dumps(model_info(found, entry)))


def betas(headers: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The beta features named in anthropic-beta headers (comma-separated, possibly repeated)."""
    return tuple(
        beta.strip()
        for name, value in headers
        if name.lower() == BETA_HEADER
        for beta in value.split(",")
        if beta.strip()
    )
