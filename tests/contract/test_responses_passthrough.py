"""The Responses API passed through to an upstream that serves it (`responses_api: true` on its target), behind the
real handler with the openai SDK and a fake server on 127.0.0.1: the upstream gets the caller's body with only the
gateway's decisions (model id, output cap, streaming, nothing stored upstream), the caller gets the upstream's answer
and events as sent (under the gateway's response id), usage is the upstream's, what the upstream says is untrusted
(the provider key redacted, an error event the gateway's own), and stored conversations continue through it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llm_gateway.domain.stores import UsageLedger
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from tests.conftest import Handler, reset_caches
from tests.fakes.handler_client import CALLER, handler_client
from tests.fakes.openai_server import FakeOpenAIServer, response_json

UPSTREAM_KEY = "sk-upstream-responses-key-0123456789"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch, upstream: FakeOpenAIServer, tmp_path: Path) -> None:
    target = {"provider": "openai", "model_id": "gpt-upstream", "base_url": upstream.base_url}
    models = {
        "native": {
            "targets": [{**target, "responses_api": True, "api_key_env": "UPSTREAM_KEY"}],
            "traits": {"limits": {"max_output_tokens": 100, "source": "a test"}},
        },
        "chat-only": {"targets": [target]},
        "native-then-chat": {"targets": [{**target, "responses_api": True}, target]},
    }
    monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("GATEWAY_STORE", "sqlite")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    reset_caches()


def frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def test_the_upstream_gets_the_callers_body_and_the_caller_its_answer(
    api_handler: Handler, upstream: FakeOpenAIServer, tmp_path: Path
) -> None:
    answer = response_json({"model": "gpt-upstream"}, text="from upstream", input_tokens=11, output_tokens=4)
    answer["billing"] = {"payer": "developer"}  # a field the gateway does not know
    upstream.enqueue(json=answer)
    client, _ = handler_client(api_handler)
    response = client.responses.create(
        model="native",
        input="hello",
        max_output_tokens=5000,
        temperature=0.5,
        extra_body={"prompt_cache_retention": "24h", "top_logprobs": None, "context_management": [{"type": "x"}]},
    )
    sent = upstream.last_request
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    body = sent.body
    assert body["model"] == "gpt-upstream" and body["input"] == "hello" and body["stream"] is False
    assert body["store"] is False and body["max_output_tokens"] == 100  # the model's cap
    assert body["prompt_cache_retention"] == "24h" and "top_logprobs" in body and body["top_logprobs"] is None
    assert body["context_management"] == [{"type": "x"}] and body["temperature"] == 0.5
    raw = response.to_dict()
    assert raw["billing"] == {"payer": "developer"} and response.output_text == "from upstream"
    assert response.id != "resp_upstream_1" and response.model == "native" and raw["store"] is True
    ledger: UsageLedger = SqliteUsageStore(database(tmp_path))
    [day] = ledger.daily_usage(key_id=CALLER["keyId"])
    assert (day.prompt_tokens, day.completion_tokens) == (11, 4)
    # Stored under the gateway's id, it is continued with the whole history sent to the upstream.
    client.responses.create(model="native", input="and then?", previous_response_id=response.id)
    second = upstream.last_request.body
    assert "previous_response_id" not in second
    assert [item.get("role") for item in second["input"]] == ["user", "assistant", "user"]


def test_streamed_events_are_forwarded_as_sent(
    api_handler: Handler, upstream: FakeOpenAIServer, tmp_path: Path
) -> None:
    final = response_json({"model": "gpt-upstream"}, text="Hi there", input_tokens=9, output_tokens=2)
    in_progress = {**final, "status": "in_progress", "output": [], "usage": None}
    events = [
        {"type": "response.created", "response": in_progress, "sequence_number": 0},
        {"type": "response.in_progress", "response": in_progress, "sequence_number": 1},
        {"type": "response.output_text.delta", "item_id": "msg_upstream_1", "output_index": 0, "content_index": 0,
         "delta": "Hi", "logprobs": [], "sequence_number": 2},
        {"type": "response.upstream_only_event", "detail": {"kept": True}, "sequence_number": 3},
        {"type": "response.output_text.delta", "item_id": "msg_upstream_1", "output_index": 0, "content_index": 0,
         "delta": " there", "logprobs": [], "sequence_number": 4},
        {"type": "response.completed", "response": final, "sequence_number": 5},
    ]  # fmt: skip
    upstream.enqueue(stream=[frame(event) for event in events], done=False)
    client, transport = handler_client(api_handler)
    received = list(client.responses.create(model="native", input="hello", stream=True))
    assert upstream.last_request.body["stream"] is True
    text = transport.responses[-1]["body"]
    frames = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    assert [event["type"] for event in frames] == [event["type"] for event in events]
    assert frames[3] == events[3] and frames[2] == events[2]
    assert received[-1].type == "response.completed" and received[-1].response.output_text == "Hi there"  # type: ignore[union-attr]
    gateway_id = frames[0]["response"]["id"]
    assert gateway_id != "resp_upstream_1" and frames[-1]["response"]["id"] == gateway_id
    assert frames[-1]["response"]["model"] == "native"
    ledger: UsageLedger = SqliteUsageStore(database(tmp_path))
    [day] = ledger.daily_usage(key_id=CALLER["keyId"])
    assert (day.prompt_tokens, day.completion_tokens) == (9, 2)
    assert client.responses.retrieve(gateway_id).output_text == "Hi there"


def test_what_the_upstream_says_is_untrusted(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    leaky = response_json({"model": "gpt-upstream"}, text=f"my key is {UPSTREAM_KEY}")
    upstream.enqueue(json=leaky)
    client, transport = handler_client(api_handler)
    response = client.responses.create(model="native", input="hello", store=False)
    assert UPSTREAM_KEY not in transport.responses[-1]["body"] and "[redacted]" in response.output_text

    started = {"type": "response.created", "response": {**leaky, "status": "in_progress"}, "sequence_number": 0}
    error = {"type": "error", "code": "server_error", "message": f"boom {UPSTREAM_KEY}", "sequence_number": 1}
    upstream.enqueue(stream=[frame(started), frame(error)], done=False)
    streamed = client.responses.create(model="native", input="hello", stream=True, store=False)
    events = [event.type for event in streamed]
    # The upstream's error event is the gateway's own error event, then response.failed.
    assert events == ["response.created", "error", "response.failed"]
    assert UPSTREAM_KEY not in transport.responses[-1]["body"]


def test_a_target_that_does_not_serve_it_gets_chat_completions(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    client, _ = handler_client(api_handler)
    response = client.responses.create(model="chat-only", input="hello", store=False)
    assert upstream.last_request.path == "/v1/chat/completions" and response.output_text == "hello"


def test_hosted_tools_and_includes_reach_an_upstream_that_runs_them(
    api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    """What only OpenAI's own Responses API runs is the upstream's to run when every target of the model serves it;
    toward a model any of whose targets would get chat completions it is refused, naming it."""
    client, _ = handler_client(api_handler)
    hosted: dict[str, Any] = {
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
        "tool_choice": {"type": "file_search"},
        "include": ["file_search_call.results"],
    }
    upstream.enqueue(json=response_json({"model": "gpt-upstream"}, text="found it"))
    response = client.responses.create(model="native", input="search", store=False, **hosted)
    assert response.output_text == "found it"
    sent = upstream.last_request.body
    assert (sent["tools"], sent["tool_choice"], sent["include"]) == (
        hosted["tools"],
        hosted["tool_choice"],
        hosted["include"],
    )
    for model in ("chat-only", "native-then-chat"):
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model=model, input="search", store=False, **hosted)
        assert isinstance(raised.value.body, dict) and raised.value.body["param"] in ("include", "tools[0].type")
