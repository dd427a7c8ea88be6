"""Amazon Bedrock provider: chat requests served through the Converse and ConverseStream APIs, requests in
Anthropic's dialect for Anthropic's models through InvokeModel, InvokeModelWithResponseStream and CountTokens, and
embeddings through InvokeModel in each embedding model's own body."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from llm_gateway.domain.conversation import ChatRequest, Completion, Finish, StreamEvent, Usage, UsageReport
from llm_gateway.domain.embeddings import EmbeddingRequest, EmbeddingResult
from llm_gateway.domain.ports import Deadline, Provider
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    TargetMisconfiguredError,
)
from llm_gateway.observability import logger
from llm_gateway.providers.bedrock_anthropic import (
    StreamReader,
    anthropic_traits,
    completion_of,
    encode_body,
    foundation_model_id,
    invoke_model_body,
)
from llm_gateway.providers.bedrock_converse import StreamTranslator, completion, converse_request, malformed_output
from llm_gateway.providers.bedrock_embeddings import Batch, batched_results, batches, input_tokens, vectors_of
from llm_gateway.providers.error_table import bedrock_rule

if TYPE_CHECKING:
    from botocore.eventstream import EventStream
    from botocore.exceptions import ClientError
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseStreamOutputTypeDef,
        ConverseStreamRequestTypeDef,
        ResponseStreamTypeDef,
    )

ClientFactory = Callable[[str | None, float], "BedrockRuntimeClient"]
"""Builds a bedrock-runtime client for (region, read timeout in seconds); region None is the function's own."""

CONNECT_TIMEOUT_SECONDS = 3.0
# InvokeModel calls one embedding request makes at once (Titan embeds one text per call).
EMBEDDING_CONCURRENCY = 8
JSON = "application/json"
_ARN_IN_MODEL_ID = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):")
_ANY_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',;]+")
_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


