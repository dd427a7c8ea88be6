"""The Responses API route: POST /responses, through the same use cases as chat completions (allow-lists,
fitting, budgets, usage records, fallbacks, streaming), without server-side state yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway.api.http import EVENT_STREAM, Reply
from llm_gateway.dialects.openai_responses.answer import ResponseWriter
from llm_gateway.dialects.openai_responses.request import conversation
from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.dialects.openai_responses.stream import EventProducer, sse_events
from llm_gateway.domain.caller import ApiRequest

if TYPE_CHECKING:
    from llm_gateway.gateway import Gateway

TARGET_HEADER = "X-Gateway-Target"


def response_id(api: ApiRequest) -> str:
    return f"resp_{api.request_id.replace('-', '')}" if api.request_id else "resp_gateway"


def responses(gateway: Gateway, request: ResponsesRequest, body: str, api: ApiRequest) -> Reply:
    """POST /responses: a response object, or a stream of the Responses API's typed events."""
    chat = conversation(request, body)
    writer = ResponseWriter(request, response_id(api), int(gateway.clock()), chat.model)
    if not chat.stream:
        answer = gateway.complete(chat, api)
        text = writer.answer(answer.completion, int(gateway.clock()))
        return Reply(text, headers={TARGET_HEADER: answer.target}, finish=answer.settle)
    streamed = gateway.stream(chat, api)
    producer = EventProducer(writer, gateway.clock)
    return Reply(sse_events(producer, streamed.events), EVENT_STREAM, {TARGET_HEADER: streamed.target})
