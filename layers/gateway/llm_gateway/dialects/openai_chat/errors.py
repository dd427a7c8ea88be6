"""OpenAI's error shape (https://platform.openai.com/docs/guides/error-codes), which every OpenAI route answers in."""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import GatewayError


def error_body(error: GatewayError) -> dict[str, Any]:
    """The OpenAI error object: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}}
