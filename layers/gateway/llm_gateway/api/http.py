"""Glue between the Powertools REST resolver and the gateway: callers, replies and the error handlers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from llm_gateway.config import get_settings
from llm_gateway.domain.caller import ALL_MODELS, Caller, parse_allowed_models
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from llm_gateway.observability import logger

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Reply:
    """What a route answers, independent of the web framework."""

    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200

    def to_response(self) -> Response[str]:
        headers = dict(self.headers)
        if self.content_type == EVENT_STREAM:
            headers["Cache-Control"] = "no-cache"
        return Response(status_code=self.status, content_type=self.content_type, body=self.body, headers=headers)


def error_response(exc: GatewayError) -> Response[str]:
    return Response(
        status_code=exc.status,
        content_type=JSON,
        body=json.dumps(exc.body(), separators=(",", ":")),
        headers=exc.headers,
    )


# A \uD800-\uDFFF escape: JSON allows it, but alone it is no character and cannot be re-encoded as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json_body(body: str) -> Any:
    """Body deserializer for the resolver: size limit first, then JSON that later stages can handle.

    Syntax errors are left to Powertools (a 400 naming the position); nesting too deep for the parser
    and unpaired surrogate escapes, which would fail later with a 500, are refused here as 400s.
    """
    limit = get_settings().max_request_bytes
    if len(body) > limit or len(body.encode("utf-8")) > limit:
        raise PayloadTooLargeError(f"Request body exceeds the gateway's limit of {limit} bytes.")
    try:
        parsed = json.loads(body)
    except RecursionError:
        raise InvalidRequestError(
            "The request body is nested too deeply to be JSON the API takes.", code="invalid_json"
        ) from None
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                "The request body contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff); send valid "
                "Unicode text.",
                code="invalid_json",
            ) from None
    return parsed


@dataclass(frozen=True)
class ApiRequest:
    """What the gateway needs to know about an API request besides its body."""

    request_id: str
    caller: Caller
    # Time left before the Lambda function itself times out.
    seconds_left: float


def api_request(app: APIGatewayRestResolver) -> ApiRequest:
    event = app.current_event
    context = app.lambda_context
    seconds_left = context.get_remaining_time_in_millis() / 1000 if context is not None else 30.0
    return ApiRequest(event.request_context.request_id, caller_of(event), seconds_left)


def _number(value: Any) -> int | None:
    # REST APIs hand authorizer context values to the integration as strings.
    return None if value in (None, "") else int(str(value))


def caller_of(event: APIGatewayProxyEvent) -> Caller:
    """The caller the authorizer identified (its context). Without one the request never passed the
    authorizer (a misconfigured deployment or a direct invocation): refuse it rather than serve it."""
    context = event.request_context
    authorizer = context.authorizer.raw_event if context.authorizer else {}
    if authorizer.get("keyId"):
        usd = authorizer.get("usdPerMonth")
        return Caller(
            tenant=str(authorizer.get("tenant", "")),
            key_id=str(authorizer["keyId"]),
            plan=str(authorizer.get("plan", "")),
            allowed_models=parse_allowed_models(str(authorizer.get("models", ALL_MODELS))),
            limits=TokenLimits(
                tokens_per_minute=_number(authorizer.get("tokensPerMinute")),
                tokens_per_day=_number(authorizer.get("tokensPerDay")),
                usd_per_month=None if usd in (None, "") else Decimal(str(usd)),
            ),
        )
    raise AuthenticationError("The request carries no authorizer context: it did not pass the key check.")


# Keys under which pydantic puts a discriminated union's tag in error locations: ("messages", 0, "user").
_TAGGED_LISTS = {"messages", "content"}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    """A field path as callers write it (messages[0].content), without pydantic's union bookkeeping."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path, previous, parent = "", None, None
    for part in parts:
        skip_tag = isinstance(previous, int) and parent in _TAGGED_LISTS and isinstance(part, str)
        union_member = isinstance(part, str) and (part in {"str", "int", "float", "bool"} or "[" in part)
        if isinstance(part, int):
            path += f"[{part}]"
        elif not skip_tag and not union_member:
            path += f".{part}" if path else str(part)
        if isinstance(part, str) and not skip_tag and not union_member:
            parent = part
        previous = part
    return path


def validation_error(errors: list[dict[str, Any]]) -> InvalidRequestError:
    """A 400 naming every field that failed validation."""
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = error.get("ctx", {}).get("error", "")
            return InvalidRequestError(f"The request body is not valid JSON: {detail}.", code="invalid_json")
    if len(errors) == 1 and errors[0].get("type") == "missing" and not _location(errors[0].get("loc", ())):
        return InvalidRequestError("The request body is required and must be a JSON object.")
    problems: dict[str, list[str]] = {}
    for error in errors:
        messages = problems.setdefault(_location(error.get("loc", ())), [])
        message = str(error.get("msg")).removeprefix("Value error, ")
        if message not in messages:
            messages.append(message)
    described = [f"{where}: {' or '.join(msgs)}" if where else " or ".join(msgs) for where, msgs in problems.items()]
    first = next(iter(problems))
    return InvalidRequestError("Invalid request: " + "; ".join(described), param=first or None)


def accept_curl_form_as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Read bodies labelled as forms as JSON.

    Every body this API takes is JSON, and `curl -d` labels JSON as application/x-www-form-urlencoded
    unless told otherwise; reading it as a form would turn a correct request into a confusing error.
    """
    headers = event.get("headers") or {}
    for name, value in list(headers.items()):
        if name.lower() == "content-type" and str(value).startswith("application/x-www-form-urlencoded"):
            headers[name] = JSON
    return event


def install_error_handlers(app: APIGatewayRestResolver) -> None:
    """Render every failure as an OpenAI-shaped error; client mistakes are never a 500."""

    def gateway_error(exc: GatewayError) -> Response[str]:
        if exc.status >= 500:
            logger.error("Request failed", extra={"error_code": exc.code, "status": exc.status})
        return error_response(exc)

    def invalid(exc: RequestValidationError) -> Response[str]:
        return error_response(validation_error(list(exc.errors())))

    def unsupported(exc: RequestUnsupportedContentType) -> Response[str]:
        return error_response(
            UnsupportedMediaTypeError("Send the request body as JSON with Content-Type: application/json.")
        )

    def not_utf8(exc: UnicodeDecodeError) -> Response[str]:
        return error_response(InvalidRequestError("The request body must be UTF-8 encoded JSON.", code="invalid_json"))

    def not_found(exc: Exception) -> Response[str]:
        event = app.current_event
        return error_response(NotFoundError(f"No route for {event.http_method} {event.path}."))

    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("Unhandled error")
        return error_response(GatewayError("The gateway failed to process this request; retry later."))

    app.exception_handler(GatewayError)(gateway_error)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(RequestUnsupportedContentType)(unsupported)
    app.exception_handler(UnicodeDecodeError)(not_utf8)
    app.not_found(not_found)
    app.exception_handler(Exception)(unexpected)
