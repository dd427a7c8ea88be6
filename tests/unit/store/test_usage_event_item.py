"""A usage event's DynamoDB item is under 1 KB however the caller fills its strings: one write unit per request."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from llm_gateway.domain.attribution import MAX_LENGTH, MAX_TAG_NAME, MAX_TAG_VALUE, MAX_TAGS, MAX_TAGS_LENGTH
from llm_gateway.domain.stores import UsageEvent
from llm_gateway.gateway import MAX_NAME_LENGTH
from llm_gateway.store.usage_events import event_item

ONE_WRITE_UNIT = 1024


def item_size(item: dict[str, dict[str, str]]) -> int:
    """DynamoDB's item size: each attribute's name in UTF-8 bytes plus its value's (a string's UTF-8 bytes, a
    number's about one byte per two significant digits plus one;
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:
            digits = len(Decimal(value["N"]).as_tuple().digits)
            size += (digits + 1) // 2 + 1
    return size


def worst_case() -> UsageEvent:
    name = "n" * MAX_NAME_LENGTH
    # The longest header there can be: tags of the longest names and values until MAX_TAGS_LENGTH is full.
    tags: list[tuple[str, str]] = []
    for i in range(MAX_TAGS):
        room = MAX_TAGS_LENGTH - len(",".join(f"{n}={v}" for n, v in tags)) - (1 if tags else 0) - MAX_TAG_NAME - 1
        if room <= 0:
            break
        tags.append((f"{i}" * MAX_TAG_NAME, "v" * min(MAX_TAG_VALUE, room)))
    return UsageEvent(
        request_id=name,
        at=datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC),
        key_id=name,
        tenant=name,
        plan=name,
        model=name,
        status=504,
        team=name,
        failed=True,
        prompt_tokens=2_000_000,
        cached_tokens=1_999_999,
        cache_write_tokens=1_999_999,
        completion_tokens=128_000,
        cost_micro_usd=99_999_999_999,
        session_id="s" * MAX_LENGTH,
        end_user="u" * MAX_LENGTH,
        tags=tuple(tags),
    )


def test_the_largest_event_is_one_write_unit() -> None:
    size = item_size(event_item(worst_case(), 1_800_000_000))
    assert size < 800 < ONE_WRITE_UNIT, size


def test_a_typical_event_is_a_fraction_of_it() -> None:
    typical = UsageEvent(
        "c0ffee00-1234-4567-89ab-0123456789ab",
        datetime(2026, 11, 22, 9, tzinfo=UTC),
        "key_5f1c2a9b7e3d",
        "acme",
        "standard",
        "claude-sonnet-4-5",
        200,
        prompt_tokens=1200,
        completion_tokens=300,
        cost_micro_usd=8100,
        session_id="0b7e6c2e-3f7a-4d2b-9c1e-5a6b7c8d9e0f",
    )
    assert item_size(event_item(typical, 1_800_000_000)) < 300
