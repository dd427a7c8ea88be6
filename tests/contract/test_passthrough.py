"""Nothing lost in translation: OpenAI fields the gateway does not interpret reach an OpenAI-compatible upstream as
sent, and the upstream's answer reaches the caller as answered, streamed and not; Bedrock translates what Converse
can express and refuses the rest with a 400 naming it.

The caller is the real API handler behind the official openai SDK (or raw HTTP where the SDK would reshape the
body); the upstream is the fake OpenAI-compatible server, which records every request it receives.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Handler
from tests.fakes.bedrock_transport import FakeBedrockTransport
from tests.fakes.handler_client import CALLER, STAGE, HandlerTransport, handler_client
from tests.fakes.openai_server import FakeOpenAIServer, chat_completion_json, delta_chunk, usage_chunk, usage_json

# The output cap the gateway adds when a caller names none: the settings' default (no plan cap in CALLER).
DEFAULT_CAP = 4096
USER = [{"role": "user", "content": "Say yes."}]
LOGPROBS = {
    "content": [
        {
            "token": "Yes",
            "logprob": -0.01,
            "bytes": [89, 101, 115],
            "top_logprobs": [{"token": "Yes", "logprob": -0.01, "bytes": [89, 101, 115]}],
        }
    ],
    "refusal": None,
}
REFUSAL = "I can't help with that."
WAV = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt ").decode()
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF").decode()


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        models = {
            "up": {"targets": [{"provider": "openai", "model_id": "upstream-model", "base_url": server.base_url}]},
            "claude": {"targets": [{"provider": "bedrock", "model_id": "us.anthropic.claude-sonnet-4-5-v1:0"}]},
        }
        monkeypatch.setenv("GATEWAY_MODELS_JSON", json.dumps({"models": models}))
        yield server


def raw_client(handler: Handler) -> httpx2.Client:
    """Plain HTTP to the handler, for bodies the SDK would reshape."""
    return httpx2.Client(transport=HandlerTransport(handler, CALLER), base_url=f"https://{STAGE.domain}/{STAGE.name}")


def sse_data(text: str) -> list[Any]:
    # SSE lines end only in CR, LF or CRLF; str.splitlines would also split inside data at U+0085 or U+2028.
    frames = [line.removeprefix("data: ") for line in text.split("\n") if line.startswith("data: ")]
    return [frame if frame == "[DONE]" else json.loads(frame) for frame in frames]


def received_by_upstream(sent: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """What the upstream must receive for `sent`: the same body with only the gateway's decisions applied."""
    expected = copy.deepcopy(sent)
    expected["model"] = "upstream-model"
    expected["stream"] = stream
    if stream:
        expected["stream_options"] = {**(sent.get("stream_options") or {}), "include_usage": True}
    else:
        expected.pop("stream_options", None)
    if sent.get("max_completion_tokens") is None and sent.get("max_tokens") is None:
        expected["max_completion_tokens"] = DEFAULT_CAP
    return expected


# --- 1. logprobs ----------------------------------------------------------------------------------------------


def test_logprobs_reach_the_upstream_and_come_back(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    answer = chat_completion_json("Yes", usage=usage_json(3, 1))
    answer["choices"][0]["logprobs"] = LOGPROBS
    upstream.enqueue(json=answer)
    sdk, _ = handler_client(api_handler)

    completion = sdk.chat.completions.create(model="up", messages=USER, logprobs=True, top_logprobs=1)  # type: ignore[arg-type]

    sent = upstream.last_request.body
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 1)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert (logprobs.content[0].token, logprobs.content[0].top_logprobs[0].logprob) == ("Yes", -0.01)


