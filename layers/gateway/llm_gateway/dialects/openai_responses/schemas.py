"""Request schemas of OpenAI's Responses API (https://platform.openai.com/docs/api-reference/responses/create).

As for chat completions, request models check what the gateway interprets and keep every other key as sent
(`extra="allow"` at every level): the reader keeps them, and names them when a provider cannot take them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from llm_gateway.dialects.tagged import OTHER


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


def _kind_of(known: frozenset[str], untyped: str | None = None) -> Any:
    """A discriminator: a part's `type` when the gateway interprets that kind, `untyped` for a part without one
    (an input message may leave out `type: message`), else OTHER (kept whole)."""

    def kind(value: Any) -> str:
        tag = value.get("type", None) if isinstance(value, dict) else getattr(value, "type", None)
        if tag is None and untyped is not None:
            return untyped
        return tag if isinstance(tag, str) and tag in known else OTHER

    return kind


class InputText(_Part):
    type: Literal["input_text"]
    text: str


class InputImage(_Part):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class InputFile(_Part):
    type: Literal["input_file"]
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None
    filename: str | None = None


class OutputText(_Part):
    type: Literal["output_text"]
    text: str


class Refusal(_Part):
    type: Literal["refusal"]
    refusal: str


class OtherPart(_Part):
    """A content part of a kind the gateway does not interpret (input_audio...): kept whole."""

    type: str = Field(min_length=1)


_PART_KINDS = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal"})
ContentPart = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[InputFile, Tag("input_file")]
    | Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")]
    | Annotated[OtherPart, Tag(OTHER)],
    Discriminator(_kind_of(_PART_KINDS)),
]


class MessageItem(_Part):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Part):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    # The namespace tool the function belongs to (the gateway's tool names are unique across namespaces).
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Part):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class CustomToolCallItem(_Part):
    type: Literal["custom_tool_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: str
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class CustomToolCallOutputItem(_Part):
    type: Literal["custom_tool_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningText(_Part):
    type: str = "reasoning_text"
    text: str


class ReasoningItem(_Part):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class ItemReference(_Part):
    type: Literal["item_reference"]
    id: str


class CompactionItem(_Part):
    type: Literal["compaction"]
    encrypted_content: str
    id: str | None = None


class OtherItem(_Part):
    """An input item of a kind the gateway does not interpret (hosted tools' calls...): kept whole."""

    type: str = Field(min_length=1)


_ITEM_KINDS = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "item_reference",
        "compaction",
    }
)
InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[CustomToolCallItem, Tag("custom_tool_call")]
    | Annotated[CustomToolCallOutputItem, Tag("custom_tool_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[CompactionItem, Tag("compaction")]
    | Annotated[OtherItem, Tag(OTHER)],
    Discriminator(_kind_of(_ITEM_KINDS, untyped="message")),
]


class FunctionTool(_Part):
    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(_Part):
    """A freeform tool: its input is text, unconstrained (`format` {"type": "text"}) or following a grammar."""

    type: Literal["custom"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    format: dict[str, Any] | None = None


class NamespaceTool(_Part):
    """A group of function and custom tools under one name (Codex groups its sub-agent tools so); the model calls
    them by their own names, and its calls say the namespace."""

    type: Literal["namespace"]
    name: str = Field(min_length=1)
    description: str | None = None
    tools: list[Annotated[FunctionTool | CustomTool, Field(discriminator="type")]] = Field(default_factory=list)


class OtherTool(_Part):
    """A hosted tool (web_search, file_search, ...): OpenAI runs it, the gateway has none to run."""

    type: str = Field(min_length=1)


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[CustomTool, Tag("custom")]
    | Annotated[NamespaceTool, Tag("namespace")]
    | Annotated[OtherTool, Tag(OTHER)],
    Discriminator(_kind_of(frozenset({"function", "custom", "namespace"}))),
]


class NamedToolChoice(_Part):
    type: str = Field(min_length=1)
    name: str | None = None


class ReasoningParam(_Part):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class TextFormat(_Part):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextParam(_Part):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(BaseModel):
    """POST /responses. Unknown top-level fields are kept (and named when a provider cannot take them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: str = Field(min_length=1)
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    reasoning: ReasoningParam | None = None
    text: TextParam | None = None
    include: list[str] | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = False
    store: bool | None = None
    previous_response_id: str | None = None
    background: bool | None = None
    conversation: Any = None
    truncation: Literal["auto", "disabled"] | None = None

    def callable_tools(self) -> list[tuple[FunctionTool | CustomTool, str | None, str]]:
        """Every function and custom tool with its namespace (None outside one) and its place in `tools`."""
        found: list[tuple[FunctionTool | CustomTool, str | None, str]] = []
        for position, tool in enumerate(self.tools or []):
            if isinstance(tool, FunctionTool | CustomTool):
                found.append((tool, None, f"tools[{position}]"))
            elif isinstance(tool, NamespaceTool):
                found += [(inner, tool.name, f"tools[{position}].tools[{i}]") for i, inner in enumerate(tool.tools)]
        return found

    @property
    def custom_tools(self) -> frozenset[str]:
        """The names of the freeform tools, whose calls are answered as custom_tool_call items."""
        return frozenset(tool.name for tool, _, _ in self.callable_tools() if isinstance(tool, CustomTool))

    @property
    def namespaces(self) -> dict[str, str]:
        """The namespace of each tool that has one, by the tool's name."""
        return {tool.name: namespace for tool, namespace, _ in self.callable_tools() if namespace is not None}

    @property
    def wants_encrypted_reasoning(self) -> bool:
        return "reasoning.encrypted_content" in (self.include or [])


class CompactRequest(ResponsesRequest):
    """POST /responses/compact: a conversation (`input`, `instructions`, `previous_response_id`, and what Codex
    sends beside them: its tools, reasoning, prompt_cache_key) to summarise into one compaction item."""
