"""Headers on every answer of the API function, whatever the route and whatever the outcome: OpenAI's rate-limit
headers (domain/ratelimit.py) and, when the deployment allows a browser origin, CORS's response headers.

CORS (https://fetch.spec.whatwg.org/#http-cors-protocol): API Gateway answers the preflight itself (the template's
`Cors`, a mock integration without the authorizer) and puts the same headers on its own error responses; the answers
of the function carry `Access-Control-Allow-Origin` (the one allowed origin, or `*`) and `Access-Control-Expose-Headers`
(the headers a browser app may read besides the CORS-safelisted ones: rate limits, Retry-After, request ids).
API Gateway's own error answers carry x-request-id too (the template's gateway responses map it from the request id).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from llm_gateway.api.http import caller_of
from llm_gateway.config import Settings, get_settings
from llm_gateway.domain.budget import Limits
from llm_gateway.domain.budget_tree import SCOPES, remaining_headers
from llm_gateway.domain.caller import Caller
from llm_gateway.domain.ratelimit import HEADERS as RATE_LIMIT_HEADERS
from llm_gateway.domain.ratelimit import rate_limit_headers
from llm_gateway.errors import GatewayError
from llm_gateway.observability import RequestRecord, logger

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
# What a browser app may read of an answer: the rate limits, when to retry, the gateway's and API Gateway's request
# ids and the target that answered (the OpenAI and Anthropic SDKs read retry-after, x-should-retry, request ids).
EXPOSED = (
    *RATE_LIMIT_HEADERS,
    "retry-after",
    "x-should-retry",
    "x-amzn-requestid",
    "x-request-id",
    "x-gateway-target",
    *(f"x-budget-remaining-tokens-{scope}" for scope in SCOPES),
)
_EXPOSED_VALUE = ", ".join(EXPOSED)
# The request id the openai SDKs read (`response._request_id`): API Gateway's own, which it sends as x-amzn-RequestId.
REQUEST_ID = "x-request-id"


def answer_headers(
    authorizer: Mapping[str, Any] | None,
    record: RequestRecord,
    settings: Settings,
    now: datetime | None = None,
    *,
    request_id: str = "",
    caller: Caller | None = None,
) -> dict[str, str]:
    """The request id (`x-request-id`, the value API Gateway sends as x-amzn-RequestId), the rate-limit headers of
    the calling key (none without an authorizer context; `caller`, when the route has read it already, is the
    authorizer context's) and the CORS headers."""
    headers: dict[str, str] = {REQUEST_ID: request_id} if request_id else {}
    if authorizer:
        if caller is None:
            with contextlib.suppress(GatewayError):
                caller = caller_of(authorizer)
        if caller is not None:
            plan = settings.plan_limits.get(caller.plan)
            limits = Limits.of(caller.limits, plan.limits() if plan else None)
            headers.update(rate_limit_headers(limits, record.window_totals, now or datetime.now(UTC)))
    headers.update(remaining_headers(record.budget_remaining))
    if settings.cors_allow_origin:
        headers[ALLOW_ORIGIN] = settings.cors_allow_origin
        headers[EXPOSE_HEADERS] = _EXPOSED_VALUE
    return headers


def with_answer_headers(
    message: MutableMapping[str, Any], authorizer: Any, caller: Caller | None, record: RequestRecord, request_id: str
) -> list[tuple[bytes, bytes]]:
    """The headers of a response's start `message` and those every answer carries (`answer_headers`), unless the
    response set them."""
    headers = list(message.get("headers", []))
    present = {name.lower() for name, _ in headers}
    try:
        authorizer = authorizer if isinstance(authorizer, dict) else None
        extra = answer_headers(authorizer, record, get_settings(), request_id=request_id, caller=caller)
    except Exception:
        # Headers are a courtesy; an answer goes out without them rather than not at all.
        logger.exception("answer headers failed")
        return headers
    for name, value in extra.items():
        if name.lower().encode("latin-1") not in present:
            headers.append((name.encode("latin-1"), value.encode("latin-1")))
    return headers
