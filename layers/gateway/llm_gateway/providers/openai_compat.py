"""The OpenAI-compatible HTTP provider: OpenAI, Azure OpenAI v1, vLLM, Ollama, Bedrock's OpenAI endpoint."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as UrllibTimeoutError

from llm_gateway.api.schemas import ChatCompletionRequest, FinishReason
from llm_gateway.config import environment_variable
from llm_gateway.domain.registry import Target
from llm_gateway.domain.text import request_texts
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderTimeoutError,
    TargetMisconfiguredError,
)
from llm_gateway.observability import logger
from llm_gateway.providers.base import (
    Completion,
    Deadline,
    Finish,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallResult,
    ToolCallStart,
    Usage,
    UsageReport,
    completion_events,
)
from llm_gateway.providers.error_table import openai_rule

SecretReader = Callable[[str], str]

_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}
_READ_SIZE = 65536
_CHARS_PER_TOKEN = 4
_REDACTED = "[redacted]"


def _finish_reason(value: object) -> FinishReason:
    """OpenAI's finish reasons; the legacy function_call counts as tool_calls, anything unknown as stop."""
    return _FINISH_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


def _estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / _CHARS_PER_TOKEN))


def _malformed(target: Target, detail: str) -> ProviderError:
    logger.warning("Malformed upstream response", extra={"target": target.label, "detail": detail})
    return ProviderError(f"The provider behind {target.label} sent a malformed upstream response ({detail}).")


def _usage(value: object) -> Usage | None:
    """The usage object of an upstream answer, or None when it is absent or unusable."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = value.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(max(0, prompt), max(0, completion), cached if isinstance(cached, int) and cached > 0 else 0)


def _text(content: object) -> str | None:
    """Message content as text; a few servers send a list of parts instead of a string."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return None


