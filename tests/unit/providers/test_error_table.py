"""Every row of the provider error table and every documented Bedrock stop reason, streamed and not.

Bedrock answers come over the offline transport (real botocore client, rest-json error parsing and event-stream
decoding); OpenAI-compatible answers come from the fake server on 127.0.0.1. Streams are rendered to SSE the way
the API does, so a failure after the 200 is checked in the error event the caller reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.dialects.openai_chat.stream import ChunkProducer, sse_events
from llm_gateway.domain.answers import Finish, StreamEvent, TextDelta, Usage, UsageReport
from llm_gateway.domain.conversation import StopReason
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.errors import ContextLengthExceededError, GatewayError, ProviderRateLimitError
from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from llm_gateway.providers.error_table import (
    BEDROCK_ERRORS,
    ERROR_TABLE,
    OPENAI_ERRORS,
    ErrorRule,
    markdown_table,
)
from llm_gateway.providers.openai.provider import OpenAICompatProvider
from tests.fakes.bedrock_transport import FakeBedrockTransport, stream_event, stream_exception
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk
from tests.fakes.requests import openai_chat

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

MODELS_PAGE = Path(__file__).resolve().parents[3] / "docs" / "models.md"
MODEL_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BEDROCK_TARGET = Target(provider="bedrock", model_id=MODEL_ID)
REQUEST = openai_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})

# The HTTP status Bedrock sends each exception with (botocore's service model), for the rest-json error parser.
BEDROCK_HTTP_STATUS = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 400,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
}
# What a message must say to land on a row: one of its phrases, or (for a row without) none of its siblings'.
OTHER_MESSAGE = "1 validation error detected: Value at 'messages' failed to satisfy constraint"


@dataclass(frozen=True)
class BedrockCase:
    rule: ErrorRule
    code: str
    message: str

    @property
    def http_status(self) -> int:
        return BEDROCK_HTTP_STATUS.get(self.code, 403 if "Token" in self.code or "Signature" in self.code else 500)


def stream_exception_names() -> set[str]:
    """The exceptions ConverseStream documents as stream events; botocore loses the code of any other."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    members = model.shape_for("ConverseStreamOutput").members
    return {name[0].upper() + name[1:] for name in members if name.endswith("Exception")}


def bedrock_cases(*, in_stream: bool = False) -> list[Any]:
    cases = []
    for rule in BEDROCK_ERRORS:
        if rule.kind != "exception":
            continue
        for name in rule.upstream:
            if in_stream and name not in stream_exception_names():
                continue
            code = "SomethingNewException" if name == "any other exception" else name
            for message in rule.phrases or (OTHER_MESSAGE,):
                case = BedrockCase(rule, code, f"The model returned the following errors: {message} (details)")
                cases.append(pytest.param(case, id=f"{code}-{rule.code}-{message[:24]}"))
    return cases


@pytest.fixture
def client() -> BedrockRuntimeClient:
    return default_client("us-east-1", 30.0)


@pytest.fixture
def transport(client: BedrockRuntimeClient) -> Iterator[FakeBedrockTransport]:
    fake = FakeBedrockTransport()
    fake.install(client)
    yield fake
    fake.assert_no_pending_replies()


@pytest.fixture
def bedrock(client: BedrockRuntimeClient) -> BedrockProvider:
    return BedrockProvider(client_factory=lambda region, timeout: client)


def assert_maps(error: GatewayError | None, rule: ErrorRule) -> None:
    assert error is not None, "the provider failure was not raised"
    assert isinstance(error, rule.error), f"{type(error).__name__} is not a {rule.error.__name__}"
    assert error.status == rule.status
    if issubclass(rule.error, ContextLengthExceededError):
        assert (error.code, error.param) == ("context_length_exceeded", "messages")
    if not rule.keep_upstream:
        assert (error.error_type, error.code) == (rule.type, rule.code)
    assert error.retryable is (rule.blame in {"capacity", "provider"}), "request and target faults are not retried"


def sse(events: Iterator[StreamEvent]) -> list[Any]:
    producer = ChunkProducer(completion_id="c", created=0, model="m", include_usage=True)
    frames = [frame.removeprefix("data: ").strip() for frame in sse_events(producer.chunks(events))]
    return [frame if frame == "[DONE]" else json.loads(frame) for frame in frames]


# --- Bedrock exceptions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", bedrock_cases())
def test_bedrock_errors_of_converse(
    bedrock: BedrockProvider, transport: FakeBedrockTransport, case: BedrockCase
) -> None:
    transport.reply_error(case.http_status, case.code, case.message, {"Retry-After": "4"})
    with pytest.raises(GatewayError) as caught:
        bedrock.complete(REQUEST, BEDROCK_TARGET, Deadline.after(10))
    assert_maps(caught.value, case.rule)
    if isinstance(caught.value, ProviderRateLimitError):
        assert caught.value.headers == {"Retry-After": "4"}


