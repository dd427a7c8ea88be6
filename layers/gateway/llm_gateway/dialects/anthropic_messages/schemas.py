"""Request schemas of Anthropic's Messages API (POST /v1/messages, POST /v1/messages/count_tokens).

As on the OpenAI surface, the models check what the gateway interprets and keep every other key as sent
(`extra="allow"` at every level); content blocks of kinds the gateway does not interpret (server tool results,
search results, container uploads...) are kept whole. Shapes: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from llm_gateway.dialects.tagged import kind_of


class _Block(BaseModel):
    # Keys the gateway does not interpret (citations, cache_control's ttl...) are kept as sent.
    model_config = ConfigDict(extra="allow")


class CacheControl(_Block):
    type: str = Field(min_length=1)


class TextBlockParam(_Block):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None


class Base64Source(_Block):
    type: Literal["base64"]
    media_type: str = Field(min_length=1)
    data: str


class URLSource(_Block):
    type: Literal["url"]
    url: str = Field(min_length=1)


class PlainTextSource(_Block):
    type: Literal["text"]
    media_type: str = "text/plain"
    data: str


class OtherSource(_Block):
    """A source the gateway does not interpret (a Files API file_id, nested content...): kept whole."""

    type: str = Field(min_length=1)


ImageSource = Annotated[
    Annotated[Base64Source, Tag("base64")] | Annotated[URLSource, Tag("url")] | Annotated[OtherSource, Tag("other")],
    Discriminator(kind_of(frozenset({"base64", "url"}))),
]
DocumentSource = Annotated[
    Annotated[Base64Source, Tag("base64")]
    | Annotated[URLSource, Tag("url")]
    | Annotated[PlainTextSource, Tag("text")]
    | Annotated[OtherSource, Tag("other")],
    Discriminator(kind_of(frozenset({"base64", "url", "text"}))),
]


class ImageBlockParam(_Block):
    type: Literal["image"]
    source: ImageSource
    cache_control: CacheControl | None = None


class DocumentBlockParam(_Block):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    cache_control: CacheControl | None = None


class ToolUseBlockParam(_Block):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class OtherBlockParam(_Block):
    """A content block of a kind the gateway does not interpret: kept whole."""

    type: str = Field(min_length=1)


ToolResultContent = Annotated[
    Annotated[TextBlockParam, Tag("text")]
    | Annotated[ImageBlockParam, Tag("image")]
    | Annotated[DocumentBlockParam, Tag("document")]
    | Annotated[OtherBlockParam, Tag("other")],
    Discriminator(kind_of(frozenset({"text", "image", "document"}))),
]


class ToolResultBlockParam(_Block):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[ToolResultContent] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ThinkingBlockParam(_Block):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlockParam(_Block):
    type: Literal["redacted_thinking"]
    data: str


ContentBlockParam = Annotated[
    Annotated[TextBlockParam, Tag("text")]
    | Annotated[ImageBlockParam, Tag("image")]
    | Annotated[DocumentBlockParam, Tag("document")]
    | Annotated[ToolUseBlockParam, Tag("tool_use")]
    | Annotated[ToolResultBlockParam, Tag("tool_result")]
    | Annotated[ThinkingBlockParam, Tag("thinking")]
    | Annotated[RedactedThinkingBlockParam, Tag("redacted_thinking")]
    | Annotated[OtherBlockParam, Tag("other")],
    Discriminator(
        kind_of(frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}))
    ),
]


class MessageParam(_Block):
    """A turn. `system` turns inside `messages` are what Claude Code sends for instructions in the middle of
    a conversation (beta mid-conversation-system-2026-04-07)."""

    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlockParam]


class ToolParam(_Block):
    """A tool: a client tool (`input_schema`, type absent or "custom") or one of Anthropic's server and
    versioned tools (`type` such as web_search_20250305, bash_20250124), kept as sent."""

    type: str | None = None
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    cache_control: CacheControl | None = None

    @model_validator(mode="after")
    def _client_tools_have_a_schema(self) -> ToolParam:
        if self.type in (None, "custom") and self.input_schema is None:
            raise ValueError(f"tool '{self.name}' needs an input_schema")
        return self

    @property
    def is_client_tool(self) -> bool:
        return self.type in (None, "custom")


class ToolChoiceParam(_Block):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _named_when_a_tool(self) -> ToolChoiceParam:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice of type 'tool' needs the tool's name")
        return self


class ThinkingParam(_Block):
    """enabled: a budget of at least 1,024 tokens (and below max_tokens); adaptive: the model decides how much
    to think (Claude 4.6 and later), guided by output_config.effort; disabled."""

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1024)

    @model_validator(mode="after")
    def _budget_when_enabled(self) -> ThinkingParam:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("thinking of type 'enabled' needs budget_tokens")
        return self


class _Conversation(BaseModel):
    """What POST /messages and POST /messages/count_tokens share."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[TextBlockParam] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingParam | None = None

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> _Conversation:
        choice = self.tool_choice
        thread = (self.model_extra or {}).get("thread")
        if isinstance(thread, dict) and thread.get("type") == "continue" and self.tools is None:
            # A thread's continue takes its tools from the thread: checked once the thread is read in.
            return self
        if choice is not None and choice.type == "tool":
            names = {tool.name for tool in self.tools or []}
            if choice.name not in names:
                raise ValueError(f"tool_choice names '{choice.name}', which is not in tools")
        return self


class MessagesRequest(_Conversation):
    """POST /messages. max_tokens is required, as in Anthropic's API."""

    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)


class CountTokensRequest(_Conversation):
    """POST /messages/count_tokens: the conversation to count, without generation settings."""
