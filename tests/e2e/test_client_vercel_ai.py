"""The Vercel AI SDK's `openai(model)` (`ai` with `@ai-sdk/openai`, the Responses API by default) against `make run`'s
gateway: text, a stream, a tool call and its result over two steps, structured output and a second turn by previous
response id."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import client_environment, needs, run_driver

pytestmark = [pytest.mark.e2e, needs("ai", "@ai-sdk/openai", "zod")]


def test_text_stream_tools_structured_output_and_previous_response_id(local_gateway: LocalGateway) -> None:
    seen = run_driver("vercel_ai.mjs", client_environment(local_gateway))
    assert seen["plain"] == "Hello, gateway"
    assert seen["plainUsage"]["inputTokens"] == 2 and seen["plainUsage"]["outputTokens"] == 2
    client = openai.OpenAI(base_url=local_gateway.base_url, api_key=local_gateway.key, max_retries=0)
    assert client.responses.retrieve(seen["plainResponseId"]).output_text == "Hello, gateway"
    assert seen["deltas"] == ["streamed", " words", " here"]
    # Step one calls the tool, step two answers with its result (echo repeats the last user turn).
    assert seen["toolCalls"] == ["word"] and seen["toolSteps"] == [["lookup"], []]
    assert seen["toolOutput"] == "a unit of language"
    assert seen["structured"] == {"word": "hi"}
    assert seen["second"] == "four five" and seen["secondInputTokens"] == 3 + 3 + 2
    items = client.responses.input_items.list(seen["secondResponseId"], order="asc").data
    assert [item.content[0].text for item in items] == ["one two three", "one two three", "four five"]  # type: ignore[union-attr]