@pytest.mark.parametrize("case", bedrock_cases())
def test_bedrock_errors_before_a_stream_starts(
    bedrock: BedrockProvider, transport: FakeBedrockTransport, case: BedrockCase
) -> None:
    transport.reply_error(case.http_status, case.code, case.message)
    with pytest.raises(GatewayError) as caught:
        bedrock.stream(REQUEST, BEDROCK_TARGET, Deadline.after(10))
    assert_maps(caught.value, case.rule)


@pytest.mark.parametrize("case", bedrock_cases(in_stream=True))
def test_bedrock_errors_inside_a_stream_end_it_with_the_same_error_event(
    bedrock: BedrockProvider, transport: FakeBedrockTransport, case: BedrockCase
) -> None:
    # Stream error events name the exception in camelCase (throttlingException).
    event_type = case.code[0].lower() + case.code[1:]
    transport.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Once"}}),
        stream_exception(event_type, case.message),
    )
    events = bedrock.stream(REQUEST, BEDROCK_TARGET, Deadline.after(10))
    frames = sse(events)
    assert frames[1]["choices"][0]["delta"] == {"content": "Once"}
    error = frames[-1]["error"]
    assert (error["type"], error["code"]) == (case.rule.type, case.rule.code)
    assert "[DONE]" not in frames


# --- Bedrock stop reasons --------------------------------------------------------------------------------------

# Every stop reason the Converse API documents, and one it may add.
STOP_REASONS: list[tuple[str, StopReason | str]] = [
    ("end_turn", "end_turn"),
    ("stop_sequence", "stop_sequence"),
    ("max_tokens", "max_tokens"),
    ("model_context_window_exceeded", "max_tokens"),
    ("tool_use", "tool_use"),
    ("content_filtered", "content_filter"),
    ("guardrail_intervened", "content_filter"),
    ("malformed_model_output", "error:upstream_malformed_output"),
    ("malformed_tool_use", "error:upstream_malformed_output"),
    ("a_reason_added_next_year", "end_turn"),
]


def test_the_stop_reason_list_is_botocores() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    documented = set(model.shape_for("StopReason").enum)
    assert documented == {reason for reason, _ in STOP_REASONS} - {"a_reason_added_next_year"}


@pytest.mark.parametrize(("stop_reason", "outcome"), STOP_REASONS)
def test_bedrock_stop_reasons_of_converse(
    bedrock: BedrockProvider, transport: FakeBedrockTransport, stop_reason: str, outcome: str
) -> None:
    usage = {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}
    message = {"role": "assistant", "content": [{"text": "x"}]}
    transport.reply_json(200, {"output": {"message": message}, "stopReason": stop_reason, "usage": usage})
    if outcome.startswith("error:"):
        with pytest.raises(GatewayError) as caught:
            bedrock.complete(REQUEST, BEDROCK_TARGET, Deadline.after(10))
        assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, outcome[6:], True)
    else:
        assert bedrock.complete(REQUEST, BEDROCK_TARGET, Deadline.after(10)).stop_reason == outcome


@pytest.mark.parametrize(("stop_reason", "outcome"), STOP_REASONS)
def test_bedrock_stop_reasons_of_converse_stream(
    bedrock: BedrockProvider, transport: FakeBedrockTransport, stop_reason: str, outcome: str
) -> None:
    transport.reply_stream(
        stream_event("messageStart", {"role": "assistant"}),
        stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}),
        stream_event("messageStop", {"stopReason": stop_reason}),
        stream_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}, "metrics": {}}),
    )
    events: list[StreamEvent] = []
    error: GatewayError | None = None
    try:
        events.extend(bedrock.stream(REQUEST, BEDROCK_TARGET, Deadline.after(10)))
    except GatewayError as raised:
        error = raised
    if outcome.startswith("error:"):
        # The answer was billed, so its usage is reported before the error ends the stream.
        assert events == [TextDelta("x"), UsageReport(Usage(5, 2))]
        assert error is not None and (error.status, error.code) == (502, outcome[6:])
    else:
        assert error is None
        assert events == [TextDelta("x"), Finish(outcome), UsageReport(Usage(5, 2))]  # type: ignore[arg-type]


# --- OpenAI-compatible upstreams -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamCase:
    rule: ErrorRule
    status: int
    body: dict[str, Any]


def upstream_error(message: str, code: Any = None, error_type: str = "upstream_type", param: Any = None) -> Any:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def upstream_cases() -> list[Any]:
    cases = []
    for rule in OPENAI_ERRORS:
        if rule.kind != "HTTP status":
            continue
        for name in rule.upstream:
            status = {"5xx": 503, "any other status": 418}.get(name) or int(name)
            if rule.upstream_code:
                body = upstream_error("upstream says no", code=rule.upstream_code, param="messages")
            elif rule.phrases:
                # vLLM: its HTTP status as the code, the overflow only in its message.
                body = upstream_error(f"This model's {rule.phrases[0]} 4096 tokens.", code=400, param=None)
            else:
                body = upstream_error("upstream says no", code="upstream_own_code", param="temperature")
            cases.append(pytest.param(UpstreamCase(rule, status, body), id=f"{status}-{rule.code}"))
    return cases


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def upstream() -> Iterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider()
    yield provider
    provider.close()


