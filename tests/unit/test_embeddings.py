"""Embeddings: the request read from OpenAI's body, fitted to the model, served by echo, Bedrock (Titan Text
Embeddings v2 and Cohere Embed v3 through botocore's Stubber) and OpenAI-compatible upstreams; through the API
function in tests/contract/test_embeddings_through_handler.py."""

from __future__ import annotations

import array
import base64
import io
import json
import math
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llm_gateway.config import shipped_registry_text
from llm_gateway.dialects.openai_embeddings.answer import embedding_list, encode_base64
from llm_gateway.dialects.openai_embeddings.request import embedding_request
from llm_gateway.dialects.openai_embeddings.schemas import EmbeddingsRequest
from llm_gateway.domain.answers import Usage
from llm_gateway.domain.embeddings import (
    EmbeddingRequest,
    EmbeddingResult,
    UnsupportedEmbeddingInputError,
    estimate_input_tokens,
    fit_embedding_request,
)
from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import EmbeddingTraits, ModelRegistry, Target
from llm_gateway.errors import GatewayError, ProviderError, ProviderRateLimitError, ProviderRequestError
from llm_gateway.providers.bedrock import provider as bedrock_module
from llm_gateway.providers.bedrock.provider import BedrockProvider, default_client
from llm_gateway.providers.echo import EchoProvider
from llm_gateway.providers.openai.provider import OpenAICompatProvider
from tests.fakes.bedrock_transport import JsonBody
from tests.fakes.openai_server import FakeOpenAIServer, error_json

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

SHIPPED = ModelRegistry.model_validate_json(shipped_registry_text())
TITAN = SHIPPED.get("titan-embed-text-v2")
COHERE = SHIPPED.get("cohere-embed-english-v3")
ECHO = SHIPPED.get("echo-embedding")
JSON = "application/json"


def request(body: dict[str, Any]) -> EmbeddingRequest:
    """The internal request the route makes of an OpenAI embeddings body."""
    text = json.dumps(body)
    return embedding_request(EmbeddingsRequest.model_validate_json(text), text)


def deadline() -> Deadline:
    return Deadline.after(60)


# --- reading OpenAI's body --------------------------------------------------------------------------------------


def test_the_four_input_forms_become_one_batch_and_extras_are_kept() -> None:
    assert request({"model": "m", "input": "one"}).inputs == ("one",)
    assert request({"model": "m", "input": ["a", "b"]}).inputs == ("a", "b")
    assert request({"model": "m", "input": [1, 2, 3]}).inputs == ((1, 2, 3),)
    tokens = request({"model": "m", "input": [[1, 2], [3]]})
    assert (tokens.inputs, tokens.tokenized) == (((1, 2), (3,)), True)
    read = request({"model": "m", "input": "x", "dimensions": 64, "user": "u1", "input_type": "search_query"})
    assert read.dimensions == 64
    assert dict(read.extra) == {"user": "u1", "input_type": "search_query"}
    assert read.native is not None and read.native.body["input"] == "x"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": ""},
        {"model": "m", "input": []},
        {"model": "m", "input": [""]},
        {"model": "m", "input": [[]]},
        {"model": "m", "input": ["a", 1]},
        {"model": "m", "input": [True]},
        {"model": "m", "input": [-1]},
        {"model": "m", "input": ["x"] * 2049},
        {"model": "m", "input": "x", "encoding_format": "int8"},
        {"model": "m", "input": "x", "dimensions": 0},
        {"input": "x"},
    ],
)
def test_what_openai_refuses_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmbeddingsRequest.model_validate_json(json.dumps(body))


def test_the_estimate_reserves_texts_from_above_and_token_arrays_exactly() -> None:
    assert estimate_input_tokens(request({"model": "m", "input": [[1, 2, 3], [4]]})) == 4
    assert estimate_input_tokens(request({"model": "m", "input": "one two three"})) >= 3


# --- the model's rules ------------------------------------------------------------------------------------------


