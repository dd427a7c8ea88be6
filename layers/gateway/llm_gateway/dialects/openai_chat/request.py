"""Chat completions requests read into the conversation model: every field the gateway does not interpret is kept
(`extra` at each level, unknown content parts whole, the body itself as `native`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.dialects.openai_chat.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    ImagePart,
    NamedToolChoice,
    OtherPart,
    RefusalPart,
    SystemMessage,
    TextPart,
    Tool,
    ToolMessage,
    UserMessage,
)
from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Native,
    OpaqueBlock,
    Reasoning,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolChoice,
    ToolResultBlock,
    ToolSpec,
)

if TYPE_CHECKING:
    pass


# The request fields `conversation()` reads into the model itself; every other field is the request's `extra`.
_INTERPRETED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
    }
)


def conversation(request: ChatCompletionRequest, body: Mapping[str, Any] | str) -> ChatRequest:
    """The internal request for a validated chat completions request; `body` is the request as sent (its JSON
    text, or parsed), kept as the native body."""
    system: list[ContentBlock] = []
    messages: list[Message] = []
    for position, message in enumerate(request.messages):
        path = f"messages[{position}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_text_blocks(message.content, f"{path}.content"))
        elif isinstance(message, UserMessage):
            messages.append(Message("user", _user_blocks(message, path), _message_extra(message), path))
        elif isinstance(message, AssistantMessage):
            messages.append(Message("assistant", _assistant_blocks(message, path), _message_extra(message), path))
        elif isinstance(message, ToolMessage):
            result = ToolResultBlock(
                message.tool_call_id,
                _text_blocks(message.content, f"{path}.content"),
                extra=message.model_extra or {},
                path=path,
            )
            messages.append(Message("user", (result,), path=path))
    stops = request.stop_sequences
    extra = {name: value for name, value in _sent(request).items() if name not in _INTERPRETED}
    return ChatRequest(
        model=request.model,
        messages=tuple(messages),
        system=tuple(system),
        max_output_tokens=request.output_limit,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=tuple(stop for stop in stops if stop),
        tools=tuple(_tool(tool, f"tools[{position}]") for position, tool in enumerate(request.tools or [])),
        tool_choice=_tool_choice(request),
        reasoning=Reasoning(effort=request.reasoning_effort) if request.reasoning_effort else None,
        stream=bool(request.stream),
        include_usage=request.wants_usage_chunk,
        extra=extra,
        native=Native("openai", body),
    )


def _sent(request: ChatCompletionRequest) -> dict[str, Any]:
    """The top-level fields as the caller sent them (explicit nulls included), unknown ones too."""
    sent = {name: getattr(request, name) for name in request.model_fields_set}
    return {**sent, **(request.model_extra or {})}


def _tool(tool: Tool, path: str) -> ToolSpec:
    cache, extra = _cache(tool.model_extra)
    function = tool.function
    return ToolSpec(
        function.name,
        function.description,
        function.parameters,
        cache=cache,
        extra={**extra, **_function_extra(function)},
        path=path,
    )


def _function_extra(function: Any) -> dict[str, Any]:
    extra = dict(function.model_extra or {})
    if function.strict is not None:
        extra["strict"] = function.strict
    return extra


def _cache(extra: Mapping[str, Any] | None) -> tuple[bool, dict[str, Any]]:
    """Whether a part or tool asks for a cache point after it (`cache_control`, as Anthropic and LiteLLM's OpenAI
    surface write it), and its other fields."""
    rest = dict(extra or {})
    control = rest.pop("cache_control", None)
    return isinstance(control, dict) and control.get("type") == "ephemeral", rest


def _message_extra(message: UserMessage | AssistantMessage) -> dict[str, Any]:
    extra = dict(message.model_extra or {})
    if message.name is not None:
        extra["name"] = message.name
    return extra


def _text_blocks(content: str | list[TextPart], path: str) -> tuple[ContentBlock, ...]:
    if isinstance(content, str):
        return (TextBlock(content, path=path),)
    return tuple(_text_part(part, f"{path}[{index}]") for index, part in enumerate(content))


def _text_part(part: TextPart, path: str) -> TextBlock:
    cache, extra = _cache(part.model_extra)
    return TextBlock(part.text, cache=cache, extra=extra, path=path)


def _user_blocks(message: UserMessage, path: str) -> tuple[ContentBlock, ...]:
    if isinstance(message.content, str):
        return (TextBlock(message.content, path=f"{path}.content"),)
    blocks: list[ContentBlock] = []
    for index, part in enumerate(message.content):
        where = f"{path}.content[{index}]"
        if isinstance(part, TextPart):
            blocks.append(_text_part(part, where))
        elif isinstance(part, ImagePart):
            cache, extra = _cache(part.model_extra)
            extra.update(part.image_url.model_extra or {})
            if part.image_url.detail is not None:
                extra["detail"] = part.image_url.detail
            blocks.append(ImageBlock(url=part.image_url.url, cache=cache, extra=extra, path=where))
        else:
            blocks.append(_other_part(part, where))
    return tuple(blocks)


def _other_part(part: OtherPart, path: str) -> ContentBlock:
    """A `file` part carrying its data inline becomes a document; any other kind is kept whole."""
    data = part.model_dump(exclude_unset=True)
    file = data.get("file")
    if part.type == "file" and isinstance(file, dict) and isinstance(file.get("file_data"), str):
        media_type, base64_data = data_url(file["file_data"])
        if media_type is not None and base64_data is not None:
            name = file.get("filename")
            return DocumentBlock(
                media_type=media_type, base64=base64_data, name=name if isinstance(name, str) else None, path=path
            )
    return OpaqueBlock("openai", part.type, data, path)


def data_url(url: str) -> tuple[str | None, str | None]:
    """(media type, base64 data) of a base64 data URL (RFC 2397), else (None, None): how OpenAI's formats carry
    inline files."""
    if not url.lower().startswith("data:"):
        return None, None
    header, comma, data = url[len("data:") :].partition(",")
    media_type, *attributes = header.split(";")
    if not comma or "base64" not in {attribute.strip().lower() for attribute in attributes}:
        return None, None
    return media_type.strip().lower() or None, data


def _assistant_blocks(message: AssistantMessage, path: str) -> tuple[ContentBlock, ...]:
    blocks: list[ContentBlock] = []
    if message.reasoning_content:
        blocks.append(ReasoningBlock(message.reasoning_content, path=f"{path}.reasoning_content"))
    content = message.content
    if isinstance(content, str):
        blocks.append(TextBlock(content, path=f"{path}.content"))
    elif content is not None:
        for index, part in enumerate(content):
            where = f"{path}.content[{index}]"
            if isinstance(part, TextPart):
                blocks.append(_text_part(part, where))
            elif isinstance(part, RefusalPart):
                blocks.append(TextBlock(part.refusal, extra={"refusal": True}, path=where))
            else:
                blocks.append(OpaqueBlock("openai", part.type, part.model_dump(exclude_unset=True), where))
    if message.refusal and not any(isinstance(block, TextBlock) for block in blocks):
        blocks.append(TextBlock(message.refusal, extra={"refusal": True}, path=f"{path}.refusal"))
    for index, call in enumerate(message.tool_calls or []):
        blocks.append(
            ToolCallBlock(
                call.id,
                call.function.name,
                call.function.arguments,
                extra={**(call.model_extra or {}), **(call.function.model_extra or {})},
                path=f"{path}.tool_calls[{index}]",
            )
        )
    return tuple(blocks)


def _tool_choice(request: ChatCompletionRequest) -> ToolChoice | None:
    choice, parallel = request.tool_choice, request.parallel_tool_calls
    if choice is None and parallel is None:
        return None
    if isinstance(choice, NamedToolChoice):
        return ToolChoice("tool", choice.function.name, parallel)
    return ToolChoice(choice or "auto", None, parallel)
