"""Offline Bedrock for unit tests: event-stream encoding and an in-process HTTP transport for bedrock-runtime.

botocore's Stubber serves `converse` well, but it validates a stubbed `converse_stream` response against the
output shape and refuses a list of events for the `stream` member, while a dict would be iterated as keys. So
streams are served one layer lower: `FakeBedrockTransport` answers the client's `before-send` hook (the last
step before the socket) with an HTTP response whose body is event-stream bytes encoded here to the AWS
specification (prelude, string headers, JSON payload, CRC32s). Everything above the socket is real: the
client's request serialization and signing, the retry handler, the rest-json error parser, botocore's
EventStream decoder and its conversion of exception messages into EventStreamError. Only the bytes on the wire
are made up.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from urllib3 import HTTPHeaderDict

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

_STRING_HEADER = 7


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(encoded_name))
        + encoded_name
        + struct.pack("!BH", _STRING_HEADER, len(encoded_value))
        + encoded_value
    )


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One binary event-stream message: total and header lengths, prelude CRC, headers, payload, message CRC."""
    header_bytes = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack("!II", 12 + len(header_bytes) + len(payload) + 4, len(header_bytes))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + header_bytes + payload
    return message + struct.pack("!I", binascii.crc32(message))


def stream_event(event_type: str, payload: dict[str, Any]) -> bytes:
    """A ConverseStream event such as contentBlockDelta, as Bedrock puts it on the wire."""
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps(payload).encode())


def invoke_chunk(data: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream `chunk` event carrying one of the model's own stream events (Anthropic's
    message_start, content_block_delta...): its JSON, base64-encoded in the event's `bytes` member."""
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    return stream_event("chunk", {"bytes": encoded})


def stream_exception(exception_type: str, message: str) -> bytes:
    """A modeled error inside the stream (throttlingException, modelStreamErrorException, ...)."""
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps({"message": message}).encode())


class FakeHttpBody:
    """The raw urllib3 body botocore reads: `stream()` hands out the bytes in small, message-splitting chunks (event
    streams), `read()` all of them or the next `amt` (answers read whole)."""

    def __init__(
        self,
        data: bytes,
        *,
        chunk_size: int = 13,
        failure: Exception | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        self._data = data
        self._chunk_size = chunk_size
        self._failure = failure
        self._on_chunk = on_chunk
        self._position = 0
        self.closed = False

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        for number, start in enumerate(range(0, len(self._data), self._chunk_size)):
            if self._on_chunk is not None:
                self._on_chunk(number)
            yield self._data[start : start + self._chunk_size]
        if self._failure is not None:
            raise self._failure

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """The next bytes, as a non-streamed answer's StreamingBody reads them (InvokeModel's `body`)."""
        end = len(self._data) if amt is None else self._position + amt
        data, self._position = self._data[self._position : end], min(end, len(self._data))
        return data

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class SentRequest:
    method: str
    url: str
    body: bytes

    @property
    def model_id(self) -> str:
        """The modelId, which every bedrock-runtime call carries in the URL path (/model/{modelId}/converse,
        /converse-stream, /invoke, /invoke-with-response-stream, /count-tokens)."""
        return unquote(self.url.split("/model/", 1)[1].rsplit("/", 1)[0])

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[AWSPreparedRequest], AWSResponse]


def _http_headers(headers: dict[str, str]) -> Any:
    # What urllib3 hands botocore for a real response (the stubs name a different, unused class).
    return HTTPHeaderDict(headers)


@dataclass
class FakeBedrockTransport:
    """Answers a client's HTTP requests from a queue of replies; a request with no reply queued fails the test."""

    replies: deque[Reply] = field(default_factory=deque)
    sent: list[SentRequest] = field(default_factory=list)
    bodies: list[FakeHttpBody] = field(default_factory=list)

    def install(self, client: BedrockRuntimeClient) -> BedrockRuntimeClient:
        # The stubs type event handlers as returning None; a before-send handler's return value replaces the call.
        client.meta.events.register_first("before-send.bedrock-runtime", self._send)  # type: ignore[arg-type]
        # Inside moto's mock_aws (tests that also need DynamoDB) every before-send handler runs, and moto's would
        # refuse the Bedrock operations it does not implement: this client's calls are this fake's alone. Without
        # moto loaded no handler of its can be registered, and the unit tier never pays for importing it.
        if "moto" not in sys.modules:
            return client
        from moto.core.botocore_stubber import BotocoreStubber

        events = client.meta.events
        for handler in list(events._emitter._handlers.prefix_search("before-send.bedrock-runtime")):  # type: ignore[attr-defined]
            if isinstance(handler, BotocoreStubber):
                events.unregister("before-send", handler)
        return client

    def reply_stream(
        self,
        *messages: bytes,
        failure: Exception | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> FakeHttpBody:
        body = FakeHttpBody(b"".join(messages), failure=failure, on_chunk=on_chunk)
        self.bodies.append(body)
        headers = _http_headers({"content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "req-1"})
        self.replies.append(lambda request: AWSResponse(request.url, 200, headers, body))
        return body

    def reply_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = FakeHttpBody(json.dumps(payload).encode())
        all_headers = _http_headers({"content-type": "application/json", **(headers or {})})
        self.replies.append(lambda request: AWSResponse(request.url, status, all_headers, body))

    def reply_error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """A rest-json error as Bedrock sends it: the code in x-amzn-ErrorType, the message in the body."""
        error_type = f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        self.reply_json(status, {"message": message}, {"x-amzn-errortype": error_type, **(headers or {})})

    def fail_with(self, error: Exception) -> None:
        """The HTTP layer itself fails (timeouts, refused connections), as urllib3/botocore would raise it."""

        def fail(request: AWSPreparedRequest) -> AWSResponse:
            raise error

        self.replies.append(fail)

    def assert_no_pending_replies(self) -> None:
        assert not self.replies, f"{len(self.replies)} queued Bedrock replies were never requested"

    def _send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        self.sent.append(SentRequest(request.method, request.url, body))
        assert self.replies, f"unexpected Bedrock request {request.method} {request.url}"
        return self.replies.popleft()(request)


class JsonBody:
    """Stands for a JSON body in Stubber's expected parameters: equal to any bytes holding this JSON."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and json.loads(other) == self.expected

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"
