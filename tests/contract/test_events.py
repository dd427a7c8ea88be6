"""Every sample event in events/ through the real API handler: status, OpenAI shape, logs and metrics."""

from __future__ import annotations

import array
import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageTokensCount, ModelInfo
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from emulator.lambda_context import LocalLambdaContext
from tests.conftest import Handler, LogOutput

EVENTS = Path(__file__).resolve().parents[2] / "events" / "api"

# event file -> (status, error code or None)
EXPECTED: dict[str, tuple[int, str | None]] = {
    "chat-completions.json": (200, None),
    "chat-completions-system-and-limits.json": (200, None),
    "chat-completions-stream.json": (200, None),
    "chat-completions-tools.json": (200, None),
    "models.json": (200, None),
    "model-prompt.json": (200, None),
    "messages.json": (200, None),
    "messages-stream-thinking-tools.json": (200, None),
    "messages-count-tokens.json": (200, None),
    "models-anthropic.json": (200, None),
    "embeddings.json": (200, None),
    "embeddings-base64-dimensions.json": (200, None),
    "embeddings-token-arrays.json": (200, None),
    "model-retrieve.json": (200, None),
    "responses.json": (200, None),
    "responses-stream-codex.json": (200, None),
    "responses-compact.json": (200, None),
    "error-responses-previous-response-id.json": (400, "previous_response_not_found"),
    "model-retrieve-anthropic.json": (200, None),
    "error-model-retrieve-unknown.json": (404, "model_not_found"),
    "error-embeddings-chat-model.json": (400, "unsupported_model"),
    "error-embeddings-empty-input.json": (400, "invalid_request"),
    "error-chat-embedding-model.json": (400, "unsupported_model"),
    "error-malformed-json.json": (400, "invalid_json"),
    "error-wrong-types.json": (400, "invalid_request"),
    "error-missing-messages.json": (400, "invalid_request"),
    "error-unknown-model.json": (404, "model_not_found"),
    "error-model-not-allowed.json": (403, "model_not_allowed"),
    "error-deeply-nested-json.json": (413, "too_many_json_containers"),
    "error-lone-surrogate.json": (400, "invalid_json"),
    "error-invalid-utf8.json": (400, "invalid_json"),
    "error-unsupported-content-type.json": (415, "unsupported_media_type"),
    "error-model-prompt-empty.json": (400, "invalid_request"),
    "error-oversized-body.json": (413, "request_too_large"),
}


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def request_body(event: dict[str, Any]) -> str:
    body = event["body"] or ""
    return base64.b64decode(body).decode() if event["isBase64Encoded"] else body


def header(response: dict[str, Any], name: str) -> str:
    values = {k.lower(): v for k, v in response["multiValueHeaders"].items()}[name.lower()]
    return str(values[0])


def invoke(handler: Handler, name: str) -> dict[str, Any]:
    return handler(load(name), LocalLambdaContext(function_name="ApiFunction"))


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_gives_expected_status_and_openai_shape(api_handler: Handler, name: str) -> None:
    status, code = EXPECTED[name]
    response = invoke(api_handler, name)
    assert response["statusCode"] == status, response["body"][:500]
    if status == 200:
        return
    assert header(response, "Content-Type") == "application/json"
    error = json.loads(response["body"])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]


def test_anthropic_events_are_parsed_by_the_anthropic_sdk_types(api_handler: Handler) -> None:
    message = AnthropicMessage.model_validate_json(invoke(api_handler, "messages.json")["body"])
    assert (message.content[0].text, message.usage.input_tokens) == ("Say hello to the gateway", 7)  # type: ignore[union-attr]
    streamed = invoke(api_handler, "messages-stream-thinking-tools.json")
    assert header(streamed, "Content-Type").startswith("text/event-stream")
    names = [line.removeprefix("event: ") for line in streamed["body"].splitlines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert "thinking_delta" in streamed["body"] and "signature_delta" in streamed["body"]
    counted = MessageTokensCount.model_validate_json(invoke(api_handler, "messages-count-tokens.json")["body"])
    assert counted.input_tokens == 5
    models = json.loads(invoke(api_handler, "models-anthropic.json")["body"])
    assert "echo" in [ModelInfo.model_validate(model).id for model in models["data"]]


def test_chat_completion_is_parsed_by_the_openai_sdk_types(api_handler: Handler) -> None:
    response = invoke(api_handler, "chat-completions.json")
    completion = ChatCompletion.model_validate_json(response["body"])
    assert completion.choices[0].message.content == "Say hello to the gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 10
    assert completion.id == "chatcmpl-evt-chat-completions"
    assert header(response, "X-Gateway-Target") == "echo/echo"


def test_system_message_and_max_tokens(api_handler: Handler) -> None:
    completion = ChatCompletion.model_validate_json(
        invoke(api_handler, "chat-completions-system-and-limits.json")["body"]
    )
    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3 + 5, 3)


