"""Every finished request leaves exactly one usage event, whatever the caller does (a whole answer, a stream, a hang-up
before the first byte or midway, a cancelled task, a refused request), carrying whom it was for: team, session, end
user, tags. Through the API function's ASGI app on the template's tables (moto)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.template import Resolver, translate_template
from llm_gateway.domain.stores import UsageEvent
from llm_gateway.store import dynamo
from llm_gateway.store.usage_events import DynamoUsageEvents
from tests.conftest import Handler, reset_caches
from tests.contract.conftest import Stack
from tests.contract.test_settlement import messages_event, scope_of
from tests.fakes.asgi import App, run_asgi
from tests.fakes.paced import Paced, invoke, paced, stream_event
from tests.fakes.proxy_events import EVENTS, api_event, call

__all__ = ["paced"]

KEY = "key_5f1c2a9b7e3d"


@pytest.fixture(autouse=True)
def allowed_tags(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ALLOWED_TAGS", "project,env")
    monkeypatch.setenv("GATEWAY_USAGE_EVENTS_TABLE", stack.outputs["UsageEventsTableName"])
    reset_caches()


def events(stack: Stack) -> list[UsageEvent]:
    store = DynamoUsageEvents(stack.dynamodb, stack.outputs["UsageEventsTableName"])
    return store.events(KEY, datetime.now(UTC).date())


def with_headers(event: dict[str, Any], **headers: str) -> dict[str, Any]:
    for field, value in headers.items():
        name = field.replace("_", "-")
        event["headers"][name] = value
        event.setdefault("multiValueHeaders", {})[name] = [value]
    return event


def chat_event(**fields: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "chat-completions.json").read_text())
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"]
    event["body"], event["isBase64Encoded"] = json.dumps({**json.loads(raw), **fields}), False
    return dict(event)


def test_a_whole_answer_leaves_one_event_with_its_attribution(stack: Stack, api_app: App) -> None:
    event = with_headers(
        chat_event(safety_identifier="user-42"),
        x_gateway_tags="project=alpha, env=dev",
        x_claude_code_session_id="session-1",
    )
    reply = invoke(api_app, event)
    assert reply.status == 200
    (found,) = events(stack)
    assert (found.key_id, found.tenant, found.plan, found.model, found.status, found.failed) == (
        KEY, "acme", "standard", "echo", 200, False,
    )  # fmt: skip
    assert (found.session_id, found.end_user, found.tags) == (
        "session-1",
        "user-42",
        (("env", "dev"), ("project", "alpha")),
    )
    assert found.request_id == event["requestContext"]["requestId"]
    assert found.prompt_tokens > 0 and found.completion_tokens > 0


@pytest.mark.parametrize("surface", ["chat", "messages"])
def test_a_whole_stream_leaves_one_event(stack: Stack, api_app: App, paced: type[Paced], surface: str) -> None:
    paced.count, paced.interval = 3, 0.0
    event = stream_event() if surface == "chat" else messages_event()
    if surface == "messages":
        body = json.loads(event["body"])
        event["body"] = json.dumps({**body, "metadata": {"user_id": "anthropic-user"}})
    reply = invoke(api_app, event)
    assert reply.status == 200 and not reply.disconnected
    (found,) = events(stack)
    assert (found.status, found.failed, found.completion_tokens) == (200, False, 3)
    assert found.end_user == ("anthropic-user" if surface == "messages" else None)


@pytest.mark.parametrize("hang_up", ["before the first byte", "midway"])
def test_a_caller_who_hangs_up_leaves_one_event(stack: Stack, api_app: App, paced: type[Paced], hang_up: str) -> None:
    if hang_up == "midway":
        paced.count, paced.interval = 20, 0.05
        reply = invoke(api_app, stream_event(), disconnect_after=3)
    else:
        paced.count, paced.pause_before = 3, {0: 0.6}
        reply = invoke(api_app, stream_event(), hang_up_at=0.2)
    assert reply.disconnected
    (found,) = events(stack)
    assert found.key_id == KEY and found.status == 200


def test_a_task_cancelled_mid_stream_leaves_one_event(stack: Stack, api_app: App, paced: type[Paced]) -> None:
    paced.count, paced.interval, paced.pause_before = 6, 0.1, {0: 0.6}
    scope, body = scope_of(api_app, stream_event())

    async def cancelled() -> None:
        task = asyncio.ensure_future(run_asgi(api_app, scope, body))
        await asyncio.sleep(0.9)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert len(events(stack)) == 1


def test_a_refused_request_leaves_one_failed_event(stack: Stack, api_app: App) -> None:
    reply = invoke(api_app, chat_event(model="no-such-model"))
    assert reply.status == 404
    (found,) = events(stack)
    assert (found.status, found.failed, found.model, found.completion_tokens) == (404, True, "none", 0)


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        ("colour=red", "names tag 'colour'"),
        ("project", "not name=value"),
        ("project=a,project=b", "twice"),
        ("project=a b", "invalid value"),
        (",".join(f"project{i}=x" for i in range(6)), "has 6 tags"),
    ],
)
def test_bad_tags_are_a_400_in_the_callers_shape_naming_the_allowed_names(
    stack: Stack, api_app: App, tags: str, why: str
) -> None:
    openai = invoke(api_app, with_headers(chat_event(), x_gateway_tags=tags))
    assert openai.status == 400
    error = json.loads(openai.body)["error"]
    assert why in error["message"] and "allowed tag names: env, project" in error["message"]
    assert (error["param"], error["code"]) == ("X-Gateway-Tags", "invalid_tags")
    anthropic = json.loads(invoke(api_app, with_headers(messages_event(), x_gateway_tags=tags)).body)
    assert anthropic["type"] == "error" and anthropic["error"]["type"] == "invalid_request_error"
    assert "allowed tag names" in anthropic["error"]["message"]
    # Nothing was reserved or answered; each refusal is one failed event without tags.
    assert [(event.status, event.tags) for event in events(stack)] == [(400, ()), (400, ())]


@pytest.mark.parametrize("event_file", ["chat-completions.json", "chat-completions-stream.json", "embeddings.json"])
def test_the_usage_event_is_one_put_item_on_its_own_table(stack: Stack, api_handler: Handler, event_file: str) -> None:
    """Beside the budget's calls (tests/contract/test_metering.py counts those), a request's event is one PutItem
    on UsageEventsTable, and the usage table sees no write of it."""
    call(api_handler, api_event(event_file))  # the first request builds the clients
    calls: list[tuple[str, str]] = []

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, params.get("TableName", "")))

    dynamo.dynamodb_client().meta.events.register("before-parameter-build.dynamodb", note)
    assert call(api_handler, api_event(event_file))["statusCode"] == 200
    events_table = stack.outputs["UsageEventsTableName"]
    assert [name for name, table in calls if table == events_table] == ["PutItem"]
    assert all(name != "PutItem" for name, table in calls if table != events_table)
    assert len(events(stack)) == 2


def test_the_template_gives_events_a_table_without_index_that_the_api_only_puts_to(stack: Stack) -> None:
    cfn = translate_template()
    table = cfn["Resources"]["UsageEventsTable"]["Properties"]
    assert "GlobalSecondaryIndexes" not in table and "LocalSecondaryIndexes" not in table
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    policies = Resolver(cfn).resolve(cfn["Resources"]["ApiFunctionRole"]["Properties"]["Policies"])
    statements = [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]
    (statement,) = [s for s in statements if "UsageEventsTable" in json.dumps(s)]
    assert statement["Action"] == "dynamodb:PutItem"
    variables = cfn["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["GATEWAY_ALLOWED_TAGS"] == {"Ref": "AllowedTags"}
