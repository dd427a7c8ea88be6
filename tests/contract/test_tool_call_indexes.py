"""Streamed parallel tool calls that an OpenAI-compatible upstream sends with distinct ids under one `index`
(BerriAI/litellm#33678) reach the official openai SDK as separate calls: pass-through renumbers them and changes
nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llm_gateway.dialects.openai_chat.chunks import with_tool_call_indexes
from tests.conftest import Handler
from tests.fakes.handler_client import handler_client
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk

USER = [{"role": "user", "content": "What is the weather in Paris and Rome?"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def call(call_id: str, arguments: str, index: int = 0) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


def more(arguments: str, index: int = 0) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": arguments}}


# Both calls under index 0, each followed by its argument fragments (which carry no id).
SAME_INDEX = [
    delta_chunk(role="assistant", content=None),
    delta_chunk(tool_calls=[call("call_paris", "")]),
    delta_chunk(tool_calls=[more('{"city": ')]),
    delta_chunk(tool_calls=[more('"Paris"}')]),
    delta_chunk(tool_calls=[call("call_rome", "")]),
    delta_chunk(tool_calls=[more('{"city": "Rome"}')]),
    delta_chunk(finish_reason="tool_calls"),
    usage_chunk(20, 18),
]


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        target = {"provider": "openai", "model_id": "upstream-model", "base_url": server.base_url}
        monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": {"proxy": {"targets": [target]}}}))
        yield server


def test_parallel_calls_under_one_index_reach_the_sdk_as_two_calls(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    upstream.enqueue(stream=SAME_INDEX)
    sdk, _ = handler_client(api_handler)
    with sdk.chat.completions.stream(model="proxy", messages=USER, tools=[TOOL]) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("call_paris", "get_weather", {"city": "Paris"}),
        ("call_rome", "get_weather", {"city": "Rome"}),
    ]


def test_only_the_index_changes_in_the_forwarded_chunks(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    upstream.enqueue(stream=SAME_INDEX)
    sdk, _ = handler_client(api_handler)
    chunks = [
        chunk.model_dump(exclude_unset=True)
        for chunk in sdk.chat.completions.create(model="proxy", messages=USER, tools=[TOOL], stream=True)
    ]  # type: ignore[arg-type]
    forwarded = [chunk["choices"][0]["delta"].get("tool_calls") for chunk in chunks if chunk["choices"]]
    sent = [chunk["choices"][0]["delta"].get("tool_calls") for chunk in SAME_INDEX if chunk.get("choices")]
    assert [[entry["index"] for entry in calls] for calls in forwarded if calls] == [[0], [0], [0], [1], [1]]
    for got, original in zip(forwarded, sent, strict=True):
        if got is not None:
            assert [{**entry, "index": 0} for entry in got] == original


def test_a_chunk_whose_indexes_are_right_is_forwarded_as_the_same_object() -> None:
    chunk = delta_chunk(tool_calls=[call("call_1", "{}"), call("call_2", "{}", index=1)])
    assert with_tool_call_indexes(chunk, [0, 1]) is chunk
    repaired = with_tool_call_indexes(chunk, [0, 2])
    assert [entry["index"] for entry in repaired["choices"][0]["delta"]["tool_calls"]] == [0, 2]
    assert chunk["choices"][0]["delta"]["tool_calls"][1]["index"] == 1, "the upstream's chunk is not changed"
    assert json.dumps(repaired).replace('"index": 2', '"index": 1') == json.dumps(chunk)
