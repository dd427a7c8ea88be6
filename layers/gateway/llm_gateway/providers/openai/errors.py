"""Failures of OpenAI-compatible upstreams as the gateway's errors: HTTP statuses, errors inside a 200 answer
(the whole body or a stream frame), and transport failures. The mapping itself is the error table's."""

from __future__ import annotations

import json
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


def upstream_error(payload: object, key: str | None) -> UpstreamError:
    """The error an upstream reported: OpenAI's {"error": {...}}, Ollama's {"error": "..."}, FastAPI's detail; every
    field with the provider key the gateway sent (`key`) redacted, since each may reach the caller or a log."""
    if not isinstance(payload, dict):
        return UpstreamError(None)
    error = redacted(payload.get("error"), key)
    if isinstance(error, dict):
        return UpstreamError(
            _text_field(error.get("message")),
            _text_field(error.get("param")),
            _text_field(error.get("code")),
            _text_field(error.get("type")),
        )
    for candidate in (error, redacted(payload.get("message"), key), redacted(payload.get("detail"), key)):
        if isinstance(candidate, str) and candidate:
            return UpstreamError(candidate)
    return UpstreamError(None)


def redact(text: str, key: str | None) -> str:
    """`text` with every occurrence of the provider key replaced: upstreams' words are forwarded to callers and
    logged, and some quote the key they were given."""
    return text.replace(key, _REDACTED) if key and key in text else text


def redacted(value: Any, key: str | None) -> Any:
    """A parsed JSON value with the provider key redacted from every string in it, object keys included."""
    if not key:
        return value
    if isinstance(value, str):
        return redact(value, key)
    if isinstance(value, list):
        return [redacted(item, key) for item in value]
    if isinstance(value, dict):
        return {redact(name, key): redacted(item, key) for name, item in value.items()}
    return value


def loads_redacted(text: str | bytes, key: str | None) -> Any:
    """An upstream's JSON (answer, stream frame or error) parsed, with the provider key redacted from every string.

    The parsed value is walked only when the key could be in it: written as it is, or hidden behind JSON escapes
    (`\\u002d` for `-`, `\\/`), which the parse would undo. Raises ValueError for text that is not JSON."""
    value = json.loads(text)
    if not key:
        return value
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if key in raw or "\\u" in raw or "\\/" in raw:
        return redacted(value, key)
    return value


def status_error(status: int, error: UpstreamError, target: Target, headers: Mapping[str, str]) -> GatewayError:
    """The caller's error for an upstream's non-2xx answer (`error` read by `upstream_error`), from the error table."""
    said = error.message or f"The provider behind {target.label} rejected the request (HTTP {status})."
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
    error = upstream_error(payload, key)
    said = error.message or "no message"
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
