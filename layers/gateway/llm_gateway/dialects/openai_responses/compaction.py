"""POST /responses/compact in the Responses API's terms: the request the key's model answers with a summary of the
conversation, and the `response.compaction` object made of it (every user message of the conversation, then one
`compaction` item whose `encrypted_content` seals the summary; request.py reads it back as that summary).

OpenAI's reference: https://platform.openai.com/docs/api-reference/responses/compact ("a list of all user messages,
followed by a single compaction item"); Open Responses' CompactResource schema is the same object.
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


def compacted(
    request: ResponsesRequest, response_id: str, created_at: int, kept: list[dict[str, Any]], completion: Completion
) -> dict[str, Any]:
    """The `response.compaction` object: the kept user messages, then the compaction item of the model's summary;
    `usage` is the summarising call's."""
    suffix = response_id.removeprefix("resp_")
    item = {
        "id": f"cmp_{suffix}",
        "type": "compaction",
        "encrypted_content": compaction_content(completion.text.strip()),
        "created_by": request.model,
    }
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": created_at,
        "output": [*kept, item],
        "usage": usage_json(completion.usage),
    }
