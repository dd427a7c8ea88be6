"""parse_body: every body the decoders refuse is a 400 invalid_json, whichever decoder refused it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from llm_gateway.api.http import parse_body
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest, PromptRequest
from llm_gateway.errors import InvalidRequestError


def not_from_json(self: TypeAdapter[Any], data: Any, **options: Any) -> Any:
    raise NotImplementedError("Cannot check isinstance when validating from json")


@pytest.fixture
def stdlib_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic unable to validate the model from JSON text, as it was for types it checks by isinstance
    (pydantic#8890): Powertools' parser then decodes the body with the standard library's json module
    (`_parse_and_validate_event`, powertools-lambda-python#5303)."""
    monkeypatch.setattr(TypeAdapter, "validate_json", not_from_json)


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}",  # int/str conversion limit: ValueError
        b'{"prompt": "hi",',  # JSONDecodeError
        b"[" * 40_000 + b"]" * 40_000,  # RecursionError (within the container limit)
        b'{"prompt": NaN',
    ],
)
def test_whatever_the_stdlib_decoder_refuses_is_a_400(stdlib_json: None, body: bytes) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_body(body, "application/json", PromptRequest)
    assert (refused.value.status, refused.value.code) == (400, "invalid_json")
    assert refused.value.message.startswith("The request body is not valid JSON")


def test_the_stdlib_decoder_still_parses_good_bodies(stdlib_json: None) -> None:
    assert parse_body(b'{"prompt": "hi", "max_tokens": 7}', None, PromptRequest)[0].max_tokens == 7


@pytest.mark.parametrize("field", ["max_tokens", "temperature", "top_p", "seed", "metadata"])
def test_integer_literals_of_thousands_of_digits_are_400s_in_any_chat_field(field: str) -> None:
    body = b'{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "%s": %s}' % (
        field.encode(),
        b"9" * 5000,
    )
    with pytest.raises(InvalidRequestError) as refused:
        parse_body(body, "application/json", ChatCompletionRequest)
    assert refused.value.code == "invalid_json"


def test_an_integer_literal_of_thousands_of_digits_is_a_400_on_the_prompt_route() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_body(b'{"prompt": "hi", "max_tokens": -' + b"1" * 5000 + b"}", None, PromptRequest)
    assert refused.value.code == "invalid_json"
