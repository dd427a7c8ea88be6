"""The HTTP tests of the Open Responses compliance suite (openresponses/openresponses, `bin/compliance-test.ts`),
replayed against `make run`'s gateway on the echo model: the same requests over plain HTTP with a Bearer key, and
the same checks (a 200, the response object with every field Open Responses requires, an output, status
`completed`, the stream's events, function-call events), plus the published OpenAI spec's schemas for the final
response and every stream event. Its phases and compaction cases are here too.

The suite itself is TypeScript run by Bun from its Git repository, which no package registry ships; its cases are
small and fixed, so they are replayed here rather than installed (docs/clients.md)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tests.contract.test_openapi_conformance import violations
from tests.e2e.conftest import LocalGateway

pytestmark = pytest.mark.e2e

# Every field Open Responses' ResponseResource requires (null allowed where it says so).
REQUIRED = [
    "id",
    "object",
    "created_at",
    "completed_at",
    "status",
    "incomplete_details",
    "model",
    "previous_response_id",
    "instructions",
    "output",
    "error",
    "tools",
    "tool_choice",
    "truncation",
    "parallel_tool_calls",
    "text",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "top_logprobs",
    "temperature",
    "reasoning",
    "user",
    "usage",
    "max_output_tokens",
    "max_tool_calls",
    "store",
    "background",
    "service_tier",
    "metadata",
    "safety_identifier",
    "prompt_cache_key",
]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}},
        "required": ["location"],
    },
}


def png(width: int = 32, height: int = 32) -> bytes:
    """A red PNG image of the given size, as the suite's image case sends one."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PDF = (
    b"%PDF-1.1\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF"
)
IMAGE_URL = "data:image/png;base64," + base64.b64encode(png()).decode("ascii")
FILE_DATA = "data:application/pdf;base64," + base64.b64encode(PDF).decode("ascii")


