"""The `encrypted_content` of the items the gateway writes, read back when stateless clients resend them: a
reasoning item's (the provider's signed reasoning; Codex asks for it with `include:
["reasoning.encrypted_content"]`) and a compaction item's (the summary of a compacted conversation).

It is opaque to clients but not secret (a reasoning item's text is in its content too): the provider's own
signature is what makes reasoning valid, so a tampered one is refused by the model, not by the gateway."""

from __future__ import annotations

import base64
import binascii
import json

from llm_gateway.domain.conversation import ReasoningBlock

PREFIX = "llmgw.r1."
COMPACTION_PREFIX = "llmgw.c1."


def _seal(prefix: str, sealed: dict[str, str]) -> str:
    raw = json.dumps(sealed, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return prefix + base64.urlsafe_b64encode(raw).decode("ascii")


def _unseal(prefix: str, content: str) -> dict[str, object] | None:
    if not content.startswith(prefix):
        return None
    try:
        sealed = json.loads(base64.urlsafe_b64decode(content[len(prefix) :].encode("ascii")))
    except (ValueError, binascii.Error):
        return None
    return sealed if isinstance(sealed, dict) else None


def compaction_content(summary: str) -> str:
    """A compaction item's encrypted_content: the summary the model wrote of the conversation."""
    return _seal(COMPACTION_PREFIX, {"summary": summary})


def compaction_summary(content: str) -> str | None:
    """The summary sealed in a compaction item the gateway wrote; None for any other (OpenAI's own)."""
    sealed = _unseal(COMPACTION_PREFIX, content)
    summary = sealed.get("summary") if sealed is not None else None
    return summary if isinstance(summary, str) else None


def encrypted_content(block: ReasoningBlock) -> str | None:
    """The item's encrypted_content for a reasoning block the provider signed or redacted, else None."""
    if block.redacted is not None:
        sealed: dict[str, str] = {"redacted": block.redacted}
    elif block.signature:
        sealed = {"text": block.text, "signature": block.signature}
    else:
        return None
    return _seal(PREFIX, sealed)


def reasoning_block(content: str, path: str) -> ReasoningBlock | None:
    """The reasoning block sealed in an encrypted_content the gateway wrote; None for any other (OpenAI's own)."""
    sealed = _unseal(PREFIX, content)
    if sealed is None:
        return None
    redacted, text, signature = sealed.get("redacted"), sealed.get("text"), sealed.get("signature")
    if isinstance(redacted, str):
        return ReasoningBlock(redacted=redacted, path=path)
    if isinstance(text, str) and isinstance(signature, str):
        return ReasoningBlock(text, signature=signature, path=path)
    return None
