from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

import pytest

from llm_gateway.domain.keys import (
    KEY_PREFIX,
    Authenticator,
    Denial,
    KeyRecord,
    generate_key,
    hash_key,
    key_hint,
    looks_like_key,
    presented_key,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_keys_have_the_scannable_prefix_and_at_least_128_random_bits() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        assert looks_like_key(key)
        secret = key.removeprefix(KEY_PREFIX)
        assert len(secret) * math.log2(64) >= 128


def test_hash_is_sha256_hex_and_the_hint_shows_only_four_characters() -> None:
    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key not in hash_key(key)
    assert key_hint(key) == f"sk-llmgw-...{key[-4:]}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-api-key": "sk-a"}, "sk-a"),
        ({"X-API-Key": " sk-a "}, "sk-a"),
        ({"Authorization": "Bearer sk-b"}, "sk-b"),
        ({"authorization": "bearer   sk-b"}, "sk-b"),
        ({"x-api-key": "sk-a", "Authorization": "Bearer sk-b"}, "sk-a"),
        ({"Authorization": "Basic dXNlcg=="}, None),
        ({"Authorization": "Bearer "}, None),
        ({"x-api-key": ""}, None),
        ({}, None),
    ],
)
def test_presented_key_from_either_header(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


class FakeLookup:
    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.calls = 0

    def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        self.calls += 1
        return self.records.get(key_hash)


def record_for(key: str, **changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "key_id": "key_1",
        "key_hash": hash_key(key),
        "key_hint": key_hint(key),
        "tenant": "acme",
        "plan": "standard",
        "models": None,
        "status": "active",
        "created_at": NOW,
        "api_key_id": "apikey1",
        "usage_identifier": "usage-1",
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.monotonic = 0.0
        self.now = NOW


@pytest.fixture
def setup() -> tuple[FakeLookup, Clock, Authenticator, str]:
    lookup, clock, key = FakeLookup(), Clock(), generate_key()
    authenticator = Authenticator(lookup, cache_seconds=30, clock=lambda: clock.now, monotonic=lambda: clock.monotonic)
    return lookup, clock, authenticator, key


def test_decisions(setup: tuple[FakeLookup, Clock, Authenticator, str]) -> None:
    lookup, _, authenticator, key = setup
    assert authenticator.authenticate(None) == Denial("missing")
    assert authenticator.authenticate("sk-not-ours") == Denial("malformed")
    assert authenticator.authenticate(key) == Denial("unknown")
    lookup.records[hash_key(key)] = record_for(key)
    assert isinstance(authenticator.authenticate(key), KeyRecord)
    assert lookup.calls == 2, "malformed keys never reach the store"


def test_expired_key_is_denied_immediately_even_from_cache(setup: tuple[FakeLookup, Clock, Authenticator, str]) -> None:
    lookup, clock, authenticator, key = setup
    lookup.records[hash_key(key)] = record_for(key, expires_at=NOW + timedelta(minutes=5))
    assert isinstance(authenticator.authenticate(key), KeyRecord)
    clock.now = NOW + timedelta(minutes=5)
    assert authenticator.authenticate(key) == Denial("expired")


def test_revocation_takes_effect_when_the_cache_entry_ages_out(
    setup: tuple[FakeLookup, Clock, Authenticator, str],
) -> None:
    lookup, clock, authenticator, key = setup
    lookup.records[hash_key(key)] = record_for(key)
    assert isinstance(authenticator.authenticate(key), KeyRecord)
    lookup.records[hash_key(key)] = record_for(key, status="revoked")
    clock.monotonic = 29.9
    assert isinstance(authenticator.authenticate(key), KeyRecord), "served from cache within the TTL"
    assert lookup.calls == 1
    clock.monotonic = 30.0
    assert authenticator.authenticate(key) == Denial("revoked")
    assert lookup.calls == 2


def test_a_rotated_out_secret_serves_until_its_grace_ends_to_the_second_even_from_cache(
    setup: tuple[FakeLookup, Clock, Authenticator, str],
) -> None:
    lookup, clock, authenticator, key = setup
    ends = NOW + timedelta(seconds=90)
    lookup.records[hash_key(key)] = record_for(key, status="revoked", revoked_at=ends)
    served = authenticator.authenticate(key)
    assert isinstance(served, KeyRecord) and served.is_retiring(NOW)
    clock.now = ends - timedelta(microseconds=1)
    assert isinstance(authenticator.authenticate(key), KeyRecord)
    clock.now = ends
    assert authenticator.authenticate(key) == Denial("revoked"), "the cached record's own time ends it"
    assert lookup.calls == 1


def test_a_revoked_record_without_a_time_is_refused() -> None:
    """Fail closed: only a revoked_at still ahead keeps a revoked secret serving."""
    key = generate_key()
    assert record_for(key, status="revoked").is_revoked(NOW)
    assert record_for(key, status="revoked", revoked_at=NOW).is_revoked(NOW)
    assert not record_for(key, status="revoked", revoked_at=NOW + timedelta(seconds=1)).is_revoked(NOW)
    assert not record_for(key).is_retiring(NOW)
