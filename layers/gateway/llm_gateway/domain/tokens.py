"""Token estimates that bound real tokenizers from above, without a tokenizer: text, images and documents.

Pure and stdlib only: it runs before every model call in the API function, so it loads nothing and calls
nothing. `bench/estimate.py` measures the text estimate against tiktoken's cl100k_base and o200k_base and the
Claude tokenizer litellm ships, over the corpus in `bench/token_corpus.json`; `tests/unit/domain/test_tokens.py`
pins it above the counts recorded there.

How the text estimate is built. Byte-level BPE tokenizers (all three above) cut text into pieces (letters,
digits, punctuation, whitespace) before merging bytes, no token spans two pieces, and no piece costs more
tokens than its UTF-8 bytes. The estimate charges each piece by kind, at rates measured on the corpus:
- ASCII letters: a token per started four letters (2.8 in text whose letters carry diacritics: the Claude
  tokenizer cuts French, German or Polish words into pieces of two or three letters); words in capitals a
  token per two letters; runs that look random (base64, hex digests, keys) 0.8 tokens per character;
- digits: a token per started two (cl100k and o200k group digits by three, the Claude tokenizer by fewer),
  and one for a space before them (cl100k and o200k never join it);
- punctuation and control characters: a token each;
- whitespace: a token per stretch of one repeated character (runs of spaces or newlines are single tokens),
  none for a single space before a letter or an ASCII symbol (joined to it);
- CJK ideographs, kana and Hangul: 1.6 tokens per character; any other non-ASCII character 0.7 tokens per
  UTF-8 byte (of its NFKC form where that is longer), below the one token per byte that bounds them all.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from functools import cache

# One alternation, one pass: each match is one piece of the kinds described above. The second group holds the
# character after a whitespace piece (its cost depends on it), empty for every other kind.
_PIECES = re.compile(
    r"([A-Za-z0-9+/_=-]{16,}"  # random-looking run (or words joined by - and _, priced as such)
    r"|[A-Z]{2,}(?![a-z])"  # capitals
    r"|[A-Z]?[a-z]+|[A-Z]"  # letters
    r"|[0-9]+"  # digits
    r"|\s+(?=(.?))"  # whitespace, and what follows it
    r"|[!-/:-@\[-`{-~]+"  # punctuation
    r"|[^\x00-\x7f]+"  # non-ASCII
    r"|[\x00-\x1f\x7f]+)",  # control characters
    re.DOTALL,
)
RANDOM_RUN_MIN = 16
_RANDOM_ALPHABET = re.compile(r"[A-Za-z0-9+/_=-]+")
# Pieces are counted chunk by chunk, so that a text of many short pieces never holds more than a chunk's worth
# of them in memory, and each distinct piece is priced once.
CHUNK_CHARACTERS = 1 << 16
_ASCII_SYMBOL = re.compile(r"[!-/:-@\[-`{-~]")
_SAME_CHARACTER = re.compile(r"(.)\1*", re.DOTALL)
# What makes a run of base64-alphabet characters random: case switching inside words, letters next to digits,
# and base64's own + / = (hyphens and underscores join words in identifiers, so they do not count).
_SWITCH = re.compile(r"[a-z][A-Z]|[A-Za-z][0-9]|[0-9][A-Za-z]|[+/=]")
_RUN_PARTS = re.compile(r"[A-Za-z]+|[0-9]+|[^A-Za-z0-9]+")

# English words are mostly one token in all three vocabularies; words of other Latin-script languages are cut
# into pieces of two or three letters by the Claude tokenizer. A text is taken as the latter when at least one
# letter in a hundred carries a diacritic.
LETTERS_PER_TOKEN_ENGLISH = 4
LETTERS_PER_TOKEN_OTHER_LATIN = 2.8
DIACRITICS_PER_LETTER_FOR_OTHER_LATIN = 0.01
# Words in capitals (acronyms, shouting) are cut much finer: 2.4 letters per token measured on dictionary words.
CAPITALS_PER_TOKEN = 2
DIGITS_PER_TOKEN = 2
# A run of one repeated whitespace character is one token up to 64 characters (spaces, newlines); tabs merge
# less.
SPACES_PER_TOKEN = 64
TABS_PER_TOKEN = 8
# Random-looking runs (base64, hex digests, API keys, UUIDs) were measured at up to 0.73 tokens per character.
RANDOM_TOKENS_PER_CHARACTER = 0.8
# CJK ideographs, kana and Hangul syllables: at most 1.41 tokens per character measured (classical Chinese).
CJK_TOKENS_PER_CHARACTER = 1.6
# Every other non-ASCII character, per UTF-8 byte of its NFKC form (what the Claude tokenizer normalizes to):
# at most 0.62 measured (emoji, Greek, Thai); never more than 1, one byte per token being the worst case.
NON_ASCII_TOKENS_PER_BYTE = 0.7


def estimate_text_tokens(text: str) -> int:
    """An upper bound of the tokens `text` costs in cl100k_base, o200k_base and the Claude tokenizer, in tokens.

    Measured, not proven: text of random letters (no language), random ideographs or random Hangul can cost up to
    1.9 times the estimate (`bench/estimate.py --stress`); on every sample of the corpus the estimate is at least
    the real count. Linear in the text's length whatever its kind: pieces are counted by the regular expression
    engine and each distinct piece priced once (`bench/estimate.py --timing` gives the cost per character by kind).
    """
    # Summed in tenths of a token, exactly: every rate above is a multiple of a tenth.
    tenths = 0
    diacritics = 0
    word_lengths: Counter[int] = Counter()
    for (piece, following), count in _piece_counts(text).items():
        first = piece[0]
        cost: float
        if len(piece) >= RANDOM_RUN_MIN and _RANDOM_ALPHABET.fullmatch(piece):
            cost = _random_run(piece, word_lengths, count)
        elif first.isspace():
            cost = _whitespace(piece, following)
        elif first.isascii() and first.isalpha():
            if len(piece) == 1 or not piece.isupper():
                word_lengths[len(piece)] += count
                continue
            cost = math.ceil(len(piece) / CAPITALS_PER_TOKEN)
        elif first.isascii() and first.isdigit():
            cost = math.ceil(len(piece) / DIGITS_PER_TOKEN)
        elif first.isascii():
            cost = len(piece)  # punctuation, control characters
        else:
            cost, letters_with_diacritics = _non_ascii(piece)
            diacritics += count * letters_with_diacritics
        tenths += count * round(cost * 10)
    ascii_letters = sum(length * count for length, count in word_lengths.items())
    other_latin = diacritics > 0 and diacritics >= DIACRITICS_PER_LETTER_FOR_OTHER_LATIN * (ascii_letters + diacritics)
    per_token = LETTERS_PER_TOKEN_OTHER_LATIN if other_latin else LETTERS_PER_TOKEN_ENGLISH
    tenths += 10 * sum(math.ceil(length / per_token) * count for length, count in word_lengths.items())
    return -(-tenths // 10)


# ASCII whitespace: the only characters a single piece may cost less than a quarter of a token for.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def text_tokens_floor(text: str) -> int:
    """A lower bound of `estimate_text_tokens(text)`, in tokens, at a small fraction of its cost (one `str.count`
    pass per whitespace character and digit): every character but ASCII whitespace costs the estimate at least a
    quarter of a token (letters in English words, the cheapest), a digit at least half (random runs 0.8,
    punctuation and control characters one, non-ASCII characters at least 0.7). For refusing a request whose
    prompt alone exceeds a limit before estimating it."""
    blank = sum(text.count(character) for character in _ASCII_WHITESPACE)
    digits = sum(text.count(digit) for digit in "0123456789")
    return (len(text) - blank + digits) // LETTERS_PER_TOKEN_ENGLISH


def _piece_counts(text: str) -> Counter[tuple[str, str]]:
    """How often each piece occurs in `text`, with the character after it for whitespace pieces ("" otherwise).

    Each chunk's pieces are found by one `findall`; the last pieces of a chunk that the chunk's end may have cut
    or changed (a match looks at most RANDOM_RUN_MIN characters, or its own length and one, ahead) are left to
    the next chunk, which starts where they start, so the pieces are those of the whole text."""
    counts: Counter[tuple[str, str]] = Counter()
    start, size, length = 0, CHUNK_CHARACTERS, len(text)
    while start < length:
        end = min(length, start + size)
        pieces = _PIECES.findall(text, start, end)
        if end < length:
            kept, position = len(pieces), end
            while kept:
                piece_start = position - len(pieces[kept - 1][0])
                if piece_start + max(RANDOM_RUN_MIN, len(pieces[kept - 1][0]) + 1) <= end:
                    break
                position, kept = piece_start, kept - 1
            if not kept:
                size *= 2  # one piece longer than the chunk: a long run, so few pieces
                continue
            del pieces[kept:]
            end = position
        counts.update(pieces)
        start, size = end, CHUNK_CHARACTERS
    return counts


def _random_run(piece: str, word_lengths: Counter[int], count: int = 1) -> float:
    """A run of base64-alphabet characters: random when its characters switch class at least once in six (base64,
    hex, keys), else words and numbers joined by underscores or hyphens, priced as such (its words go to
    `word_lengths`, `count` times)."""
    if len(_SWITCH.findall(piece)) * 6 >= len(piece):
        return RANDOM_TOKENS_PER_CHARACTER * len(piece)
    total = 0.0
    for part in _RUN_PARTS.finditer(piece):
        sub = part.group()
        if sub[0].isalpha():
            word_lengths[len(sub)] += count
        elif sub[0].isdigit():
            total += math.ceil(len(sub) / DIGITS_PER_TOKEN)
        else:
            total += len(sub)
    return total


@cache
def _scripts() -> re.Pattern[str]:
    """Non-ASCII text by script. Compiled at first use: its large character ranges take milliseconds to
    compile, which requests in ASCII never pay."""
    cjk = r"\u3000-\u32ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff"
    latin = r"\u00c0-\u024f\u1e00-\u1eff"
    return re.compile(rf"(?P<cjk>[{cjk}]+)|(?P<latin>[{latin}]+)|(?P<other>[^{cjk}{latin}]+)")


def _non_ascii(piece: str) -> tuple[float, int]:
    """Tokens of a run of non-ASCII characters, and how many of them are Latin letters with diacritics."""
    tokens = 0.0
    diacritics = 0
    for match in _scripts().finditer(piece):
        run = match.group()
        if match.lastgroup == "cjk":
            tokens += CJK_TOKENS_PER_CHARACTER * len(run)
        elif match.lastgroup == "latin":
            diacritics += len(run)
            tokens += NON_ASCII_TOKENS_PER_BYTE * len(run.encode("utf-8"))
        else:
            tokens += NON_ASCII_TOKENS_PER_BYTE * _bytes(run)
    return tokens, diacritics


def _bytes(piece: str) -> int:
    """UTF-8 bytes of the piece as the tokenizers see it: as sent (tiktoken) or NFKC-normalized (the Claude
    tokenizer; compatibility characters such as U+FDFA expand to many)."""
    raw = len(piece.encode("utf-8", "surrogatepass"))
    return max(raw, len(unicodedata.normalize("NFKC", piece).encode("utf-8", "surrogatepass")))


def _whitespace(piece: str, following: str) -> float:
    """A whitespace run: one token per stretch of one repeated ASCII character, except a single space before a
    letter or an ASCII symbol, which the tokenizers join to what follows; other spaces (no-break, em, ideographic)
    as any non-ASCII character (cl100k spends two tokens on each em space). A run ending in a space before a digit
    costs one more: cl100k and o200k never join a space to the digits after it."""
    if piece == " " and following and (following.isalpha() or _ASCII_SYMBOL.match(following)):
        return 0.0
    total = 1.0 if piece[-1] == " " and "0" <= following <= "9" else 0.0
    for run in _SAME_CHARACTER.finditer(piece):
        character = run.group(1)
        if not character.isascii():
            total += NON_ASCII_TOKENS_PER_BYTE * len(run.group().encode("utf-8"))
        else:
            total += math.ceil(len(run.group()) / (TABS_PER_TOKEN if character == "\t" else SPACES_PER_TOKEN))
    return total


# Images. Anthropic: tokens = width x height / 750 after the image is scaled to a long edge of at most 1568 px
# and at most about 1,600 tokens (https://docs.anthropic.com/en/docs/build-with-claude/vision, "Evaluate image
# size"). OpenAI (GPT-4o family, detail high or auto): the image is fitted within 2048 x 2048, then its shortest
# side scaled to 768 px; 170 tokens per 512 px tile plus 85, and 85 alone at detail low
# (https://platform.openai.com/docs/guides/images-vision, "Calculating costs"). The estimate is the larger.
CLAUDE_PIXELS_PER_TOKEN = 750
CLAUDE_LONG_EDGE = 1568
CLAUDE_MAX_IMAGE_TOKENS = 1600
OPENAI_TILE = 512
OPENAI_TOKENS_PER_TILE = 170
OPENAI_BASE_IMAGE_TOKENS = 85
# The most any image costs under both formulas: what an image of unknown size is charged.
MAX_IMAGE_TOKENS = CLAUDE_MAX_IMAGE_TOKENS


def claude_image_tokens(width: int, height: int) -> int:
    """Tokens of a `width` x `height` pixel image for Claude models (formula and scaling rule above)."""
    scale = min(1.0, CLAUDE_LONG_EDGE / max(width, height, 1))
    tokens = math.ceil(width * scale * height * scale / CLAUDE_PIXELS_PER_TOKEN)
    return max(1, min(tokens, CLAUDE_MAX_IMAGE_TOKENS))


def openai_image_tokens(width: int, height: int, detail: str | None = None) -> int:
    """Tokens of a `width` x `height` pixel image for GPT-4o-family models at `detail` (low, high, auto/None)."""
    if detail == "low":
        return OPENAI_BASE_IMAGE_TOKENS
    fit = min(1.0, 2048 / max(width, height, 1))
    fitted_width, fitted_height = width * fit, height * fit
    shortest = min(fitted_width, fitted_height)
    if shortest > 768:
        fitted_width, fitted_height = fitted_width * 768 / shortest, fitted_height * 768 / shortest
    tiles = math.ceil(fitted_width / OPENAI_TILE) * math.ceil(fitted_height / OPENAI_TILE)
    return OPENAI_BASE_IMAGE_TOKENS + OPENAI_TOKENS_PER_TILE * tiles


def image_tokens(size: tuple[int, int] | None, detail: str | None = None) -> int:
    """An upper bound of an image's tokens for the providers above; `size` is (width, height) in pixels, None
    when unknown (then MAX_IMAGE_TOKENS)."""
    if size is None:
        return MAX_IMAGE_TOKENS
    width, height = size
    return max(claude_image_tokens(width, height), openai_image_tokens(width, height, detail))


# Documents (PDF). Claude reads each page both as extracted text and as an image of the page
# (https://docs.anthropic.com/en/docs/build-with-claude/pdf-support, "Estimate your costs": "typically
# 1,500-3,000 tokens per page"); the page image is bounded as any image, the text as text. Without the text,
# each page is charged the documented 3,000.
TOKENS_PER_PAGE_WITHOUT_TEXT = 3000


def document_tokens(pages: int, text: str | None = None) -> int:
    """An upper bound of a PDF's tokens: `pages` page images plus its extracted `text` (or, when the text is
    not known, TOKENS_PER_PAGE_WITHOUT_TEXT per page)."""
    if text is None:
        return pages * TOKENS_PER_PAGE_WITHOUT_TEXT
    return pages * MAX_IMAGE_TOKENS + estimate_text_tokens(text)
