"""The prompt estimate bounds real tokenizers: pinned above the counts recorded in bench/token_corpus.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.domain.tokens import (
    MAX_IMAGE_TOKENS,
    claude_image_tokens,
    document_tokens,
    estimate_text_tokens,
    image_tokens,
    openai_image_tokens,
)

CORPUS = json.loads((Path(__file__).resolve().parents[3] / "bench" / "token_corpus.json").read_text(encoding="utf-8"))
KINDS = {sample["kind"] for sample in CORPUS}


@pytest.mark.parametrize("sample", CORPUS, ids=lambda sample: f"{sample['kind']}/{sample['name']}")
def test_the_estimate_is_at_least_every_recorded_real_count(sample: dict[str, Any]) -> None:
    """Counts by cl100k_base, o200k_base and the Claude tokenizer, recorded by `bench/estimate.py --record`."""
    estimate = estimate_text_tokens(sample["text"])
    assert set(sample["counts"]) == {"cl100k_base", "o200k_base", "claude"}
    for tokenizer, real in sample["counts"].items():
        assert estimate >= real, f"{tokenizer} counts {real} tokens, the estimate only {estimate}"


def test_the_corpus_covers_every_kind_of_text_the_issue_names() -> None:
    assert {
        "prose-en",
        "prose-latin",
        "code",
        "json",
        "chinese",
        "japanese",
        "korean",
        "emoji",
        "whitespace-punct",
        "digits",
        "base64",
    } <= KINDS
    assert all(sum(s["kind"] == kind for s in CORPUS) >= 2 for kind in KINDS), "a few samples each"


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        pytest.param(" ".join(["a"] * 190), 190, id="one-letter-words-are-a-token-each"),
        pytest.param("一二三四五六七八九十" * 10, 150, id="cjk-is-more-than-a-token-per-character"),
        pytest.param("HTTP API JSON YAML", 8, id="capitals-are-cut-finer"),
        pytest.param("", 0, id="nothing"),
    ],
)
def test_text_the_old_four_characters_per_token_under_counted(text: str, at_least: int) -> None:
    assert estimate_text_tokens(text) >= at_least
    assert estimate_text_tokens(text) > len(text) // 4 or not text


def test_a_compatibility_character_is_charged_as_the_claude_tokenizer_expands_it() -> None:
    """U+FDFA is one character of 3 bytes; NFKC (the Claude tokenizer's normalizer) makes it 18 of 33 bytes."""
    assert estimate_text_tokens("\ufdfa") >= 0.7 * 33


def test_image_formulas() -> None:
    # Anthropic's table: 1092 x 1092 is about 1,590 tokens; 200 x 200 about 54.
    assert claude_image_tokens(1092, 1092) == 1590
    assert claude_image_tokens(200, 200) == 54
    assert claude_image_tokens(4000, 4000) == 1600, "scaled down to the cap"
    # OpenAI's worked examples: 1024 x 1024 high is 765 tokens; 2048 x 4096 high is 1105; low is 85.
    assert openai_image_tokens(1024, 1024) == 765
    assert openai_image_tokens(2048, 4096) == 1105
    assert openai_image_tokens(4096, 8192, "low") == 85
    assert image_tokens((1024, 1024)) == max(claude_image_tokens(1024, 1024), 765)
    assert image_tokens(None) == MAX_IMAGE_TOKENS
    assert all(image_tokens((w, h)) <= MAX_IMAGE_TOKENS for w in (1, 300, 768, 2048, 9000) for h in (1, 512, 8000))


def test_document_formula() -> None:
    assert document_tokens(3) == 9000
    assert document_tokens(2, "two short pages") == 2 * MAX_IMAGE_TOKENS + estimate_text_tokens("two short pages")
