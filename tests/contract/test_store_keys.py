"""The key records port's contract (domain/stores.py KeyRecords), run against DynamoDB (moto) and SQLite alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from llm_gateway.domain.keys import KeyRecord, TokenLimits, generate_key, hash_key
from llm_gateway.domain.stores import KeyNotFoundError, KeyRecords, KeyStateError
from tests.contract.store_backends import key_records

__all__ = ["key_records"]

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def record(tenant: str = "acme", key_id: str = "key_0123456789ab", **changes: object) -> KeyRecord:
    secret = generate_key()
    values: dict[str, object] = {
        "key_id": key_id,
        "key_hash": hash_key(secret),
        "key_hint": "sk-llmgw-...abcd",
        "tenant": tenant,
        "plan": "standard",
        "models": None,
        "status": "active",
        "created_at": NOW,
        "api_key_id": "apikey1",
        "usage_identifier": "usage-abc",
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_a_created_record_reads_back_whole(key_records: KeyRecords) -> None:
    created = record(
        models=("echo", "gpt"),
        expires_at=NOW + timedelta(days=3),
        rotated_from="sk-llmgw-...zzzz",
        limits=TokenLimits(tokens_per_minute=100, tokens_per_day=1000, usd_per_month=Decimal("2.50")),
    )
    key_records.create(created)
    assert key_records.get_by_hash(created.key_hash) == created
    assert key_records.get_by_id(created.key_id) == created
    assert key_records.get_by_hash(hash_key(generate_key())) is None


def test_a_second_record_with_the_same_secret_is_refused(key_records: KeyRecords) -> None:
    created = record()
    key_records.create(created)
    with pytest.raises(KeyStateError):
        key_records.create(replace(created, key_id="key_other0000000"))
    assert key_records.get_by_hash(created.key_hash) == created


def test_revoking_is_conditional_on_being_active(key_records: KeyRecords) -> None:
    created = record()
    key_records.create(created)
    revoked = key_records.revoke(created, NOW + timedelta(hours=1))
    assert revoked.status == "revoked"
    assert key_records.get_by_hash(created.key_hash) == revoked, "visible to the very next lookup"
    with pytest.raises(KeyStateError):
        key_records.revoke(created, NOW + timedelta(hours=2))


def test_rotation_writes_the_new_record_and_revokes_the_old_or_neither(key_records: KeyRecords) -> None:
    old = record()
    key_records.create(old)
    new = replace(old, key_hash=hash_key(generate_key()), created_at=NOW + timedelta(minutes=1), rotated_from="x")
    key_records.rotate(old, new, NOW + timedelta(minutes=1))
    assert key_records.get_by_id(old.key_id) == new, "the active record wins over the newer revoked one"
    assert key_records.get_by_hash(old.key_hash).status == "revoked"  # type: ignore[union-attr]
    # The old one is no longer active: a second rotation from it changes nothing.
    again = replace(old, key_hash=hash_key(generate_key()))
    with pytest.raises(KeyStateError):
        key_records.rotate(old, again, NOW + timedelta(minutes=2))
    assert key_records.get_by_hash(again.key_hash) is None


def test_update_changes_models_and_limits_and_needs_the_record(key_records: KeyRecords) -> None:
    created = record(models=("echo",), limits=TokenLimits(tokens_per_day=5))
    key_records.create(created)
    updated = key_records.update(created, None, TokenLimits(usd_per_month=Decimal("1.25")))
    assert key_records.get_by_hash(created.key_hash) == updated
    assert updated.models is None and updated.limits == TokenLimits(usd_per_month=Decimal("1.25"))
    missing = record()
    with pytest.raises(KeyNotFoundError):
        key_records.update(missing, None, TokenLimits())


def test_list_by_tenant_sorted_and_unknown_ids(key_records: KeyRecords) -> None:
    second = record("acme", "key_000000000002", created_at=NOW + timedelta(seconds=2))
    first = record("acme", "key_000000000001")
    other = record("beta", "key_000000000003")
    for item in (second, first, other):
        key_records.create(item)
    assert [r.key_id for r in key_records.list()] == [first.key_id, second.key_id, other.key_id]
    assert [r.key_id for r in key_records.list("beta")] == [other.key_id]
    with pytest.raises(KeyNotFoundError):
        key_records.get_by_id("key_unknown00000")
    moved = key_records.set_api_key_id(first, "apikey2")
    assert key_records.get_by_hash(first.key_hash) == moved
    key_records.delete(first)
    assert key_records.get_by_hash(first.key_hash) is None


def test_a_record_carries_its_team(key_records: KeyRecords) -> None:
    """The key's chain in the budget tree (team, then tenant) is on its record: the authorizer reads nothing else."""
    created = record(team="platform")
    key_records.create(created)
    assert key_records.get_by_hash(created.key_hash) == created
    assert key_records.get_by_id(created.key_id).team == "platform"


