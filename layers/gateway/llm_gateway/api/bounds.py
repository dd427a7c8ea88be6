"""Bounds on what reading a request body may cost the function: its JSON shape before parsing, messages after.

API Gateway passes bodies of up to 10 MB and the function takes 5 MB (`max_request_bytes`), but the memory a body
costs once parsed depends on its shape, not its size: every JSON array or object becomes a Python object (and a
pydantic model, and a conversation block), every object member a dict entry, every value a Python object.
Measured with `bench/memory.py` (docs/benchmarks.md): a 4.9 MB field of nested empty lists took the API function
from 46 to 573 MiB, 168,000 empty messages to 361 MiB, an object of 376,000 members to 261 MiB, all past the
function's 256 MB (`ApiMemorySize`). The counts of containers, members and values are read from the body's bytes
before anything is parsed, in C-speed passes (bytes methods and a regular expression that drops strings); the
message count from the parsed request, whose size those bounds have already limited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_gateway.errors import InvalidRequestError, PayloadTooLargeError

if TYPE_CHECKING:
    from llm_gateway.config import Settings

# A JSON string once its escapes are gone: quote to quote (RFC 8259, section 7).
_JSON_STRING = re.compile(rb'"[^"]*"')
# Every byte but quotes, brackets, braces, commas and colons: what the counts do not need to see.
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{},:')


@dataclass(frozen=True)
class JsonShape:
    """What a JSON text holds outside its strings: arrays and objects (`containers`), object members (`members`,
    its colons) and values (`values`: its commas plus its containers, at least its array items and members)."""

    containers: int
    members: int
    values: int


def json_shape(body: bytes) -> JsonShape:
    """The shape of the JSON text `body`, read from its bytes without parsing it. Linear in the body's length, in
    passes of the bytes methods and one regular expression over what is left of its strings (a few milliseconds a
    megabyte, below pydantic's own parse of the same body); for text that is not JSON, counts the parser's error
    will make irrelevant."""
    if b'"' in body:
        if b"\\" in body:
            # Escapes pair from the left (an escaped backslash before a closing quote included), so removing the
            # escaped backslashes, then the escaped quotes, leaves only the quotes that delimit strings.
            body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Then only quotes and structure are kept; empty strings go (as a pair of adjacent strings would, which
        # merges them: their content stays inside one), and each string left goes with what is in it.
        body = _JSON_STRING.sub(b"", body.translate(None, _NOT_STRUCTURE).replace(b'""', b""))
    containers = body.count(b"[") + body.count(b"{")
    return JsonShape(containers, body.count(b":"), containers + body.count(b","))


def check_shape(body: bytes, settings: Settings) -> None:
    """Raises PayloadTooLargeError (413) when `body` holds more arrays and objects (code `too_many_json_containers`),
    object members (`too_many_json_members`) or values (`too_many_json_values`) than the settings allow."""
    shape = json_shape(body)
    for found, limit, what, code, setting in (
        (shape.containers, settings.max_json_containers, "arrays and objects", "containers", "CONTAINERS"),
        (shape.members, settings.max_json_members, "object members", "members", "MEMBERS"),
        (shape.values, settings.max_json_values, "values", "values", "VALUES"),
    ):
        if found > limit:
            raise PayloadTooLargeError(
                f"The request body holds {found} JSON {what}, more than the gateway's limit of {limit} "
                f"(GATEWAY_MAX_JSON_{setting}): each costs the function memory once parsed.",
                code=f"too_many_json_{code}",
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
