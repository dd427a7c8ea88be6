"""The one prompt estimate: an upper bound of the tokens a request's prompt costs (its text through
`domain/tokens.py`, its images by size, its documents by pages, every other field the model reads), its cheap lower
bound, and the usage recorded for a call its provider did not meter.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable

from llm_gateway.domain.answers import Usage
from llm_gateway.domain.conversation import ChatRequest, DocumentBlock, ImageBlock, OpaqueBlock
from llm_gateway.domain.tokens import document_tokens, estimate_text_tokens, image_tokens, text_tokens_floor

# The chat format's framing: 3 tokens per message (role and separators) and 1 more for a `name`, plus 3 that
# prime the reply (OpenAI's cookbook, "How to count tokens with tiktoken":
# https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken).
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
# Enough of a data URL's base64 to reach the image's dimensions (a JPEG's frame header follows its metadata).
IMAGE_HEADER_BASE64_CHARS = 65536
# Base64 data inside content blocks the gateway does not interpret (input_audio...): see _opaque_tokens.
LONG_DATA_CHARS = 1024
BASE64_CHARS_PER_TOKEN = 1000
_BASE64_PREFIX = re.compile(r"[A-Za-z0-9+/=\s]+")
# A PDF's page objects ("/Type /Page", not the "/Type /Pages" tree nodes).
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-z])")
# Request fields that are no model input: everything else (tools, response_format and its JSON schema,
# vendor extras passed through to OpenAI-compatible upstreams) is read by the model and billed as prompt.
_NOT_INPUT = frozenset({"user", "metadata", "n", "store", "service_tier", "prompt_cache_key", "safety_identifier"})


def _read_texts(request: ChatRequest) -> list[str]:
    """The texts the model reads: the conversation's, and the JSON of tools, stop sequences and other fields."""
    texts = list(request.texts())
    tools = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in request.tools]
    read = {name: value for name, value in request.extra.items() if name not in _NOT_INPUT and value is not None}
    texts += [json.dumps(part, ensure_ascii=False, default=str) for part in (tools, read, list(request.stop)) if part]
    return texts


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """An upper bound of the prompt's tokens (see `domain/tokens.py` for the bound and how it is measured): the
    conversation's text and every other field the model reads (tool definitions, response_format schemas, vendor
    extras, content blocks of kinds the gateway does not interpret), plus TOKENS_PER_MESSAGE per message (the
    system prompt is one) and REPLY_PRIMING_TOKENS; each image by its size (read from its header; a remote or
    unreadable image counts as the largest); each inline document by its pages."""
    texts = _read_texts(request)
    tokens = sum(estimate_text_tokens(text) for text in texts)
    for block in request.blocks():
        if isinstance(block, ImageBlock):
            detail = block.extra.get("detail")
            tokens += image_tokens(_image_size(block), detail if isinstance(detail, str) else None)
        elif isinstance(block, DocumentBlock) and block.base64 is not None:
            tokens += _document_tokens(block.media_type, block.base64)
        elif isinstance(block, OpaqueBlock):
            tokens += _opaque_tokens(block.data)
    messages = len(request.messages) + (1 if request.system else 0)
    return tokens + TOKENS_PER_MESSAGE * messages + REPLY_PRIMING_TOKENS


def estimated_usage(prompt_tokens: int, produced: Iterable[str]) -> Usage:
    """Usage for a call its provider did not meter: `prompt_tokens` (the request's `estimate_prompt_tokens`, as its
    reservation counted it) and the text estimate of what the model `produced` (text, reasoning, tool names and
    arguments). Both bound real tokenizers from above, so an unmetered call is never recorded as cheaper than it
    was; the usage is marked `estimated`."""
    return Usage(prompt_tokens, sum(estimate_text_tokens(text) for text in produced), estimated=True)


def prompt_tokens_floor(request: ChatRequest) -> int:
    """A lower bound of `estimate_prompt_tokens(request)` at a fraction of its cost (`text_tokens_floor` of the same
    texts; images, documents and opaque blocks counted as nothing): a request whose floor is beyond a limit is
    beyond it, whatever the full estimate says."""
    messages = len(request.messages) + (1 if request.system else 0)
    tokens = sum(text_tokens_floor(text) for text in _read_texts(request))
    return tokens + TOKENS_PER_MESSAGE * messages + REPLY_PRIMING_TOKENS


def _decoded(data: str, limit: int | None = None) -> bytes:
    """The bytes of base64 `data` (its first `limit` characters), b"" when it is not base64."""
    encoded = "".join(data[:limit].split()) if limit else "".join(data.split())
    try:
        return base64.b64decode(encoded[: len(encoded) // 4 * 4])
    except ValueError:
        return b""


def _image_size(block: ImageBlock) -> tuple[int, int] | None:
    """(width, height) of an inline image from its header, None for a remote URL or an unknown format."""
    from llm_gateway.domain.images import image_dimensions

    data = block.base64
    if data is None and block.url is not None and block.url.startswith("data:") and ";base64," in block.url:
        data = block.url.split(";base64,", 1)[1]
    if data is None:
        return None
    return image_dimensions(_decoded(data, IMAGE_HEADER_BASE64_CHARS))


def _document_tokens(media_type: str | None, data: str) -> int:
    """A PDF by its pages (Claude reads each as text and as an image); a plain-text document as its text; any
    other format (Word, Excel...) as text of one token per byte, which its compressed XML never exceeds."""
    raw = _decoded(data)
    if media_type == "application/pdf":
        return document_tokens(max(1, len(_PDF_PAGE.findall(raw))))
    if media_type is not None and media_type.startswith("text/"):
        return estimate_text_tokens(raw.decode("utf-8", "replace"))
    return len(raw)


def _opaque_tokens(value: object) -> int:
    """A content block the gateway does not interpret, as the text of its JSON, except long base64 data (audio,
    files): about one token per 1,000 characters, above what audio models charge (OpenAI's gpt-4o audio input:
    about 10 tokens a second; a second of 32 kbit/s audio is 5,300 base64 characters)."""
    if isinstance(value, str):
        if len(value) >= LONG_DATA_CHARS and _BASE64_PREFIX.fullmatch(value[:LONG_DATA_CHARS]):
            return math.ceil(len(value) / BASE64_CHARS_PER_TOKEN)
        return estimate_text_tokens(value)
    if isinstance(value, dict):
        return sum(estimate_text_tokens(str(name)) + _opaque_tokens(inner) for name, inner in value.items())
    if isinstance(value, list):
        return sum(_opaque_tokens(inner) for inner in value)
    return estimate_text_tokens(json.dumps(value, default=str))
