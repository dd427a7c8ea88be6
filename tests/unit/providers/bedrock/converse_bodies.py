"""Converse requests and answers as the Bedrock tests write them: OpenAI chat bodies in, Converse's shapes out."""

from __future__ import annotations

import base64
from typing import Any

from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.registry import Target
from llm_gateway.providers.bedrock.converse import EMPTY_OBJECT_SCHEMA
from tests.fakes.requests import openai_chat

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
TARGET = Target(provider="bedrock", model_id=MODEL_ID)
USER_HI = [{"role": "user", "content": "hi"}]
PIXEL = b"\x89PNG\r\n\x1a\n fake image bytes"
PIXEL_B64 = base64.b64encode(PIXEL).decode()


def chat(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "claude", **fields})


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}}


def tool_result(call_id: str, *texts: str) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": call_id, "content": [text(value) for value in texts]}}


def openai_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_tool(name: str, **function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **function}}


def converse_response(
    *blocks: dict[str, Any], stop_reason: str = "end_turn", usage: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks)}},
        "stopReason": stop_reason,
        "usage": usage or {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 250},
    }


def expected_request(messages: list[dict[str, Any]], model_id: str = MODEL_ID, **rest: Any) -> dict[str, Any]:
    return {"modelId": model_id, "messages": messages, **rest}


WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = function_tool("get_weather", description="Current weather", parameters=WEATHER_SCHEMA)
WEATHER_SPEC = {
    "toolSpec": {"name": "get_weather", "description": "Current weather", "inputSchema": {"json": WEATHER_SCHEMA}}
}
TIME_TOOL = function_tool("get_time")
TIME_SPEC = {"toolSpec": {"name": "get_time", "inputSchema": {"json": EMPTY_OBJECT_SCHEMA}}}

# The history of a finished tool round: two calls, their two results and a follow-up question.
TOOL_ROUND_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            openai_call("call_1", "get_weather", '{"city": "Paris"}'),
            openai_call("call_2", "get_weather", '{"city": "Rome"}'),
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C, clear"}]},
    {"role": "user", "content": "And which is warmer?"},
]
TOOL_ROUND_TURNS = [
    user(text("Weather in Paris and Rome?")),
    assistant(
        text("Checking both."),
        tool_use("call_1", "get_weather", {"city": "Paris"}),
        tool_use("call_2", "get_weather", {"city": "Rome"}),
    ),
    user(tool_result("call_1", "18C, sunny"), tool_result("call_2", "24C, clear"), text("And which is warmer?")),
]


def image_message(url: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Describe images."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}],
        },
    ]