def default_client(region: str | None, read_timeout: float) -> BedrockRuntimeClient:
    """The production client: no botocore retries (the router retries and falls back) and short timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        # `max_attempts` would mean *retries* (botocore adds one); total_max_attempts=1 is a single attempt.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)


def read_timeout(target: Target, deadline: Deadline) -> float:
    """Seconds one socket read may wait: the target's `timeout_seconds`, else all the time the request has left.

    A non-streamed Converse call sends nothing until the answer is complete, so this bounds the whole call; in
    a stream it bounds the silence between two events. Whole seconds below a minute, whole half-minutes above
    (rounded down, never past the deadline), so that only a few clients are ever cached.
    """
    limit = deadline.remaining()
    if target.timeout_seconds:
        limit = min(limit, target.timeout_seconds)
    if limit >= 60:
        return float(int(limit // 30) * 30)
    return float(max(1, math.ceil(limit)))


def bedrock_region(target: Target) -> str | None:
    """The target's region, else the region inside an ARN model id, else None (the function's own region)."""
    if target.region:
        return target.region
    match = _ARN_IN_MODEL_ID.match(target.model_id)
    return (match.group("region") or None) if match else None


class BedrockProvider(Provider):
    """Serves chat completions and embeddings from Bedrock models; one cached client per (region, read timeout)."""

    name = "bedrock"

    def __init__(self, client_factory: ClientFactory | None = None) -> None:
        self._client_factory = client_factory or default_client
        self._clients: dict[tuple[str | None, float], BedrockRuntimeClient] = {}

    def complete(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Completion:
        anthropic = anthropic_traits(request, traits)
        if anthropic is not None:
            return self._invoke_model(request, target, deadline, anthropic)
        params = converse_request(request, target.model_id, traits or ModelTraits())
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with _bedrock_errors(target):
            response = client.converse(**params)
        return completion(response, target.model_id)

    def stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> Iterator[StreamEvent]:
        # Not a generator: invalid requests and failures before Bedrock's 200 raise here, at call time,
        # so the caller gets a plain HTTP error; only failures inside the stream come from the iterator.
        anthropic = anthropic_traits(request, traits)
        if anthropic is not None:
            return self._invoke_model_with_response_stream(request, target, deadline, anthropic)
        # The two request shapes differ only in guardrail settings, which the gateway never sends.
        params = cast(
            "ConverseStreamRequestTypeDef", converse_request(request, target.model_id, traits or ModelTraits())
        )
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with _bedrock_errors(target):
            response = client.converse_stream(**params)
        return _stream_events(response["stream"], target, deadline)

    def count_tokens(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> int | None:
        """The input tokens of a request in Anthropic's dialect for one of Anthropic's models, as Bedrock's
        CountTokens counts them for the InvokeModel body the request would send. CountTokens takes the foundation
        model id, not an inference profile (https://docs.aws.amazon.com/bedrock/latest/userguide/count-tokens.html).

        None, for the gateway to estimate instead, when Bedrock has no count to give: a request of another dialect
        or model, a target naming no foundation model, or a refusal that the same call would meet again (access
        denied, a model or region without CountTokens, a body it refuses). Throttling, timeouts and Bedrock's own
        failures raise as for any call, so that the router retries or falls over to another target.
        """
        anthropic = anthropic_traits(request, traits)
        if anthropic is None:
            return None
        traits = anthropic
        model_id = foundation_model_id(target.model_id)
        if model_id is None:
            return None
        body = encode_body(invoke_model_body(request, traits, counting=True))
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        try:
            with _bedrock_errors(target):
                response = client.count_tokens(modelId=model_id, input={"invokeModel": {"body": body}})
        except (InvalidRequestError, TargetMisconfiguredError) as error:
            logger.info(
                "Bedrock did not count the tokens; the gateway estimates them",
                extra={"target": target.label, "code": error.code},
            )
            return None
        return response["inputTokens"]

    def embed(
        self, request: EmbeddingRequest, target: Target, deadline: Deadline, traits: ModelTraits | None = None
    ) -> EmbeddingResult:
        """The request's vectors from InvokeModel calls in the model's body (providers/bedrock_embeddings.py), as
        many texts per call as the model takes, up to EMBEDDING_CONCURRENCY calls at once, joined in input order."""
        traits = traits or ModelTraits()
        schema = traits.bedrock.embedding_schema
        if schema is None:
            raise TargetMisconfiguredError(
                f"The registry names no embedding body for Bedrock model '{target.model_id}'.",
                code="upstream_model_not_found",
            )
        calls = batches(request, schema, traits.embedding.batch_size)
        client = self._client(target, deadline)

        def call(batch: Batch) -> tuple[list[tuple[float, ...]], int]:
            payload, headers = _invoke_json(client, target, deadline, encode_body(batch.body))
            return vectors_of(payload, batch, schema, target.model_id), input_tokens(payload, headers, batch)

        if len(calls) == 1:
            outcomes = [call(calls[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(EMBEDDING_CONCURRENCY, len(calls))) as pool:
                outcomes = list(pool.map(call, calls))
        vectors, tokens = batched_results(outcomes)
        return EmbeddingResult(vectors, Usage(tokens, 0))

    def _invoke_model(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits
    ) -> Completion:
        body = encode_body(invoke_model_body(request, traits))
        payload, _ = _invoke_json(self._client(target, deadline), target, deadline, body)
        return completion_of(payload, target.model_id)

    def _invoke_model_with_response_stream(
        self, request: ChatRequest, target: Target, deadline: Deadline, traits: ModelTraits
    ) -> Iterator[StreamEvent]:
        body = encode_body(invoke_model_body(request, traits))
        _ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with _bedrock_errors(target):
            response = client.invoke_model_with_response_stream(
                modelId=target.model_id, body=body, contentType="application/json", accept="application/json"
            )
        return _anthropic_stream_events(response["body"], target, deadline)

    def _client(self, target: Target, deadline: Deadline) -> BedrockRuntimeClient:
        # botocore fixes the read timeout per client, so the deadline caps it by choosing the client.
        key = (bedrock_region(target), read_timeout(target, deadline))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._client_factory(*key)
        return client


def _invoke_json(
    client: BedrockRuntimeClient, target: Target, deadline: Deadline, body: bytes
) -> tuple[Any, dict[str, str]]:
    """One InvokeModel call with a JSON body: the parsed answer and the response's HTTP headers (lower-case names)."""
    _ensure_time_left(deadline, target)
    with _bedrock_errors(target):
        response = client.invoke_model(modelId=target.model_id, body=body, contentType=JSON, accept=JSON)
        answer = response["body"]
        try:
            # The answer's bytes arrive while they are read: a stalled read is a timeout like any other.
            data = answer.read()
        finally:
            answer.close()
    try:
        payload = json.loads(data)
    except ValueError:
        raise ProviderError(f"Bedrock model '{target.model_id}' answered with a body that is not JSON.") from None
    return payload, dict(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}))


# --- ConverseStream events -> StreamEvents ----------------------------------------------------------------


def _stream_events(
    stream: EventStream[ConverseStreamOutputTypeDef], target: Target, deadline: Deadline
) -> Iterator[StreamEvent]:
    translator = StreamTranslator()
    events = iter(stream)
    try:
        while True:
            with _bedrock_errors(target):
                event = next(events, None)
            if event is None:
                break
            yield from translator.translate(event)
            # Usage comes last: once it is in, nothing is left to wait for and the stream counts as finished.
            if translator.usage is None and deadline.expired:
                raise ProviderTimeoutError(
                    f"Bedrock model '{target.model_id}' was still streaming when the gateway's time budget ran out."
                )
        if translator.malformed is not None:
            # The output was billed: usage first, so the call is metered from it, then the error.
            if translator.usage is not None:
                yield UsageReport(translator.usage)
            raise malformed_output(translator.malformed, target.model_id)
        if translator.stop_reason is None:
            raise ProviderError(f"Bedrock's stream from model '{target.model_id}' ended before the model finished.")
        if translator.usage is None:
            raise ProviderError(
                f"Bedrock's stream from model '{target.model_id}' ended without token usage, "
                "so the call cannot be metered."
            )
        # Usage is the last thing Bedrock sends, so it is reported once the stream is complete.
        yield UsageReport(translator.usage)
    finally:
        stream.close()


