"""Completions written as OpenAI's chat.completion objects, and the model cards.

An answer that an OpenAI-compatible upstream gave in this very format (`native`) goes back as the upstream
sent it, every field included; only the gateway's own decisions are applied (the public model name, and the
usage the gateway asked for on the caller's behalf removed when the caller did not ask for it)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from llm_gateway.dialects.openai_chat.schemas import (
    ChatCompletion,
    Choice,
    CompletionTokensDetails,
    FinishReason,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    ResponseFunctionCall,
    ResponseMessage,
    ResponseToolCall,
    UsageBody,
)
from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import StopReason
from llm_gateway.domain.registry import ModelEntry

# How each stop reason reads to an OpenAI client.
FINISH_REASONS: dict[StopReason, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


def finish_reason(reason: StopReason) -> FinishReason:
    return FINISH_REASONS[reason]


def usage_body(usage: Usage) -> UsageBody:
    cached = PromptTokensDetails(cached_tokens=usage.cached_tokens) if usage.cached_tokens else None
    reasoning = CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens) if usage.reasoning_tokens else None
    return UsageBody(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=cached,
        completion_tokens_details=reasoning,
    )


def chat_completion(completion: Completion, *, completion_id: str, created: int, model: str) -> str:
    """The chat.completion JSON for an answer: the upstream's own when it spoke OpenAI's dialect."""
    native = completion.native
    if native is not None and native.dialect == "openai":
        return json.dumps({**native.body, "model": model}, separators=(",", ":"), ensure_ascii=False)
    tool_calls = [
        ResponseToolCall(id=call.id, function=ResponseFunctionCall(name=call.name, arguments=call.arguments))
        for call in completion.tool_calls
    ]
    reasoning = "".join(block.text for block in completion.reasoning)
    text = completion.text
    message = ResponseMessage(
        content=None if not text and tool_calls else text,
        tool_calls=tool_calls or None,
        reasoning_content=reasoning or None,
    )
    body = ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[Choice(index=0, message=message, finish_reason=finish_reason(completion.stop_reason))],
        usage=usage_body(completion.usage),
    )
    return body.to_json()


def model_card(name: str, entry: ModelEntry) -> ModelCard:
    traits = entry.traits
    stated = traits.capabilities.model_dump(exclude={"source"}, exclude_none=True)
    sampling = {
        name: value
        for name, value in traits.sampling.model_dump(mode="json", exclude={"source"}, exclude_none=True).items()
        if value != []
    }
    return ModelCard(
        id=name,
        created=entry.created,
        owned_by=entry.owned_by,
        kind=entry.kind,
        dimensions=traits.embedding.dimensions,
        context_window=traits.limits.context_window,
        max_output_tokens=traits.limits.max_output_tokens,
        sampling=sampling or None,
        capabilities=stated or None,
    )


def model_list(models: Iterable[tuple[str, ModelEntry]]) -> ModelList:
    return ModelList(data=[model_card(name, entry) for name, entry in models])
