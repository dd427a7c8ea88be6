"""The provider port: what the gateway needs from a model backend, in the gateway's own conversation model."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llm_gateway.domain.answers import (
    Completion,
    Finish,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
    UsageReport,
)
from llm_gateway.domain.conversation import ChatRequest, ReasoningBlock
from llm_gateway.domain.embeddings import EmbeddingRequest, EmbeddingResult
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.errors import TargetMisconfiguredError


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
    """A model backend. Implementations raise GatewayError subclasses for every failure; `traits` are the
    registry's facts about the model the target serves."""

    name: str

    @abstractmethod
    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        """Run one non-streamed chat completion."""

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        """Stream one chat completion; backends without native streaming replay their completion."""
        completion = self.complete(request, target, deadline, traits)
        yield from completion_events(completion)

    def count_tokens(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> int | None:
        """The request's input tokens as the provider counts them, without generating; None when the provider
        has no way to count (the gateway then answers with its own estimate)."""
        return None

    def embed(
        self, request: EmbeddingRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> EmbeddingResult:
        """One vector per input, in order, and the input tokens billed. A provider without embeddings refuses as a
        misconfigured target (the registry named it for an embedding model): 502, never the caller's fault."""
        raise TargetMisconfiguredError(
            f"The provider '{self.name}' serves no embeddings; the registry names it for '{request.model}'.",
            code="upstream_embeddings_unsupported",
        )


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


def completion_events(completion: Completion, text_pieces: Iterable[str] | None = None) -> Iterator[StreamEvent]:
    """Replay a finished completion as stream events, its text split into `text_pieces` if given."""
    for block in completion.content:
        if isinstance(block, ReasoningBlock):
            if block.redacted is not None:
                yield RedactedReasoning(block.redacted)
                continue
            if block.text:
                yield ReasoningDelta(block.text)
            if block.signature:
                yield ReasoningSignature(block.signature)
    for piece in [completion.text] if text_pieces is None else text_pieces:
        if piece:
            yield TextDelta(piece)
    for index, call in enumerate(completion.tool_calls):
        yield ToolCallStart(index, call.id, call.name)
        yield ToolCallArgumentsDelta(index, call.arguments)
    yield Finish(completion.stop_reason, completion.stop_sequence)
    yield UsageReport(completion.usage)
