"""Completions written as the Responses API's `response` object: typed output items (reasoning, message, function
and custom tool calls), the status and why it is incomplete, and the usage with its cached and reasoning tokens.

The object also says back what the request asked for (instructions, tools, tool_choice, sampling, metadata) as
OpenAI's does, and whether it was stored (`store`, with the `previous_response_id` it continues)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.dialects.openai_responses.sealed import encrypted_content
from llm_gateway.dialects.openai_responses.tools import CUSTOM_INPUT
from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import ContentBlock, ReasoningBlock, StopReason, TextBlock, ToolCallBlock

# Why an answer is incomplete, by the gateway's stop reasons; every other reason completes it.
INCOMPLETE_REASONS: dict[StopReason, str] = {
    "max_tokens": "max_output_tokens",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ResponseWriter:
    """Writes one response's objects and items: its id, the request it answers and the public model name."""

    request: ResponsesRequest
    response_id: str
    created_at: int
    model: str
    # Whether the response is kept (store: true where a response store is configured).
    stored: bool = False

    @property
    def suffix(self) -> str:
        return self.response_id.removeprefix("resp_")

    def item_id(self, prefix: str, index: int) -> str:
        return f"{prefix}_{self.suffix}_{index}"

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None,
        *,
        stop_reason: StopReason | None = None,
        error: dict[str, Any] | None = None,
        completed_at: int | None = None,
    ) -> dict[str, Any]:
        """The response object in a given state (in_progress, completed, incomplete, failed)."""
        sent = self.request.model_dump(mode="json", by_alias=True, exclude_unset=True)
        reasoning = sent.get("reasoning") or {}
        incomplete = INCOMPLETE_REASONS.get(stop_reason) if stop_reason is not None else None
        text = dict(sent.get("text") or {})
        text.setdefault("format", {"type": "text"})
        body: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": completed_at if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": incomplete} if status == "incomplete" and incomplete else None,
            "instructions": self.request.instructions,
            "max_output_tokens": self.request.max_output_tokens,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.request.parallel_tool_calls is not False,
            "previous_response_id": self.request.previous_response_id,
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": self.stored,
            "temperature": self.request.temperature if self.request.temperature is not None else 1.0,
            "text": text,
            "tool_choice": sent.get("tool_choice") or "auto",
            "tools": [_said_back(tool) for tool in sent.get("tools") or []],
            "top_p": self.request.top_p if self.request.top_p is not None else 1.0,
            "truncation": sent.get("truncation") or "disabled",
            "metadata": self.request.metadata or {},
        }
        # Open Responses requires these in every response object; the values are what the request sent, else the
        # defaults OpenAI says back (nothing penalised, no log probabilities, the default tier).
        body.update(
            {
                "presence_penalty": sent.get("presence_penalty", 0.0),
                "frequency_penalty": sent.get("frequency_penalty", 0.0),
                "top_logprobs": sent.get("top_logprobs", 0),
                "max_tool_calls": sent.get("max_tool_calls"),
                "service_tier": sent.get("service_tier") or "default",
            }
        )
        for name in ("user", "prompt_cache_key", "safety_identifier"):
            body[name] = sent[name] if isinstance(sent.get(name), str) else None
        # Null while in progress, as OpenAI's answers and the spec's examples say it (its schema types an object).
        body["usage"] = usage_json(usage) if usage is not None else None
        return body

    def message_item(self, index: int, text: str, status: str) -> dict[str, Any]:
        content = [] if status == "in_progress" else [output_text(text)]
        return {
            "id": self.item_id("msg", index),
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def reasoning_item(self, index: int, block: ReasoningBlock, *, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.item_id("rs", index), "type": "reasoning", "summary": []}
        if block.text:
            item["content"] = [{"type": "reasoning_text", "text": block.text}] if done else []
        if done and self.request.wants_encrypted_reasoning:
            item["encrypted_content"] = encrypted_content(block)
        item["status"] = "completed" if done else "in_progress"
        return item

    def tool_call_item(self, index: int, call: ToolCallBlock, status: str) -> dict[str, Any]:
        done = status != "in_progress"
        item: dict[str, Any]
        if call.name in self.request.custom_tools:
            item = {
                "id": self.item_id("ctc", index),
                "type": "custom_tool_call",
                "call_id": call.id,
                "name": call.name,
                "input": custom_input(call.arguments) if done else "",
                "status": status,
            }
        else:
            item = {
                "id": self.item_id("fc", index),
                "type": "function_call",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments if done else "",
                "status": status,
            }
        namespace = self.request.namespaces.get(call.name)
        if namespace is not None:
            item["namespace"] = namespace
        return item

    def output(self, content: Iterable[ContentBlock], stop_reason: StopReason) -> list[dict[str, Any]]:
        """A completion's output items in order: reasoning, then text as one message, then each tool call."""
        status = "incomplete" if stop_reason in INCOMPLETE_REASONS else "completed"
        blocks = list(content)
        items: list[dict[str, Any]] = []
        for block in blocks:
            if isinstance(block, ReasoningBlock):
                items.append(self.reasoning_item(len(items), block, done=True))
        text = "".join(block.text for block in blocks if isinstance(block, TextBlock))
        if text or not any(isinstance(block, ToolCallBlock) for block in blocks):
            items.append(self.message_item(len(items), text, status))
        for block in blocks:
            if isinstance(block, ToolCallBlock):
                items.append(self.tool_call_item(len(items), block, status))
        return items

    def forwarded(self, response: Mapping[str, Any]) -> dict[str, Any]:
        """A response object as an upstream that serves the Responses API wrote it, with what the gateway decides:
        its own id (under which it stores it), the public model name, whether it is stored, and the previous
        response the caller named."""
        return {
            **response,
            "id": self.response_id,
            "model": self.model,
            "store": self.stored,
            "previous_response_id": self.request.previous_response_id,
        }

    def answer(self, completion: Completion, completed_at: int) -> str:
        """The whole response object of a finished completion, as JSON: the upstream's own when it answered in
        this format."""
        native = completion.native
        if native is not None and native.dialect == "openai_responses":
            return compact(self.forwarded(native.body))
        status = "incomplete" if completion.stop_reason in INCOMPLETE_REASONS else "completed"
        output = self.output(completion.content, completion.stop_reason)
        body = self.response(
            status, output, completion.usage, stop_reason=completion.stop_reason, completed_at=completed_at
        )
        return compact(body)


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments a provider gave for it (`{"input": "..."}`); the arguments
    themselves when the model wrote something else."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    value = parsed.get(CUSTOM_INPUT) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else arguments


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        # Cache writes as the openai SDK's usage reads them (it requires the field).
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _said_back(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as the response says it back: as sent, a function tool with the `strict` and `parameters` OpenAI's
    spec requires in a response (null where the caller named none)."""
    if tool.get("type") != "function":
        return tool
    return {"strict": None, "parameters": None, **tool}
