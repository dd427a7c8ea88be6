"""Failures of OpenAI-compatible upstreams as the gateway's errors: HTTP statuses, errors inside a 200 answer
(the whole body or a stream frame), and transport failures. The mapping itself is the error table's."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as UrllibTimeoutError

from llm_gateway.domain.registry import Target
from llm_gateway.errors import GatewayError, ProviderError, ProviderTimeoutError
from llm_gateway.observability import logger
from llm_gateway.providers.error_table import openai_rule

_REDACTED = "[redacted]"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from retry-after-ms (OpenAI, Azure) or Retry-After (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    header = headers.get("retry-after")
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class UpstreamError:
    """The error an upstream reported; each field None when absent or not a string (vLLM's code is its status)."""

    message: str | None
    param: str | None = None
    code: str | None = None
    type: str | None = None


def _text_field(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def upstream_error(payload: object) -> UpstreamError:
    """The error an upstream reported: OpenAI's {"error": {...}}, Ollama's {"error": "..."}, FastAPI's detail."""
    if not isinstance(payload, dict):
        return UpstreamError(None)
    error = payload.get("error")
    if isinstance(error, dict):
        return UpstreamError(
            _text_field(error.get("message")),
            _text_field(error.get("param")),
            _text_field(error.get("code")),
            _text_field(error.get("type")),
        )
    for candidate in (error, payload.get("message"), payload.get("detail")):
        if isinstance(candidate, str) and candidate:
            return UpstreamError(candidate)
    return UpstreamError(None)


def redact(message: str, key: str | None) -> str:
    """Upstream messages are forwarded to callers; some quote the key they were given."""
    return message.replace(key, _REDACTED) if key else message


def status_error(
    status: int, error: UpstreamError, target: Target, key: str | None, headers: Mapping[str, str]
) -> GatewayError:
    """The caller's error for an upstream's non-2xx answer, from the error table."""
    said = redact(error.message or f"The provider behind {target.label} rejected the request (HTTP {status}).", key)
    rule = openai_rule(status, error.code, said)
    return rule.build(
        rule.message.format(target=target.label, status=status, said=said),
        retry_after=retry_after(headers),
        upstream_code=error.code,
        param=error.param,
        error_type=error.type,
    )


def upstream_failure(target: Target, payload: Mapping[str, Any], key: str | None) -> GatewayError:
    """An error the upstream reported with a 200: inside a stream, or as the whole body."""
    error = upstream_error(payload)
    said = redact(error.message or "no message", key)
    logger.warning(
        "The provider reported an error after answering 200", extra={"target": target.label, "code": error.code}
    )
    rule = openai_rule(None, error.code, said)
    return rule.build(
        rule.message.format(target=target.label, said=said),
        upstream_code=error.code,
        param=error.param,
        error_type=error.type,
    )


def malformed(target: Target, detail: str) -> ProviderError:
    logger.warning("Malformed upstream response", extra={"target": target.label, "detail": detail})
    return ProviderError(f"The provider behind {target.label} sent a malformed upstream response ({detail}).")


@contextmanager
def transport_errors(target: Target) -> Iterator[None]:
    """Map urllib3's connection and read failures to provider errors the router understands."""
    try:
        yield
    except NewConnectionError as exc:
        # Checked before timeouts: urllib3 makes NewConnectionError a ConnectTimeoutError subclass, but a
        # refused connection is not a timeout.
        logger.warning("Cannot connect to the provider", extra={"target": target.label, "error": str(exc)})
        raise ProviderError(f"The gateway cannot connect to the provider behind {target.label}.") from exc
    except UrllibTimeoutError as exc:
        logger.warning("The provider timed out", extra={"target": target.label, "error": str(exc)})
        raise ProviderTimeoutError(f"The provider behind {target.label} did not answer in time.") from exc
    except (HTTPError, OSError) as exc:
        logger.warning("The provider connection failed", extra={"target": target.label, "error": str(exc)})
        raise ProviderError(f"The connection to the provider behind {target.label} failed.") from exc
