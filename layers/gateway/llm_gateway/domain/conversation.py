"""The gateway's own conversation model: what every API surface parses into and every provider reads.

Its shape is the common ground of OpenAI chat completions, Anthropic messages and Bedrock Converse: a system
prompt, then user and assistant turns made of content blocks (text, images, documents, tool calls and their
results, reasoning), the sampling and output settings, the tools. What a surface does not interpret is kept as
it was sent, explicit nulls included: `extra` at every level, a content block of an unknown kind as an
`OpaqueBlock`, and the caller's whole body as `native`. A provider that speaks the caller's dialect forwards the
native body with only the gateway's own decisions applied; a provider of another dialect translates the blocks
and names (by `path`) what it cannot express.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

# Each wire format whose bodies the model keeps: OpenAI chat completions, Anthropic messages, OpenAI responses.
Dialect = Literal["openai", "anthropic", "openai_responses"]
Role = Literal["user", "assistant"]
# Why generation stopped, in the finest terms any provider reports (Anthropic's); each surface maps them to its
# own (OpenAI: stop, length, tool_calls, content_filter).
StopReason = Literal["end_turn", "stop_sequence", "max_tokens", "tool_use", "content_filter", "refusal", "pause_turn"]
ToolChoiceMode = Literal["auto", "none", "required", "tool"]
# How agent harnesses (Claude Code) mark instructions they add to a user turn, and how the Anthropic surface
# passes on a system turn given mid-conversation to models that take none there.
SYSTEM_REMINDER = "<system-reminder>"


def _no_extra() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Native:
    """A body exactly as its sender's API defines it: the caller's request, or a provider's answer. `source`
    is the parsed body or its JSON text, parsed when first read (most requests never need it)."""

    dialect: Dialect
    source: Mapping[str, Any] | str = field(repr=False)

    @cached_property
    def body(self) -> Mapping[str, Any]:
        if isinstance(self.source, str):
            parsed: Mapping[str, Any] = json.loads(self.source)
            return parsed
        return self.source


@dataclass(frozen=True)
class TextBlock:
    text: str
    # A cache point after this block (Anthropic cache_control, Bedrock cachePoint).
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    # Where the caller put it (messages[2].content[0]), for errors that name it.
    path: str = ""


@dataclass(frozen=True)
class ImageBlock:
    """An image, inline (`base64` data of `media_type`) or by `url`: an https URL, which the gateway never
    fetches, or a data URL as OpenAI clients send inline images."""

    media_type: str | None = None
    base64: str | None = None
    url: str | None = None
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class DocumentBlock:
    """A document: inline `base64` data of `media_type` (e.g. a PDF), inline `text`, or a `url`; `name` as the
    caller gave it."""

    media_type: str | None = None
    base64: str | None = None
    text: str | None = None
    url: str | None = None
    name: str | None = None
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class ToolCallBlock:
    """The model's call of a tool; `arguments` is the JSON text of its input, as the model produced it."""

    id: str
    name: str
    arguments: str = "{}"
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""

    def parsed_arguments(self) -> Any:
        """The arguments as JSON, or None when they are not valid JSON."""
        if not self.arguments.strip():
            return {}
        try:
            return json.loads(self.arguments)
        except ValueError:
            return None


