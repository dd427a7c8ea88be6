"""What an upstream answers is untrusted text: it never carries the provider key to a caller or a log, an odd
character never breaks an answer, and an answer without usage is recorded conservatively.

The caller is the real API handler (raw HTTP, or the official openai SDK); the upstream is the fake
OpenAI-compatible server on 127.0.0.1, holding the provider key the gateway sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from llm_gateway.domain.estimate import estimate_prompt_tokens
from llm_gateway.domain.tokens import estimate_text_tokens
from tests.conftest import Handler, LogOutput
from tests.contract.conftest import Stack
from tests.fakes.handler_client import CALLER, STAGE, HandlerTransport, handler_client
from tests.fakes.openai_server import FakeOpenAIServer, chat_completion_json, delta_chunk, usage_json
from tests.fakes.requests import openai_chat

PROVIDER_KEY = "sk-upstream-2f9c41d8e7b6a5f4c3d2e1f0a9b8c7d6"
# The key as a JSON escape spells it: what a parse turns back into the key.
ESCAPED_KEY = PROVIDER_KEY.replace("-", "\\u002d")
USER = [{"role": "user", "content": "Say yes."}]
SURFACES = ("/chat/completions", "/messages")


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        target = {"provider": "openai", "model_id": "upstream-model", "base_url": server.base_url}
        models = {"up": {"targets": [{**target, "api_key_env": "UPSTREAM_PROVIDER_KEY"}]}}
        monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))
        monkeypatch.setenv("UPSTREAM_PROVIDER_KEY", PROVIDER_KEY)
        yield server


def post(handler: Handler, path: str, body: dict[str, Any]) -> httpx2.Response:
    headers = {"anthropic-version": "2023-06-01"} if path == "/messages" else {}
    client = httpx2.Client(transport=HandlerTransport(handler, CALLER), base_url=f"https://{STAGE.domain}/{STAGE.name}")
    return client.post(path, json=body, headers=headers)


def request_body(path: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "up", "messages": USER, "stream": stream}
    return {**body, "max_tokens": 64} if path == "/messages" else body


def quoting(key: str) -> dict[str, Any]:
    """An upstream error that quotes the key it was sent in every field."""
    return {"error": {"message": f"Incorrect API key: {key}", "type": key, "param": key, "code": f"bad_{key}"}}


def leaked(text: str) -> bool:
    return PROVIDER_KEY in text or ESCAPED_KEY in text


@pytest.mark.parametrize("spelled", [PROVIDER_KEY, ESCAPED_KEY], ids=["plain", "json-escaped"])
@pytest.mark.parametrize("path", SURFACES)
def test_an_upstream_error_quoting_the_key_reaches_no_caller_and_no_log(
    api_handler: Handler,
    upstream: FakeOpenAIServer,
    log_output: LogOutput,
    capsys: pytest.CaptureFixture[str],
    path: str,
    spelled: str,
) -> None:
    raw = json.dumps(quoting("KEY")).replace("KEY", spelled).encode()
    upstream.enqueue(status=400, body=raw, headers={"Content-Type": "application/json"})
    reply = post(api_handler, path, request_body(path))
    assert reply.status_code == 400
    assert "[redacted]" in reply.text and not leaked(reply.text), reply.text
    assert upstream.last_request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert not leaked(json.dumps(log_output())) and not leaked(capsys.readouterr().out)


@pytest.mark.parametrize("path", SURFACES)
def test_a_streamed_error_frame_quoting_the_key_reaches_no_caller(
    api_handler: Handler, upstream: FakeOpenAIServer, log_output: LogOutput, path: str
) -> None:
    upstream.enqueue(stream=[delta_chunk(role="assistant", content="Ye")], error=quoting(PROVIDER_KEY)["error"])
    reply = post(api_handler, path, request_body(path, stream=True))
    assert reply.status_code == 200
    assert "error" in reply.text and "[redacted]" in reply.text, reply.text
    assert not leaked(reply.text) and not leaked(json.dumps(log_output()))


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_quoting_the_key_is_forwarded_without_it(
    api_handler: Handler, upstream: FakeOpenAIServer, stream: bool
) -> None:
    if stream:
        # A frame whose JSON spells the key with escapes.
        frame = "data: " + json.dumps(delta_chunk(role="assistant", content="key=KEY")).replace("KEY", ESCAPED_KEY)
        upstream.enqueue(stream=[frame + "\n\n", delta_chunk(finish_reason="stop")])
    else:
        upstream.enqueue(json=chat_completion_json(f"key={PROVIDER_KEY}", usage=usage_json(3, 2)))
    reply = post(api_handler, "/chat/completions", request_body("/chat/completions", stream=stream))
    assert reply.status_code == 200
    assert "key=[redacted]" in reply.text and not leaked(reply.text)


def test_the_callers_key_is_never_forwarded(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    sdk, _ = handler_client(api_handler)
    caller_key = "sk-llmgw-the-callers-own-key-0123456789abcdef"
    sdk.with_options(api_key=caller_key).chat.completions.create(model="up", messages=USER)
    (received,) = upstream.requests
    assert caller_key not in json.dumps(received.headers) and caller_key.encode() not in received.raw_body
    assert received.headers["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_a_lone_surrogate_in_an_answer_is_repaired_and_settled(
    stack: Stack, api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    # "\ud83d" alone is valid JSON but no UTF-8 encoder takes it.
    body = json.dumps(chat_completion_json("smile \ud83d!", usage=usage_json(3, 2))).encode()
    assert b"\\ud83d" in body
    upstream.enqueue(body=body, headers={"Content-Type": "application/json"})
    sdk, _ = handler_client(api_handler)
    answer = sdk.chat.completions.create(model="up", messages=USER)
    assert answer.choices[0].message.content == "smile \ufffd!"
    stack.assert_settled(CALLER["keyId"], requests=1)


def test_a_lone_surrogate_in_a_stream_is_repaired_and_the_stream_ends_cleanly(
    stack: Stack, api_handler: Handler, upstream: FakeOpenAIServer
) -> None:
    upstream.enqueue(
        stream=[
            delta_chunk(role="assistant", content="smile "),
            delta_chunk(content="\ud83d!"),
            delta_chunk(finish_reason="stop"),
        ]
    )
    sdk, _ = handler_client(api_handler)
    chunks = list(sdk.chat.completions.create(model="up", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "smile \ufffd!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    stack.assert_settled(CALLER["keyId"], requests=1)


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_without_usage_is_recorded_as_the_gateways_estimate(
    stack: Stack, api_handler: Handler, upstream: FakeOpenAIServer, log_output: LogOutput, stream: bool
) -> None:
    prompt = "请把这段话翻译成英文。" * 40
    output = "这是一个很长的回答。" * 400
    if stream:
        upstream.enqueue(stream=[delta_chunk(role="assistant", content=output), delta_chunk(finish_reason="stop")])
    else:
        upstream.enqueue(json=chat_completion_json(output))
    messages = [{"role": "user", "content": prompt}]
    reply = post(api_handler, "/chat/completions", {"model": "up", "messages": messages, "stream": stream})
    assert reply.status_code == 200
    item = stack.assert_settled(CALLER["keyId"], requests=1)
    day = datetime.now(UTC).strftime("%d")
    # The bounded estimate, not four characters a token (which would record 1,000 tokens for 4,000 ideographs).
    expected_prompt = estimate_prompt_tokens(
        openai_chat({"model": "up", "messages": messages, "max_completion_tokens": 1})
    )
    assert int(item[f"prompt_tokens_{day}"]) == expected_prompt
    assert int(item[f"completion_tokens_{day}"]) == estimate_text_tokens(output) > len(output)
    assert item[f"estimated_{day}"] == "1"
    access = [line for line in log_output() if line["message"] == "request"]
    assert access[-1]["usage_estimated"] is True
