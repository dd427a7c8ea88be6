"""The OpenAI Agents SDK for Python (`openai-agents`) against `make run`'s gateway with its defaults: the Responses
API through the client it builds from OPENAI_BASE_URL and OPENAI_API_KEY (tracing off: it would upload to OpenAI)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import client_environment

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway_env(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> LocalGateway:
    for name, value in client_environment(local_gateway).items():
        if name.startswith(("OPENAI_", "ANTHROPIC_")):
            monkeypatch.setenv(name, value)
    return local_gateway


T = TypeVar("T")


def on_the_sdks_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs `coroutine` on the thread's default event loop, the one `Runner.run_sync` runs on: the SDK shares one HTTP
    client per process, which belongs to the loop of its first request (asyncio.run's new loop would not do)."""
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = policy.get_event_loop()
        except RuntimeError:
            loop = policy.new_event_loop()
            policy.set_event_loop(loop)
    return loop.run_until_complete(coroutine)


class Word(BaseModel):
    word: str


def test_a_run_a_tool_a_second_turn_and_structured_output(gateway_env: LocalGateway) -> None:
    from agents import Agent, ModelSettings, Runner, function_tool

    calls: list[str] = []

    @function_tool
    def lookup(input: str) -> str:  # echo calls a tool with {"input": <the user's text>}
        """Look a word up."""
        calls.append(input)
        return "a unit of language"

    plain = Runner.run_sync(Agent(name="echoer", model="echo"), "Hello, agents")
    assert plain.final_output == "Hello, agents"
    client = openai.OpenAI(base_url=gateway_env.base_url, api_key=gateway_env.key, max_retries=0)
    assert plain.last_response_id is not None
    assert client.responses.retrieve(plain.last_response_id).output_text == "Hello, agents"

    # Echo calls a tool only when one is required; the SDK resets tool_choice after the call, so the agent finishes
    # with the tool's result, which echo repeats.
    tooler = Agent(name="tooler", model="echo", tools=[lookup], model_settings=ModelSettings(tool_choice="required"))
    with_tool = Runner.run_sync(tooler, "word")
    assert calls == ["word"] and len(with_tool.raw_responses) == 2
    assert with_tool.final_output == "a unit of language"

    # The next turn as the SDK's docs write it: the whole history from to_input_list(), ids and all.
    history: list[Any] = [*with_tool.to_input_list(), {"role": "user", "content": "four five"}]
    again = Runner.run_sync(Agent(name="echoer", model="echo"), history)
    assert again.final_output == "four five"
    # Echo counts every word it reads: the whole history (with the tool call and its result), not only the new turn.
    assert again.raw_responses[-1].usage.input_tokens > 2 + 4 + 4

    first = Runner.run_sync(Agent(name="echoer", model="echo"), "one two three")
    second = Runner.run_sync(
        Agent(name="echoer", model="echo"), "four five", previous_response_id=first.last_response_id
    )
    assert second.final_output == "four five" and second.raw_responses[-1].usage.input_tokens == 3 + 3 + 2
    assert second.last_response_id is not None
    items = client.responses.input_items.list(second.last_response_id, order="asc").data
    assert [item.content[0].text for item in items] == ["one two three", "one two three", "four five"]  # type: ignore[union-attr]

    structured = Runner.run_sync(Agent(name="extractor", model="echo", output_type=Word), '{"word": "hi"}')
    assert structured.final_output == Word(word="hi")


def test_a_streamed_run(gateway_env: LocalGateway) -> None:
    from agents import Agent, Runner
    from openai.types.responses import ResponseTextDeltaEvent

    async def stream() -> tuple[list[str], Any]:
        result = Runner.run_streamed(Agent(name="echoer", model="echo"), "streamed words here")
        deltas = [
            event.data.delta
            async for event in result.stream_events()
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
        ]
        return deltas, result.final_output

    deltas, final = on_the_sdks_loop(stream())
    assert deltas == ["streamed", " words", " here"] and final == "streamed words here"