@dataclass(frozen=True)
class ToolResultBlock:
    """What a tool returned for the call `tool_call_id`: text, images or documents."""

    tool_call_id: str
    content: tuple[ContentBlock, ...] = ()
    is_error: bool = False
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class ReasoningBlock:
    """The model's reasoning: its text and the provider's `signature` that lets it be sent back, or, when the
    provider withheld it, the `redacted` opaque data."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class OpaqueBlock:
    """A content block of a kind the gateway does not interpret (OpenAI input_audio, Anthropic server tool
    results...), kept whole: forwarded to a provider of the same dialect, refused by others."""

    dialect: Dialect
    type: str
    data: Mapping[str, Any]
    path: str = ""


ContentBlock = TextBlock | ImageBlock | DocumentBlock | ToolCallBlock | ToolResultBlock | ReasoningBlock | OpaqueBlock


@dataclass(frozen=True)
class Message:
    role: Role
    content: tuple[ContentBlock, ...]
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: `parameters` is its input's JSON Schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    cache: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    path: str = ""


@dataclass(frozen=True)
class ToolChoice:
    """auto: the model decides; none: no call; required: some call; tool: the tool `name`. `parallel` False
    asks for at most one call per turn (None: the provider's default)."""

    mode: ToolChoiceMode
    name: str | None = None
    parallel: bool | None = None


@dataclass(frozen=True)
class Reasoning:
    """Extended reasoning: an `effort` level (OpenAI's reasoning_effort) or a token `budget` (Anthropic's
    thinking.budget_tokens); `enabled` False turns it off explicitly."""

    enabled: bool = True
    effort: str | None = None
    budget_tokens: int | None = None


@dataclass(frozen=True)
class OutputFormat:
    """Structured output: a JSON object (`json_object`), or one matching the JSON Schema `schema`
    (`json_schema`, named `name`, `strict` as the caller asked). `path` is where the caller gave it."""

    kind: Literal["json_object", "json_schema"]
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None
    path: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn to generate.

    `max_output_tokens` is the most the model may generate (after the gateway capped it); `output_format` the
    structured output asked for (None: text); `extra` holds the top-level fields the surface did not interpret;
    `native` the caller's body as sent; `betas` the Anthropic beta features the caller asked for (anthropic-beta
    header).
    """

    model: str
    messages: tuple[Message, ...]
    system: tuple[ContentBlock, ...] = ()
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    reasoning: Reasoning | None = None
    output_format: OutputFormat | None = None
    stream: bool = False
    include_usage: bool = False
    extra: Mapping[str, Any] = field(default_factory=_no_extra)
    native: Native | None = None
    betas: tuple[str, ...] = ()

    def with_(self, **changes: Any) -> ChatRequest:
        return replace(self, **changes)

    def blocks(self) -> Iterator[ContentBlock]:
        """Every content block of the request, the system prompt's and tool results' included."""
        yield from _walk(self.system)
        for message in self.messages:
            yield from _walk(message.content)

    def texts(self) -> Iterator[str]:
        """Every piece of text the model reads in the conversation: text blocks, tool call names and arguments,
        tool call ids, reasoning."""
        for block in self.blocks():
            if isinstance(block, TextBlock | ReasoningBlock):
                yield block.text
            elif isinstance(block, ToolCallBlock):
                yield block.name
                yield block.arguments
            elif isinstance(block, ToolResultBlock):
                yield block.tool_call_id
            elif isinstance(block, DocumentBlock) and block.text is not None:
                yield block.text

    def last_user_text(self) -> str:
        """The words of the last user turn that has any (tool results count as text), without the
        `<system-reminder>` blocks that agent harnesses such as Claude Code add to the user's turns."""
        for message in reversed(self.messages):
            if message.role != "user":
                continue
            pieces = [_block_text(block) for block in message.content]
            text = "\n".join(piece for piece in pieces if piece and not piece.lstrip().startswith(SYSTEM_REMINDER))
            if text:
                return text
        return ""

    @property
    def forced_tool(self) -> str | None:
        """The tool the model must call: the named one, or the first tool when any call is required."""
        choice = self.tool_choice
        if choice is None:
            return None
        if choice.mode == "tool":
            return choice.name
        if choice.mode == "required" and self.tools:
            return self.tools[0].name
        return None


def _walk(blocks: Iterable[ContentBlock]) -> Iterator[ContentBlock]:
    for block in blocks:
        yield block
        if isinstance(block, ToolResultBlock):
            yield from _walk(block.content)


def _block_text(block: ContentBlock) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolResultBlock):
        return "\n".join(_block_text(inner) for inner in block.content if _block_text(inner))
    return ""
