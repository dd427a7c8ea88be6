"""Amazon Bedrock provider: chat requests served through the Converse and ConverseStream APIs, requests in
Anthropic's dialect for Anthropic's models through InvokeModel, InvokeModelWithResponseStream and CountTokens, and
embeddings through InvokeModel in each embedding model's own body."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from llm_gateway.domain.answers import Completion, StreamEvent, Usage
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.embeddings import EmbeddingRequest, EmbeddingResult
from llm_gateway.domain.ports import Deadline, Provider
from llm_gateway.domain.registry import ModelTraits, Target
from llm_gateway.errors import (
    InvalidRequestError,
    ProviderError,
    TargetMisconfiguredError,
)
from llm_gateway.observability import logger
from llm_gateway.providers.bedrock.anthropic import (
    anthropic_traits,
    encode_body,
    foundation_model_id,
    invoke_model_body,
)
from llm_gateway.providers.bedrock.anthropic_answer import completion_of
from llm_gateway.providers.bedrock.converse import converse_request
from llm_gateway.providers.bedrock.converse_answer import completion
from llm_gateway.providers.bedrock.embeddings import Batch, batched_results, batches, input_tokens, vectors_of
from llm_gateway.providers.bedrock.stream import AnthropicEvents, ConverseEvents, stream_events

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_bedrock_runtime.type_defs import (
        ConverseStreamRequestTypeDef,
    )
from llm_gateway.providers.bedrock.errors import bedrock_errors, bedrock_region, ensure_time_left

ClientFactory = Callable[[str | None, float], "BedrockRuntimeClient"]
"""Builds a bedrock-runtime client for (region, read timeout in seconds); region None is the function's own."""

CONNECT_TIMEOUT_SECONDS = 3.0
# InvokeModel calls one embedding request makes at once (Titan embeds one text per call).
EMBEDDING_CONCURRENCY = 8
JSON = "application/json"


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
        ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with bedrock_errors(target):
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
        ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with bedrock_errors(target):
            response = client.converse_stream(**params)
        return stream_events(response["stream"], ConverseEvents(), target, deadline)

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
        ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        try:
            with bedrock_errors(target):
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
        ensure_time_left(deadline, target)
        client = self._client(target, deadline)
        with bedrock_errors(target):
            response = client.invoke_model_with_response_stream(
                modelId=target.model_id, body=body, contentType="application/json", accept="application/json"
            )
        return stream_events(response["body"], AnthropicEvents(target.model_id), target, deadline)

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
    ensure_time_left(deadline, target)
    with bedrock_errors(target):
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


# --- InvokeModelWithResponseStream chunks -> StreamEvents ---------------------------------------------------


# --- Bedrock failures -> GatewayErrors --------------------------------------------------------------------
