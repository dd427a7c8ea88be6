"""Who a request is for beyond its key: the Claude Code session it belongs to, the end user its client names and the
tags its caller sets; the usage event that carries them, and a day's events summed into a breakdown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.domain.stores import EVENT_FIGURES, EventGroup, UsageEvent
from llm_gateway.errors import InvalidRequestError

# Claude Code sends it on every request of a session.
SESSION_HEADER = "x-claude-code-session-id"
# `X-Gateway-Tags: project=alpha,env=dev`: free-form attribution the operator allows by tag name (GATEWAY_ALLOWED_TAGS).
TAGS_HEADER = "x-gateway-tags"
# Callers choose these values: bounded so that a usage event stays one DynamoDB write unit (under 800 bytes at worst,
# tests/unit/store/test_usage_event_item.py) and a log line stays short. OpenAI bounds `safety_identifier` to 64
# characters; Claude Code's session ids are UUIDs (36).
MAX_LENGTH = 96
MAX_TAGS = 5
MAX_TAG_NAME = 32
MAX_TAG_VALUE = 64
# The whole header, so that five long tags cannot add up to more than one.
MAX_TAGS_LENGTH = 128
# A tag name or value: letters, digits and . _ - : / @ + (no separators, no spaces, nothing a CSV must quote).
_TAG_TEXT = re.compile(r"[A-Za-z0-9._\-:/@+]+")


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


def allowed_tag_names(setting: str) -> tuple[str, ...]:
    """The operator's tag names (GATEWAY_ALLOWED_TAGS, `project,env`), sorted; ValueError for a malformed one."""
    names = sorted({name.strip() for name in setting.split(",") if name.strip()})
    for name in names:
        if len(name) > MAX_TAG_NAME or not _TAG_TEXT.fullmatch(name):
            raise ValueError(f"tag name {name!r} is not 1-{MAX_TAG_NAME} of letters, digits and . _ - : / @ +")
    return tuple(names)


def tags(headers: Iterable[tuple[str, str]], allowed: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The request's tags (`X-Gateway-Tags: project=alpha,env=dev`) as (name, value) pairs sorted by name.

    Raises InvalidRequestError (param `X-Gateway-Tags`, code `invalid_tags`) naming the allowed names for a malformed
    header, a name the operator does not allow, a name given twice, more than MAX_TAGS tags, or a value that is not
    1-MAX_TAG_VALUE of letters, digits and . _ - : / @ +, or a header longer than MAX_TAGS_LENGTH characters."""
    raw = next((value for name, value in headers if name == TAGS_HEADER), None)
    if raw is None or not raw.strip():
        return ()
    allowed_names = ", ".join(allowed) if allowed else "none (this gateway takes no tags)"

    def refuse(why: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"X-Gateway-Tags {why}; it takes name=value pairs separated by commas, at most {MAX_TAGS} in "
            f"{MAX_TAGS_LENGTH} characters, values 1-{MAX_TAG_VALUE} of letters, digits and . _ - : / @ +; "
            f"allowed tag names: {allowed_names}",
            param="X-Gateway-Tags",
            code="invalid_tags",
        )

    found: dict[str, str] = {}
    if len(raw) > MAX_TAGS_LENGTH:
        raise refuse(f"is longer than {MAX_TAGS_LENGTH} characters")
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) > MAX_TAGS:
        raise refuse(f"has {len(parts)} tags")
    for part in parts:
        name, equals, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name:
            raise refuse(f"has {part[:MAX_TAG_NAME]!r}, not name=value")
        if name not in allowed:
            raise refuse(f"names tag {name[:MAX_TAG_NAME]!r}")
        if name in found:
            raise refuse(f"names tag {name!r} twice")
        if len(value) > MAX_TAG_VALUE or not _TAG_TEXT.fullmatch(value):
            raise refuse(f"gives tag {name!r} an invalid value")
        found[name] = value
    return tuple(sorted(found.items()))


def _attributes(event: UsageEvent) -> tuple[Any, ...]:
    return (event.tenant, event.team, event.plan, event.model, event.session_id, event.end_user, event.tags)


def breakdown(events: Iterable[UsageEvent]) -> list[EventGroup]:
    """A key's events of a day summed per distinct (tenant, team, plan, model, session, end user, tags): every
    report grouping of the day can be answered from these groups exactly, without the events."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for event in events:
        figures = sums.setdefault(_attributes(event), [0] * len(EVENT_FIGURES))
        amounts = (
            1,
            int(event.failed),
            event.prompt_tokens,
            event.cached_tokens,
            event.cache_write_tokens,
            event.completion_tokens,
            event.cost_micro_usd,
        )
        for index, amount in enumerate(amounts):
            figures[index] += amount
    return [
        EventGroup(tenant, team, plan, model, session, user, tags, tuple(figures))
        for (tenant, team, plan, model, session, user, tags), figures in sorted(sums.items(), key=lambda i: repr(i[0]))
    ]
