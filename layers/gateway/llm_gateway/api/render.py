"""Provider-neutral results rendered as OpenAI objects: completions, stream chunks and SSE frames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from llm_gateway.api.schemas import (
    ChatCompletion,
    Choice,
    FinishReason,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    ResponseFunctionCall,
    ResponseMessage,
    ResponseToolCall,
    UsageBody,
)
from llm_gateway.domain.registry import ModelEntry
from llm_gateway.errors import GatewayError, ProviderError
from llm_gateway.observability import current_request, logger
from llm_gateway.providers.base import (
    Completion,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    closed_after,
)


def usage_body(usage: Usage) -> UsageBody:
    details = PromptTokensDetails(cached_tokens=usage.cached_tokens) if usage.cached_tokens else None
    return UsageBody(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=details,
    )


def chat_completion(completion: Completion, *, completion_id: str, created: int, model: str) -> ChatCompletion:
    tool_calls = [
        ResponseToolCall(id=call.id, function=ResponseFunctionCall(name=call.name, arguments=call.arguments))
        for call in completion.tool_calls
    ]
    message = ResponseMessage(content=completion.content, tool_calls=tool_calls or None)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[Choice(index=0, message=message, finish_reason=completion.finish_reason)],
        usage=usage_body(completion.usage),
    )


def model_card(name: str, entry: ModelEntry) -> ModelCard:
    traits = entry.traits
    stated = traits.capabilities.model_dump(exclude={"source"}, exclude_none=True)
    return ModelCard(
        id=name,
        created=entry.created,
        owned_by=entry.owned_by,
        context_window=traits.limits.context_window,
        max_output_tokens=traits.limits.max_output_tokens,
        capabilities=stated or None,
    )


def model_list(models: Iterable[tuple[str, ModelEntry]]) -> ModelList:
    return ModelList(data=[model_card(name, entry) for name, entry in models])


class ChunkProducer:
    """Turns provider stream events into OpenAI `chat.completion.chunk` objects.

    It is independent of how the chunks are delivered and remembers
    the usage and finish reason it saw, so streamed calls are metered like the others.
    """

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self, events: Iterable[StreamEvent]) -> Iterator[dict[str, Any]]:
        with closed_after(events):
            yield self._chunk({"role": "assistant", "content": ""})
            for event in events:
                if isinstance(event, TextDelta):
                    yield self._chunk({"content": event.text})
                elif isinstance(event, ToolCallStart):
                    call = {
                        "index": event.index,
                        "id": event.id,
                        "type": "function",
                        "function": {"name": event.name, "arguments": ""},
                    }
                    yield self._chunk({"tool_calls": [call]})
                elif isinstance(event, ToolCallArgumentsDelta):
                    arguments = {"index": event.index, "function": {"arguments": event.arguments}}
                    yield self._chunk({"tool_calls": [arguments]})
                elif isinstance(event, Finish):
                    self.finish_reason = event.reason
                    yield self._chunk({}, event.reason)
                elif isinstance(event, UsageReport):
                    self.usage = event.usage
        if self._include_usage and self.usage is not None:
            yield {**self._base, "choices": [], "usage": usage_body(self.usage).model_dump(exclude_none=True)}


def sse_frame(data: dict[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n"


def _stream_failed(error: GatewayError) -> None:
    """The HTTP status was 200 before the failure; the request's metrics still count it as failed."""
    record = current_request()
    record.stream_error_status = error.status
    if isinstance(error, ProviderError):
        record.provider_errors += 1


def sse_events(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    """SSE frames ending in `data: [DONE]`; an error after the stream began becomes an error frame."""
    try:
        with closed_after(chunks):
            for chunk in chunks:
                yield sse_frame(chunk)
    except GatewayError as exc:
        logger.warning("Stream failed after it began", extra={"error_code": exc.code, "status": exc.status})
        _stream_failed(exc)
        yield sse_frame(exc.body())
        return
    except Exception:
        logger.exception("Stream failed after it began")
        error = GatewayError("The gateway failed while streaming this response.")
        _stream_failed(error)
        yield sse_frame(error.body())
        return
    yield sse_frame("[DONE]")
