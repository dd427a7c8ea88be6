"""The provider port: what the gateway needs from a model backend, in provider-neutral types."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llm_gateway.api.schemas import ChatCompletionRequest, FinishReason
from llm_gateway.domain.registry import Target


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ToolCallResult:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    content: str | None
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCallResult, ...] = ()


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArgumentsDelta:
    index: int
    arguments: str


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True)
class UsageReport:
    usage: Usage


StreamEvent = TextDelta | ToolCallStart | ToolCallArgumentsDelta | Finish | UsageReport


@dataclass(frozen=True)
class Deadline:
    """An absolute point on the monotonic clock by which the provider call must be finished."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class Provider(ABC):
    """A model backend. Implementations raise GatewayError subclasses for every failure."""

    name: str

    @abstractmethod
    def complete(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Completion:
        """Run one non-streamed chat completion."""

    def stream(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Iterator[StreamEvent]:
        """Stream one chat completion; backends without native streaming replay their completion."""
        completion = self.complete(request, target, deadline)
        yield from completion_events(completion)


def completion_events(completion: Completion, text_pieces: Iterable[str] | None = None) -> Iterator[StreamEvent]:
    """Replay a finished completion as stream events, its text split into `text_pieces` if given."""
    for piece in [completion.content] if text_pieces is None else text_pieces:
        if piece:
            yield TextDelta(piece)
    for index, call in enumerate(completion.tool_calls):
        yield ToolCallStart(index, call.id, call.name)
        yield ToolCallArgumentsDelta(index, call.arguments)
    yield Finish(completion.finish_reason)
    yield UsageReport(completion.usage)


@contextmanager
def closed_after(stream: Iterable[object]) -> Iterator[None]:
    """Close `stream` (a generator, a provider's event stream) when the block ends, however it ends, so that
    a stream abandoned by its consumer releases its provider connection at once, not at garbage collection."""
    try:
        yield
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
