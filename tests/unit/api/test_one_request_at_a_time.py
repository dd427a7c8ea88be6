"""Where Lambda gives the function one request at a time (on demand), a use case runs on the event loop's thread and
its finishing work (the usage settlement) once the answer is written; on Lambda Managed Instances and in the local
gateway, on a worker thread while the answer is written. The answer and the settlement are the same either way."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from llm_gateway.api import asgi
from llm_gateway.api.http import Reply
from tests.fakes.asgi import App
from tests.fakes.paced import Paced, content_chunks, invoke, paced, stream_event

__all__ = ["paced"]

ON_DEMAND = {"AWS_LAMBDA_FUNCTION_NAME": "ApiFunction"}
MANAGED_INSTANCES = {"AWS_LAMBDA_FUNCTION_NAME": "ApiFunction", "AWS_LAMBDA_MAX_CONCURRENCY": "64"}


def environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_MAX_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("variables", "one_at_a_time"), [(ON_DEMAND, True), (MANAGED_INSTANCES, False), ({}, False)])
def test_only_lambda_on_demand_serves_one_request_at_a_time(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], one_at_a_time: bool
) -> None:
    environment(monkeypatch, variables)
    assert asgi.serves_one_request_at_a_time() is one_at_a_time


def served(use_case_reply: Reply) -> tuple[list[str], dict[str, int]]:
    """Respond with `use_case_reply` and write the answer: what happened in which order, and on which threads."""
    events: list[str] = []
    threads: dict[str, int] = {}

    def finish() -> None:
        threads["finish"] = threading.get_ident()
        events.append("settled")

    def use_case() -> Reply:
        threads["use case"] = threading.get_ident()
        events.append("use case")
        return Reply(use_case_reply.body, finish=finish)

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            events.append("answer written" if message.get("more_body") else "response ended")

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def serve() -> None:
        threads["event loop"] = threading.get_ident()
        response = await asgi.respond(use_case)
        await response({"type": "http"}, receive, send)

    asyncio.run(serve())
    return events, threads


def test_on_demand_the_use_case_runs_on_the_event_loop_and_settles_after_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(monkeypatch, ON_DEMAND)
    events, threads = served(Reply('{"ok": true}'))
    assert events == ["use case", "answer written", "settled", "response ended"]
    assert threads["use case"] == threads["finish"] == threads["event loop"]


def test_with_many_requests_at_once_the_use_case_runs_on_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, MANAGED_INSTANCES)
    events, threads = served(Reply('{"ok": true}'))
    assert events[0] == "use case" and events[-1] == "response ended"
    assert sorted(events) == sorted(["use case", "answer written", "settled", "response ended"])
    assert threads["use case"] == threads["finish"] != threads["event loop"]


def test_a_failing_use_case_is_the_same_error_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, ON_DEMAND)

    def use_case() -> Reply:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(asgi.respond(use_case))


@pytest.mark.parametrize("variables", [ON_DEMAND, MANAGED_INSTANCES])
def test_a_stream_on_demand_still_leaves_as_produced(
    api_app: App, paced: type[Paced], monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    environment(monkeypatch, variables)
    reply = invoke(api_app, stream_event())
    assert reply.status == 200
    pieces = content_chunks(reply)
    assert [text for _, text in pieces] == [f" word{n}" for n in range(10)]
    assert pieces[0][0] < 0.5 < 0.9 < pieces[-1][0], pieces
    assert reply.sse_data()[-1] == "[DONE]"
