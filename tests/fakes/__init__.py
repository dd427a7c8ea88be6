"""Test doubles of external services, shared by unit, routing and end-to-end tests."""

from tests.fakes.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    ScriptedResponse,
    chat_completion_json,
    delta_chunk,
    error_json,
    openai_server,
    tool_call_json,
    usage_chunk,
    usage_json,
)

__all__ = [
    "FakeOpenAIServer",
    "RecordedRequest",
    "ScriptedResponse",
    "chat_completion_json",
    "delta_chunk",
    "error_json",
    "openai_server",
    "tool_call_json",
    "usage_chunk",
    "usage_json",
]
