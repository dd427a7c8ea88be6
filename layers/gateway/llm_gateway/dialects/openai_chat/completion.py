"""A chat.completion an OpenAI-compatible upstream answered, read into the conversation model and kept whole
(`native`) for a caller in its format.

What the upstream got wrong becomes the provider's error: the reader is given the builders (`UpstreamFaults`), so
the format's rules stay here and the provider's error table stays with the provider."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import (
    ContentBlock,
    Native,
    ReasoningBlock,
    StopReason,
    TextBlock,
    ToolCallBlock,
)
from llm_gateway.errors import GatewayError

_STOP_REASONS: Mapping[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    # The legacy function calling's reason.
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


class UpstreamFaults(Protocol):
    """The errors a reader raises for one upstream call: an answer that breaks the format, and an error the upstream
    reported inside a 200 (the whole body, or a stream chunk)."""

    def malformed(self, detail: str) -> GatewayError: ...

    def reported(self, payload: Mapping[str, Any]) -> GatewayError: ...


# Estimates the usage of an answer the upstream did not meter, from what the model produced (texts, tool names and
# arguments).
Unmetered = Callable[[Sequence[str]], Usage]

# Where reasoning comes in answers: vLLM and DeepSeek say reasoning_content, newer vLLM and OpenRouter reasoning.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def stop_reason(value: object, refused: bool) -> StopReason:
    """OpenAI's finish reasons in the gateway's terms; an answer that is a refusal stops as one."""
    reason = _STOP_REASONS.get(value, "end_turn") if isinstance(value, str) else "end_turn"
    return "refusal" if refused and reason == "end_turn" else reason


def usage_of(value: object) -> Usage | None:
    """The usage object of an upstream answer, or None when it is absent or unusable."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(
        max(0, prompt),
        max(0, completion),
        cached_tokens=_detail(value, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(value, "completion_tokens_details", "reasoning_tokens"),
    )


def _detail(usage: Mapping[str, Any], group: str, name: str) -> int:
    details = usage.get(group)
    count = details.get(name) if isinstance(details, dict) else None
    return count if isinstance(count, int) and count > 0 else 0


def text_of(content: object) -> str | None:
    """Message content as text; a few servers send a list of parts instead of a string."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return None


def arguments_of(value: object) -> str:
    """Tool call arguments as the JSON string OpenAI defines; some servers send the object itself."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


def reasoning_of(container: Mapping[str, Any]) -> str | None:
    for name in REASONING_FIELDS:
        value = container.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def completion_of(payload: Any, *, native: bool, faults: UpstreamFaults, unmetered: Unmetered) -> Completion:
    """An upstream's chat.completion in the conversation model; the payload itself kept when the caller speaks
    OpenAI's dialect (`native`). Usage is the upstream's, else `unmetered` of what the model produced. Raises
    `faults.reported` for an error body, `faults.malformed` for an answer without a choice, message or tool name."""
    if isinstance(payload, dict) and payload.get("error"):
        raise faults.reported(payload)
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise faults.malformed("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise faults.malformed("the choice has no message")
    blocks: list[ContentBlock] = []
    reasoning = reasoning_of(message)
    if reasoning:
        blocks.append(ReasoningBlock(reasoning))
    content = text_of(message.get("content"))
    refusal = message.get("refusal")
    if content:
        blocks.append(TextBlock(content))
    elif isinstance(refusal, str) and refusal:
        blocks.append(TextBlock(refusal, extra={"refusal": True}))
    for number, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(name, str):
            raise faults.malformed("a tool call has no function name")
        call_id = call.get("id")
        blocks.append(
            ToolCallBlock(
                call_id if isinstance(call_id, str) and call_id else f"call_{number}",
                name,
                arguments_of(function.get("arguments")),
            )
        )
    usage = usage_of(payload.get("usage"))
    if usage is None:
        produced = [block.text for block in blocks if isinstance(block, TextBlock | ReasoningBlock)]
        produced += [text for b in blocks if isinstance(b, ToolCallBlock) for text in (b.name, b.arguments)]
        usage = unmetered(produced)
    refused = not content and isinstance(refusal, str) and bool(refusal)
    return Completion(
        tuple(blocks),
        stop_reason(choice.get("finish_reason"), refused),
        usage,
        native=Native("openai", payload) if native else None,
    )