def message(role: str, content: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


def post(gateway: LocalGateway, body: dict[str, Any], path: str = "/responses") -> httpx2.Response:
    return httpx2.post(
        gateway.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=60,
    )


def sse_events(text: str) -> Iterator[dict[str, Any]]:
    for block in text.split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            event: dict[str, Any] = json.loads("\n".join(data))
            yield event


def checked(response: dict[str, Any]) -> dict[str, Any]:
    """The response object, with the suite's schema checks and OpenAI's."""
    assert [name for name in REQUIRED if name not in response] == [], response
    assert violations(response, "Response") == []
    return response


def create(gateway: LocalGateway, body: dict[str, Any]) -> dict[str, Any]:
    answer = post(gateway, {**body, "stream": False})
    assert answer.status_code == 200, answer.text
    return checked(answer.json())


def stream(gateway: LocalGateway, body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    answer = post(gateway, {**body, "stream": True})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = list(sse_events(answer.text))
    assert events and [event["sequence_number"] for event in events] == list(range(len(events)))
    for event in events:
        assert violations(event, "ResponseStreamEvent") == [], event["type"]
        if "response" in event:
            assert [name for name in REQUIRED if name not in event["response"]] == [], event["type"]
    assert events[-1]["type"] == "response.completed"
    return events, checked(events[-1]["response"])


def completed_with_output(response: dict[str, Any]) -> None:
    assert response["output"] and response["status"] == "completed"


def test_basic_response(local_gateway: LocalGateway) -> None:
    completed_with_output(create(local_gateway, {"model": "echo", "input": [message("user", "Say hello.")]}))


def test_streaming_response(local_gateway: LocalGateway) -> None:
    events, final = stream(local_gateway, {"model": "echo", "input": [message("user", "Count from 1 to 5.")]})
    completed_with_output(final)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Count from 1 to 5."


def test_system_prompt(local_gateway: LocalGateway) -> None:
    body = {"model": "echo", "input": [message("system", "You are a pirate."), message("user", "Say hello.")]}
    completed_with_output(create(local_gateway, body))


def test_tool_calling(local_gateway: LocalGateway) -> None:
    body = {"model": "echo", "input": [message("user", "Weather in San Francisco?")], "tools": [WEATHER]}
    body["tool_choice"] = "required"  # echo calls a tool only when told to
    response = create(local_gateway, body)
    assert any(item["type"] == "function_call" for item in response["output"])


def test_tool_calling_streaming(local_gateway: LocalGateway) -> None:
    body = {"model": "echo", "input": [message("user", "Weather?")], "tools": [WEATHER], "tool_choice": "required"}
    events, _ = stream(local_gateway, body)
    kinds = [event["type"] for event in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    for kind in ("response.output_item.added", "response.output_item.done"):
        assert any(e["type"] == kind and e["item"]["type"] == "function_call" for e in events)


def test_function_call_round_trip(local_gateway: LocalGateway) -> None:
    first = create(
        local_gateway,
        {
            "model": "echo",
            "input": "Use the weather tool for San Francisco.",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
    )
    [call] = [item for item in first["output"] if item["type"] == "function_call"]
    second = create(
        local_gateway,
        {
            "model": "echo",
            "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "64 degrees and clear"}],
            "tools": [WEATHER],
        },
    )
    completed_with_output(second)


def test_image_input(local_gateway: LocalGateway) -> None:
    content = [{"type": "input_text", "text": "What do you see?"}, {"type": "input_image", "image_url": IMAGE_URL}]
    completed_with_output(create(local_gateway, {"model": "echo", "input": [message("user", content)]}))


def test_file_input(local_gateway: LocalGateway) -> None:
    content = [
        {"type": "input_text", "text": "Answer with the file's title only."},
        {"type": "input_file", "filename": "fixture.pdf", "file_data": FILE_DATA},
    ]
    completed_with_output(create(local_gateway, {"model": "echo", "input": [message("user", content)]}))


def test_multi_turn(local_gateway: LocalGateway) -> None:
    history = [
        message("user", "My name is Alice."),
        message("assistant", "Hello Alice! How can I help you today?"),
        message("user", "What is my name?"),
    ]
    completed_with_output(create(local_gateway, {"model": "echo", "input": history}))


def test_previous_response_id(local_gateway: LocalGateway) -> None:
    first = create(local_gateway, {"model": "echo", "input": "Remember the code word papaya."})
    second = create(local_gateway, {"model": "echo", "previous_response_id": first["id"], "input": "Which word?"})
    completed_with_output(second)
    assert second["previous_response_id"] == first["id"]
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]


def test_phases_of_assistant_messages_are_taken_back(local_gateway: LocalGateway) -> None:
    """Assistant messages resent with their `phase` (commentary, final_answer), as Codex and the spec ask clients
    to do."""
    history = [
        message("user", "Plan, then answer."),
        {**message("assistant", [{"type": "output_text", "text": "Looking."}]), "phase": "commentary"},
        {**message("assistant", [{"type": "output_text", "text": "Done."}]), "phase": "final_answer"},
        message("user", "Thanks."),
    ]
    completed_with_output(create(local_gateway, {"model": "echo", "input": history}))
    _, final = stream(local_gateway, {"model": "echo", "input": history})
    completed_with_output(final)


def test_compaction(local_gateway: LocalGateway) -> None:
    history = [
        message("user", "Fix the build."),
        message("assistant", [{"type": "output_text", "text": "The import moved."}]),
        message("user", "Update it."),
    ]
    answer = post(local_gateway, {"model": "echo", "input": history}, "/responses/compact")
    assert answer.status_code == 200, answer.text
    compacted = answer.json()
    assert violations(compacted, "CompactResource") == []
    assert [item["type"] for item in compacted["output"]] == ["message", "message", "compaction"]
    following = [*compacted["output"], message("user", "Go on.")]
    after = create(local_gateway, {"model": "echo", "input": following})
    completed_with_output(after)
    assert after["output"][0]["content"][0]["text"] == "Go on."


def test_the_openai_sdk_compacts_and_continues(local_gateway: LocalGateway) -> None:
    """`client.responses.compact` as the official SDK calls it, with a stored response's history, then the compacted
    items sent back as the next turn's input."""
    client = openai.OpenAI(base_url=local_gateway.base_url, api_key=local_gateway.key, max_retries=0)
    first = client.responses.create(model="echo", input="Fix the build.")
    compacted = client.responses.compact(model="echo", input="Update the import.", previous_response_id=first.id)
    assert compacted.object == "response.compaction" and compacted.usage.input_tokens > 0
    assert [item.type for item in compacted.output] == ["message", "message", "compaction"]
    items: list[Any] = [item.model_dump(exclude_none=True) for item in compacted.output]
    after = client.responses.create(model="echo", input=[*items, {"role": "user", "content": "Go on."}], store=False)
    assert after.output_text == "Go on."


def test_a_websocket_handshake_is_refused_in_json(local_gateway: LocalGateway) -> None:
    # The suite's WebSocket tests open wss://…/v1/responses; a REST API upgrades no connection, so the handshake
    # is the GET it also is, answered with the API's JSON error rather than a server's text/plain one.
    answer = httpx2.get(
        local_gateway.base_url + "/responses",
        headers={
            "Authorization": f"Bearer {local_gateway.key}",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(b"sixteen byte key").decode(),
        },
        timeout=60,
    )
    assert (answer.status_code, answer.headers["content-type"]) == (404, "application/json")
    assert answer.json()["error"]["code"] == "not_found"