# --- InvokeModelWithResponseStream chunks -> StreamEvents ---------------------------------------------------


def _anthropic_stream_events(
    stream: EventStream[ResponseStreamTypeDef], target: Target, deadline: Deadline
) -> Iterator[StreamEvent]:
    """Anthropic's stream events as Bedrock sends them, each passed on whole and read; usage once it has ended."""
    reader = StreamReader(target.model_id)
    events = iter(stream)
    try:
        while True:
            with _bedrock_errors(target):
                event = next(events, None)
            if event is None:
                break
            # Exception events raise from the iterator (EventStreamError); a chunk is the only other event.
            chunk = event.get("chunk")
            if chunk is not None:
                yield from reader.read(chunk.get("bytes", b""))
            # message_stop comes last: once it is in, nothing is left to wait for.
            if not reader.finished and deadline.expired:
                raise ProviderTimeoutError(
                    f"Bedrock model '{target.model_id}' was still streaming when the gateway's time budget ran out."
                )
        if not reader.finished:
            raise ProviderError(f"Bedrock's stream from model '{target.model_id}' ended before the model finished.")
        usage = reader.usage
        if usage is None:
            raise ProviderError(
                f"Bedrock's stream from model '{target.model_id}' ended without token usage, "
                "so the call cannot be metered."
            )
        if reader.stop_reason is None:
            # message_stop without a stop reason in any message_delta: the answer is whole, its reason unsaid.
            yield Finish("end_turn")
        yield UsageReport(usage)
    finally:
        stream.close()


# --- Bedrock failures -> GatewayErrors --------------------------------------------------------------------


def _ensure_time_left(deadline: Deadline, target: Target) -> None:
    if deadline.remaining() <= 0:
        raise ProviderTimeoutError(
            f"The gateway's time budget ran out before Bedrock model '{target.model_id}' could be called."
        )


@contextmanager
def _bedrock_errors(target: Target) -> Iterator[None]:
    """Re-raise botocore (and, mid-stream, urllib3) failures as the GatewayError the router understands."""
    # Lazy: botocore is already loaded once a client exists, and importing it here keeps cold starts lean.
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )
    from urllib3.exceptions import HTTPError as TransportError
    from urllib3.exceptions import ReadTimeoutError as StreamReadTimeoutError

    try:
        yield
    except ClientError as error:
        raise _client_error(error, target) from error
    # A stalled stream raises urllib3's own ReadTimeoutError mid-iteration, not botocore's wrapper of it.
    except (ReadTimeoutError, StreamReadTimeoutError, ConnectTimeoutError) as error:
        raise ProviderTimeoutError(
            f"Bedrock model '{target.model_id}' did not answer within the time left for it "
            f"({error.__class__.__name__})."
        ) from error
    except NoCredentialsError as error:
        raise TargetMisconfiguredError(
            "The gateway has no AWS credentials to call Bedrock; this is a gateway configuration problem, "
            "not an error in the request.",
            code="upstream_access_denied",
        ) from error
    except ParamValidationError as error:
        # The translated request broke Bedrock's schema: the same request fails the same way every time.
        raise ProviderError(f"The gateway could not build a valid Bedrock request: {error}", retryable=False) from error
    except (BotoCoreError, TransportError) as error:
        raise ProviderError(
            f"Could not reach Bedrock for model '{target.model_id}' ({type(error).__name__})."
        ) from error


def _client_error(error: ClientError, target: Target) -> GatewayError:
    """The caller's error for a Bedrock error response or stream error event, from the error table."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "")
    rule = bedrock_rule(code, message)
    said = _redact(message, target.model_id) or "no details"
    region = bedrock_region(target) or "the function's region"
    text = rule.message.format(model=target.model_id, region=region, said=said, code=code or "unknown error")
    return rule.build(text, retry_after=_retry_after(error))


def _retry_after(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        # Absent, or an HTTP date: let the router choose its own backoff.
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _redact(text: str, model_id: str) -> str:
    """Bedrock's message without ARNs or account ids (the role's ARN appears in access errors), model id kept."""
    return model_id.join(
        _ACCOUNT_ID.sub("<account>", _ANY_ARN.sub("<arn>", piece)) for piece in text.split(model_id)
    ).strip()
