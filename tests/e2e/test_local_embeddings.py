"""Retrieval-augmented apps against the local gateway: the official openai SDK's embeddings (floats and base64),
models.retrieve, the rate-limit headers through with_raw_response, and LangChain's OpenAIEmbeddings, over HTTP."""

from __future__ import annotations

import array
import math
from typing import Any

import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from openai import OpenAI

from tests.e2e.conftest import LocalGateway
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.e2e

DOCUMENTS = ["The gateway meters every key.", "Embeddings come from the same gateway.", "Browsers need CORS."]


def client(gateway: LocalGateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)


def test_the_sdk_embeds_in_floats_and_in_base64_with_the_same_numbers(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    decoded = sdk.embeddings.create(model="echo-embedding", input=DOCUMENTS)  # base64 on the wire, the SDK's default
    floats = sdk.embeddings.create(model="echo-embedding", input=DOCUMENTS, encoding_format="float")
    assert [item.index for item in floats.data] == [0, 1, 2]
    # The same float32 numbers: base64 carries them bit for bit, floats in 9 significant digits, which read back
    # as a float32 give the same value.
    assert [array.array("f", item.embedding) for item in decoded.data] == [
        array.array("f", item.embedding) for item in floats.data
    ]
    assert all(math.isclose(sum(x * x for x in item.embedding), 1.0, rel_tol=1e-5) for item in floats.data)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 14  # echo: a token per word
    small = sdk.embeddings.create(model="echo-embedding", input=[[9906, 1917]], dimensions=64)
    assert (len(small.data[0].embedding), small.usage.prompt_tokens) == (64, 2), "token arrays, and a chosen size"
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.embeddings.create(model="echo", input="a chat model cannot embed")
    assert (refused.value.status_code, refused.value.code) == (400, "unsupported_model")


def test_models_retrieve_and_a_404_in_openais_shape(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    model = sdk.models.retrieve("echo-embedding")
    assert (model.id, model.object, model.owned_by) == ("echo-embedding", "model", "llm-gateway")
    assert sdk.models.retrieve("fake-upstream").id == "fake-upstream"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("gpt-17-ultra")
    assert (missing.value.code, missing.value.body) == (  # type: ignore[union-attr]
        "model_not_found",
        {
            "message": missing.value.body["message"],  # type: ignore[index]
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        },
    )


def test_with_raw_response_reads_the_rate_limit_headers(local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    first = sdk.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "how many left?"}]
    )
    second = sdk.embeddings.with_raw_response.create(model="echo-embedding", input="and now?")
    assert first.parse().choices[0].message.content == "how many left?"
    assert len(second.parse().data) == 1
    for raw in (first, second):
        headers = raw.headers
        # The demo key's plan (standard): 1,000 requests a day, 100,000 tokens a minute.
        assert headers["x-ratelimit-limit-requests"] == "1000"
        assert headers["x-ratelimit-limit-tokens"] == "100000"
        assert headers["x-ratelimit-reset-requests"].endswith("s") and headers["x-ratelimit-reset-tokens"].endswith("s")
    before = int(first.headers["x-ratelimit-remaining-requests"])
    assert int(second.headers["x-ratelimit-remaining-requests"]) == before - 1
    assert 0 < int(second.headers["x-ratelimit-remaining-tokens"]) < 100_000
    listed = sdk.models.with_raw_response.list()
    assert listed.headers["x-ratelimit-limit-requests"] == "1000"


def langchain(gateway: LocalGateway, **settings: Any) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model="echo-embedding",
        base_url=gateway.base_url,
        api_key=gateway.key,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
        **settings,
    )


def test_langchain_embeds_documents_and_queries(local_gateway: LocalGateway) -> None:
    # LangChain counts tokens with tiktoken before sending unless told not to; tiktoken downloads its vocabulary,
    # which this machine cannot, and Bedrock's models take text only: texts are sent as they are.
    embeddings = langchain(local_gateway)
    vectors = embeddings.embed_documents(DOCUMENTS)
    assert [len(vector) for vector in vectors] == [256, 256, 256]
    query = embeddings.embed_query(DOCUMENTS[1])
    nearest = max(range(len(vectors)), key=lambda i: sum(a * b for a, b in zip(vectors[i], query, strict=True)))
    assert nearest == 1, "the same text embeds to the same vector"
    sized = langchain(local_gateway, dimensions=128)
    assert len(sized.embed_query("short")) == 128


def test_an_openai_compatible_upstream_serves_embeddings_through_the_gateway(
    local_gateway: LocalGateway, upstream: FakeOpenAIServer
) -> None:
    sdk = client(local_gateway)
    result = sdk.embeddings.create(model="fake-embedding", input=["two words", "three more words"], dimensions=4)
    assert [len(item.embedding) for item in result.data] == [4, 4]
    assert (result.model, result.usage.prompt_tokens) == ("fake-embedding", 5)
    sent = upstream.last_request
    assert sent.path.endswith("/embeddings")
    assert sent.body["model"] == "text-embedding-fake" and sent.body["encoding_format"] == "float"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret-for-e2e", "the target's key, not the caller's"
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.embeddings.create(model="fake-upstream", input="a chat model")
    assert refused.value.code == "unsupported_model"
