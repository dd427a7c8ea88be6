"""Glue between HTTP and the gateway: who calls (API Gateway's request context), request bodies, replies."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from llm_gateway.api.bounds import check_messages, check_shape
from llm_gateway.config import get_settings
from llm_gateway.domain.caller import ALL_MODELS, ApiRequest, Caller, parse_allowed_models
from llm_gateway.domain.keys import TokenLimits
from llm_gateway.errors import (
    AuthenticationError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from llm_gateway.observability import Invocation

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
# Set by AWS Lambda Web Adapter on every request it forwards, replacing any header of the same name the
# client sent (HeaderMap::insert in its fetch_response, awslabs/aws-lambda-web-adapter src/lib.rs): the
# API Gateway request context, with the authorizer's context, and the Lambda invocation context.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"
# Request headers that a surface reads (Anthropic's API version and beta features).
# ... and x-claude-code-session-id and x-gateway-tags, which attribute usage to a Claude Code session and to the
# caller's tags (domain/attribution.py).
SURFACE_HEADERS = frozenset({"anthropic-version", "anthropic-beta", "x-claude-code-session-id", "x-gateway-tags"})
# Time assumed left when no invocation context says otherwise (the function's longest timeout).
DEFAULT_SECONDS_LEFT = 900.0
# `curl -d` labels JSON as a form unless told otherwise; every body this API takes is JSON.
_JSON_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """What a use case answers, independent of the web framework: a JSON document, or (content type
    text/event-stream) an iterator of SSE frames produced as the model generates them."""

    body: str | Iterator[str]
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    # Work that must be done before the response ends, but that the caller need not wait for: it runs once
    # the whole body is written (a JSON answer carries its length, so clients have it all by then).
    finish: Callable[[], None] | None = None


def utf8(text: str) -> bytes:
    """`text` as UTF-8, any lone surrogate replaced by U+FFFD: a provider's JSON may carry one (`"\\ud83d"` is valid
    JSON) and no UTF-8 encoder takes it, so the answer is repaired rather than lost."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def _json_header(headers: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = headers.get(name)
    return _json_object(raw) if raw else {}


# The request and Lambda contexts are read twice a request (the request's record, then its caller); parsed once.
# Every request's contexts differ, so old entries are dead weight: 256 keeps a few hundred KB at most, and where more
# requests than that are in flight at once (a managed environment's 512) a miss only parses the header again.
@lru_cache(maxsize=256)
def _json_object(raw: str) -> dict[str, Any]:
    """The JSON object in a header's value ({} for anything else); shared between readers, never to be changed."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def request_context(headers: Mapping[str, str]) -> dict[str, Any]:
    """API Gateway's request context (REST API proxy format) as the adapter forwards it; {} without one."""
    return _json_header(headers, REQUEST_CONTEXT_HEADER)


def invocation_of(headers: Mapping[str, str]) -> Invocation | None:
    raw = headers.get(LAMBDA_CONTEXT_HEADER)
    return _invocation(raw) if raw else None


@lru_cache(maxsize=256)
def _invocation(raw: str) -> Invocation | None:
    """The invocation a Lambda context header describes, read once (it is immutable, so readers share it)."""
    value = _json_object(raw)
    return Invocation.from_header(value) if value else None


def api_request(headers: Mapping[str, str], clock: Callable[[], float] = time.time) -> ApiRequest:
    """The request id, caller and time left of a request forwarded by the adapter (header names lower-case).

    Raises AuthenticationError when API Gateway's authorizer context is missing: such a request never
    passed the key check.
    """
    context = request_context(headers)
    invocation = invocation_of(headers)
    seconds_left = DEFAULT_SECONDS_LEFT
    if invocation is not None and invocation.deadline_ms:
        seconds_left = invocation.deadline_ms / 1000 - clock()
    authorizer = context.get("authorizer")
    return ApiRequest(
        str(context.get("requestId") or ""),
        caller_of(authorizer if isinstance(authorizer, dict) else {}),
        seconds_left,
        tuple((name, value) for name, value in headers.items() if name in SURFACE_HEADERS),
    )


def _number(value: Any) -> int | None:
    # REST APIs hand authorizer context values to the integration as strings.
    return None if value in (None, "") else int(str(value))


def caller_of(authorizer: Mapping[str, Any]) -> Caller:
    """The caller the authorizer identified (its context). Without one the request never passed the
    authorizer (a misconfigured deployment or a direct invocation): refuse it rather than serve it."""
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
            team=str(authorizer["team"]) if authorizer.get("team") else None,
        )
    raise AuthenticationError("The request carries no authorizer context: it did not pass the key check.")