def test_requests_are_fitted_to_the_models_limits() -> None:
    titan = TITAN.traits.embedding
    assert fit_embedding_request(request({"model": "t", "input": "hi", "dimensions": 512}), titan).dimensions == 512
    with pytest.raises(UnsupportedEmbeddingInputError) as size:
        fit_embedding_request(request({"model": "t", "input": "hi", "dimensions": 100}), titan)
    assert (size.value.status, size.value.param, size.value.code) == (400, "dimensions", "unsupported_value")
    with pytest.raises(UnsupportedEmbeddingInputError) as long:
        fit_embedding_request(request({"model": "t", "input": ["ok", "x" * 50_001]}), titan)
    assert (long.value.param, long.value.code) == ("input[1]", "input_too_long")
    cohere = COHERE.traits.embedding
    # Cohere's one size: asking for it changes nothing and is not sent; another is a 400.
    assert fit_embedding_request(request({"model": "c", "input": "hi", "dimensions": 1024}), cohere).dimensions is None
    with pytest.raises(UnsupportedEmbeddingInputError):
        fit_embedding_request(request({"model": "c", "input": "hi", "dimensions": 256}), cohere)
    with pytest.raises(UnsupportedEmbeddingInputError) as many:
        fit_embedding_request(request({"model": "c", "input": ["x"] * 3}), EmbeddingTraits(max_inputs=2))
    assert many.value.param == "input"
    with pytest.raises(UnsupportedEmbeddingInputError) as tokens:
        fit_embedding_request(request({"model": "c", "input": [[1] * 600]}), cohere)
    assert tokens.value.param == "input"
    # A model whose sizes nobody stated (an OpenAI-compatible upstream): its provider decides.
    assert fit_embedding_request(request({"model": "u", "input": "hi", "dimensions": 7}), EmbeddingTraits()).dimensions


# --- echo ---------------------------------------------------------------------------------------------------------


def test_echo_embeds_deterministically_in_unit_float32_vectors() -> None:
    echo = EchoProvider()
    target = ECHO.targets[0]
    first = echo.embed(
        request({"model": "e", "input": ["same text", "other", "same text"]}), target, deadline(), ECHO.traits
    )
    vectors = first.vectors
    assert vectors[0] == vectors[2] != vectors[1]
    assert all(len(vector) == 256 for vector in vectors)
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-5)
    assert list(array.array("f", base64.b64decode(encode_base64(vectors[1])))) == list(vectors[1]), "float32 exactly"
    assert first.usage == Usage(5, 0)
    sized = echo.embed(request({"model": "e", "input": [[5, 6, 7]], "dimensions": 64}), target, deadline(), ECHO.traits)
    assert (len(sized.vectors[0]), sized.usage.prompt_tokens) == (64, 3)


def test_floats_are_written_as_few_digits_as_a_float32_needs() -> None:
    vector = tuple(array.array("f", [0.06392259895801544, -1e-7, 3.0, 0.1]))
    text = embedding_list(EmbeddingResult((vector,), Usage(1, 0)), model="m", encoding="float")
    written = json.loads(text)["data"][0]["embedding"]
    assert '"embedding":[0.063922599,-1.00000001e-07,3.0,0.100000001]' in text
    assert array.array("f", written) == array.array("f", vector), "each reads back as the same float32"
    with pytest.raises(ProviderError):
        embedding_list(EmbeddingResult(((math.nan,),), Usage(1, 0)), model="m", encoding="float")


def test_the_answer_is_openais_list_in_floats_or_base64() -> None:
    result = EmbeddingResult(((0.5, -0.25),), Usage(3, 0))
    floats = json.loads(embedding_list(result, model="m", encoding="float"))
    assert floats == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    encoded = json.loads(embedding_list(result, model="m", encoding="base64"))["data"][0]["embedding"]
    assert list(array.array("f", base64.b64decode(encoded))) == [0.5, -0.25]


# --- Bedrock, through botocore's Stubber ------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap in the stubbing must fail the test, not reach AWS."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an embeddings unit test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def client(no_network: None) -> BedrockRuntimeClient:
    return default_client("us-east-1", 30.0)


@pytest.fixture
def bedrock(client: BedrockRuntimeClient, monkeypatch: pytest.MonkeyPatch) -> BedrockProvider:
    # One call at a time, so Stubber's queue of answers meets the calls in the order of the inputs.
    monkeypatch.setattr(bedrock_module, "EMBEDDING_CONCURRENCY", 1)
    return BedrockProvider(client_factory=lambda region, timeout: client)


@pytest.fixture
def stubber(client: BedrockRuntimeClient) -> Iterator[Stubber]:
    with Stubber(client) as stubbed:
        yield stubbed
        stubbed.assert_no_pending_responses()


