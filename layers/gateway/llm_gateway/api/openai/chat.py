"""The OpenAI surface's routes: chat completions, the /model prompt endpoint, the model list and model objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway.api.http import EVENT_STREAM, Reply
from llm_gateway.dialects.openai_chat.answer import chat_completion, model_card, model_list, usage_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest, PromptRequest, PromptResponse
from llm_gateway.dialects.openai_chat.stream import ChunkProducer, sse_events
from llm_gateway.domain.caller import ApiRequest
from llm_gateway.domain.conversation import ChatRequest, Message, TextBlock

if TYPE_CHECKING:
    from llm_gateway.gateway import Gateway
from llm_gateway.dialects.openai_chat.request import conversation

TARGET_HEADER = "X-Gateway-Target"


def chat_completions(gateway: Gateway, request: ChatCompletionRequest, body: str, api: ApiRequest) -> Reply:
    """POST /chat/completions: a chat.completion, or a stream of chat.completion.chunk events."""
    chat = conversation(request, body)
    completion_id, created = f"chatcmpl-{api.request_id}", int(gateway.clock())
    if not chat.stream:
        answer = gateway.complete(chat, api)
        text = chat_completion(answer.completion, completion_id=completion_id, created=created, model=chat.model)
        return Reply(text, headers={TARGET_HEADER: answer.target}, finish=answer.settle)
    streamed = gateway.stream(chat, api)
    producer = ChunkProducer(
        completion_id=completion_id, created=created, model=chat.model, include_usage=chat.include_usage
    )
    return Reply(sse_events(producer.chunks(streamed.events)), EVENT_STREAM, {TARGET_HEADER: streamed.target})


def prompt(gateway: Gateway, request: PromptRequest, api: ApiRequest) -> Reply:
    """POST /model: one prompt (to the default model unless one is named) in, its completion out."""
    model = request.model or gateway.settings.default_model
    chat = ChatRequest(
        model=model,
        messages=(Message("user", (TextBlock(request.prompt, path="prompt"),)),),
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
    )
    answer = gateway.complete(chat, api)
    completion = answer.completion
    response = PromptResponse(completion=completion.text, model=model, usage=usage_body(completion.usage))
    return Reply(response.to_json(), headers={TARGET_HEADER: answer.target}, finish=answer.settle)


def models(gateway: Gateway, api: ApiRequest) -> Reply:
    """GET /models: the models this key may use."""
    return Reply(model_list(gateway.models(api.caller)).to_json())


def model(gateway: Gateway, api: ApiRequest, name: str) -> Reply:
    """GET /models/{model}: one model this key may use, as OpenAI's model object (404 for any other name)."""
    return Reply(model_card(*gateway.model(name, api.caller)).to_json())