def _arguments(value: object) -> str:
    """Tool call arguments as the JSON string OpenAI defines; some servers send the object itself."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from retry-after-ms (OpenAI, Azure) or Retry-After (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    retry_after = headers.get("retry-after")
    if not retry_after:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class _UpstreamError:
    """The error an upstream reported; each field None when absent or not a string (vLLM's code is its status)."""

    message: str | None
    param: str | None = None
    code: str | None = None
    type: str | None = None


def _text_field(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _upstream_error(payload: object) -> _UpstreamError:
    """The error an upstream reported: OpenAI's {"error": {...}}, Ollama's {"error": "..."}, FastAPI's detail."""
    if not isinstance(payload, dict):
        return _UpstreamError(None)
    error = payload.get("error")
    if isinstance(error, dict):
        return _UpstreamError(
            _text_field(error.get("message")),
            _text_field(error.get("param")),
            _text_field(error.get("code")),
            _text_field(error.get("type")),
        )
    for candidate in (error, payload.get("message"), payload.get("detail")):
        if isinstance(candidate, str) and candidate:
            return _UpstreamError(candidate)
    return _UpstreamError(None)


@contextmanager
def _transport_errors(target: Target) -> Iterator[None]:
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


class _SSEDecoder:
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
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None


class _StreamAssembler:
    """Turns upstream `chat.completion.chunk` objects into stream events, keeping what the end needs."""

    def __init__(self, target: Target, key: str | None) -> None:
        self._target = target
        self._key = key
        self.finish: FinishReason | None = None
        self.usage: Usage | None = None
        self.output_chars = 0
        self._names: dict[int, str] = {}
        self._by_id: dict[str, int] = {}
        self._by_upstream: dict[int, int] = {}
        self._last: int | None = None

    def events(self, chunk: object) -> Iterator[StreamEvent]:
        if not isinstance(chunk, dict):
            raise _malformed(self._target, "a stream chunk is not an object")
        if chunk.get("error"):
            raise _upstream_failure(self._target, chunk, self._key)
        # Servers differ on where usage comes (a final chunk, or every chunk with running totals), so
        # the latest one wins and is reported once at the end.
        self.usage = _usage(chunk.get("usage")) or self.usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise _malformed(self._target, "choices is not a list")
        if not choices:
            return
        choice = choices[0]
        if not isinstance(choice, dict):
            raise _malformed(self._target, "a choice is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise _malformed(self._target, "a delta is not an object")
        content = _text(delta.get("content"))
        if content:
            self.output_chars += len(content)
            yield TextDelta(content)
        tool_calls = delta.get("tool_calls") or []
        if not isinstance(tool_calls, list):
            raise _malformed(self._target, "tool_calls is not a list")
        for entry in tool_calls:
            yield from self._tool_call(entry)
        reason = choice.get("finish_reason")
        if reason is not None and self.finish is None:
            self.finish = _finish_reason(reason)
            yield Finish(self.finish)

    @property
    def called_tools(self) -> bool:
        return bool(self._names)

    def _tool_call(self, entry: object) -> Iterator[StreamEvent]:
        if not isinstance(entry, dict):
            raise _malformed(self._target, "a tool call delta is not an object")
        function = entry.get("function") or {}
        if not isinstance(function, dict):
            raise _malformed(self._target, "a tool call function is not an object")
        raw_id, raw_index = entry.get("id"), entry.get("index")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        upstream = raw_index if isinstance(raw_index, int) else None
        index = self._index_for(call_id, upstream)
        if index not in self._names:
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise _malformed(self._target, "tool call arguments arrived before the call's name")
            self._names[index] = name
            if call_id is not None:
                self._by_id[call_id] = index
            self.output_chars += len(name)
            yield ToolCallStart(index, call_id or f"call_{index}", name)
        self._last = index
        arguments = _arguments(function.get("arguments"))
        if arguments:
            self.output_chars += len(arguments)
            yield ToolCallArgumentsDelta(index, arguments)

    def _index_for(self, call_id: str | None, upstream: int | None) -> int:
        """The call an entry belongs to: its id, else its upstream index, else the latest call.

        A new call keeps its upstream index unless that is taken (some servers send every call with
        index 0) or missing (some omit it); then it gets the next free index, in order of appearance.
        """
        if call_id is not None and call_id in self._by_id:
            return self._by_id[call_id]
        if call_id is None and upstream is not None and upstream in self._by_upstream:
            return self._by_upstream[upstream]
        if call_id is None and upstream is None and self._last is not None:
            return self._last
        index = upstream if upstream is not None and upstream not in self._names else max(self._names, default=-1) + 1
        if upstream is not None:
            self._by_upstream[upstream] = index
        return index


class OpenAICompatProvider(Provider):
    """Calls any OpenAI-compatible /chat/completions endpoint over one pooled HTTP client per container.

    urllib3 retries are off: the gateway's router retries with backoff and falls over to other targets,
    and it needs every failure to surface at once as a typed provider error.
    """

    name = "openai"

    def __init__(
        self,
        *,
        secret_reader: SecretReader | None = None,
        environment: Callable[[str], str | None] = environment_variable,
        secret_max_age: int = 300,
        connect_timeout: float = 3.0,
        default_timeout: float | None = None,
        max_connections_per_host: int = 10,
    ) -> None:
        """`secret_reader` reads a Secrets Manager secret by name; by default Powertools Parameters,
        which caches each secret for `secret_max_age` seconds; `environment` reads the variable a target
        names in `api_key_env`. A socket read may wait for the target's `timeout_seconds`, else for
        `default_timeout`, else for all the time the request has left (a non-streamed answer arrives only
        once complete); the request's deadline always caps it."""
        self._secret_reader = secret_reader
        self._environment = environment
        self._secret_max_age = secret_max_age
        self._connect_timeout = connect_timeout
        self._default_timeout = default_timeout
        self._max_connections = max_connections_per_host
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()
        # Secrets whose key the upstream rejected: read them again, skipping the cache, so a rotated
        # key takes effect at the next call instead of after the cache expires.
        self._rejected_secrets: set[str] = set()

    def complete(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Completion:
        key = self._api_key(target, deadline)
        response = self._post(target, key, self._body(request, target, stream=False), deadline)
        data = self._read_all(response, target)
        return self._completion(self._json(data, target), request, target, key)

    def stream(self, request: ChatCompletionRequest, target: Target, deadline: Deadline) -> Iterator[StreamEvent]:
        """Stream one completion; nothing is sent until the first event is pulled.

        Failures before the first event (HTTP errors, timeouts) raise from that first pull, so the
        router can still retry; an upstream error inside the stream raises after the earlier events.
        """
        key = self._api_key(target, deadline)
        response = self._post(target, key, self._body(request, target, stream=True), deadline)
        if response.headers.get("content-type", "").startswith("application/json"):
            # A server that ignored stream=true answered with a whole completion: replay it.
            payload = self._json(self._read_all(response, target), target)
            yield from completion_events(self._completion(payload, request, target, key))
            return
        finished = False
        try:
            yield from self._stream_events(response, request, target, key, deadline)
            finished = True
        finally:
            if not finished:
                # Unread bytes would corrupt the next request on this connection: drop it instead.
                response.close()
            response.release_conn()

    def close(self) -> None:
        """Close the pooled connections (tests and the local server; Lambda just freezes them)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.clear()
                self._pool = None

    def _http(self) -> urllib3.PoolManager:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = urllib3.PoolManager(num_pools=8, maxsize=self._max_connections, retries=False)
        return self._pool

    def _api_key(self, target: Target, deadline: Deadline) -> str | None:
        if deadline.expired:
            raise _no_time_left(target)
        if target.api_key_secret:
            return self._secret_key(target, target.api_key_secret)
        if target.api_key_env:
            key = (self._environment(target.api_key_env) or "").strip()
            if not _usable_key(key):
                logger.error(
                    "The provider key variable is unset or not a usable key",
                    extra={"target": target.label, "variable": target.api_key_env},
                )
                raise self._misconfigured(target)
            return key
        # Local vLLM and Ollama servers take no key at all.
        return None

    def _secret_key(self, target: Target, name: str) -> str:
        try:
            raw = self._read_secret(name)
        except Exception as exc:
            logger.error(
                "Cannot read the provider key secret",
                extra={"target": target.label, "secret": name, "error": type(exc).__name__},
            )
            raise self._misconfigured(target) from exc
        key = raw.strip()
        if key.startswith("{"):
            try:
                document = json.loads(key)
            except ValueError:
                document = None
            field = document.get("api_key") if isinstance(document, dict) else None
            if not isinstance(field, str) or not field.strip():
                logger.error(
                    "The provider key secret is JSON without a string api_key field",
                    extra={"target": target.label, "secret": name},
                )
                raise self._misconfigured(target)
            key = field.strip()
        if not _usable_key(key):
            logger.error("The provider key secret is not a usable key", extra={"target": target.label, "secret": name})
            raise self._misconfigured(target)
        return key

    def _read_secret(self, name: str) -> str:
        if self._secret_reader is not None:
            return self._secret_reader(name)
        from aws_lambda_powertools.utilities import parameters

        refresh = name in self._rejected_secrets
        value: str | bytes = parameters.get_secret(name, max_age=self._secret_max_age, force_fetch=refresh)
        self._rejected_secrets.discard(name)
        return value.decode("utf-8") if isinstance(value, bytes) else value

    @staticmethod
    def _misconfigured(target: Target) -> ProviderError:
        return TargetMisconfiguredError(
            f"The gateway's provider secret for {target.label} is misconfigured; an operator must fix it.",
            code="upstream_key_misconfigured",
        )

    @staticmethod
    def _body(request: ChatCompletionRequest, target: Target, *, stream: bool) -> bytes:
        body = request.model_dump(mode="json", exclude_none=True)
        body["model"] = target.model_id
        body["stream"] = stream
        if stream:
            # Always asked for, so that streamed calls are metered even when the client did not ask.
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        else:
            # OpenAI rejects stream_options on a non-streamed request.
            body.pop("stream_options", None)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _post(self, target: Target, key: str | None, body: bytes, deadline: Deadline) -> urllib3.BaseHTTPResponse:
        """Send the request; return a 2xx response whose body is still unread, or raise the mapped error."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _no_time_left(target)
        read_timeout = min(target.timeout_seconds or self._default_timeout or remaining, remaining)
        timeout = urllib3.Timeout(connect=min(self._connect_timeout, read_timeout), read=read_timeout)
        url = f"{(target.base_url or '').rstrip('/')}/chat/completions"
        if target.query:
            url = f"{url}?{urlencode(target.query)}"
        headers = {"Content-Type": "application/json", "User-Agent": "llm-gateway"}
        if key is not None:
            if target.auth_header == "api-key":
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        with _transport_errors(target):
            response = self._http().request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
        if not 200 <= response.status < 300:
            self._raise_for_status(response, target, key)
        return response

    def _raise_for_status(self, response: urllib3.BaseHTTPResponse, target: Target, key: str | None) -> NoReturn:
        status = response.status
        data = self._read_all(response, target)
        try:
            error = _upstream_error(json.loads(data))
        except ValueError:
            error = _UpstreamError(None)
        # The upstream's message is deliberately not logged: it may quote the request.
        logger.warning(
            "The provider refused the call", extra={"target": target.label, "status": status, "code": error.code}
        )
        if status in {401, 403} and target.api_key_secret:
            self._rejected_secrets.add(target.api_key_secret)
        said = _redact(
            error.message or f"The provider behind {target.label} rejected the request (HTTP {status}).", key
        )
        rule = openai_rule(status, error.code, said)
        raise rule.build(
            rule.message.format(target=target.label, status=status, said=said),
            retry_after=_retry_after(response.headers),
            upstream_code=error.code,
            param=error.param,
            error_type=error.type,
        )

    @staticmethod
    def _read_all(response: urllib3.BaseHTTPResponse, target: Target) -> bytes:
        done = False
        try:
            with _transport_errors(target):
                data = response.read()
            done = True
            return data
        finally:
            if not done:
                response.close()
            response.release_conn()

    @staticmethod
    def _json(data: bytes, target: Target) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise _malformed(target, "the body is not JSON") from None

    def _completion(self, payload: Any, request: ChatCompletionRequest, target: Target, key: str | None) -> Completion:
        if isinstance(payload, dict) and payload.get("error"):
            raise _upstream_failure(target, payload, key)
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _malformed(target, "no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _malformed(target, "the choice has no message")
        content = _text(message.get("content"))
        calls: list[ToolCallResult] = []
        for number, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(call, dict) or not isinstance(function, dict) or not isinstance(name, str):
                raise _malformed(target, "a tool call has no function name")
            call_id = call.get("id")
            arguments = _arguments(function.get("arguments"))
            calls.append(
                ToolCallResult(call_id if isinstance(call_id, str) and call_id else f"call_{number}", name, arguments)
            )
        usage = _usage(payload.get("usage"))
        if usage is None:
            output_chars = len(content or "") + sum(len(c.name) + len(c.arguments) for c in calls)
            usage = _estimated_usage(request, output_chars, target, streamed=False)
        return Completion(content, _finish_reason(choice.get("finish_reason")), usage, tuple(calls))

    def _stream_events(
        self,
        response: urllib3.BaseHTTPResponse,
        request: ChatCompletionRequest,
        target: Target,
        key: str | None,
        deadline: Deadline,
    ) -> Iterator[StreamEvent]:
        decoder = _SSEDecoder()
        assembler = _StreamAssembler(target, key)
        done = False
        while not done:
            if deadline.expired:
                raise ProviderTimeoutError(f"The provider behind {target.label} streamed past the deadline.")
            with _transport_errors(target):
                data = response.read1(_READ_SIZE)
            try:
                frames = decoder.feed(data) if data else decoder.close()
            except UnicodeDecodeError:
                raise _malformed(target, "a stream frame is not UTF-8") from None
            for event, payload in frames:
                if payload.strip() == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise _malformed(target, "a stream frame is not JSON") from None
                if event == "error":
                    raise _upstream_failure(target, chunk if isinstance(chunk, dict) else {"error": chunk}, key)
                yield from assembler.events(chunk)
            if not data and not done:
                if assembler.finish is None:
                    logger.warning("The provider's stream ended early", extra={"target": target.label})
                    raise ProviderError(f"The provider behind {target.label} stopped mid-answer: stream ended early.")
                # Everything arrived but the closing [DONE]: usable, but worth knowing about.
                logger.warning("The provider's stream ended without [DONE]", extra={"target": target.label})
                break
        if done:
            self._drain(response)
        if assembler.finish is None:
            yield Finish("tool_calls" if assembler.called_tools else "stop")
        usage = assembler.usage or _estimated_usage(request, assembler.output_chars, target, streamed=True)
        yield UsageReport(usage)

    @staticmethod
    def _drain(response: urllib3.BaseHTTPResponse) -> None:
        """Read the end of the body after [DONE], so the connection goes back to the pool reusable."""
        try:
            while response.read1(_READ_SIZE):
                pass
        except (HTTPError, OSError):
            response.close()


def _usable_key(key: str) -> bool:
    """A key that fits in an HTTP header: http.client's error for one that does not would quote it."""
    return bool(key) and key.isprintable() and not any(char.isspace() for char in key)


def _no_time_left(target: Target) -> ProviderTimeoutError:
    return ProviderTimeoutError(f"No time was left to call the provider behind {target.label}.")


def _redact(message: str, key: str | None) -> str:
    """Upstream messages are forwarded to callers; some quote the key they were given."""
    return message.replace(key, _REDACTED) if key else message


def _upstream_failure(target: Target, payload: Mapping[str, Any], key: str | None) -> GatewayError:
    """An error the upstream reported with a 200: inside a stream, or as the whole body."""
    error = _upstream_error(payload)
    said = _redact(error.message or "no message", key)
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


def _estimated_usage(request: ChatCompletionRequest, output_chars: int, target: Target, *, streamed: bool) -> Usage:
    """About four characters per token, so a call the upstream did not meter is still counted."""
    usage = Usage(_estimate_tokens(sum(len(text) for text in request_texts(request))), _estimate_tokens(output_chars))
    logger.warning(
        "The provider reported no token usage; it was estimated",
        extra={
            "target": target.label,
            "streamed": streamed,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
    )
    return usage
