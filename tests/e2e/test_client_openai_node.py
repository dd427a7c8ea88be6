"""The openai Node SDK's `client.responses` against `make run`'s gateway: create, a stream of typed events (and the
SDK's stream helper), a tool call answered by previous response id, structured output parsed by the SDK, and a
second turn that reads the first."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.node_clients import client_environment, needs, run_driver

pytestmark = [pytest.mark.e2e, needs("openai", "zod")]


def test_responses_create_stream_tools_structured_output_and_previous_response_id(
    local_gateway: LocalGateway,
) -> None:
    seen = run_driver("openai_responses.mjs", client_environment(local_gateway))
    assert seen["plain"] == {"text": "Hello, gateway", "status": "completed", "store": True}
    events = seen["events"]
    assert events[:2] == ["response.created", "response.in_progress"] and events[-1] == "response.completed"
    assert seen["sequence"] == list(range(len(events))), "every event carries its sequence_number, in order"
    assert seen["deltas"] == ["one", " two", " three"]
    assert seen["helped"] == {"text": "four five", "store": False}
    assert seen["call"] == {"type": "function_call", "name": "lookup", "arguments": {"input": "word"}}
    # Echo answers the last user turn: here the tool's output, sent alone after the stored call.
    assert seen["answered"] == "a unit of language"
    assert seen["parsed"] == {"word": "hi"}
    second = seen["second"]
    assert second["text"] == "four five" and second["inputTokens"] == 3 + 3 + 2
    assert seen["secondItems"] == ["one two three", "one two three", "four five"]
