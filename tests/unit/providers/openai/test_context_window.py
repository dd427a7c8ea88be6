"""Reading the context window an upstream states in its context-length refusal (providers/context_window.py)."""

from __future__ import annotations

import pytest

from llm_gateway.domain.registry import Target
from llm_gateway.errors import ContextLengthExceededError, InvalidRequestError
from llm_gateway.providers.openai.context_window import ContextWindows, StatedWindow, stated_window
from tests.fakes.requests import openai_chat

TARGET = Target(provider="openai", model_id="llama", base_url="http://127.0.0.1:1/v1")
VLLM = (
    "'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum context length is 4096 tokens "
    "and your request has 27 input tokens (4096 > 4096 - 27). None"
)


@pytest.mark.parametrize(
    ("message", "stated"),
    [
        (VLLM, StatedWindow(4096, 27)),
        (
            "This model's maximum context length is 4096 tokens. However, you requested 4123 tokens (27 in the "
            "messages, 4096 in the completion). Please reduce the length of the messages or completion.",
            StatedWindow(4096, 27),
        ),
        ("This model's maximum context length is 8192 tokens. Please reduce the length.", StatedWindow(8192)),
        ("Input is too long.", None),
    ],
    ids=["vllm", "vllm-before-0.10-and-openai", "window-only", "no-window"],
)
def test_the_stated_window_and_prompt_are_read(message: str, stated: StatedWindow | None) -> None:
    assert stated_window(message) == stated


def test_only_the_gateways_own_cap_is_refitted_and_the_window_is_remembered() -> None:
    windows = ContextWindows()
    own = openai_chat({"model": "llama", "messages": [{"role": "user", "content": "Hi"}]}).with_(max_output_tokens=4096)
    refitted = windows.refitted(own, TARGET, ContextLengthExceededError(VLLM))
    assert refitted is not None and refitted.max_output_tokens == 4096 - 27
    assert windows.learned(TARGET) == 4096
    assert windows.fitted(own, TARGET).max_output_tokens is not None
    assert windows.fitted(own, TARGET).max_output_tokens < 4096  # type: ignore[operator]
    named = openai_chat({"model": "llama", "max_tokens": 4096, "messages": [{"role": "user", "content": "Hi"}]})
    assert windows.refitted(named, TARGET, ContextLengthExceededError(VLLM)) is None
    assert windows.fitted(named, TARGET) is named
    assert windows.refitted(own, TARGET, InvalidRequestError(VLLM)) is None, "only a context-length refusal"