def invoked(model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"modelId": model_id, "body": JsonBody(body), "contentType": JSON, "accept": JSON}


def answer(payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    response: dict[str, Any] = {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": JSON}
    if headers is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": headers}
    return response


TITAN_ID = "amazon.titan-embed-text-v2:0"
COHERE_ID = "cohere.embed-english-v3"


def test_titan_embeds_one_text_per_call_with_its_size_and_count(bedrock: BedrockProvider, stubber: Stubber) -> None:
    stubber.add_response(
        "invoke_model",
        answer({"embedding": [0.1, 0.2], "inputTextTokenCount": 4, "embeddingsByType": {"float": [0.1, 0.2]}}),
        invoked(TITAN_ID, {"inputText": "first text", "dimensions": 256, "normalize": False}),
    )
    stubber.add_response(
        "invoke_model",
        answer({"embedding": [0.3, 0.4], "inputTextTokenCount": 2}),
        invoked(TITAN_ID, {"inputText": "second", "dimensions": 256, "normalize": False}),
    )
    body = {"model": "titan-embed-text-v2", "input": ["first text", "second"], "dimensions": 256, "normalize": False}
    fitted = fit_embedding_request(request(body), TITAN.traits.embedding)
    result = bedrock.embed(fitted, TITAN.targets[0], deadline(), TITAN.traits)
    assert result.vectors == ((0.1, 0.2), (0.3, 0.4))
    assert result.usage == Usage(6, 0)


def test_titan_calls_run_side_by_side_and_keep_the_inputs_order(
    client: BedrockRuntimeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent calls (as deployed): each answer is read from its own call, so the order holds."""

    def invoke_model(**params: Any) -> dict[str, Any]:
        text = json.loads(params["body"])["inputText"]
        return answer({"embedding": [float(len(text))], "inputTextTokenCount": len(text)})

    monkeypatch.setattr(client, "invoke_model", invoke_model)
    provider = BedrockProvider(client_factory=lambda region, timeout: client)
    texts = ["x" * n for n in range(1, 21)]
    result = provider.embed(request({"model": "t", "input": texts}), TITAN.targets[0], deadline(), TITAN.traits)
    assert [vector[0] for vector in result.vectors] == [float(n) for n in range(1, 21)]
    assert result.usage.prompt_tokens == sum(range(1, 21))


def test_cohere_takes_96_texts_a_call_and_its_input_type(bedrock: BedrockProvider, stubber: Stubber) -> None:
    texts = [f"text {n}" for n in range(100)]
    stubber.add_response(
        "invoke_model",
        answer(
            {"embeddings": [[0.5]] * 96, "id": "a", "response_type": "embeddings_floats", "texts": texts[:96]},
            {"x-amzn-bedrock-input-token-count": "192"},
        ),
        invoked(COHERE_ID, {"texts": texts[:96], "input_type": "search_query", "truncate": "END"}),
    )
    # The answer shape when embedding types are named: vectors under "float".
    stubber.add_response(
        "invoke_model",
        answer(
            {"embeddings": {"float": [[0.25]] * 4}, "response_type": "embeddings_by_type"},
            {"x-amzn-bedrock-input-token-count": "8"},
        ),
        invoked(COHERE_ID, {"texts": texts[96:], "input_type": "search_query", "truncate": "END"}),
    )
    body = {"model": "cohere-embed-english-v3", "input": texts, "input_type": "search_query", "truncate": "END"}
    result = bedrock.embed(request(body), COHERE.targets[0], deadline(), COHERE.traits)
    assert result.vectors == ((0.5,),) * 96 + ((0.25,),) * 4
    assert result.usage == Usage(200, 0)


def test_cohere_defaults_to_documents_and_without_a_count_the_estimate_is_billed(
    bedrock: BedrockProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "invoke_model",
        answer({"embeddings": [[0.5]]}),
        invoked(COHERE_ID, {"texts": ["index this document"], "input_type": "search_document"}),
    )
    body = {"model": "cohere-embed-english-v3", "input": "index this document", "user": "labels are not sent"}
    result = bedrock.embed(request(body), COHERE.targets[0], deadline(), COHERE.traits)
    assert result.usage.prompt_tokens >= 3


@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        ("titan", {"input": [[1, 2, 3]]}, "input"),
        ("titan", {"input": "x", "input_type": "search_query"}, "input_type"),
        ("titan", {"input": "x", "normalize": "yes"}, "normalize"),
        ("cohere", {"input": "x", "input_type": "poetry"}, "input_type"),
        ("cohere", {"input": "x", "truncate": "MIDDLE"}, "truncate"),
        ("cohere", {"input": "x", "embedding_types": ["int8"]}, "embedding_types"),
    ],
)
def test_what_the_model_cannot_take_is_a_400_naming_it(
    bedrock: BedrockProvider, model: str, body: dict[str, Any], param: str
) -> None:
    entry = TITAN if model == "titan" else COHERE
    with pytest.raises(UnsupportedEmbeddingInputError) as refused:
        bedrock.embed(request({"model": model, **body}), entry.targets[0], deadline(), entry.traits)
    assert (refused.value.status, refused.value.param) == (400, param)


@pytest.mark.parametrize(
    ("code", "message", "error", "status"),
    [
        ("ValidationException", "Too many input tokens. Max input tokens: 8192", ProviderRequestError, 400),
        ("ThrottlingException", "Too many requests", ProviderRateLimitError, 429),
        ("AccessDeniedException", "not authorized", ProviderError, 502),
        ("ModelTimeoutException", "timed out", ProviderError, 504),
    ],
)
def test_bedrock_errors_map_through_the_error_table(
    bedrock: BedrockProvider, stubber: Stubber, code: str, message: str, error: type[GatewayError], status: int
) -> None:
    stubber.add_client_error("invoke_model", service_error_code=code, service_message=message, http_status_code=400)
    with pytest.raises(error) as raised:
        bedrock.embed(request({"model": "t", "input": "x"}), TITAN.targets[0], deadline(), TITAN.traits)
    assert raised.value.status == status


def test_an_answer_without_one_vector_per_text_is_a_502(bedrock: BedrockProvider, stubber: Stubber) -> None:
    stubber.add_response("invoke_model", answer({"embeddings": [[0.1]]}))
    with pytest.raises(ProviderError) as raised:
        bedrock.embed(request({"model": "c", "input": ["a", "b"]}), COHERE.targets[0], deadline(), COHERE.traits)
    assert raised.value.status == 502


# --- OpenAI-compatible upstreams ----------------------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def test_the_callers_body_goes_upstream_under_the_targets_model_asking_for_floats(upstream: FakeOpenAIServer) -> None:
    target = Target(provider="openai", model_id="text-embedding-3-small", base_url=upstream.base_url)
    body = {"model": "small", "input": ["a b", "c"], "encoding_format": "base64", "dimensions": 4, "user": "u"}
    result = OpenAICompatProvider().embed(request(body), target, deadline())
    sent = upstream.last_request
    assert sent.path.endswith("/embeddings")
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["a b", "c"],
        "encoding_format": "float",
        "dimensions": 4,
        "user": "u",
    }
    assert [len(vector) for vector in result.vectors] == [4, 4]
    assert result.usage == Usage(3, 0)


def test_base64_answers_are_decoded_and_missing_usage_estimated(upstream: FakeOpenAIServer) -> None:
    vector = encode_base64([0.5, 0.25])
    upstream.enqueue(json={"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}]})
    target = Target(provider="openai", model_id="m", base_url=upstream.base_url)
    result = OpenAICompatProvider().embed(request({"model": "m", "input": [[1, 2, 3]]}), target, deadline())
    assert result.vectors == ((0.5, 0.25),)
    assert result.usage == Usage(3, 0), "a token array is its own count"
    assert upstream.last_request.body["input"] == [[1, 2, 3]], "token arrays pass through"


def test_upstream_refusals_keep_their_status_and_code(upstream: FakeOpenAIServer) -> None:
    upstream.enqueue(status=400, json=error_json("input too long", param="input"))
    target = Target(provider="openai", model_id="m", base_url=upstream.base_url)
    with pytest.raises(GatewayError) as refused:
        OpenAICompatProvider().embed(request({"model": "m", "input": "x"}), target, deadline())
    assert (refused.value.status, refused.value.param) == (400, "input")
    upstream.enqueue(json={"object": "list", "data": []})
    with pytest.raises(ProviderError):
        OpenAICompatProvider().embed(request({"model": "m", "input": "x"}), target, deadline())
