"""The API function's ASGI app in-process: streams leave as produced, hang-ups stop the provider, the caller's
identity comes only from the request context that Lambda Web Adapter sets, concurrent requests stay apart (what a
hang-up is billed: tests/contract/test_settlement.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from emulator.webadapter import WebAdapterFunction, adapter_request
from tests.fakes.asgi import App, AsgiReply, run_asgi
from tests.fakes.paced import Paced, content_chunks, invoke, paced, stream_event

__all__ = ["paced"]


def test_a_stream_leaves_the_app_as_the_provider_produces_it(api_app: App, paced: type[Paced]) -> None:
    reply = invoke(api_app, stream_event())
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    pieces = content_chunks(reply)
    assert [text for _, text in pieces] == [f" word{n}" for n in range(10)]
    first, last = pieces[0][0], pieces[-1][0]
    # Ten words 0.1 s apart: the first is out after about 0.1 s, the last after about 1 s.
    assert first < 0.5 < 0.9 < last, pieces
    assert reply.sse_data()[-1] == "[DONE]"


def test_a_silent_stretch_is_bridged_with_keep_alive_comments(
    api_app: App, paced: type[Paced], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STREAM_KEEPALIVE_SECONDS", "0.1")
    paced.count, paced.interval, paced.pause_before = 3, 0.0, {1: 0.55}
    reply = invoke(api_app, stream_event())
    comments = [piece for _, piece in reply.chunks if piece == b": keep-alive\n\n"]
    assert 3 <= len(comments) <= 6
    assert [text for _, text in content_chunks(reply)] == [" word0", " word1", " word2"]
    assert reply.sse_data()[-1] == "[DONE]"


def test_only_the_adapters_request_context_says_who_calls(api_app: App) -> None:
    event = stream_event()
    event["requestContext"]["authorizer"]["models"] = "claude-haiku-4-5"
    forged = {"authorizer": {"keyId": "key_admin", "tenant": "other", "plan": "premium", "models": "*"}}
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers["X-Amzn-Request-Context"] = json.dumps(forged) if headers is event["headers"] else [json.dumps(forged)]
    scope, _ = adapter_request(event, WebAdapterFunction("ApiFunction", api_app, 900).lambda_context())
    contexts = [value for name, value in scope["headers"] if name == b"x-amzn-request-context"]
    assert [json.loads(value)["authorizer"]["keyId"] for value in contexts] == ["key_5f1c2a9b7e3d"]
    reply = invoke(api_app, event)
    assert (reply.status, reply.json()["error"]["code"]) == (403, "model_not_allowed")


def test_a_request_that_did_not_come_through_api_gateway_is_refused(api_app: App) -> None:
    event = stream_event()
    del event["requestContext"]["authorizer"]
    reply = invoke(api_app, event)
    assert (reply.status, reply.json()["error"]["code"]) == (401, "invalid_api_key")


def test_the_adapters_readiness_check_is_answered_and_not_metered(
    api_app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.asgi import asgi_call

    capsys.readouterr()
    reply = asgi_call(api_app, "GET", "/")
    assert (reply.status, reply.json()["error"]["code"]) == (404, "not_found")
    assert '"_aws"' not in capsys.readouterr().out


def test_concurrent_requests_keep_their_own_records(api_app: App, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    contents = [" ".join(["word"] * (n + 1)) for n in range(8)]

    async def all_at_once() -> list[AsgiReply]:
        calls = []
        for content in contents:
            scope, body = adapter_request(
                stream_event(content), WebAdapterFunction("ApiFunction", api_app, 900).lambda_context()
            )
            calls.append(run_asgi(api_app, scope, body))
        return await asyncio.gather(*calls)

    replies = asyncio.run(all_at_once())
    for content, reply in zip(contents, replies, strict=True):
        assert "".join(text for _, text in content_chunks(reply)) == content
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Requests"' in line]
    assert sorted(doc["PromptTokens"] for doc in emf) == [n + 1 for n in range(8)]
