"""The Responses API through the real API handler, driven by the official openai SDK's `client.responses`: plain,
streamed, tools, custom tools, structured output and reasoning on echo; and, with no response store configured, the
state refused in OpenAI's terms (test_responses_state.py has the stored responses)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import Handler
from tests.fakes.handler_client import handler_client

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_a_plain_response_reads_as_the_sdk_expects(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    response = client.responses.create(
        model="echo", input="Hello, gateway", instructions="Be brief.", store=False, metadata={"run": "1"}
    )
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello, gateway"
    assert response.id.startswith("resp_")
    assert response.instructions == "Be brief."
    assert response.metadata == {"run": "1"}
    assert response.to_dict()["store"] is False
    assert response.usage is not None
    assert response.usage.output_tokens == 2
    assert response.usage.total_tokens == response.usage.input_tokens + 2
    assert response.usage.input_tokens_details.cached_tokens == 0


def test_a_streamed_response_ends_in_one_terminal_event_and_counts_its_events(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    events = list(client.responses.create(model="echo", input="one two three", stream=True, store=False))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three" and len(deltas) == 3
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "one two three"
    assert final.usage is not None and final.usage.output_tokens == 3


def test_the_sdk_stream_helper_assembles_the_final_response(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    with client.responses.stream(model="echo", input="streamed words", store=False) as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "streamed words" and final.output_text == "streamed words"


def test_a_forced_function_call_and_its_output_make_a_second_turn(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    first = client.responses.create(
        model="echo",
        input="Paris",
        tools=[WEATHER],
        tool_choice="required",
        store=False,  # type: ignore[list-item]
    )
    call = first.output[-1]
    assert call.type == "function_call"
    assert call.name == "get_weather" and json.loads(call.arguments) == {"input": "Paris"}
    history: list[Any] = [{"role": "user", "content": "Paris"}, call.model_dump(exclude_none=True)]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = client.responses.create(model="echo", input=history, tools=[WEATHER], store=False)  # type: ignore[list-item]
    assert second.output_text == "sunny"


def test_a_streamed_function_call_has_argument_deltas_and_a_done_item(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    events = list(
        client.responses.create(
            model="echo",
            input="Rome",
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "function", "name": "get_weather"},
            stream=True,
            store=False,
        )
    )
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    done = [event.item for event in events if event.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert done[-1].type == "function_call" and json.loads(done[-1].arguments) == {"input": "Rome"}
    assert kinds[-1] == "response.completed"


def test_a_custom_tool_call_comes_back_as_text_input_and_reads_back(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    tool = {"type": "custom", "name": "apply_patch", "description": "Apply a patch."}
    first = client.responses.create(
        model="echo",
        input="*** Begin Patch",
        tools=[tool],
        tool_choice="required",
        store=False,  # type: ignore[list-item]
    )
    call = first.output[-1]
    assert call.type == "custom_tool_call" and call.input == "*** Begin Patch"
    history: list[Any] = [call.model_dump(exclude_none=True)]
    history.append({"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"})
    second = client.responses.create(model="echo", input=history, tools=[tool], store=False)  # type: ignore[list-item]
    assert second.output_text == "Done!"


class Answer(BaseModel):
    city: str


def test_structured_output_parses_through_the_sdk(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    parsed = client.responses.parse(model="echo", input='{"city": "Oslo"}', text_format=Answer, store=False)
    assert parsed.output_parsed == Answer(city="Oslo")


def test_signed_reasoning_survives_a_round_trip_through_encrypted_content(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    first = client.responses.create(
        model="echo",
        input="think",
        reasoning={"effort": "low"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens > 0
    history = [{"role": "user", "content": "think"}, *[item.model_dump(exclude_none=True) for item in first.output]]
    history.append({"role": "user", "content": "again"})
    second = client.responses.create(model="echo", input=history, store=False)  # type: ignore[arg-type]
    assert second.output_text == "again"


def test_previous_response_id_is_refused_as_openai_refuses_an_unknown_one(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="echo", input="hi", previous_response_id="resp_123")
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "previous_response_not_found" and error["param"] == "previous_response_id"


def test_an_item_reference_is_not_found(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.create(model="echo", input=[{"type": "item_reference", "id": "rs_1"}])  # type: ignore[list-item]
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "input[0]"


def test_store_true_is_served_and_says_it_was_not_stored(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    response = client.responses.create(model="echo", input="keep this")
    assert response.output_text == "keep this" and response.to_dict()["store"] is False


def test_a_hosted_tool_is_refused_naming_it(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    for tools, choice in [
        ([{"type": "file_search", "vector_store_ids": ["vs_1"]}], "auto"),
        ([{"type": "web_search"}], {"type": "web_search"}),
        ([{"type": "web_search"}], "required"),
    ]:
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model="echo", input="hi", tools=tools, tool_choice=choice)  # type: ignore[arg-type]
        assert isinstance(raised.value.body, dict) and raised.value.body["param"] in ("tools[0].type", "tool_choice")


def test_a_web_search_only_offered_is_left_out(api_handler: Handler, caplog: pytest.LogCaptureFixture) -> None:
    """Codex's default configuration offers OpenAI's web search: the model answers without it, and the log says
    so."""
    client, _ = handler_client(api_handler)
    tools: Any = [WEATHER, {"type": "web_search", "external_web_access": False}]
    response = client.responses.create(model="echo", input="hi", tools=tools, store=False)
    assert response.output_text == "hi" and [tool.type for tool in response.tools] == ["function", "web_search"]
    assert any(record.getMessage() == "hosted tool not offered to the model" for record in caplog.records)


def test_an_unknown_model_is_openais_404(api_handler: Handler) -> None:
    client, _ = handler_client(api_handler)
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.create(model="no-such-model", input="hi")
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "model_not_found"