def openai_target(server: FakeOpenAIServer) -> Target:
    return Target(provider="openai", model_id="up", base_url=server.base_url)


def assert_keeps_upstream(error: GatewayError, rule: ErrorRule, body: dict[str, Any]) -> None:
    sent = body["error"]
    if not rule.keep_upstream:
        return
    assert error.error_type == sent["type"]
    if isinstance(sent["code"], str) and rule.code != "context_length_exceeded":
        assert error.code == sent["code"]
    if isinstance(sent["param"], str):
        assert error.param == sent["param"]


@pytest.mark.parametrize("case", upstream_cases())
def test_upstream_errors_of_a_completion(
    upstream: OpenAICompatProvider, server: FakeOpenAIServer, case: UpstreamCase
) -> None:
    server.enqueue(status=case.status, json=case.body, headers={"Retry-After": "3"})
    with pytest.raises(GatewayError) as caught:
        upstream.complete(REQUEST, openai_target(server), Deadline.after(5))
    assert_maps(caught.value, case.rule)
    assert_keeps_upstream(caught.value, case.rule, case.body)


@pytest.mark.parametrize("case", upstream_cases())
def test_upstream_errors_of_a_stream(
    upstream: OpenAICompatProvider, server: FakeOpenAIServer, case: UpstreamCase
) -> None:
    server.enqueue(status=case.status, json=case.body)
    with pytest.raises(GatewayError) as caught:
        list(upstream.stream(REQUEST.with_(stream=True), openai_target(server), Deadline.after(5)))
    assert_maps(caught.value, case.rule)
    assert_keeps_upstream(caught.value, case.rule, case.body)


@pytest.mark.parametrize(
    ("code", "expected_code"),
    [
        pytest.param("context_length_exceeded", "context_length_exceeded", id="context-overflow"),
        pytest.param("server_overloaded", "server_overloaded", id="own-code-kept"),
        pytest.param(None, "upstream_error", id="no-code"),
    ],
)
def test_an_error_inside_a_200_stream_ends_in_an_error_event_with_its_code(
    upstream: OpenAICompatProvider, server: FakeOpenAIServer, code: str | None, expected_code: str
) -> None:
    server.enqueue(stream=[delta_chunk(content="Hel"), upstream_error("went wrong", code=code, error_type="x_error")])
    events = upstream.stream(REQUEST.with_(stream=True), openai_target(server), Deadline.after(5))
    frames = sse(events)
    assert frames[0]["choices"][0]["delta"] == {"content": "Hel"}, "the upstream's own chunk, forwarded"
    assert frames[-1]["error"]["code"] == expected_code
    assert frames[-1]["error"]["type"] == "x_error"


@pytest.mark.parametrize(
    ("code", "expected_code", "status"),
    [
        pytest.param("context_length_exceeded", "context_length_exceeded", 400, id="context-overflow"),
        pytest.param("server_overloaded", "server_overloaded", 502, id="own-code-kept"),
    ],
)
def test_an_error_as_a_200_body_keeps_its_code(
    upstream: OpenAICompatProvider, server: FakeOpenAIServer, code: str, expected_code: str, status: int
) -> None:
    server.enqueue(json=upstream_error("went wrong", code=code, error_type="x_error"))
    with pytest.raises(GatewayError) as caught:
        upstream.complete(REQUEST, openai_target(server), Deadline.after(5))
    assert (caught.value.status, caught.value.code, caught.value.error_type) == (status, expected_code, "x_error")


# --- the table in the docs -------------------------------------------------------------------------------------


def test_models_page_shows_the_error_table_the_code_uses() -> None:
    assert markdown_table(ERROR_TABLE) in MODELS_PAGE.read_text(encoding="utf-8")


def test_every_row_names_its_source() -> None:
    assert all(rule.source.startswith("https://") for rule in ERROR_TABLE)


def test_an_upstream_content_filter_refusal_keeps_its_own_code(
    upstream: OpenAICompatProvider, server: FakeOpenAIServer
) -> None:
    # Azure OpenAI's answer when its content filter blocks a prompt.
    server.enqueue(
        status=400,
        json={
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                "policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
            }
        },
    )
    with pytest.raises(GatewayError) as caught:
        upstream.complete(REQUEST, openai_target(server), Deadline.after(5))
    error = error_body(caught.value)["error"]
    assert (caught.value.status, error["code"], error["param"], error["type"]) == (
        400,
        "content_filter",
        "prompt",
        "invalid_request_error",
    )
