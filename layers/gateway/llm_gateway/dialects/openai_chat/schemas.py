"""Request and response schemas of OpenAI's chat completions API and of the gateway's simple /model endpoint.

Request models check what the gateway interprets and keep every other key as sent (`extra="allow"` at every
level), so nothing the caller sends is lost on the way to a provider that understands it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from llm_gateway.dialects.tagged import kind_of


class _Part(BaseModel):
    # Keys the gateway does not interpret are kept as sent, for upstreams that do.
    model_config = ConfigDict(extra="allow")


class TextPart(_Part):
    type: Literal["text"]
    text: str


class ImageURL(_Part):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Part):
    type: Literal["refusal"]
    refusal: str


class OtherPart(_Part):
    """A content part of a kind the gateway does not interpret (input_audio, file...): kept whole."""

    type: str = Field(min_length=1)


UserContentPart = Annotated[
    Annotated[TextPart, Tag("text")] | Annotated[ImagePart, Tag("image_url")] | Annotated[OtherPart, Tag("other")],
    Discriminator(kind_of(frozenset({"text", "image_url"}))),
]
AssistantContentPart = Annotated[
    Annotated[TextPart, Tag("text")] | Annotated[RefusalPart, Tag("refusal")] | Annotated[OtherPart, Tag("other")],
    Discriminator(kind_of(frozenset({"text", "refusal"}))),
]


class FunctionCall(_Part):
    name: str = Field(min_length=1)
    arguments: str = Field(description="JSON-encoded arguments, as OpenAI sends them: a string.")


class ToolCall(_Part):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Part):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Part):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Part):
    role: Literal["user"]
    content: str | list[UserContentPart]
    name: str | None = None


class AssistantMessage(_Part):
    role: Literal["assistant"]
    content: str | list[AssistantContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    name: str | None = None
    # The reasoning of an earlier turn, as vLLM and DeepSeek return it and clients send it back.
    reasoning_content: str | None = None


class ToolMessage(_Part):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str = Field(min_length=1)


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Part):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Part):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Part):
    name: str = Field(min_length=1)


class NamedToolChoice(_Part):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Part):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """POST /chat/completions. Unknown top-level fields are kept and passed to OpenAI-compatible upstreams."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise ValueError("n must be 1: the gateway returns one choice per request")
        return n

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return stop

    @model_validator(mode="after")
    def _check_tool_choice(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {tool.function.name for tool in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not in tools")
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs at least one tool")
        return self

    @property
    def output_limit(self) -> int | None:
        """The caller's cap on generated tokens (max_completion_tokens wins over the legacy max_tokens)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class UsageBody(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ResponseFunctionCall(BaseModel):
    name: str
    arguments: str


class ResponseToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None
    # The model's reasoning, under the name vLLM and DeepSeek give it, which OpenAI-compatible clients read.
    reasoning_content: str | None = None

    @model_serializer(mode="wrap")
    def _keep_content(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI always sends `content`, null when the model only called tools; clients rely on the key. Its
        # published spec (openai/openai-openapi, ChatCompletionResponseMessage) requires `refusal` too, null when none.
        data: dict[str, Any] = handler(self)
        data.setdefault("content", None)
        data.setdefault("refusal", None)
        return data


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: FinishReason
    logprobs: None = None

    @model_serializer(mode="wrap")
    def _keep_logprobs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Required (nullable) by OpenAI's published spec (CreateChatCompletionResponse.choices[]): null, since the
        # gateway renders no log probabilities itself.
        data: dict[str, Any] = handler(self)
        data.setdefault("logprobs", None)
        return data


class OpenAIObject(BaseModel):
    def to_json(self) -> str:
        """Compact JSON without null optional fields."""
        return self.model_dump_json(exclude_none=True)


class ChatCompletion(OpenAIObject):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageBody
    system_fingerprint: str | None = None


class PromptRequest(BaseModel):
    """POST /model: one prompt in, one completion out."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)


class PromptResponse(OpenAIObject):
    completion: str
    model: str
    usage: UsageBody


class ModelCard(OpenAIObject):
    """OpenAI's model object, plus the registry's traits in force where known (SDKs ignore unknown fields): the kind
    of model (chat or embedding) and, for an embedding model, its default vector size; limits in tokens; the
    sampling rules (ranges, `exclusive` groups, `unsupported` parameters) and capabilities."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    kind: Literal["chat", "embedding"] | None = None
    dimensions: int | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    sampling: dict[str, Any] | None = None
    capabilities: dict[str, bool] | None = None


class ModelList(OpenAIObject):
    object: Literal["list"] = "list"
    data: list[ModelCard]
