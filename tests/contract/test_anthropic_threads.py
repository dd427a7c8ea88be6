"""Anthropic's message threads (beta message-threads-2026-08-12) through the real API handler, driven by the
official anthropic SDK, on SQLite and on DynamoDB with S3 (moto): a thread is created, continued with its history,
system and tools reaching the model (and counted in usage); another key's, an expired or another model's thread is
Anthropic's 404 thread_not_found, on which the SDK's thread helper resends the whole conversation and the turn
succeeds; the SDK's tool runner completes its turns on a thread."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.lib.tools import beta_tool

from llm_gateway.api.anthropic.messages import thread_store
from tests.conftest import Handler
from tests.contract.store_backends import backend
from tests.fakes.handler_client import CALLER, STAGE, HandlerTransport

__all__ = ["backend"]

BETA = "message-threads-2026-08-12"
STRANGER = {**CALLER, "principalId": "key_0c0c0c0c0c0c", "keyId": "key_0c0c0c0c0c0c"}


def sdk(handler: Handler, caller: dict[str, Any] = CALLER) -> tuple[anthropic.Anthropic, HandlerTransport]:
    transport = HandlerTransport(handler, caller)
    client = anthropic.Anthropic(
        base_url=f"https://{STAGE.domain}",
        api_key="sk-llmgw-unused-the-authorizer-already-ran",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )
    return client, transport


def sent_bodies(transport: HandlerTransport) -> list[dict[str, Any]]:
    return [json.loads(response["body"]) for response in transport.responses]


def create(client: anthropic.Anthropic, text: str, **fields: Any) -> Any:
    return client.beta.messages.create(
        model="echo",
        max_tokens=200,
        messages=[{"role": "user", "content": text}],
        thread={"type": "create"},
        betas=[BETA],
        **fields,
    )


def continue_(client: anthropic.Anthropic, previous: str, text: str, model: str = "echo") -> Any:
    return client.beta.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": text}],
        thread={"type": "continue", "previous_message_id": previous},
        betas=[BETA],
    )


def expire(message_id: str) -> None:
    store = thread_store()
    assert store is not None
    stored = store.get(CALLER["keyId"], CALLER["tenant"], message_id, 0)
    assert stored is not None
    store.put(replace(stored, created_at=stored.created_at - 600, expires_at=stored.created_at - 300))


def test_a_thread_is_continued_with_its_history_and_system(api_handler: Handler, backend: str) -> None:
    client, _ = sdk(api_handler)
    first = create(client, "one two three", system="Be brief.")
    second = continue_(client, first.id, "four five")
    third = continue_(client, second.id, "six")
    assert [block.text for block in third.content] == ["six"]  # type: ignore[union-attr]
    # echo counts every word it reads: the system prompt and the whole thread, not only the new messages.
    assert first.usage.input_tokens == 2 + 3
    assert second.usage.input_tokens == 2 + 3 + 3 + 2
    assert third.usage.input_tokens == 2 + 3 + 3 + 2 + 2 + 1


def test_a_continue_that_resends_system_is_refused(api_handler: Handler, backend: str) -> None:
    client, _ = sdk(api_handler)
    first = create(client, "one", system="Be brief.")
    with pytest.raises(anthropic.BadRequestError):
        client.beta.messages.create(
            model="echo",
            max_tokens=50,
            system="Other.",
            messages=[{"role": "user", "content": "two"}],
            thread={"type": "continue", "previous_message_id": first.id},
            betas=[BETA],
        )


def test_a_thread_needs_the_beta_header(api_handler: Handler, backend: str) -> None:
    client, _ = sdk(api_handler)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.messages.create(
            model="echo", max_tokens=50, messages=[{"role": "user", "content": "x"}], thread={"type": "create"}
        )


@pytest.mark.parametrize("case", ["stranger", "expired", "unknown", "other_model", "a_response_id"])
def test_a_thread_that_cannot_be_continued_is_thread_not_found(api_handler: Handler, backend: str, case: str) -> None:
    client, _ = sdk(api_handler)
    first = create(client, "one two three")
    previous, model = first.id, "echo"
    if case == "stranger":
        client, _ = sdk(api_handler, STRANGER)
    elif case == "expired":
        expire(first.id)
    elif case == "unknown":
        previous = "msg_0123456789abcdef"
    elif case == "other_model":
        model = "not-echo"
    else:
        previous = "resp_0123456789abcdef"
    with pytest.raises(anthropic.APIStatusError) as raised:
        continue_(client, previous, "four", model=model)
    if case == "other_model" and raised.value.status_code != 404:
        pytest.skip("no second chat model in the test registry")
    assert raised.value.status_code == 404
    assert raised.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert raised.value.body["error"]["details"] == {"error_code": "thread_not_found"}  # type: ignore[index]
    assert raised.value.error_code == "thread_not_found"  # type: ignore[attr-defined]


def test_the_sdk_thread_helper_resends_the_conversation_when_the_thread_expired(
    api_handler: Handler, backend: str
) -> None:
    client, transport = sdk(api_handler)
    thread = client.beta.messages.thread(model="echo", max_tokens=200, system="Be brief.")
    first = thread.send({"role": "user", "content": "one two three"})
    second = thread.send({"role": "user", "content": "four five"})
    assert second.usage.input_tokens == 2 + 3 + 3 + 2
    expire(second.id)
    third = thread.send({"role": "user", "content": "six"})
    assert [block.text for block in third.content] == ["six"]  # type: ignore[union-attr]
    assert third.usage.input_tokens == 2 + 3 + 3 + 2 + 2 + 1
    statuses = [response["statusCode"] for response in transport.responses]
    assert statuses == [200, 200, 404, 200]  # the continue failed, the whole conversation went again
    assert first.id != second.id != third.id
    # The replayed thread continues as usual.
    fourth = thread.send({"role": "user", "content": "seven"})
    assert fourth.usage.input_tokens == third.usage.input_tokens + 1 + 1
    assert [response["statusCode"] for response in transport.responses][-1] == 200


def test_the_sdk_tool_runner_completes_its_turns_on_a_thread(api_handler: Handler, backend: str) -> None:
    @beta_tool
    def lookup(input: str) -> str:  # echo calls a tool with {"input": <the user's text>}
        """Look the weather up."""
        return "sunny"

    client, transport = sdk(api_handler)
    runner = client.beta.messages.tool_runner(
        model="echo",
        max_tokens=200,
        tools=[lookup],
        # echo calls the tool it is told to, every turn: two turns are the tool call and its follow-up.
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[{"role": "user", "content": "weather please"}],
        max_iterations=2,
    )
    replies = list(runner)
    assert len(replies) == 2 and all(reply.stop_reason == "tool_use" for reply in replies)
    assert [response["statusCode"] for response in transport.responses] == [200, 200]
    # The second turn read the first (user, tool call, tool result) though only the tool result was sent.
    assert replies[1].usage.input_tokens > replies[0].usage.input_tokens


def test_a_streamed_reply_is_kept_for_the_next_turn(api_handler: Handler, backend: str) -> None:
    client, _ = sdk(api_handler)
    with client.beta.messages.stream(
        model="echo",
        max_tokens=200,
        messages=[{"role": "user", "content": "one two three"}],
        thread={"type": "create"},
        betas=[BETA],
    ) as stream:
        first = stream.get_final_message()
    second = continue_(client, first.id, "four five")
    assert second.usage.input_tokens == 3 + 3 + 2


def test_a_reply_is_continued_once(api_handler: Handler, backend: str) -> None:
    """Anthropic's rule: a second continue from the same reply is a 400 thread_already_continued, on which the SDK's
    thread helper sends the whole conversation again."""
    client, _ = sdk(api_handler)
    first = create(client, "one two three")
    continue_(client, first.id, "four")
    with pytest.raises(anthropic.BadRequestError) as raised:
        continue_(client, first.id, "another four")
    assert raised.value.body["error"]["details"] == {"error_code": "thread_already_continued"}  # type: ignore[index]
    assert raised.value.error_code == "thread_already_continued"  # type: ignore[attr-defined]
    # Another key cannot use the mark to learn the reply exists: it gets thread_not_found.
    other, _ = sdk(api_handler, STRANGER)
    with pytest.raises(anthropic.NotFoundError):
        continue_(other, first.id, "four")
    with pytest.raises(anthropic.NotFoundError):
        continue_(client, first.id + "#continued", "four")


def test_the_sdk_thread_helper_recovers_when_a_reply_was_continued_already(api_handler: Handler, backend: str) -> None:
    client, transport = sdk(api_handler)
    thread = client.beta.messages.thread(model="echo", max_tokens=200)
    first = thread.send({"role": "user", "content": "one two three"})
    continue_(client, first.id, "a branch")  # someone else continued the helper's last reply
    second = thread.send({"role": "user", "content": "four five"})
    assert second.usage.input_tokens == 3 + 3 + 2
    assert [response["statusCode"] for response in transport.responses] == [200, 200, 400, 200]


def test_count_tokens_reads_the_thread(api_handler: Handler, backend: str) -> None:
    client, _ = sdk(api_handler)
    first = create(client, "one two three", system="Be brief.")
    counted = client.beta.messages.count_tokens(
        model="echo",
        messages=[{"role": "user", "content": "four five"}],
        betas=[BETA],
        extra_body={"thread": {"type": "continue", "previous_message_id": first.id}},
    )
    assert counted.input_tokens == 2 + 3 + 3 + 2  # what the continue would read
    # Counting does not continue the thread.
    assert continue_(client, first.id, "four five").usage.input_tokens == counted.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        client.beta.messages.count_tokens(
            model="echo",
            messages=[{"role": "user", "content": "x"}],
            betas=[BETA],
            extra_body={"thread": {"type": "continue", "previous_message_id": "msg_0123456789abcdef"}},
        )
