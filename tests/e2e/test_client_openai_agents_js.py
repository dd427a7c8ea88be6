"""The OpenAI Agents SDK for JavaScript (`@openai/agents`) against `make run`'s gateway with its defaults: the
Responses API through the client it builds from OPENAI_BASE_URL and OPENAI_API_KEY."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import client_environment, needs, run_driver

pytestmark = [pytest.mark.e2e, needs("@openai/agents", "zod")]


def test_runs_tools_turns_streams_and_structured_output(local_gateway: LocalGateway) -> None:
    seen = run_driver("openai_agents.mjs", client_environment(local_gateway))
    assert seen["plain"] == "Hello, agents"
    # The Responses API, stored as on OpenAI: the gateway gives the response back by its id.
    client = openai.OpenAI(base_url=local_gateway.base_url, api_key=local_gateway.key, max_retries=0)
    assert client.responses.retrieve(seen["plainResponseId"]).output_text == "Hello, agents"
    # The tool ran with echo's arguments and its result went back to the model, which answered with it.
    assert seen["toolCalls"] == ["word"] and seen["toolModelCalls"] == 2
    assert seen["toolOutput"] == "a unit of language"
    # The second turn by previous response id read the first: its input, its answer, then the new input.
    assert seen["first"] == "one two three" and seen["second"] == "four five"
    assert seen["secondInputTokens"] == 3 + 3 + 2
    items = client.responses.input_items.list(seen["secondResponseId"], order="asc").data
    assert [item.content[0].text for item in items] == ["one two three", "one two three", "four five"]  # type: ignore[union-attr]
    assert seen["deltas"] == ["streamed", " words", " here"] and seen["streamed"] == "streamed words here"
    assert seen["structured"] == {"word": "hi"}
