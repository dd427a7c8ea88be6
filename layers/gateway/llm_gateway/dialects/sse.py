"""Server-sent events shared by the formats: a stream's frames and the error frame that ends a failed one, written;
an upstream's frames, read (`SSEDecoder`)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

from llm_gateway.domain.ports import closed_after
from llm_gateway.errors import GatewayError, ProviderError
from llm_gateway.observability import current_request, logger

T = TypeVar("T")


def guarded_frames(
    items: Iterator[T], frame: Callable[[T], str], error_frame: Callable[[GatewayError], str]
) -> Generator[str, None, bool]:
    """A stream's items as SSE frames (`frame`), as they are produced; True when they all went out. A failure
    after the stream began (its status was 200 already) becomes the final frame `error_frame` makes of it,
    logged and counted on the request's record (its metrics count the request as failed): False. However the
    stream ends, `items` is closed, which stops its provider."""
    try:
        with closed_after(items):
            for item in items:
                yield frame(item)
    except GatewayError as exc:
        logger.warning("Stream failed after it began", extra={"error_code": exc.code, "status": exc.status})
        failed = exc
    except Exception:
        logger.exception("Stream failed after it began")
        failed = GatewayError("The gateway failed while streaming this response.")
    else:
        return True
    record = current_request()
    record.stream_error_status = failed.status
    if isinstance(failed, ProviderError):
        record.provider_errors += 1
    yield error_frame(failed)
    return False


class SSEDecoder:
    """An incremental Server-Sent Events parser: bytes in (split anywhere), (event, data) pairs out.

    Lines end in LF or CRLF (every OpenAI-compatible server uses one of them); comment lines and fields
    other than `event` and `data` are ignored, as the SSE specification says.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        events: list[tuple[str, str]] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            # Decoding whole lines only, so a UTF-8 character split across reads is reassembled first.
            line = bytes(self._buffer[:end]).rstrip(b"\r").decode("utf-8")
            del self._buffer[: end + 1]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[tuple[str, str]]:
        """Events still pending at the end of the body: servers may omit the final blank line."""
        events = self.feed(b"\n") if self._buffer else []
        event = self._line("")
        return events if event is None else [*events, event]

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            event, self._event = self._event or "message", ""
            data, self._data = self._data, []
            return (event, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None
