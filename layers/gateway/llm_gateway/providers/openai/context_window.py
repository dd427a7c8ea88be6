"""Context windows that OpenAI-compatible upstreams state when they refuse a request for its length, so that the
gateway's own output cap never makes a request fail that the upstream would serve.

A request naming no output limit gets the gateway's cap (`domain/budget.py` `output_cap`); on an upstream whose
window the registry does not state (a vLLM server started with `--max-model-len 4096`) that cap alone can overflow
the window. vLLM and OpenAI state the window in their refusal ("This model's maximum context length is 4096
tokens ..."), so the refused call is retried once with a cap that fits, and the window is remembered per target for
the container's life: later requests to that target get a cap that fits at once. A limit the caller named is never
changed: the upstream's refusal of it is the caller's to see, as it would be without the gateway.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from llm_gateway.domain.budget import CONTEXT_HEADROOM_TOKENS
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.registry import Target
from llm_gateway.errors import GatewayError
from llm_gateway.observability import logger

CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
# vLLM: "This model's maximum context length is 4096 tokens and your request has 12 input tokens (4096 > 4096 - 12)"
# (older: "... However, you requested 4108 tokens (12 in the messages, 4096 in the completion)"); OpenAI: "This
# model's maximum context length is 8192 tokens. However, you requested 9000 tokens (904 in the messages, ...".
_WINDOW = re.compile(r"maximum context length is (\d+) tokens", re.IGNORECASE)
_PROMPT = (
    re.compile(r"your request has (\d+) input tokens", re.IGNORECASE),
    re.compile(r"\((\d+) in the messages", re.IGNORECASE),
)
_OUTPUT_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens")


@dataclass(frozen=True)
class StatedWindow:
    """What a context-length refusal says: the model's window and, when stated, the prompt's tokens."""

    context_window: int
    prompt_tokens: int | None = None


def stated_window(message: str) -> StatedWindow | None:
    """The window (and prompt size) an upstream's context-length refusal states, or None when it states none."""
    window = _WINDOW.search(message)
    if window is None or int(window.group(1)) <= 0:
        return None
    for pattern in _PROMPT:
        prompt = pattern.search(message)
        if prompt is not None:
            return StatedWindow(int(window.group(1)), int(prompt.group(1)))
    return StatedWindow(int(window.group(1)))


def output_limit_is_the_gateways(request: ChatRequest) -> bool:
    """Whether the request's output limit is the gateway's own: an OpenAI-dialect body naming neither
    max_completion_tokens nor max_tokens (Anthropic's Messages API requires max_tokens)."""
    native = request.native
    if request.max_output_tokens is None or native is None or native.dialect != "openai":
        return False
    return all(native.body.get(name) is None for name in _OUTPUT_LIMIT_FIELDS)


class ContextWindows:
    """Windows learned from upstreams' refusals, per target (base URL and model id), for the container's life."""

    def __init__(self) -> None:
        self._learned: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def learned(self, target: Target) -> int | None:
        return self._learned.get(_key(target))

    def fitted(self, request: ChatRequest, target: Target) -> ChatRequest:
        """The request with the gateway's own output cap lowered to fit the window learned for the target."""
        window = self.learned(target)
        if window is None or not output_limit_is_the_gateways(request):
            return request
        return _capped(request, window - estimate_prompt_tokens(request) - CONTEXT_HEADROOM_TOKENS)

    def refitted(self, request: ChatRequest, target: Target, error: GatewayError) -> ChatRequest | None:
        """After the upstream refused `request` for its context length: the request with a cap that fits the window
        the refusal states (remembered for the target), or None when the refused limit was the caller's, the
        refusal states no window, or no smaller cap would fit."""
        if error.code != CONTEXT_LENGTH_EXCEEDED or not output_limit_is_the_gateways(request):
            return None
        stated = stated_window(error.message)
        if stated is None:
            return None
        with self._lock:
            self._learned[_key(target)] = stated.context_window
        if stated.prompt_tokens is not None:
            room = stated.context_window - stated.prompt_tokens
        else:
            room = stated.context_window - estimate_prompt_tokens(request) - CONTEXT_HEADROOM_TOKENS
        logger.info(
            "The provider stated its context window; the gateway's output cap is lowered to fit it",
            extra={"target": target.label, "context_window": stated.context_window, "output_cap": room},
        )
        refitted = _capped(request, room)
        return refitted if refitted is not request else None


def _capped(request: ChatRequest, cap: int) -> ChatRequest:
    limit = request.max_output_tokens
    if cap < 1 or limit is None or cap >= limit:
        return request
    return request.with_(max_output_tokens=cap)


def _key(target: Target) -> tuple[str, str]:
    return target.base_url or "", target.model_id
