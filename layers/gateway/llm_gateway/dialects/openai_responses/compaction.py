"""Compaction in the Responses API's terms: the request the key's model answers with a summary of the
conversation, and what is made of that summary: one `compaction` item whose `encrypted_content` seals it
(request.py reads it back as the summary).

Two ways in: POST /responses/compact, answered with the `response.compaction` object (every user message of the
conversation, then the compaction item: https://platform.openai.com/docs/api-reference/responses/compact, and Open
Responses' CompactResource); and a POST /responses whose input ends with a `compaction_trigger` item (Codex's
remote compaction v2), answered with a response whose only output item is the compaction item.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.dialects.openai_responses.answer import usage_json
from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.dialects.openai_responses.sealed import compaction_content
from llm_gateway.domain.answers import Completion

# What the model is asked for once it has read the conversation: a summary another model continues from, since
# the compaction item replaces every turn but the user's own messages.
SUMMARY_PROMPT = (
    "Compact the conversation above into a summary that lets you continue the work without it: the goal and "
    "the user's requests and constraints, decisions made, what was done and its results (files, commands, "
    "tool outputs that matter), what is still open and the next step. Write only the summary."
)
# Fields of a create request that shape only the answer of this one call, never the summary: the summary is a
# plain text answer, never streamed, stored or continued in the background.
_NOT_FOR_SUMMARY = frozenset({"stream", "stream_options", "store", "background", "text", "include", "tool_choice"})
TRIGGER = "compaction_trigger"


def triggered(sent: dict[str, Any]) -> bool:
    """Whether a create request asks for compaction: its last input item is a `compaction_trigger`."""
    items = sent.get("input")
    return isinstance(items, list) and bool(items) and isinstance(items[-1], dict) and items[-1].get("type") == TRIGGER


def triggered_body(sent: dict[str, Any]) -> dict[str, Any]:
    """The request the model answers for a `compaction_trigger`: the summary prompt in the trigger's place (the
    summary is made whole, then written as the request asked: streamed or not)."""
    return summary_body({**sent, "input": sent["input"][:-1]})


def summary_body(sent: dict[str, Any]) -> dict[str, Any]:
    """The create request whose answer is the summary: the conversation as sent (`input`, `instructions`,
    `previous_response_id`, the tools its calls belong to), then the summary prompt as the last user message;
    tools are offered but not called (`tool_choice: none`), since Bedrock needs them declared when history
    holds tool calls."""
    body = {name: value for name, value in sent.items() if name not in _NOT_FOR_SUMMARY}
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    body["input"] = [*(items or []), {"type": "message", "role": "user", "content": SUMMARY_PROMPT}]
    body["store"] = False
    if body.get("tools"):
        body["tool_choice"] = "none"
    return body


def kept_items(items: list[dict[str, Any]], response_id: str) -> list[dict[str, Any]]:
    """The user messages of the conversation (resolved), which compaction keeps as they were, as OpenAI lists
    messages: a text content as one input_text part, a status, and an id (the gateway's, naming this compaction,
    where the client sent none)."""
    kept = []
    for position, item in enumerate(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                content = [{"type": "input_text", "text": content}]
            identifier = item.get("id") or f"msg_{response_id.removeprefix('resp_')}_in{position}"
            kept.append({**item, "id": identifier, "type": "message", "status": "completed", "content": content})
    return kept


def compaction_item(model: str, response_id: str, completion: Completion) -> dict[str, Any]:
    """The compaction item of the model's summary."""
    return {
        "id": f"cmp_{response_id.removeprefix('resp_')}",
        "type": "compaction",
        "encrypted_content": compaction_content(completion.text.strip()),
        "created_by": model,
    }


def compaction_events(in_progress: dict[str, Any], completed: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of a response whose one output item is a compaction item: created, in_progress, the item added
    and done, completed (the summary is made whole before the stream is written, so it has no deltas)."""
    [item] = completed["output"]
    events = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": completed},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def compacted(
    request: ResponsesRequest, response_id: str, created_at: int, kept: list[dict[str, Any]], completion: Completion
) -> dict[str, Any]:
    """The `response.compaction` object: the kept user messages, then the compaction item of the model's summary;
    `usage` is the summarising call's."""
    item = compaction_item(request.model, response_id, completion)
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": created_at,
        "output": [*kept, item],
        "usage": usage_json(completion.usage),
    }