def parse_body(body: bytes, content_type: str | None, model: type[M]) -> tuple[M, str]:
    """The request body validated into `model` with Powertools' parser utility, and its JSON text.

    Raises PayloadTooLargeError (413) beyond the gateway's limits of bytes and of JSON containers, members and values,
    InvalidRequestError (400) beyond its limit of messages (both in `api/bounds.py`), UnsupportedMediaTypeError
    (415) for bodies not labelled as JSON, and InvalidRequestError (400) for anything that is not valid UTF-8 JSON
    of the model's shape (numbers too large to parse, nesting too deep and unpaired surrogates included), whichever
    decoder finds the fault: pydantic's (a ValidationError of type json_invalid) or the standard library's,
    which Powertools falls back to when pydantic cannot validate a model from JSON text directly
    (`_parse_and_validate_event`, powertools-lambda-python#5303) and which raises plain ValueErrors (a
    malformed document, an integer literal longer than the interpreter's int/str conversion limit: 4,300
    digits by default, fewer under PYTHONINTMAXSTRDIGITS) or a RecursionError (nesting beyond the
    interpreter's recursion limit).
    """
    from aws_lambda_powertools.utilities.parser import parse

    limit = get_settings().max_request_bytes
    if len(body) > limit:
        raise PayloadTooLargeError(f"Request body exceeds the gateway's limit of {limit} bytes.")
    label = (content_type or "").split(";")[0].strip().lower()
    if label and label not in _JSON_CONTENT_TYPES:
        raise UnsupportedMediaTypeError("Send the request body as JSON with Content-Type: application/json.")
    check_shape(body, get_settings())
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body must be UTF-8 encoded JSON.", code="invalid_json") from None
    try:
        # parse() validates a JSON string as such (pydantic's validate_json), though its overloads name dicts.
        parsed: M = parse(event=cast("dict[str, Any]", text or "null"), model=model)
    except ValidationError as error:
        raise validation_error(list(error.errors())) from None
    except (ValueError, RecursionError):
        raise InvalidRequestError(
            "The request body is not valid JSON: it is malformed, a number has too many digits, "
            "or the nesting is too deep.",
            code="invalid_json",
        ) from None
    check_messages(parsed, get_settings().max_messages)
    return parsed, text


# Keys under which pydantic puts a discriminated union's tag in error locations: ("messages", 0, "user"), and
# the tags themselves (OpenAI's message roles; OpenAI's and Anthropic's content kinds and sources).
_TAGGED_LISTS = {"messages", "content"}
_UNION_TAGS = frozenset(
    {
        "system", "developer", "user", "assistant", "tool", "other",
        "text", "image_url", "refusal", "image", "document", "tool_use", "tool_result", "thinking",
        "redacted_thinking", "base64", "url",
    }
)  # fmt: skip
_SCALAR_MEMBERS = {"str", "int", "float", "bool"}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    """A field path as callers write it (messages[0].content), without pydantic's union bookkeeping."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path, previous, parent = "", None, None
    for part in parts:
        skip_tag = isinstance(previous, int) and parent in _TAGGED_LISTS and part in _UNION_TAGS
        union_member = isinstance(part, str) and (part in _SCALAR_MEMBERS or "[" in part)
        if isinstance(part, int):
            path += f"[{part}]"
        elif not skip_tag and not union_member:
            path += f".{part}" if path else str(part)
        if isinstance(part, str) and not skip_tag and not union_member:
            parent = part
        previous = part
    return path


def _other_member_failed(error: Any, errors: list[Any]) -> bool:
    """Whether `error` is a scalar member's failure of a union (content: str | list) whose other member failed
    deeper: the caller sent the list, so only the list's problem is worth naming."""
    loc = tuple(error.get("loc", ()))
    for position, part in enumerate(loc):
        if part in _SCALAR_MEMBERS:
            prefix = loc[:position]
            return any(
                tuple(other.get("loc", ()))[:position] == prefix and len(other.get("loc", ())) > position + 1
                for other in errors
                if other is not error
            )
    return False


def validation_error(errors: list[Any]) -> InvalidRequestError:
    """A 400 naming every field that failed validation."""
    errors = [error for error in errors if not _other_member_failed(error, errors)] or errors
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = error.get("ctx", {}).get("error", "")
            return InvalidRequestError(f"The request body is not valid JSON: {detail}.", code="invalid_json")
    if len(errors) == 1 and errors[0].get("type") == "model_type" and not _location(errors[0].get("loc", ())):
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
