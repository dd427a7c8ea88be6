"""Server-sent events shared by the formats: a stream's frames, and the error frame that ends a failed one."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

from llm_gateway.domain.ports import closed_after
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
)
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
