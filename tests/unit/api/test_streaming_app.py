"""The API function's ASGI app in-process: streams leave as produced, hang-ups stop the provider, the caller's
identity comes only from the request context that Lambda Web Adapter sets, concurrent requests stay apart."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.webadapter import WebAdapterFunction, adapter_request
from llm_gateway import gateway
from llm_gateway.domain.answers import Finish, StreamEvent, TextDelta, Usage, UsageReport
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.providers.echo import EchoProvider
from tests.conftest import LogOutput, Stack
from tests.fakes.asgi import App, AsgiReply, run_asgi

EVENTS = Path(__file__).resolve().parents[3] / "events" / "api"


def stream_event(content: str = "Say hello to the gateway", **authorizer: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "chat-completions-stream.json").read_text())
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"]
    body = json.loads(raw)
    body["messages"] = [{"role": "user", "content": content}]
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    event["requestContext"]["authorizer"].update({k: str(v) for k, v in authorizer.items()})
    return dict(event)


def invoke(app: App, event: dict[str, Any], **options: Any) -> AsgiReply:
    scope, body = adapter_request(event, WebAdapterFunction("ApiFunction", app, 900).lambda_context())
    return asyncio.run(run_asgi(app, scope, body, **options))


class Paced(EchoProvider):
    """Streams `count` words, one every `interval` seconds, and notes how far it got and whether it was closed."""

    count = 10
    interval = 0.1
    pause_before: dict[int, float] = {}  # noqa: RUF012 - per-test class state, reset by the fixture
    produced = 0
    closed = False

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        try:
            for number in range(Paced.count):
                time.sleep(Paced.pause_before.get(number, Paced.interval))
                Paced.produced += 1
                yield TextDelta(f" word{number}")
            yield Finish("end_turn")
            yield UsageReport(Usage(5, Paced.count))
        except GeneratorExit:
            Paced.closed = True
            raise


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> type[Paced]:
    Paced.count, Paced.interval, Paced.pause_before, Paced.produced, Paced.closed = 10, 0.1, {}, 0, False
    monkeypatch.setattr(gateway, "_echo", Paced)
    return Paced


def content_chunks(reply: AsgiReply) -> list[tuple[float, str]]:
    found = []
    for at, piece in reply.chunks:
        for line in piece.decode().splitlines():
            if line.startswith("data: {"):
                chunk = json.loads(line.removeprefix("data: "))
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    found.append((at, chunk["choices"][0]["delta"]["content"]))
    return found


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


def test_a_caller_who_hangs_up_stops_the_provider_and_pays_for_what_was_produced(
    stack: Stack, api_app: App, paced: type[Paced], log_output: LogOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    paced.count, paced.interval = 50, 0.05
    capsys.readouterr()
    # The role chunk, then two words: the caller reads three pieces and leaves.
    reply = invoke(api_app, stream_event(), disconnect_after=3)
    assert reply.disconnected
    assert paced.closed, "the provider's stream was closed"
    assert paced.produced <= 5, f"the provider went on after the caller left ({paced.produced} words)"
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Requests"' in line]
    assert (emf["ClientDisconnects"], emf["ServerErrors"]) == ([1.0], [0.0])
    assert emf["CompletionTokens"][0] >= 1
    now = datetime.now(UTC)
    key = {"key_id": {"S": "key_5f1c2a9b7e3d"}, "period": {"S": now.strftime("%Y-%m")}}
    item = stack.dynamodb.get_item(TableName=stack.outputs["UsageTableName"], Key=key)["Item"]
    day = now.strftime("%d")
    # A served request (not a failure), billed from what the provider produced before the caller left.
    assert item[f"requests_{day}"]["N"] == "1" and f"failed_{day}" not in item
    assert int(item[f"completion_tokens_{day}"]["N"]) >= 1
    access = next(line for line in log_output() if line["message"] == "request")
    assert (access["status"], access["client_disconnected"], access["streamed"]) == (200, True, True)


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
    assert sorted(doc["PromptTokens"][0] for doc in emf) == [float(n + 1) for n in range(8)]


def test_a_whole_answer_is_out_before_its_usage_record_which_is_written_even_if_the_caller_left(
    stack: Stack, api_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_gateway.store.usage import UsageStore

    settled: list[float] = []
    settle = UsageStore.settle

    def slow_settle(self: UsageStore, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)
        settle(self, *args, **kwargs)
        settled.append(time.monotonic())

    monkeypatch.setattr(UsageStore, "settle", slow_settle)
    event = json.loads((EVENTS / "chat-completions.json").read_text())
    started = time.monotonic()
    reply = invoke(api_app, event, disconnect_after=1)
    (at, body), *_ = reply.chunks
    assert json.loads(body)["choices"][0]["message"]["content"] == "Say hello to the gateway"
    assert int(reply.headers["content-length"]) == len(body), "the client knows the answer is complete"
    assert at < 0.25, "the answer did not wait for the usage record"
    assert settled and settled[0] - started >= 0.3, "the record was still written after the caller left"
