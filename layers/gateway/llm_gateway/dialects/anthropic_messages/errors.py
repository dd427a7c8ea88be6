"""Anthropic's error shape (https://docs.anthropic.com/en/api/errors)."""

from __future__ import annotations

from typing import Any

from llm_gateway.errors import GatewayError

# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors); the SDKs pick their
# exception class by status, Claude Code reads the type.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# Gateway error codes that are Anthropic's own `error.details.error_code` too: the SDKs branch on them (the thread
# helper sends the whole conversation again on `thread_not_found`).
DETAIL_CODES = frozenset({"thread_not_found", "thread_already_continued"})


def error_body(error: GatewayError, request_id: str = "") -> dict[str, Any]:
    """{"type": "error", "error": {"type", "message"}, "request_id"}; the gateway's own error code is kept as
    `code` (and the parameter at fault as `param`) for callers that read them."""
    detail: dict[str, Any] = {"type": ERROR_TYPES.get(error.status, "api_error"), "message": error.message}
    if error.code:
        detail["code"] = error.code
    if error.param:
        detail["param"] = error.param
    if error.code in DETAIL_CODES:
        detail["details"] = {"error_code": error.code}
    body: dict[str, Any] = {"type": "error", "error": detail}
    if request_id:
        body["request_id"] = request_id
    return body
