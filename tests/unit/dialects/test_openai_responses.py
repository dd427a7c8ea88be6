"""The Responses dialect alone: input items read into the conversation model, output written back from it, and the
items the gateway writes read back to the same blocks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.dialects.openai_responses.answer import ResponseWriter
from llm_gateway.dialects.openai_responses.request import conversation
from llm_gateway.dialects.openai_responses.schemas import ResponsesRequest
from llm_gateway.dialects.openai_responses.sealed import compaction_content, compaction_summary
from llm_gateway.domain.answers import Completion, Usage
from llm_gateway.domain.conversation import ContentBlock, ReasoningBlock, TextBlock, ToolCallBlock, ToolResultBlock
from llm_gateway.errors import GatewayError

TOOLS = [
    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
    {"type": "custom", "name": "apply_patch"},
]


def read(body: dict[str, Any]) -> Any:
    return conversation(ResponsesRequest.model_validate(body), body)


def written_items(blocks: tuple[ContentBlock, ...], include: list[str]) -> list[dict[str, Any]]:
    request = ResponsesRequest.model_validate({"model": "m", "input": "x", "tools": TOOLS, "include": include})
    return ResponseWriter(request, "resp_1", 0, "m").output(blocks, "tool_use")


text = st.text(min_size=1, max_size=20).filter(str.strip)


@given(
    reasoning=text,
    signature=st.text(alphabet="abcdef0123456789", min_size=8, max_size=32),
    answer=text,
    arguments=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    patch=text,
)
def test_written_items_read_back_to_the_same_blocks(
    reasoning: str, signature: str, answer: str, arguments: dict[str, int], patch: str
) -> None:
    import json

    blocks: tuple[ContentBlock, ...] = (
        ReasoningBlock(reasoning, signature=signature),
        TextBlock(answer),
        ToolCallBlock("call_1", "shell", json.dumps(arguments)),
        ToolCallBlock("call_2", "apply_patch", json.dumps({"input": patch})),
    )
    items = written_items(blocks, ["reasoning.encrypted_content"])
    assert [item["type"] for item in items] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert items[3]["input"] == patch
    read_back = read({"model": "m", "input": [{"role": "user", "content": "go"}, *items], "tools": TOOLS})
    (assistant,) = [message for message in read_back.messages if message.role == "assistant"]
    got = assistant.content
    assert (got[0].text, got[0].signature) == (reasoning, signature)  # type: ignore[union-attr]
    assert got[1].text == answer  # type: ignore[union-attr]
    assert [(b.id, b.name, json.loads(b.arguments)) for b in got[2:]] == [  # type: ignore[union-attr]
        ("call_1", "shell", arguments),
        ("call_2", "apply_patch", {"input": patch}),
    ]


def test_items_become_turns_as_chat_messages_would() -> None:
    chat = read(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Sandboxed."},
                {"role": "user", "content": [{"type": "input_text", "text": "list"}]},
                {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "shell", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "a"},
                {"type": "function_call_output", "call_id": "c2", "output": "b"},
                {"role": "user", "content": "thanks"},
            ],
            "tools": TOOLS,
            "prompt_cache_key": "s1",
            "client_metadata": {"turn_id": "t"},
        }
    )
    assert [block.text for block in chat.system] == ["Be brief.", "Sandboxed."]  # type: ignore[union-attr]
    assert [message.role for message in chat.messages] == ["user", "assistant", "user", "user"]
    results = chat.messages[2].content
    assert all(isinstance(block, ToolResultBlock) for block in results) and len(results) == 2
    assert chat.extra == {"prompt_cache_key": "s1"}
    assert chat.tools[1].parameters["required"] == ["input"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"previous_response_id": "resp_1"}, 400, "previous_response_id"),
        ({"input": [{"type": "item_reference", "id": "rs_1"}]}, 404, "input[0]"),
        ({"tools": [{"type": "file_search"}]}, 400, "tools[0].type"),
        ({"include": ["message.output_text.logprobs"]}, 400, "include"),
        ({"background": True}, 400, "background"),
        ({"input": [{"type": "compaction", "encrypted_content": "gAAAA-openai"}]}, 400, "input[0].encrypted_content"),
    ],
)
def test_what_needs_state_or_hosted_tools_is_refused_naming_it(body: dict[str, Any], status: int, param: str) -> None:
    with pytest.raises(GatewayError) as raised:
        read({"model": "m", "input": "x", **body})
    assert (raised.value.status, raised.value.param) == (status, param)


def test_a_compaction_item_reads_back_as_its_summary() -> None:
    sealed = compaction_content("We fixed the build.")
    assert compaction_summary(sealed) == "We fixed the build."
    chat = read({"model": "m", "input": [{"type": "compaction", "encrypted_content": sealed}, "x"][:1]})
    assert "We fixed the build." in chat.messages[0].content[0].text  # type: ignore[union-attr]


def test_an_incomplete_answer_says_why() -> None:
    request = ResponsesRequest.model_validate({"model": "m", "input": "x", "max_output_tokens": 3})
    writer = ResponseWriter(request, "resp_1", 0, "m")
    import json

    body = json.loads(writer.answer(Completion((TextBlock("a b c"),), "max_tokens", Usage(1, 3)), 1))
    assert (body["status"], body["incomplete_details"], body["store"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
        False,
    )
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
