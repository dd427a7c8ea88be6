"""The OpenAI-compatible HTTP provider (chat completions and embeddings): OpenAI, Azure OpenAI v1, vLLM, Ollama,
Bedrock's OpenAI endpoint."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError

from llm_gateway.config import environment_variable
from llm_gateway.dialects.openai_chat.request_body import request_body
from llm_gateway.dialects.sse import SSEDecoder
from llm_gateway.domain.answers import Completion, Finish, StreamEvent, Usage, UsageReport
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.embeddings import EmbeddingRequest, EmbeddingResult, estimate_input_tokens
from llm_gateway.domain.ports import Deadline, Provider, completion_events
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.errors import GatewayError, ProviderError, ProviderTimeoutError, TargetMisconfiguredError
from llm_gateway.observability import logger
from llm_gateway.providers.openai import responses
from llm_gateway.providers.openai.context_window import ContextWindows
from llm_gateway.providers.openai.embeddings import embedding_vectors, embeddings_body
from llm_gateway.providers.openai.errors import (
    UpstreamError,
    loads_redacted,
    malformed,
    status_error,
    transport_errors,
    upstream_error,
    upstream_failure,
)
from llm_gateway.providers.openai.reading import read_completion, stream_reader, unmetered_usage

SecretReader = Callable[[str], str]
_READ_SIZE = 65536


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
        max_connections_per_host: int = 64,
    ) -> None:
        """`secret_reader` reads a Secrets Manager secret by name; by default Powertools Parameters,
        which caches each secret for `secret_max_age` seconds; `environment` reads the variable a target
        names in `api_key_env`. A socket read may wait for the target's `timeout_seconds`, else for
        `default_timeout`, else for all the time the request has left (a non-streamed answer arrives only
        once complete); the request's deadline always caps it. `max_connections_per_host` connections per
        upstream are kept open for reuse (the local gateway serves many requests from one process; a Lambda
        environment one at a time)."""
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
        self._windows = ContextWindows()

    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        key = self._api_key(target, deadline)
        if responses.serves_natively(request, target):
            body = responses.responses_body(request, target.model_id, stream=False)
            answer = self._read_all(self._post(target, key, body, deadline, path=responses.PATH), target)
            return responses.completion_of(self._json(answer, target, key), request, target)
        request, response = self._post_chat(request, target, key, deadline, stream=False)
        data = self._read_all(response, target)
        return read_completion(self._json(data, target, key), request, target, key)

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        """Stream one completion; nothing is sent until the first event is pulled.

        Failures before the first event (HTTP errors, timeouts) raise from that first pull, so the
        router can still retry; an upstream error inside the stream raises after the earlier events.
        """
        key = self._api_key(target, deadline)
        if responses.serves_natively(request, target):
            body = responses.responses_body(request, target.model_id, stream=True)
            response = self._post(target, key, body, deadline, path=responses.PATH)
            read = functools.partial(response.read1, _READ_SIZE)
            events = responses.stream_events(read, request, target, key, deadline)
        else:
            request, response = self._post_chat(request, target, key, deadline, stream=True)
            events = self._stream_events(response, request, target, key, deadline)
        if response.headers.get("content-type", "").startswith("application/json"):
            # A server that ignored stream=true answered with a whole completion: replay it.
            payload = self._json(self._read_all(response, target), target, key)
            if responses.serves_natively(request, target):
                yield from completion_events(responses.completion_of(payload, request, target))
                return
            yield from completion_events(read_completion(payload, request, target, key))
            return
        finished = False
        try:
            yield from events
            finished = True
        finally:
            if not finished:
                # Unread bytes would corrupt the next request on this connection: drop it instead.
                response.close()
            response.release_conn()

    def embed(
        self, request: EmbeddingRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> EmbeddingResult:
        """POST {base_url}/embeddings with the caller's body as sent (extras included: vLLM's, Azure's...), under the
        target's model id, with the gateway's fitted `dimensions`, asking for floats (the surface encodes base64
        itself; vectors that still come as base64 are decoded). Usage is the upstream's, else the gateway's
        estimate."""
        key = self._api_key(target, deadline)
        response = self._post(target, key, embeddings_body(request, target), deadline, path="/embeddings")
        payload = self._json(self._read_all(response, target), target, key)
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            raise upstream_failure(target, payload, key)
        vectors = embedding_vectors(payload, len(request.inputs), target)
        usage = payload.get("usage") if isinstance(payload, dict) else None
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(prompt, int) or prompt < 0:
            prompt = estimate_input_tokens(request)
            logger.warning(
                "The provider reported no token usage; it was estimated",
                extra={"target": target.label, "prompt_tokens": prompt},
            )
        return EmbeddingResult(vectors, Usage(prompt, 0))

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
    def _body(request: ChatRequest, target: Target, *, stream: bool) -> bytes:
        body = request_body(request, target.model_id, stream=stream)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _post_chat(
        self, request: ChatRequest, target: Target, key: str | None, deadline: Deadline, *, stream: bool
    ) -> tuple[ChatRequest, urllib3.BaseHTTPResponse]:
        """POST the chat request; the request as sent and the unread answer. The gateway's own output cap is fitted
        to the target's window when one was learned, and a context-length refusal of that cap is retried once with
        a cap that fits the window the refusal states (providers/context_window.py)."""
        request = self._windows.fitted(request, target)
        try:
            return request, self._post(target, key, self._body(request, target, stream=stream), deadline)
        except GatewayError as error:
            refitted = self._windows.refitted(request, target, error)
            if refitted is None:
                raise
        return refitted, self._post(target, key, self._body(refitted, target, stream=stream), deadline)

    def _post(
        self, target: Target, key: str | None, body: bytes, deadline: Deadline, *, path: str = "/chat/completions"
    ) -> urllib3.BaseHTTPResponse:
        """POST to `path` under the target's base URL; return a 2xx response whose body is still unread, or raise
        the mapped error."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _no_time_left(target)
        read_timeout = min(target.timeout_seconds or self._default_timeout or remaining, remaining)
        timeout = urllib3.Timeout(connect=min(self._connect_timeout, read_timeout), read=read_timeout)
        url = f"{(target.base_url or '').rstrip('/')}{path}"
        if target.query:
            url = f"{url}?{urlencode(target.query)}"
        headers = {"Content-Type": "application/json", "User-Agent": "llm-gateway"}
        if key is not None:
            if target.auth_header == "api-key":
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        with transport_errors(target):
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
            error = upstream_error(json.loads(data), key)
        except ValueError:
            error = UpstreamError(None)
        # The upstream's message is deliberately not logged: it may quote the request.
        logger.warning(
            "The provider refused the call", extra={"target": target.label, "status": status, "code": error.code}
        )
        if status in {401, 403} and target.api_key_secret:
            self._rejected_secrets.add(target.api_key_secret)
        raise status_error(status, error, target, response.headers)

    @staticmethod
    def _read_all(response: urllib3.BaseHTTPResponse, target: Target) -> bytes:
        done = False
        try:
            with transport_errors(target):
                data = response.read()
            done = True
            return data
        finally:
            if not done:
                response.close()
            response.release_conn()

    @staticmethod
    def _json(data: bytes, target: Target, key: str | None) -> Any:
        """An upstream answer parsed, with the provider key redacted from every string in it."""
        try:
            return loads_redacted(data, key)
        except ValueError:
            raise malformed(target, "the body is not JSON") from None

    def _stream_events(
        self,
        response: urllib3.BaseHTTPResponse,
        request: ChatRequest,
        target: Target,
        key: str | None,
        deadline: Deadline,
    ) -> Iterator[StreamEvent]:
        decoder = SSEDecoder()
        assembler = stream_reader(request, target, key)
        done = False
        while not done:
            if deadline.expired:
                raise ProviderTimeoutError(f"The provider behind {target.label} streamed past the deadline.")
            with transport_errors(target):
                data = response.read1(_READ_SIZE)
            try:
                frames = decoder.feed(data) if data else decoder.close()
            except UnicodeDecodeError:
                raise malformed(target, "a stream frame is not UTF-8") from None
            for event, payload in frames:
                if payload.strip() == "[DONE]":
                    done = True
                    break
                try:
                    chunk = loads_redacted(payload, key)
                except ValueError:
                    raise malformed(target, "a stream frame is not JSON") from None
                if event == "error":
                    raise upstream_failure(target, chunk if isinstance(chunk, dict) else {"error": chunk}, key)
                yield from assembler.events(chunk)
            if not data and not done:
                if assembler.stop_reason is None:
                    logger.warning("The provider's stream ended early", extra={"target": target.label})
                    raise ProviderError(f"The provider behind {target.label} stopped mid-answer: stream ended early.")
                # Everything arrived but the closing [DONE]: usable, but worth knowing about.
                logger.warning("The provider's stream ended without [DONE]", extra={"target": target.label})
                break
        if done:
            self._drain(response)
        if assembler.stop_reason is None:
            yield Finish("tool_use" if assembler.called_tools else "end_turn")
        usage = assembler.usage or unmetered_usage(request, assembler.produced, target, streamed=True)
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
