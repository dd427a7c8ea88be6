"""Who a request is for beyond its key: the Claude Code session it belongs to and the end user its client names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Claude Code sends it on every request of a session.
SESSION_HEADER = "x-claude-code-session-id"
# Callers choose these values: kept to a bounded length in usage records and log lines.
MAX_LENGTH = 256


def _bounded(value: Any) -> str | None:
    return value[:MAX_LENGTH] if isinstance(value, str) and value else None


def session_id(headers: Iterable[tuple[str, str]]) -> str | None:
    """The Claude Code session of a request (`X-Claude-Code-Session-Id`), from its lower-cased headers."""
    return next((_bounded(value) for name, value in headers if name == SESSION_HEADER), None)


def end_user(extra: Mapping[str, Any]) -> str | None:
    """The end user the client names: OpenAI's `safety_identifier` (or its older `user`), Anthropic's
    `metadata.user_id`; the request's uninterpreted top-level fields hold all three as sent."""
    for name in ("safety_identifier", "user"):
        found = _bounded(extra.get(name))
        if found:
            return found
    metadata = extra.get("metadata")
    return _bounded(metadata.get("user_id")) if isinstance(metadata, Mapping) else None