def test_tool_call_response(api_handler: Handler) -> None:
    completion = ChatCompletion.model_validate_json(invoke(api_handler, "chat-completions-tools.json")["body"])
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"input": "Paris"})]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_stream_event_is_server_sent_chunks(api_handler: Handler) -> None:
    response = invoke(api_handler, "chat-completions-stream.json")
    assert header(response, "Content-Type").split(";")[0] == "text/event-stream"
    frames = [f.removeprefix("data: ") for f in response["body"].strip().split("\n\n")]
    assert frames[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(f) for f in frames[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Say hello to the gateway"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_models_lists_the_registry(api_handler: Handler) -> None:
    body = json.loads(invoke(api_handler, "models.json")["body"])
    assert body["object"] == "list"
    assert [Model.model_validate(m).id for m in body["data"]] == [
        "claude-haiku-4-5",
        "claude-haiku-5-5",
        "claude-opus-5-5",
        "claude-sonnet-4-5",
        "claude-sonnet-5-5",
        "cohere-embed-english-v3",
        "cohere-embed-multilingual-v3",
        "echo",
        "echo-embedding",
        "nova-lite",
        "titan-embed-text-v2",
    ]
    kinds = {m["id"]: m["kind"] for m in body["data"]}
    assert (kinds["echo"], kinds["titan-embed-text-v2"]) == ("chat", "embedding")
    titan = next(m for m in body["data"] if m["id"] == "titan-embed-text-v2")
    assert titan["dimensions"] == 1024
    sonnet = next(m for m in body["data"] if m["id"] == "claude-sonnet-4-5")
    assert (sonnet["context_window"], sonnet["max_output_tokens"]) == (200000, 64000)
    assert sonnet["capabilities"]["tools"] is True and sonnet["capabilities"]["images"] is True
    assert "source" not in sonnet["capabilities"]


def test_embeddings_are_parsed_by_the_openai_sdk_types(api_handler: Handler) -> None:
    listed = CreateEmbeddingResponse.model_validate_json(invoke(api_handler, "embeddings.json")["body"])
    assert [item.index for item in listed.data] == [0, 1]
    assert all(len(item.embedding) == 256 for item in listed.data)
    assert math.isclose(sum(value * value for value in listed.data[0].embedding), 1.0, rel_tol=1e-5)
    assert listed.usage.prompt_tokens == listed.usage.total_tokens == 5  # one token per word, echo's count
    assert listed.model == "echo-embedding"
    encoded = json.loads(invoke(api_handler, "embeddings-base64-dimensions.json")["body"])
    vector = array.array("f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert len(vector) == 64
    tokens = CreateEmbeddingResponse.model_validate_json(invoke(api_handler, "embeddings-token-arrays.json")["body"])
    assert tokens.usage.prompt_tokens == 5, "a token array counts its ids"


def test_one_model_in_either_api_shape(api_handler: Handler) -> None:
    model = Model.model_validate_json(invoke(api_handler, "model-retrieve.json")["body"])
    assert (model.id, model.object, model.owned_by) == ("echo-embedding", "model", "llm-gateway")
    info = ModelInfo.model_validate_json(invoke(api_handler, "model-retrieve-anthropic.json")["body"])
    assert info.id == "claude-sonnet-4-5", "an alias names its model"


def test_model_prompt_endpoint(api_handler: Handler) -> None:
    body = json.loads(invoke(api_handler, "model-prompt.json")["body"])
    assert body == {
        "completion": "What is an API gateway?",
        "model": "echo",
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


@pytest.mark.parametrize(
    ("name", "param", "fragment"),
    [
        (
            "error-wrong-types.json",
            "max_tokens",
            "max_tokens: Input should be greater than or equal to 1; temperature: Input should be a valid number",
        ),
        ("error-missing-messages.json", "messages", "messages: Field required"),
        ("error-unknown-model.json", "model", "'gpt-17-ultra' does not exist"),
        ("error-model-not-allowed.json", "model", "This API key may not use the model 'echo'"),
        ("error-malformed-json.json", None, "not valid JSON"),
        ("error-oversized-body.json", None, "exceeds the gateway's limit of 5000000 bytes"),
        ("error-model-prompt-empty.json", "prompt", "prompt: String should have at least 1 character"),
        ("error-embeddings-chat-model.json", "model", "'echo' is a chat model: call it with POST /chat/completions"),
        ("error-chat-embedding-model.json", "model", "'echo-embedding' is an embedding model: call it with POST"),
        ("error-model-retrieve-unknown.json", "model", "'gpt-17-ultra' does not exist"),
    ],
)
def test_errors_name_the_problem(api_handler: Handler, name: str, param: str | None, fragment: str) -> None:
    error = json.loads(invoke(api_handler, name)["body"])["error"]
    assert error["param"] == param
    assert fragment in error["message"]


def test_logs_carry_the_request_id_and_never_the_prompt(api_handler: Handler, log_output: LogOutput) -> None:
    event = load("chat-completions.json")
    api_handler(event, LocalLambdaContext(function_name="ApiFunction"))
    lines = log_output()
    access = next(line for line in lines if line.get("message") == "request")
    assert access["correlation_id"] == "evt-chat-completions"
    assert (access["status"], access["model"], access["prompt_tokens"]) == (200, "echo", 5)
    assert json.loads(request_body(event))["messages"][0]["content"] not in json.dumps(lines)


def test_prompt_logging_is_an_operator_choice(
    api_handler: Handler, log_output: LogOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_LOG_PROMPTS", "true")
    invoke(api_handler, "chat-completions.json")
    prompts = [line for line in log_output() if line["message"] == "prompt"]
    assert prompts[0]["messages"] == [{"role": "user", "content": "Say hello to the gateway"}]


def test_metrics_per_request_by_model(api_handler: Handler, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    invoke(api_handler, "chat-completions.json")
    invoke(api_handler, "error-unknown-model.json")
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    requests = [m for m in emf if "Requests" in m]
    assert [(m["Model"], m["Plan"], m["Requests"], m["PromptTokens"], m["ClientErrors"]) for m in requests] == [
        ("echo", "standard", 1, 5, 0),
        ("none", "standard", 1, 0, 1),
    ]
    assert all(m["Latency"] >= 0 for m in requests)
    # Totals, by model, by model and plan: bounded dimensions; the tenant is metadata only.
    assert requests[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service"],
        ["service", "Model"],
        ["service", "Model", "Plan"],
    ]
    assert requests[0]["tenant"] == "acme"
    assert not any("tenant" in dims for m in requests for dims in m["_aws"]["CloudWatchMetrics"][0]["Dimensions"])


def test_responses_events_are_parsed_by_the_openai_sdk_types(api_handler: Handler) -> None:
    response = Response.model_validate_json(invoke(api_handler, "responses.json")["body"])
    assert (response.output_text, response.instructions, response.status) == (
        "Say hello to the gateway",
        "Answer briefly.",
        "completed",
    )
    streamed = invoke(api_handler, "responses-stream-codex.json")
    assert header(streamed, "Content-Type").startswith("text/event-stream")
    frames = [frame for frame in streamed["body"].strip().split("\n\n") if frame]
    names = [frame.split("\n")[0].removeprefix("event: ") for frame in frames]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert "[DONE]" not in streamed["body"]
    final = json.loads(frames[-1].split("\n", 1)[1].removeprefix("data: "))["response"]
    reasoning, message = Response.model_validate(final).output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert message.type == "message" and message.content[0].text == "Thanks"  # type: ignore[union-attr]
