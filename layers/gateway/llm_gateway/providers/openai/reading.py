"""An OpenAI-compatible upstream's answers and streams read with the chat completions format
(dialects/openai_chat/), bound to one call: the provider's errors for what the upstream got wrong, and the gateway's
own estimate, logged, of usage the upstream did not report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.dialects.openai_chat.chunks import StreamAssembler
from llm_gateway.dialects.openai_chat.completion import completion_of
from llm_gateway.dialects.openai_chat.request_body import is_native
from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens, estimated_usage
from llm_gateway.domain.registry import Target
from llm_gateway.errors import GatewayError
from llm_gateway.observability import logger
from llm_gateway.providers.openai.errors import malformed, upstream_failure


@dataclass(frozen=True)
class TargetFaults:
    """The provider errors the chat completions readers raise (their `UpstreamFaults`) for one call to `target` with
    the provider key `key`, which is redacted from what the upstream said."""

    target: Target
    key: str | None

    def malformed(self, detail: str) -> GatewayError:
        return malformed(self.target, detail)

    def reported(self, payload: Mapping[str, Any]) -> GatewayError:
        return upstream_failure(self.target, payload, self.key)


def read_completion(payload: Any, request: ChatRequest, target: Target, key: str | None) -> Completion:
    """The upstream's chat.completion for `request`: kept whole when the caller spoke OpenAI's dialect; its usage
    estimated when the upstream reported none. Raises the provider's error for an error body or a malformed one."""
    return completion_of(
        payload,
        native=is_native(request),
        faults=TargetFaults(target, key),
        unmetered=lambda produced: unmetered_usage(request, produced, target, streamed=False),
    )


def stream_reader(request: ChatRequest, target: Target, key: str | None) -> StreamAssembler:
    """The reader of the upstream's chat.completion.chunk objects for `request` (chunks passed on whole when the
    caller spoke OpenAI's dialect), raising the provider's errors."""
    return StreamAssembler(TargetFaults(target, key), native=is_native(request))


def unmetered_usage(request: ChatRequest, produced: Iterable[str], target: Target, *, streamed: bool) -> Usage:
    """The gateway's own estimate of a call the upstream did not meter (`estimated_usage`), logged as such."""
    usage = estimated_usage(estimate_prompt_tokens(request), produced)
    logger.warning(
        "The provider reported no token usage; it was estimated",
        extra={
            "target": target.label,
            "streamed": streamed,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
    )
    return usage
