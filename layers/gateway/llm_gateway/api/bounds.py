"""Bounds on what reading a request body may cost the function: JSON containers before parsing, messages after.

API Gateway passes bodies of up to 10 MB and the function takes 5 MB (`max_request_bytes`), but the memory a body
costs once parsed depends on its shape, not its size: every JSON array or object becomes a Python object (and a
pydantic model, and a conversation block), scalars cost little more than their text. Measured with
`bench/memory.py` (docs/benchmarks.md): a 4.9 MB field of nested empty lists took the API function from 46 to
573 MiB, 168,000 empty messages to 361 MiB, both past the function's 256 MB (`ApiMemorySize`). The container
count is read from the body's bytes before anything is parsed, in C-speed passes (bytes methods and a regular
expression that drops strings); the message count from the parsed request, whose size the container bound
has already limited.
"""

from __future__ import annotations

import re
from typing import Any

from llm_gateway.errors import InvalidRequestError, PayloadTooLargeError

# A JSON string once its escapes are gone: quote to quote (RFC 8259, section 7).
_JSON_STRING = re.compile(rb'"[^"]*"')
# Every byte but quotes, brackets and braces: what the count does not need to see.
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')


def json_containers(body: bytes) -> int:
    """How many arrays and objects the JSON text `body` holds: its `[` and `{` outside strings. Linear in the body's
    length, in passes of the bytes methods and one regular expression over what is left of its strings (a few
    milliseconds a megabyte, below pydantic's own parse of the same body); for text that is not JSON, a count the
    parser's error will make irrelevant."""
    if b'"' in body:
        if b"\\" in body:
            # Escapes pair from the left (an escaped backslash before a closing quote included), so removing the
            # escaped backslashes, then the escaped quotes, leaves only the quotes that delimit strings.
            body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Then only quotes and brackets are kept; empty strings go (as a pair of adjacent strings would, which
        # merges them: their brackets stay inside one), and each string left goes with the brackets in it.
        body = _JSON_STRING.sub(b"", body.translate(None, _NOT_STRUCTURE).replace(b'""', b""))
    return body.count(b"[") + body.count(b"{")


def check_containers(body: bytes, limit: int) -> None:
    """Raises PayloadTooLargeError (413, code `too_many_json_containers`) when `body` holds more than `limit`
    arrays and objects together."""
    found = json_containers(body)
    if found > limit:
        raise PayloadTooLargeError(
            f"The request body holds {found} JSON arrays and objects, more than the gateway's limit of {limit} "
            "(GATEWAY_MAX_JSON_CONTAINERS): each costs the function memory once parsed.",
            code="too_many_json_containers",
        )


def check_messages(request: Any, limit: int) -> None:
    """Raises InvalidRequestError (400, code `too_many_messages`, param `messages`) when a parsed chat request
    holds more than `limit` messages; requests without a list of messages pass."""
    messages = getattr(request, "messages", None)
    if isinstance(messages, list) and len(messages) > limit:
        raise InvalidRequestError(
            f"The request holds {len(messages)} messages, more than the gateway's limit of {limit} "
            "(GATEWAY_MAX_MESSAGES); shorten the conversation.",
            code="too_many_messages",
            param="messages",
        )