def test_streamed_logprobs_come_back_in_every_chunk(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    first = delta_chunk(role="assistant", content="Yes")
    first["choices"][0]["logprobs"] = LOGPROBS
    last = delta_chunk(finish_reason="stop")
    last["choices"][0]["logprobs"] = None
    upstream.enqueue(stream=[first, last, usage_chunk(3, 1)])
    sdk, _ = handler_client(api_handler)

    chunks = list(
        sdk.chat.completions.create(model="up", messages=USER, logprobs=True, top_logprobs=1, stream=True)  # type: ignore[arg-type]
    )

    assert upstream.last_request.body["logprobs"] is True
    with_logprobs = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert len(with_logprobs) == 1 and with_logprobs[0].content is not None
    assert with_logprobs[0].content[0].bytes == [89, 101, 115]
    assert all(c.usage is None for c in chunks), "usage the caller did not ask for stays the gateway's"


# --- 2. refusals ----------------------------------------------------------------------------------------------


def test_a_refusal_reaches_the_caller(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    answer = chat_completion_json(None, usage=usage_json(3, 6))
    answer["choices"][0]["message"]["refusal"] = REFUSAL
    upstream.enqueue(json=answer)
    sdk, _ = handler_client(api_handler)

    message = sdk.chat.completions.create(model="up", messages=USER).choices[0].message  # type: ignore[arg-type]

    assert (message.content, message.refusal) == (None, REFUSAL)


def test_a_streamed_refusal_reaches_the_caller(api_handler: Handler, upstream: FakeOpenAIServer) -> None:
    refusing = [delta_chunk(role="assistant")]
    for piece in ("I can't ", "help with that."):
        chunk = delta_chunk()
        chunk["choices"][0]["delta"]["refusal"] = piece
        refusing.append(chunk)
    upstream.enqueue(stream=[*refusing, delta_chunk(finish_reason="stop"), usage_chunk(3, 6)])
    sdk, _ = handler_client(api_handler)

    with sdk.chat.completions.stream(model="up", messages=USER) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()

    assert (final.choices[0].message.content, final.choices[0].message.refusal) == (None, REFUSAL)


def test_a_refusal_from_bedrock_reads_as_a_content_filter_stop(
    api_handler: Handler, upstream: FakeOpenAIServer, bedrock: FakeBedrockTransport
) -> None:
    message = {"role": "assistant", "content": [{"text": "I can't help with that."}]}
    usage = {"inputTokens": 3, "outputTokens": 6, "totalTokens": 9}
    bedrock.reply_json(200, {"output": {"message": message}, "stopReason": "guardrail_intervened", "usage": usage})
    sdk, _ = handler_client(api_handler)

    choice = sdk.chat.completions.create(model="claude", messages=USER).choices[0]  # type: ignore[arg-type]

    assert (choice.finish_reason, choice.message.content) == ("content_filter", "I can't help with that.")


# --- 3. explicit nulls ----------------------------------------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
HISTORY = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
]


@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_explicit_nulls_in_the_history_reach_the_upstream(
    api_handler: Handler, upstream: FakeOpenAIServer, stream: bool
) -> None:
    sent = {"model": "up", "messages": HISTORY, "tools": [TOOL], "stream": stream, "temperature": None}
    with raw_client(api_handler) as client:
        response = client.post("/chat/completions", json=sent)
    assert response.status_code == 200, response.text

    assert upstream.last_request.body == received_by_upstream(sent, stream=stream)
    assert upstream.last_request.body["messages"][1]["content"] is None


# --- 4. content parts the gateway does not interpret ----------------------------------------------------------

AUDIO_PART = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
FILE_PART = {"type": "file", "file": {"filename": "terms.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}}


@pytest.mark.parametrize("part", [AUDIO_PART, FILE_PART], ids=["input_audio", "file"])
@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
def test_audio_and_file_parts_reach_an_openai_compatible_upstream(
    api_handler: Handler, upstream: FakeOpenAIServer, part: dict[str, Any], stream: bool
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in this?"}, part]}]
    sdk, _ = handler_client(api_handler)

    if stream:
        chunks = list(sdk.chat.completions.create(model="up", messages=messages, stream=True))  # type: ignore[arg-type]
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = sdk.chat.completions.create(model="up", messages=messages).choices[0].message.content or ""  # type: ignore[arg-type]

    assert upstream.last_request.body["messages"] == messages
    assert answer == "What is in this?"


def test_a_file_part_reaches_bedrock_as_a_document(
    api_handler: Handler, upstream: FakeOpenAIServer, bedrock: FakeBedrockTransport
) -> None:
    message = {"role": "assistant", "content": [{"text": "Terms."}]}
    usage = {"inputTokens": 30, "outputTokens": 1, "totalTokens": 31}
    bedrock.reply_json(200, {"output": {"message": message}, "stopReason": "end_turn", "usage": usage})
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarise."}, FILE_PART]}]
    sdk, _ = handler_client(api_handler)

    assert sdk.chat.completions.create(model="claude", messages=messages).choices[0].message.content == "Terms."  # type: ignore[arg-type]

    sent = bedrock.sent[-1].json()
    document = sent["messages"][0]["content"][1]["document"]
    assert (document["format"], base64.b64decode(document["source"]["bytes"])) == ("pdf", base64.b64decode(PDF))


def test_an_audio_part_is_refused_by_bedrock_naming_it(
    api_handler: Handler, upstream: FakeOpenAIServer, bedrock: FakeBedrockTransport
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Transcribe."}, AUDIO_PART]}]
    sdk, _ = handler_client(api_handler)

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="claude", messages=messages)  # type: ignore[arg-type]

    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "messages[0].content[1]"
    assert "input_audio" in error["message"]


# --- property: exactly what was sent, exactly what was answered -----------------------------------------------

# Field names outside every name the OpenAI API or the gateway gives a meaning to.
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12).map(lambda name: f"x_{name}")
SCALARS = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=6,
)
EXTRAS = st.dictionaries(NAMES, VALUES, max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    text_part = {"type": "text", "text": draw(st.text(min_size=1, max_size=30)), **draw(EXTRAS)}
    user = {"role": "user", "content": [text_part], **draw(EXTRAS)}
    assistant = {"role": "assistant", "content": draw(st.none() | st.text(min_size=1, max_size=20)), **draw(EXTRAS)}
    if assistant["content"] is None:
        assistant["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}, **draw(EXTRAS)}
        ]
        tool = {"role": "tool", "tool_call_id": "call_1", "content": "done", **draw(EXTRAS)}
        messages = [user, assistant, tool]
    else:
        messages = [user, assistant, {"role": "user", "content": "again"}]
    sent = {"model": "up", "messages": messages, **draw(EXTRAS)}
    for name in ("temperature", "top_p", "seed", "user", "max_completion_tokens"):
        if draw(st.booleans()):
            sent[name] = None
    return sent


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    answer = chat_completion_json(draw(st.text(max_size=30)), usage=usage_json(7, 3))
    answer.update(draw(EXTRAS))
    answer["choices"][0].update(draw(EXTRAS))
    answer["choices"][0]["message"].update(draw(EXTRAS))
    answer["usage"].update(draw(EXTRAS))
    return answer


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    chunks = [delta_chunk(role="assistant", content=draw(st.text(max_size=10))), delta_chunk(finish_reason="stop")]
    for chunk in chunks:
        chunk.update(draw(EXTRAS))
        chunk["choices"][0].update(draw(EXTRAS))
        chunk["choices"][0]["delta"].update(draw(EXTRAS))
    final = usage_chunk(7, 3)
    final["usage"].update(draw(EXTRAS))
    return [*chunks, final]


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(sent=requests(), answer=answers())
def test_a_completion_carries_exactly_what_was_sent_and_answered(
    api_handler: Handler, upstream: FakeOpenAIServer, sent: dict[str, Any], answer: dict[str, Any]
) -> None:
    upstream.enqueue(json=answer)
    with raw_client(api_handler) as client:
        response = client.post("/chat/completions", json=sent)
    assert response.status_code == 200, response.text

    assert upstream.last_request.body == received_by_upstream(sent, stream=False)
    assert response.json() == {**answer, "model": "up"}


@PROPERTY
@given(sent=requests(), chunks=streams(), include_usage=st.booleans())
def test_a_stream_carries_exactly_what_was_sent_and_answered(
    api_handler: Handler,
    upstream: FakeOpenAIServer,
    sent: dict[str, Any],
    chunks: list[dict[str, Any]],
    include_usage: bool,
) -> None:
    sent = {**sent, "stream": True, **({"stream_options": {"include_usage": True}} if include_usage else {})}
    upstream.enqueue(stream=chunks)
    with raw_client(api_handler) as client:
        response = client.post("/chat/completions", json=sent)
    assert response.status_code == 200, response.text

    assert upstream.last_request.body == received_by_upstream(sent, stream=True)
    expected = [{**chunk, "model": "up"} for chunk in chunks if include_usage or chunk["choices"]]
    if not include_usage:
        expected = [{name: value for name, value in chunk.items() if name != "usage"} for chunk in expected]
    assert sse_data(response.text) == [*expected, "[DONE]"]
