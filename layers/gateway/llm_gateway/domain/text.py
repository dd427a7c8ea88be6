"""Plain-text views of chat messages, shared by token estimates and the echo model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    RefusalPart,
    TextPart,
    ToolMessage,
    UserMessage,
)


def content_text(content: str | Sequence[object] | None) -> str:
    """The text of a message content: the string itself or its text parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            texts.append(part.refusal)
    return "\n".join(texts)


def request_texts(request: ChatCompletionRequest) -> Iterator[str]:
    """Every piece of text the model reads: message contents and tool call arguments."""
    for message in request.messages:
        yield content_text(message.content)
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls or []:
                yield call.function.name
                yield call.function.arguments
        elif isinstance(message, ToolMessage):
            yield message.tool_call_id


def last_user_text(request: ChatCompletionRequest) -> str:
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            return content_text(message.content)
    return ""
