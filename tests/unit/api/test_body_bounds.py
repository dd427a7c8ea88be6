"""Any body API Gateway accepts is read within the function's memory: JSON containers are counted before parsing,
messages after, and a body beyond either limit is a 4xx in the caller's error shape that names it (issue #19)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from llm_gateway.api.bounds import json_shape
from llm_gateway.api.http import parse_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest
from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.errors import InvalidRequestError, PayloadTooLargeError
from tests.conftest import Handler
from tests.fakes.proxy_events import api_event, call

STRING_PIECES = ["a", "[", "]", "{", "}", '"', "\\", "\\n", "é", "中", ",", ":", " ", "\\u005b", '\\"', "\\\\"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["list", "dict", "str", "str", "int"] if depth < 6 else ["str", "int"])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "dict":
        return {"".join(rng.choices(STRING_PIECES, k=3)): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if kind == "str":
        return "".join(rng.choices(STRING_PIECES, k=rng.randint(0, 8)))
    return rng.randint(-5, 5)


def counts(value: Any) -> tuple[int, int, int]:
    """Containers, members and items (array items and members) of a parsed JSON value."""
    if isinstance(value, list | dict):
        inner = [counts(item) for item in (value.values() if isinstance(value, dict) else value)]
        members = len(value) if isinstance(value, dict) else 0
        return (
            1 + sum(c for c, _, _ in inner),
            members + sum(m for _, m, _ in inner),
            len(value) + sum(i for _, _, i in inner),
        )
    return 0, 0, 0


@pytest.mark.parametrize("seed", range(300))
def test_the_count_is_the_parsers_whatever_the_strings_hold(seed: int) -> None:
    value = random_json(random.Random(seed))
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        shape = json_shape(text.encode())
        containers, members, items = counts(value)
        assert (shape.containers, shape.members) == (containers, members), text
        assert items <= shape.values <= items + containers, "a comma for each item after a container's first"


def nested_lists(items: int) -> bytes:
    return (
        b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "x": ['
        + b",".join([b"[[]]"] * items)
        + b"]}"
    )


def test_an_unknown_field_of_a_million_empty_lists_is_a_413_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """4.9 MB of `[[]],` took the function from 46 to 573 MiB; the limit is 50,000 arrays and objects."""

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("aws_lambda_powertools.utilities.parser.parse", never)
    with pytest.raises(PayloadTooLargeError) as refused:
        parse_body(nested_lists(980_000), "application/json", ChatCompletionRequest)
    assert (refused.value.status, refused.value.code) == (413, "too_many_json_containers")
    assert "50000" in refused.value.message and "GATEWAY_MAX_JSON_CONTAINERS" in refused.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"x": {' + b",".join(b'"%d": 0' % i for i in range(100_001)) + b"}}", "too_many_json_members"),
        (b'{"x": [' + b",".join([b"0"] * 500_001) + b"]}", "too_many_json_values"),
    ],
    ids=["members", "values"],
)
def test_wide_objects_and_long_arrays_are_413s_before_parsing(body: bytes, code: str) -> None:
    """An object of 376,000 members took the function to 261 MiB, 2.4 million zeros to 206 MiB."""
    with pytest.raises(PayloadTooLargeError) as refused:
        parse_body(body, "application/json", ChatCompletionRequest)
    assert (refused.value.status, refused.value.code) == (413, code)


def test_the_largest_embeddings_batch_of_token_ids_is_within_the_limits() -> None:
    """OpenAI takes at most 300,000 tokens in one embeddings request; LangChain sends them as token ids."""
    body = json.dumps({"model": "embed", "input": [[1000] * 2000] * 150}).encode()
    shape = json_shape(body)
    assert (shape.containers, shape.values) == (152, 300_152)
    parse_body(body, "application/json", EmbeddingsRequest)


def test_the_container_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MAX_JSON_CONTAINERS", "100")
    parse_body(nested_lists(30), "application/json", ChatCompletionRequest)  # 1 + 2 + 1 + 60 = 64
    with pytest.raises(PayloadTooLargeError):
        parse_body(nested_lists(60), "application/json", ChatCompletionRequest)


def messages_body(count: int) -> bytes:
    return json.dumps({"model": "echo", "messages": [{"role": "user", "content": ""}] * count}).encode()


def test_more_messages_than_the_limit_is_a_400_naming_it() -> None:
    parse_body(messages_body(10_000), "application/json", ChatCompletionRequest)
    with pytest.raises(InvalidRequestError) as refused:
        parse_body(messages_body(10_001), "application/json", ChatCompletionRequest)
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "too_many_messages", "messages")
    assert "10000" in refused.value.message and "GATEWAY_MAX_MESSAGES" in refused.value.message


def agent_history(turns: int) -> dict[str, Any]:
    """A long agent session as Claude Code sends it: big tool schemas, a tool call and its result each turn."""
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 40} for i in range(30)}}
    tools = [{"type": "function", "function": {"name": f"tool{i}", "parameters": schema}} for i in range(40)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent. " * 200}]
    for turn in range(turns):
        call_id = f"call_{turn}"
        messages.append({"role": "user", "content": [{"type": "text", "text": "next step " * 30}]})
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "tool1", "arguments": '{"p1": "x"}'}}
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "output line\n" * 60})
    return {"model": "echo", "messages": messages, "tools": tools}


def test_a_long_agent_session_is_within_every_limit() -> None:
    """1,500 turns (4,501 messages, 4.4 MB) with 40 tools of 30 parameters each."""
    body = json.dumps(agent_history(1_500)).encode()
    assert len(body) < 5_000_000
    parsed, _ = parse_body(body, "application/json", ChatCompletionRequest)
    assert len(parsed.messages) == 4_501


def test_the_refusals_take_each_surfaces_error_shape(api_handler: Handler) -> None:
    event = api_event()
    event["body"], event["isBase64Encoded"] = nested_lists(60_000).decode(), False
    response = call(api_handler, event)
    assert (response["statusCode"], json.loads(response["body"])["error"]["code"]) == (413, "too_many_json_containers")
    event = api_event("messages.json")
    body = {"model": "echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}] * 10_001}
    event["body"], event["isBase64Encoded"] = json.dumps(body), False
    response = call(api_handler, event)
    answer = json.loads(response["body"])
    assert (response["statusCode"], answer["type"], answer["error"]["type"]) == (400, "error", "invalid_request_error")
    assert "GATEWAY_MAX_MESSAGES" in answer["error"]["message"]
