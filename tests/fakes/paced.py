"""A paced provider in place of echo, and the streamed chat event and in-process invocation that drive the API
function's ASGI app through Lambda Web Adapter's translation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.webadapter import WebAdapterFunction, adapter_request
from llm_gateway import gateway
from llm_gateway.domain.answers import Finish, StreamEvent, TextDelta, Usage, UsageReport
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.providers.echo import EchoProvider
from tests.fakes.asgi import App, AsgiReply, run_asgi
from tests.fakes.proxy_events import EVENTS


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