def test_a_key_moves_team(key_records: KeyRecords) -> None:
    created = record(team="platform")
    key_records.create(created)
    moved = key_records.set_team(created, "research")
    assert moved.team == "research" and key_records.get_by_hash(created.key_hash) == moved
    assert key_records.set_team(moved, None).team is None
    assert key_records.get_by_id(created.key_id).team is None
    with pytest.raises(KeyNotFoundError):
        key_records.set_team(record(key_id="key_ffffffffffff", team="x"), "y")


def test_a_rotation_with_a_grace_period_keeps_the_old_record_until_its_revoked_at(key_records: KeyRecords) -> None:
    old = record()
    key_records.create(old)
    new = replace(old, key_hash=hash_key(generate_key()), created_at=NOW + timedelta(minutes=1), rotated_from="x")
    ends = NOW + timedelta(hours=1)
    previous = key_records.rotate(old, new, ends)
    stored = key_records.get_by_hash(old.key_hash)
    assert stored == previous and stored is not None
    assert (stored.status, stored.revoked_at) == ("revoked", ends)
    assert stored.is_retiring(NOW + timedelta(minutes=59)) and stored.is_revoked(ends)
    assert [r.key_hash for r in key_records.records_of(old.key_id)] == [old.key_hash, new.key_hash]
    assert key_records.records_of("key_unknown00000") == []
    # A second rotation ends the first grace no later than its own, in the same transaction.
    newer = replace(new, key_hash=hash_key(generate_key()), created_at=NOW + timedelta(minutes=2))
    key_records.rotate(new, newer, NOW + timedelta(minutes=2), [stored])
    assert key_records.get_by_hash(old.key_hash).revoked_at == NOW + timedelta(minutes=2)  # type: ignore[union-attr]
    key_records.end_grace([key_records.get_by_hash(new.key_hash)], NOW + timedelta(minutes=3))  # type: ignore[list-item]
    assert key_records.get_by_hash(new.key_hash).revoked_at == NOW + timedelta(minutes=3)  # type: ignore[union-attr]
    with pytest.raises(KeyStateError):
        key_records.end_grace([newer], NOW)
    assert key_records.get_by_hash(newer.key_hash) == newer, "an active record is never given a grace end"


def test_a_failed_rotation_ends_no_grace(key_records: KeyRecords) -> None:
    old = record()
    key_records.create(old)
    retiring = record(status="revoked", revoked_at=NOW + timedelta(days=1))
    key_records.create(retiring)
    taken = record(key_id="key_other0000000")
    key_records.create(taken)
    collision = replace(old, key_hash=taken.key_hash)
    with pytest.raises(KeyStateError):
        key_records.rotate(old, collision, NOW, [retiring])
    assert key_records.get_by_hash(retiring.key_hash) == retiring
    assert key_records.get_by_hash(old.key_hash) == old


def test_plan_and_expiry_are_set_and_cleared(key_records: KeyRecords) -> None:
    created = record(expires_at=NOW + timedelta(days=1))
    key_records.create(created)
    moved = key_records.set_plan(created, "premium")
    assert key_records.get_by_hash(created.key_hash) == moved and moved.plan == "premium"
    later = key_records.set_expiry(moved, NOW + timedelta(days=30))
    assert key_records.get_by_hash(created.key_hash) == later and later.expires_at == NOW + timedelta(days=30)
    cleared = key_records.set_expiry(later, None)
    assert key_records.get_by_hash(created.key_hash) == cleared and cleared.expires_at is None
    with pytest.raises(KeyNotFoundError):
        key_records.set_plan(record(key_id="key_ffffffffffff"), "free")
    with pytest.raises(KeyNotFoundError):
        key_records.set_expiry(record(key_id="key_ffffffffffff"), None)


def test_more_graces_than_one_dynamodb_transaction_holds_are_ended(key_records: KeyRecords) -> None:
    """A key rotated often with long graces can hold more retiring secrets than TransactWriteItems' 100 items."""
    active = record()
    key_records.create(active)
    retiring = [record(status="revoked", revoked_at=NOW + timedelta(days=7)) for _ in range(120)]
    for item in retiring:
        key_records.create(item)
    new = replace(active, key_hash=hash_key(generate_key()), created_at=NOW + timedelta(minutes=1))
    key_records.rotate(active, new, NOW, retiring)
    assert {key_records.get_by_hash(r.key_hash).revoked_at for r in retiring} == {NOW}  # type: ignore[union-attr]
    key_records.end_grace(retiring, NOW - timedelta(minutes=1))
    assert {key_records.get_by_hash(r.key_hash).revoked_at for r in retiring} == {NOW - timedelta(minutes=1)}  # type: ignore[union-attr]
