"""The gateway's answers as OpenAI objects: completions, stream chunks and SSE frames, model cards.

An answer that an OpenAI-compatible upstream gave in this very dialect (`native`) goes back as the upstream
sent it, every field included; only the gateway's own decisions are applied (the public model name, and the
usage the gateway asked for on the caller's behalf removed when the caller did not ask for it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llm_gateway.api.http import guarded_frames
from llm_gateway.api.openai.schemas import (
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
from llm_gateway.domain.conversation import (
    Completion,
    Finish,
    NativeChunk,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)
from llm_gateway.domain.ports import closed_after
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


class ChunkProducer:
    """Turns stream events into OpenAI `chat.completion.chunk` objects.

    When the provider streams in OpenAI's own dialect (its first event is a `NativeChunk`), its chunks are
    forwarded as they are; otherwise chunks are built from the events. Either way the usage and finish reason
    seen are remembered, so streamed calls are metered like the others.
    """

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._model = model
        self._include_usage = include_usage
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None

    def _chunk(self, delta: dict[str, Any], finish: FinishReason | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self, events: Iterable[StreamEvent]) -> Iterator[dict[str, Any]]:
        with closed_after(events):
            iterator = iter(events)
            first = next(iterator, None)
            if isinstance(first, NativeChunk) and first.dialect == "openai":
                yield from self._forwarded(first, iterator)
                return
            yield self._chunk({"role": "assistant", "content": ""})
            if first is not None:
                yield from self._built(first)
            for event in iterator:
                yield from self._built(event)
        if self._include_usage and self.usage is not None:
            yield {**self._base, "choices": [], "usage": usage_body(self.usage).model_dump(exclude_none=True)}

    def _built(self, event: StreamEvent) -> Iterator[dict[str, Any]]:
        if isinstance(event, TextDelta):
            yield self._chunk({"content": event.text})
        elif isinstance(event, ReasoningDelta):
            yield self._chunk({"reasoning_content": event.text})
        elif isinstance(event, ToolCallStart):
            function = {"name": event.name, "arguments": ""}
            yield self._chunk(
                {"tool_calls": [{"index": event.index, "id": event.id, "type": "function", "function": function}]}
            )
        elif isinstance(event, ToolCallArgumentsDelta):
            yield self._chunk({"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]})
        elif isinstance(event, Finish):
            self.finish_reason = finish_reason(event.reason)
            yield self._chunk({}, self.finish_reason)
        elif isinstance(event, UsageReport):
            self.usage = event.usage

    def _forwarded(self, first: NativeChunk, events: Iterator[StreamEvent]) -> Iterator[dict[str, Any]]:
        chunk = self._native(first.data)
        if chunk is not None:
            yield chunk
        for event in events:
            if isinstance(event, NativeChunk):
                chunk = self._native(event.data)
                if chunk is not None:
                    yield chunk
            elif isinstance(event, Finish):
                self.finish_reason = finish_reason(event.reason)
            elif isinstance(event, UsageReport):
                self.usage = event.usage

    def _native(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """An upstream chunk as the caller gets it: under the public model name, and without the usage the
        gateway asked for on its own account (a usage-only chunk is dropped, a null `usage` key removed)."""
        chunk = {**data, "model": self._model} if "model" in data else dict(data)
        if not self._include_usage and "usage" in chunk:
            if not chunk.get("choices"):
                return None
            del chunk["usage"]
        return chunk


def sse_frame(data: Mapping[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {payload}\n\n"


def sse_events(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    """SSE frames ending in `data: [DONE]`; an error after the stream began becomes an error frame instead."""
    if (yield from guarded_frames(chunks, sse_frame, lambda error: sse_frame(error.body()))):
        yield sse_frame("[DONE]")
