"""The deterministic local `echo` model: replies with the last user message; one token per word."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Iterator

from llm_gateway.domain.answers import Completion, StreamEvent, Usage
from llm_gateway.domain.conversation import (
    ChatRequest,
    ContentBlock,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolCallBlock,
)
from llm_gateway.domain.embeddings import EmbeddingInput, EmbeddingRequest, EmbeddingResult
from llm_gateway.domain.ports import Deadline, Provider, completion_events
from llm_gateway.domain.registry import ModelTraits, Target

_WORD = re.compile(r"\S+")
REASONING_TEXT = "The answer repeats the last user message."
# Vector size of echo's embeddings when neither the request nor the registry names one.
DEFAULT_DIMENSIONS = 256


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _truncate_words(text: str, limit: int | None) -> tuple[str, bool]:
    """Keep the first `limit` words (with the whitespace between them; all of them when `limit` is None); report
    whether anything was cut."""
    if limit is None:
        return text, False
    if limit <= 0:
        return "", bool(_WORD.search(text))
    for number, match in enumerate(_WORD.finditer(text), start=1):
        if number == limit:
            kept = text[: match.end()]
            return kept, bool(_WORD.search(text, match.end()))
    return text, False


class EchoProvider(Provider):
    """Replies with the text of the last user message, honouring stop sequences, tools, reasoning (a short fixed
    reasoning block, signed with a digest of itself, when reasoning is asked for) and the output limit, which counts
    the reasoning too and holds in text, tool calls and streams alike (a stream replays the completion)."""

    name = "echo"

    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        prompt_tokens = sum(count_words(text) for text in request.texts())
        reply = request.last_user_text()
        content: list[ContentBlock] = []
        reasoning_tokens = 0
        if request.reasoning is not None and request.reasoning.enabled:
            signature = hashlib.sha256(REASONING_TEXT.encode()).hexdigest()
            content.append(ReasoningBlock(REASONING_TEXT, signature=signature))
            reasoning_tokens = count_words(REASONING_TEXT)
        limit = request.max_output_tokens
        left = None if limit is None else max(0, limit - reasoning_tokens)
        tool = request.forced_tool
        if tool is not None:
            # A model cut off by its output limit mid-call returns the arguments it had written (invalid JSON)
            # and stops for max_tokens, as OpenAI's and Bedrock's do; echo cuts its arguments the same way.
            arguments, cut = _truncate_words(json.dumps({"input": reply}), left)
            content.append(ToolCallBlock(id="call_echo_0", name=tool, arguments=arguments))
            usage = Usage(prompt_tokens, reasoning_tokens + count_words(arguments), reasoning_tokens=reasoning_tokens)
            return Completion(tuple(content), "max_tokens" if cut else "tool_use", usage)
        stop_reason: StopReason = "end_turn"
        stop_sequence: str | None = None
        for stop in request.stop:
            if stop and stop in reply:
                reply = reply[: reply.index(stop)]
                stop_reason, stop_sequence = "stop_sequence", stop
        reply, cut = _truncate_words(reply, left)
        if cut:
            stop_reason, stop_sequence = "max_tokens", None
        content.append(TextBlock(reply))
        usage = Usage(prompt_tokens, reasoning_tokens + count_words(reply), reasoning_tokens=reasoning_tokens)
        return Completion(tuple(content), stop_reason, usage, stop_sequence=stop_sequence)

    def count_tokens(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> int | None:
        """One token per word of everything the model reads, as `complete` reports prompt tokens."""
        return sum(count_words(text) for text in request.texts())

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        completion = self.complete(request, target, deadline, traits)
        # One delta per word (with its leading whitespace) so clients see a real multi-chunk stream.
        yield from completion_events(completion, re.findall(r"\s*\S+", completion.text))

    def embed(
        self, request: EmbeddingRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> EmbeddingResult:
        """A deterministic unit vector per input, drawn from the SHA-256 of the input (equal inputs, equal vectors),
        of `dimensions` values (else the registry's size, else 256), each exactly a float32 so that a base64 answer
        decodes to the same numbers as a float one; one token per word of a text, per id of a token array."""
        size = request.dimensions or (traits.embedding.dimensions if traits else None) or DEFAULT_DIMENSIONS
        vectors = tuple(echo_vector(item, size) for item in request.inputs)
        tokens = sum(count_words(item) if isinstance(item, str) else len(item) for item in request.inputs)
        return EmbeddingResult(vectors, Usage(tokens, 0))


def echo_vector(item: EmbeddingInput, size: int) -> tuple[float, ...]:
    """The echo model's embedding of one input: `size` float32 values of unit length."""
    seed = (item if isinstance(item, str) else json.dumps(list(item))).encode("utf-8")
    raw = b"".join(hashlib.sha256(seed + counter.to_bytes(4, "big")).digest() for counter in range(size // 16 + 1))
    values = [value / 32768.0 for value in struct.unpack(f">{size}h", raw[: size * 2])]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    floats = struct.pack(f"<{size}f", *(value / norm for value in values))
    return tuple(struct.unpack(f"<{size}f", floats))
