"""Every reservation is settled exactly once, whatever the transport does: a caller who hangs up before the first
byte, midway (billed for what was produced) or after the last (the answer out before its record), a server that
raises on a write to a closed connection or one that drops it silently, a task cancelled while the model works, an
answer that fails after the model gave it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from emulator.webadapter import WebAdapterFunction, adapter_request
from tests.conftest import LogOutput
from tests.contract.conftest import Stack
from tests.fakes.asgi import App, run_asgi
from tests.fakes.paced import Paced, invoke, paced, stream_event
from tests.fakes.proxy_events import EVENTS

__all__ = ["paced"]

KEY = "key_5f1c2a9b7e3d"
ClosedWrites = Literal["raise", "ignore"]


def messages_event(content: str = "Say hello to the gateway", **authorizer: Any) -> dict[str, Any]:
    """The streamed chat event, as the Anthropic SDK would send it to /messages."""
    event = stream_event(content, **authorizer)
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = "/messages"
    event["requestContext"]["path"] = "/v1/messages"
    body = {"model": "echo", "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": content}]}
    event["body"] = json.dumps(body)
    event["headers"]["anthropic-version"] = "2023-06-01"
    event["multiValueHeaders"]["anthropic-version"] = ["2023-06-01"]
    return event


SURFACES = {"chat": stream_event, "messages": messages_event}


def scope_of(app: App, event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    scope, body = adapter_request(event, WebAdapterFunction("ApiFunction", app, 900).lambda_context())
    return dict(scope), body


@pytest.mark.parametrize("closed_writes", ["raise", "ignore"])
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_a_caller_gone_before_the_first_byte_leaves_no_reservation(
    stack: Stack, api_app: App, paced: type[Paced], surface: str, closed_writes: ClosedWrites
) -> None:
    # The model's first word comes at 0.6 s; the caller closes the socket at 0.2 s.
    paced.count, paced.pause_before = 3, {0: 0.6}
    reply = invoke(api_app, SURFACES[surface](), hang_up_at=0.2, closed_writes=closed_writes)
    assert reply.disconnected
    stack.assert_settled(KEY, requests=1)


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_hang_ups_before_the_first_byte_do_not_lock_a_key_out(
    stack: Stack, api_app: App, paced: type[Paced], surface: str
) -> None:
    paced.count, paced.pause_before = 3, {0: 0.4}
    # A day window for about three requests' worst case (the prompt estimate and 100 output tokens each).
    event = SURFACES[surface](tokensPerDay=364)
    event["body"] = json.dumps({**json.loads(event["body"]), "max_tokens": 100})
    for _ in range(3):
        assert invoke(api_app, event, hang_up_at=0.1).disconnected
    paced.pause_before = {}
    reply = invoke(api_app, event)
    assert reply.status == 200, reply.body
    stack.assert_settled(KEY, requests=4)


@pytest.mark.parametrize("closed_writes", ["raise", "ignore"])
def test_a_caller_gone_mid_stream_is_settled_once(
    stack: Stack, api_app: App, paced: type[Paced], closed_writes: ClosedWrites
) -> None:
    paced.count, paced.interval = 20, 0.05
    reply = invoke(api_app, stream_event(), disconnect_after=3, closed_writes=closed_writes)
    assert reply.disconnected and paced.closed
    stack.assert_settled(KEY, requests=1)


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_a_whole_stream_is_recorded_once(stack: Stack, api_app: App, paced: type[Paced], surface: str) -> None:
    paced.count, paced.interval = 3, 0.0
    reply = invoke(api_app, SURFACES[surface]())
    assert reply.status == 200 and not reply.disconnected
    item = stack.assert_settled(KEY, requests=1)
    day = datetime.now(UTC).strftime("%d")
    assert item[f"completion_tokens_{day}"] == "3", "the provider's own usage, not an estimate"


@pytest.mark.parametrize("moment", [0.2, 0.9])
def test_a_task_cancelled_while_the_model_works_is_settled(
    stack: Stack, api_app: App, paced: type[Paced], moment: float
) -> None:
    # Before the first event (0.2 s: the use case is still waiting for the model) and mid-stream (0.9 s).
    paced.count, paced.interval, paced.pause_before = 6, 0.1, {0: 0.6}
    scope, body = scope_of(api_app, stream_event())

    async def cancelled() -> None:
        task = asyncio.ensure_future(run_asgi(api_app, scope, body))
        await asyncio.sleep(moment)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    stack.assert_settled(KEY, requests=1)


def test_a_caller_who_closes_after_the_last_frame_is_no_disconnect(
    stack: Stack, api_app: App, paced: type[Paced], log_output: LogOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    paced.count, paced.interval = 3, 0.0
    pieces = len(invoke(api_app, stream_event()).chunks)
    capsys.readouterr()
    log_output()
    # The client reads up to `data: [DONE]` and closes the connection at once, as SDKs do.
    reply = invoke(api_app, stream_event(), disconnect_after=pieces)
    assert reply.sse_data()[-1] == "[DONE]"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Requests"' in line]
    assert [doc["ClientDisconnects"] for doc in emf] == [0]
    access = [line for line in log_output() if line["message"] == "request"]
    assert [line["client_disconnected"] for line in access][-1] is False
    stack.assert_settled(KEY, requests=2)


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
    assert (emf["ClientDisconnects"], emf["ServerErrors"]) == (1, 0)
    assert emf["CompletionTokens"] >= 1
    now = datetime.now(UTC)
    key = {"key_id": {"S": "key_5f1c2a9b7e3d"}, "period": {"S": now.strftime("%Y-%m")}}
    item = stack.dynamodb.get_item(TableName=stack.outputs["UsageTableName"], Key=key)["Item"]
    day = now.strftime("%d")
    # A served request (not a failure), billed from what the provider produced before the caller left.
    assert item[f"requests_{day}"]["N"] == "1" and f"failed_{day}" not in item
    assert int(item[f"completion_tokens_{day}"]["N"]) >= 1
    access = next(line for line in log_output() if line["message"] == "request")
    assert (access["status"], access["client_disconnected"], access["streamed"]) == (200, True, True)


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
