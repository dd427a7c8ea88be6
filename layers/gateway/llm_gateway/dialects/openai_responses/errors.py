"""Errors in the Responses API: OpenAI's error object before a stream begins (openai_chat's shape), and, once it
has, an `error` event followed by `response.failed` carrying the failed response, as OpenAI's streams end."""

from __future__ import annotations

from typing import Any

from llm_gateway.dialects.openai_chat.errors import error_body
from llm_gateway.errors import GatewayError

__all__ = ["error_body", "error_event", "response_error"]


def error_event(error: GatewayError) -> dict[str, Any]:
    """The stream's `error` event (without its sequence number)."""
    return {"type": "error", "code": error.code, "message": error.message, "param": error.param}


def response_error(error: GatewayError) -> dict[str, Any]:
    """A failed response's `error`: OpenAI's code for a rate limit or a server fault, else the gateway's own (such
    as context_length_exceeded, which Codex watches for to compact its history)."""
    if error.status == 429:
        code = "rate_limit_exceeded"
    elif error.status >= 500:
        code = "server_error"
    else:
        code = error.code
    return {"code": code, "message": error.message}
