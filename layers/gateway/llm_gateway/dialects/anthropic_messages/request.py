"""Messages requests read into the conversation model, the body kept as sent (`native`) for a provider that
speaks Anthropic's format (Bedrock's InvokeModel for Anthropic's models)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.dialects.anthropic_messages.schemas import (
    Base64Source,
    CacheControl,
    ContentBlockParam,
    CountTokensRequest,
    DocumentBlockParam,
    ImageBlockParam,
    MessagesRequest,
    PlainTextSource,
    RedactedThinkingBlockParam,
    TextBlockParam,
    ThinkingBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    URLSource,
)
from llm_gateway.domain.conversation import (
    SYSTEM_REMINDER,
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
    ToolChoiceMode,
    ToolResultBlock,
    ToolSpec,
)

if TYPE_CHECKING:
    pass


# How Claude Code itself passes on an instruction given mid-conversation when the API takes no system turn there.
REMINDER = SYSTEM_REMINDER + "\n{}\n</system-reminder>"


# The request fields `conversation()` reads into the model itself; every other field is the request's `extra`.
_INTERPRETED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
    }
)


_TOOL_CHOICES: dict[str, ToolChoiceMode] = {"auto": "auto", "any": "required", "none": "none"}


# Effort levels of output_config.effort, as OpenAI-style reasoning efforts for providers that take those.
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}


def conversation(
    request: MessagesRequest | CountTokensRequest, body: Mapping[str, Any] | str, betas: tuple[str, ...] = ()
) -> ChatRequest:
    """The internal request for a validated Messages request; `body` is the request as sent (its JSON text or
    parsed), kept as the native body."""
    system: list[ContentBlock] = []
    if isinstance(request.system, str):
        system.append(TextBlock(request.system, path="system"))
    elif request.system is not None:
        system.extend(_text(block, f"system[{index}]") for index, block in enumerate(request.system))
    turns: list[Message] = []
    for position, message in enumerate(request.messages):
        path = f"messages[{position}]"
        content = _blocks(message.content, f"{path}.content")
        if message.role == "system":
            # Bedrock and OpenAI-compatible models take no system turn mid-conversation: it becomes a reminder
            # in the user's turn, as Claude Code does itself for APIs that refuse the turn.
            reminder = "\n".join(block.text for block in content if isinstance(block, TextBlock))
            turns.append(Message("user", (TextBlock(REMINDER.format(reminder), path=path),), path=path))
            continue
        turns.append(Message(message.role, content, message.model_extra or {}, path))
    generation = request if isinstance(request, MessagesRequest) else None
    sent = {name: getattr(request, name) for name in request.model_fields_set}
    sent.update(request.model_extra or {})
    extra = {name: value for name, value in sent.items() if name not in _INTERPRETED}
    return ChatRequest(
        model=request.model,
        messages=tuple(turns),
        system=tuple(system),
        max_output_tokens=generation.max_tokens if generation else None,
        temperature=generation.temperature if generation else None,
        top_p=generation.top_p if generation else None,
        top_k=generation.top_k if generation else None,
        stop=tuple(stop for stop in (generation.stop_sequences or []) if stop) if generation else (),
        tools=tuple(_tool(tool, f"tools[{index}]") for index, tool in enumerate(request.tools or [])),
        tool_choice=_tool_choice(request),
        reasoning=_reasoning(request),
        stream=bool(generation and generation.stream),
        include_usage=True,
        extra=extra,
        native=Native("anthropic", body),
        betas=betas,
    )


def _cached(control: CacheControl | None) -> bool:
    return control is not None and control.type == "ephemeral"


def _text(block: TextBlockParam, path: str) -> TextBlock:
    return TextBlock(block.text, cache=_cached(block.cache_control), extra=block.model_extra or {}, path=path)


def _blocks(content: str | list[ContentBlockParam], path: str) -> tuple[ContentBlock, ...]:
    if isinstance(content, str):
        return (TextBlock(content, path=path),)
    return tuple(_block(block, f"{path}[{index}]") for index, block in enumerate(content))


def _block(block: Any, path: str) -> ContentBlock:
    if isinstance(block, TextBlockParam):
        return _text(block, path)
    if isinstance(block, ImageBlockParam):
        return _image(block, path)
    if isinstance(block, DocumentBlockParam):
        return _document(block, path)
    if isinstance(block, ToolUseBlockParam):
        return ToolCallBlock(
            block.id,
            block.name,
            json.dumps(block.input, ensure_ascii=False),
            cache=_cached(block.cache_control),
            extra=block.model_extra or {},
            path=path,
        )
    if isinstance(block, ToolResultBlockParam):
        content: tuple[ContentBlock, ...] = ()
        if isinstance(block.content, str):
            content = (TextBlock(block.content, path=f"{path}.content"),)
        elif block.content is not None:
            content = tuple(_block(inner, f"{path}.content[{index}]") for index, inner in enumerate(block.content))
        return ToolResultBlock(
            block.tool_use_id,
            content,
            is_error=bool(block.is_error),
            cache=_cached(block.cache_control),
            extra=block.model_extra or {},
            path=path,
        )
    if isinstance(block, ThinkingBlockParam):
        return ReasoningBlock(block.thinking, signature=block.signature, extra=block.model_extra or {}, path=path)
    if isinstance(block, RedactedThinkingBlockParam):
        return ReasoningBlock(redacted=block.data, extra=block.model_extra or {}, path=path)
    return OpaqueBlock("anthropic", block.type, block.model_dump(exclude_unset=True), path)


def _image(block: ImageBlockParam, path: str) -> ContentBlock:
    source, cache, extra = block.source, _cached(block.cache_control), block.model_extra or {}
    if isinstance(source, Base64Source):
        return ImageBlock(media_type=source.media_type, base64=source.data, cache=cache, extra=extra, path=path)
    if isinstance(source, URLSource):
        return ImageBlock(url=source.url, cache=cache, extra=extra, path=path)
    return OpaqueBlock("anthropic", block.type, block.model_dump(exclude_unset=True), path)


def _document(block: DocumentBlockParam, path: str) -> ContentBlock:
    source, cache, extra = block.source, _cached(block.cache_control), block.model_extra or {}
    if isinstance(source, Base64Source):
        return DocumentBlock(
            media_type=source.media_type, base64=source.data, name=block.title, cache=cache, extra=extra, path=path
        )
    if isinstance(source, PlainTextSource):
        return DocumentBlock(
            media_type=source.media_type, text=source.data, name=block.title, cache=cache, extra=extra, path=path
        )
    if isinstance(source, URLSource):
        return DocumentBlock(url=source.url, name=block.title, cache=cache, extra=extra, path=path)
    return OpaqueBlock("anthropic", block.type, block.model_dump(exclude_unset=True), path)


def _tool(tool: ToolParam, path: str) -> ToolSpec:
    extra = dict(tool.model_extra or {})
    if not tool.is_client_tool:
        # A server or versioned tool (web search, bash, text editor...): only Anthropic's own API runs it.
        extra["type"] = tool.type
    return ToolSpec(
        tool.name,
        tool.description,
        tool.input_schema,
        cache=_cached(tool.cache_control),
        extra=extra,
        path=path,
    )


def _tool_choice(request: MessagesRequest | CountTokensRequest) -> ToolChoice | None:
    choice = request.tool_choice
    if choice is None:
        return None
    parallel = False if choice.disable_parallel_tool_use else None
    if choice.type == "tool":
        return ToolChoice("tool", choice.name, parallel)
    return ToolChoice(_TOOL_CHOICES[choice.type], None, parallel)


def _reasoning(request: MessagesRequest | CountTokensRequest) -> Reasoning | None:
    """Anthropic's thinking setting: a budget when enabled; adaptive thinking as an effort level (its
    output_config.effort, high when absent)."""
    thinking = request.thinking
    if thinking is None:
        return None
    if thinking.type == "disabled":
        return Reasoning(enabled=False)
    if thinking.type == "enabled":
        return Reasoning(budget_tokens=thinking.budget_tokens)
    config = (request.model_extra or {}).get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    return Reasoning(effort=_EFFORTS.get(effort, "high") if isinstance(effort, str) else "high")
