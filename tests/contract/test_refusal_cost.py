"""Refusing is cheaper than serving: the prompt estimate prices each distinct piece once, in bounded memory, and a
prompt that a cheap lower bound already puts beyond a limit is refused before the estimate is made (issue #19)."""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_gateway import metering
from llm_gateway.domain import estimate, tokens
from llm_gateway.domain.budget import ReservationTooLargeError
from llm_gateway.domain.estimate import estimate_prompt_tokens, prompt_tokens_floor
from llm_gateway.domain.registry import ContextLimits
from llm_gateway.domain.tokens import estimate_text_tokens, text_tokens_floor
from llm_gateway.errors import ContextLengthExceededError
from tests.conftest import Handler
from tests.contract.conftest import Stack
from tests.contract.test_metering import (  # noqa: F401 (counting_echo: a fixture)
    PRICES,
    CountingEcho,
    caller,
    counting_echo,
    meter_for,
    usage_item,
)
from tests.fakes.proxy_events import call, chat_event
from tests.fakes.requests import openai_chat

CORPUS = json.loads((Path(__file__).resolve().parents[2] / "bench" / "token_corpus.json").read_text(encoding="utf-8"))
PIECES = ["word", " ", "  ", "0", " 7", ".", "-", "_", "Ab", "HTTP", "é", "中", "\u3000", "\n", "\x01", "😀"]
PIECES += ["abcdefghijklmnopqrstuvwxyz0A", "snake_case_identifier_name", "a1b2c3d4e5f6a7b8c9"]


def mixed_texts(count: int, length: int, seed: int = 19) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(PIECES, k=rng.randint(0, length))) for _ in range(count)]


def test_each_distinct_piece_is_priced_once_however_often_it_occurs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt of digits ("0 0 0 ...") was priced piece by piece: 4.6 s of CPU for 4.8 MB before its 400."""
    priced: list[str] = []
    whitespace = tokens._whitespace

    def spy(piece: str, following: str) -> float:
        priced.append(piece)
        return whitespace(piece, following)

    monkeypatch.setattr(tokens, "_whitespace", spy)
    assert estimate_text_tokens("0 " * 50_000) == 50_000 + 2 * 50_000 - 1  # a digit, a space and its +1 each
    assert priced == [" ", " "], "once before a digit, once at the end"


@pytest.mark.parametrize("text", mixed_texts(60, 2_000), ids=lambda text: f"{len(text)}-pieces")
def test_the_estimate_does_not_depend_on_where_chunks_end(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    whole = estimate_text_tokens(text)
    monkeypatch.setattr(tokens, "CHUNK_CHARACTERS", 37)
    assert estimate_text_tokens(text) == whole


def test_a_piece_longer_than_a_chunk_is_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "CHUNK_CHARACTERS", 64)
    key = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=1000))
    assert estimate_text_tokens(key) == 800, "one random run: 0.8 tokens a character"


@pytest.mark.parametrize("text", [sample["text"] for sample in CORPUS] + mixed_texts(200, 300, seed=4))
def test_the_floor_is_never_above_the_estimate(text: str) -> None:
    assert text_tokens_floor(text) <= estimate_text_tokens(text)


def test_the_prompt_floor_is_never_above_the_prompt_estimate() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    for text in mixed_texts(40, 200, seed=5):
        request = openai_chat(
            {
                "model": "echo",
                "tools": tools,
                "messages": [{"role": "system", "content": text}, {"role": "user", "content": text}],
            }
        )
        assert prompt_tokens_floor(request) <= estimate_prompt_tokens(request)


def test_a_prompt_beyond_the_context_window_is_refused_by_its_floor(stack: Stack) -> None:
    request = openai_chat({"model": "echo", "messages": [{"role": "user", "content": "0 " * 10_000}]})
    with pytest.raises(ContextLengthExceededError) as refused:
        meter_for(stack).refuse_oversized_prompt(request, caller(), ContextLimits(context_window=2_000), PRICES)
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        400,
        "context_length_exceeded",
        "messages",
    )


def test_a_prompt_beyond_the_monthly_spend_is_refused_by_its_floor(stack: Stack) -> None:
    request = openai_chat({"model": "echo", "messages": [{"role": "user", "content": "word " * 40_000}]})
    with pytest.raises(ReservationTooLargeError) as refused:
        meter_for(stack).refuse_oversized_prompt(request, caller(usd_per_month=Decimal("0.01")), None, PRICES)
    assert (refused.value.code, refused.value.param) == ("request_exceeds_budget", "messages")


def test_a_prompt_within_every_limit_by_its_floor_is_left_to_the_estimate(stack: Stack) -> None:
    request = openai_chat({"model": "echo", "messages": [{"role": "user", "content": "0 " * 1_000}]})
    meter_for(stack).refuse_oversized_prompt(
        request, caller(tokens_per_day=600), ContextLimits(context_window=600), PRICES
    )


@pytest.mark.usefixtures("counting_echo")
def test_a_prompt_past_the_keys_window_is_refused_before_the_estimate(
    stack: Stack, api_handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API handler: 200 KB of digits on a key with 10,000 tokens a day is a 400 naming the prompt, and
    the full estimate is never made."""

    def never(*_: Any) -> int:
        raise AssertionError("the full estimate was made")

    monkeypatch.setattr(estimate, "estimate_text_tokens", never)
    monkeypatch.setattr(metering, "estimate_prompt_tokens", never)
    body = {"model": "echo", "max_tokens": 1, "messages": [{"role": "user", "content": "0 " * 100_000}]}
    response = call(api_handler, chat_event(body, tokensPerDay=10_000))
    error = json.loads(response["body"])["error"]
    assert (response["statusCode"], error["code"], error["param"]) == (400, "request_exceeds_budget", "messages")
    assert "at least 50007 tokens" in error["message"]
    assert CountingEcho.calls == 0
    assert usage_item(stack, "key_5f1c2a9b7e3d", "2026-11") == {}
