"""What a model answers, in the gateway's conversation model: its usage, a whole completion, and the events of a
streamed one (what every provider produces and every surface renders)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.domain.conversation import (
    ContentBlock,
    Dialect,
    Native,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolCallBlock,
)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. `prompt_tokens` counts every input token, cache reads (`cached_tokens`) and cache
    writes (`cache_write_tokens`) included, as OpenAI's usage does; `completion_tokens` every output token,
    reasoning (`reasoning_tokens`) included. `estimated`: the provider reported no usage, so these are the
    gateway's own upper-bound estimates (domain/tokens.py), not the provider's counts."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens neither read from nor written to a cache (Anthropic's input_tokens)."""
        return max(0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens)


@dataclass(frozen=True)
class Completion:
    """A generated answer: its blocks (text, reasoning, tool calls), why it stopped, what it used, and, when the
    provider speaks the request's dialect, the provider's own answer (`native`) to forward as it is."""

    content: tuple[ContentBlock, ...]
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None
    native: Native | None = None

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.content if isinstance(block, TextBlock))

    @property
    def tool_calls(self) -> tuple[ToolCallBlock, ...]:
        return tuple(block for block in self.content if isinstance(block, ToolCallBlock))

    @property
    def reasoning(self) -> tuple[ReasoningBlock, ...]:
        return tuple(block for block in self.content if isinstance(block, ReasoningBlock))


# --- stream events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ReasoningSignature:
    """The signature that closes a reasoning block (Anthropic's signature_delta)."""

    signature: str


@dataclass(frozen=True)
class RedactedReasoning:
    data: str


@dataclass(frozen=True)
class ToolCallStart:
    """A tool call begins; `index` numbers the tool calls of the answer from 0."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArgumentsDelta:
    index: int
    arguments: str


@dataclass(frozen=True)
class Finish:
    reason: StopReason
    stop_sequence: str | None = None


@dataclass(frozen=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True)
class NativeChunk:
    """One piece of a provider's own stream, for a surface of the same dialect to forward as it is: an OpenAI
    chunk object, or an Anthropic event (`event` is its SSE event name)."""

    dialect: Dialect
    data: Mapping[str, Any]
    event: str | None = None


StreamEvent = (
    TextDelta
    | ReasoningDelta
    | ReasoningSignature
    | RedactedReasoning
    | ToolCallStart
    | ToolCallArgumentsDelta
    | Finish
    | UsageReport
    | NativeChunk
)
