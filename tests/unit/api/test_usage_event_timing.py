"""A request's usage event is written after its body is out and before its response ends, so that Lambda cannot end
the invocation (and freeze or reclaim the environment) first: inline where Lambda gives one request at a time, on a
worker thread elsewhere; and once, also when the caller is gone before the end."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from llm_gateway.api import observer
from llm_gateway.api.http import REQUEST_CONTEXT_HEADER
from llm_gateway.observability import RequestRecord

ON_DEMAND = {"AWS_LAMBDA_FUNCTION_NAME": "ApiFunction"}
MANAGED_INSTANCES = {"AWS_LAMBDA_FUNCTION_NAME": "ApiFunction", "AWS_LAMBDA_MAX_CONCURRENCY": "64"}
CONTEXT = json.dumps({"requestId": "req-1", "resourcePath": "/chat/completions", "authorizer": {}})


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/chat/completions",
        "headers": [(REQUEST_CONTEXT_HEADER.encode(), CONTEXT.encode())],
    }


def observe(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], *, refuse_after_body: bool = False
) -> tuple[list[str], dict[str, int]]:
    """Serve one answer through the request observer: what happened in which order, and on which thread."""
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_MAX_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    happened: list[str] = []
    threads: dict[str, int] = {}

    def record_usage_event(record: RequestRecord, status: int, request_id: str) -> None:
        threads["event"] = threading.get_ident()
        happened.append(f"event {status} {request_id}")

    monkeypatch.setattr(observer, "record_usage_event", record_usage_event)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body"):
                happened.append(f"body {message['body']!r}")
            else:
                if refuse_after_body:
                    raise OSError("the caller is gone")
                happened.append("response ended")

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def main() -> None:
        threads["loop"] = threading.get_ident()
        await observer.RequestObserver(app, lambda request, error: None)(scope(), receive, send)  # type: ignore[arg-type,return-value]

    asyncio.run(main())
    return happened, threads


@pytest.mark.parametrize(("variables", "inline"), [(ON_DEMAND, True), (MANAGED_INSTANCES, False), ({}, False)])
def test_the_event_is_written_between_the_body_and_the_end(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], inline: bool
) -> None:
    happened, threads = observe(monkeypatch, variables)
    assert happened == ["body b'{\"ok\":true}'", "event 200 req-1", "response ended"]
    assert (threads["event"] == threads["loop"]) is inline


def test_a_caller_gone_at_the_end_still_leaves_one_event(monkeypatch: pytest.MonkeyPatch) -> None:
    happened, _ = observe(monkeypatch, ON_DEMAND, refuse_after_body=True)
    assert happened == ["body b'{\"ok\":true}'", "event 200 req-1"]
