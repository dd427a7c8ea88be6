"""Anthropic Messages bodies on Bedrock as the tests write them: the request the Anthropic surface makes, the body
InvokeModel gets, the message it answers."""

from __future__ import annotations

import io
import json
from typing import Any

from botocore.response import StreamingBody

from llm_gateway.config import shipped_registry_text
from llm_gateway.domain.conversation import ChatRequest, Message, Native, TextBlock
from llm_gateway.domain.registry import BedrockTraits, ModelRegistry, ModelTraits, Target
from llm_gateway.providers.bedrock.anthropic import ANTHROPIC_VERSION
from tests.fakes.bedrock_transport import JsonBody

SONNET_PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TARGET = Target(provider="bedrock", model_id=SONNET_PROFILE)
SHIPPED = ModelRegistry.model_validate_json(shipped_registry_text())
# The shipped traits: an Anthropic model without adaptive thinking and without output_config.
SONNET = SHIPPED.get("claude-sonnet-4-5").traits
NOVA = SHIPPED.get("nova-lite").traits
# A model of Claude 4.6's kind: adaptive thinking and output_config without a beta.
ADAPTIVE = ModelTraits(bedrock=BedrockTraits(anthropic_messages=True, adaptive_thinking=True, output_config=True))

USER_HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
JSON = "application/json"


_FROM_BODY: Any = object()


def anthropic_request(
    body: dict[str, Any],
    *,
    betas: tuple[str, ...] = (),
    max_output_tokens: Any = _FROM_BODY,
    temperature: Any = _FROM_BODY,
    top_p: Any = _FROM_BODY,
    top_k: Any = _FROM_BODY,
) -> ChatRequest:
    """The request the Anthropic surface makes of `body`: the fitted values default to the body's own. Its
    messages are a stand-in: the native path reads the body, never the parsed blocks."""

    def fitted(name: str, value: Any) -> Any:
        return body.get(name) if value is _FROM_BODY else value

    return ChatRequest(
        model="claude-sonnet-4-5",
        messages=(Message("user", (TextBlock("hi"),)),),
        max_output_tokens=fitted("max_tokens", max_output_tokens),
        temperature=fitted("temperature", temperature),
        top_p=fitted("top_p", top_p),
        top_k=fitted("top_k", top_k),
        stream=bool(body.get("stream")),
        native=Native("anthropic", body),
        betas=betas,
    )


def messages_body(messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages or USER_HI, **fields}


def bedrock_body(messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """What Bedrock gets for messages_body(messages, **fields) when no rule changes anything else."""
    return {"max_tokens": 1024, "messages": messages or USER_HI, **fields, "anthropic_version": ANTHROPIC_VERSION}


def expected_invoke(body: dict[str, Any], model_id: str = SONNET_PROFILE) -> dict[str, Any]:
    return {"modelId": model_id, "body": JsonBody(body), "contentType": JSON, "accept": JSON}


def anthropic_message(
    *content: dict[str, Any],
    stop_reason: str | None = "end_turn",
    stop_sequence: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage or {"input_tokens": 12, "output_tokens": 3},
    }


def invoke_response(payload: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": JSON}


def text(value: str, **fields: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **fields}


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
