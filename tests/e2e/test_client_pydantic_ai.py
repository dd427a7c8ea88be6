"""pydantic-ai's `openai:` models against `make run`'s gateway: `Agent("openai:echo")` is an OpenAIResponsesModel
(the Responses API) on the client it builds from OPENAI_BASE_URL and OPENAI_API_KEY. A run, a second turn on the
first's messages, a tool call and its result, native structured output and a stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import client_environment

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway_env(local_gateway: LocalGateway, monkeypatch: pytest.MonkeyPatch) -> LocalGateway:
    for name, value in client_environment(local_gateway).items():
        if name.startswith("OPENAI_"):
            monkeypatch.setenv(name, value)
    return local_gateway


class Word(BaseModel):
    word: str


def test_runs_turns_tools_structured_output_and_streams(gateway_env: LocalGateway) -> None:
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.models.openai import OpenAIResponsesModel

    agent = Agent("openai:echo")
    assert isinstance(agent.model, OpenAIResponsesModel)
    first = agent.run_sync("one two three")
    assert first.output == "one two three"
    second = agent.run_sync("four five", message_history=first.all_messages())
    # Echo counts every word it reads: the first turn, its answer and the new input.
    assert second.output == "four five" and second.usage.input_tokens == 3 + 3 + 2

    @dataclass
    class FirstStepCallsATool(AbstractCapability[None]):
        """tool_choice 'required' on the first step alone (pydantic-ai refuses it for the whole run), since echo
        calls a tool only when one is required."""

        def get_model_settings(self) -> Any:
            return lambda context: {"tool_choice": "required"} if context.run_step == 1 else {}

    calls: list[str] = []
    tooler = Agent("openai:echo", capabilities=[FirstStepCallsATool()])

    @tooler.tool_plain
    def lookup(input: str) -> str:  # echo calls a tool with {"input": <the user's text>}
        """Look a word up."""
        calls.append(input)
        return "a unit of language"

    with_tool = tooler.run_sync("word")
    assert calls == ["word"] and with_tool.output == "a unit of language"
    assert with_tool.usage.requests == 2

    structured = Agent("openai:echo", output_type=NativeOutput(Word)).run_sync('{"word": "hi"}')
    assert structured.output == Word(word="hi")

    async def stream() -> list[str]:
        async with agent.run_stream("streamed words here") as result:
            return [text async for text in result.stream_text(delta=True)]

    assert "".join(asyncio.run(stream())) == "streamed words here"
