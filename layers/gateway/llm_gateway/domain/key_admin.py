"""Key administration: API Gateway keys on usage plans and key records, kept consistent with each other.

The admin API and `gatewayctl serve` run it; API Gateway is reached through `ApiGatewayKeys`, the part of boto3's
client it calls (a real client on a stack, the local gateway's control plane under `make run`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from llm_gateway.domain.key_plans import ApiGatewayKeys, KeyAdminFailure, PartialFailureError, move_plan
from llm_gateway.domain.keys import (
    KEY_PREFIX,
    KeyRecord,
    TokenLimits,
    generate_key,
    generate_key_id,
    generate_usage_identifier,
    hash_key,
    key_hint,
    looks_like_key,
    utcnow,
)
from llm_gateway.domain.stores import BudgetTree, KeyRecords, KeyStateError
from llm_gateway.errors import InvalidRequestError

__all__ = ["ApiGatewayKeys", "KeyAdmin", "KeyAdminError", "KeyAdminFailure", "PartialFailureError"]

KeyFilter = Literal["active", "retiring", "revoked", "expired"]
# The longest overlap of an old and a new secret: long enough to roll a secret out to every client of a week's
# deploy cycle, short enough that a rotation retires the old secret (two keys that both live on are two keys).
MAX_GRACE = timedelta(days=7)


class KeyAdminError(InvalidRequestError):
    """400: the operation cannot be done as asked; nothing was changed."""

    default_code = "invalid_key_request"


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the secret (shown once, never stored) and its record."""

    key: str
    record: KeyRecord
    # A rotation's old secret: revoked as of its `revoked_at`, the end of its grace period.
    previous: KeyRecord | None = None


@dataclass(frozen=True)
class Revocation:
    record: KeyRecord
    warning: str | None = None


class KeyAdmin:
    def __init__(
        self,
        store: KeyRecords,
        apigateway: ApiGatewayKeys,
        plans: dict[str, str],
        clock: Callable[[], datetime] = utcnow,
        tree: BudgetTree | None = None,
    ) -> None:
        self._tree = tree
        self._store = store
        self._apigateway = apigateway
        self._plans = plans
        self._clock = clock

    @property
    def plans(self) -> list[str]:
        return sorted(self._plans)

    def create(
        self,
        tenant: str,
        plan: str,
        models: Sequence[str] | None = None,
        *,
        expires_at: datetime | None = None,
        limits: TokenLimits | None = None,
        key: str | None = None,
        team: str | None = None,
    ) -> IssuedKey:
        """Create the API Gateway key, put it on the plan's usage plan, then write the record.

        Any failure removes what was already created; if that removal fails too, PartialFailureError
        names the leftover API Gateway key. `key` imports a given secret instead of generating one.
        """
        if key is not None and not looks_like_key(key):
            raise KeyAdminError(f"A gateway key is {KEY_PREFIX} followed by 43 characters of A-Z a-z 0-9 _ -")
        self.plan_of(plan)
        if not tenant.strip():
            raise KeyAdminError("The tenant must not be empty", param="tenant")
        if team is not None:
            self.check_team(team, tenant)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise KeyAdminError("The expiry must be in the future", param="expires_at")
        key, key_id, usage_identifier = key or generate_key(), generate_key_id(), generate_usage_identifier()
        api_key_id = self._apigateway.create_api_key(
            name=f"{tenant}-{key_id}",
            description=f"llm-gateway key {key_id} of tenant {tenant}",
            enabled=True,
            value=usage_identifier,
            tags={"llm-gateway:key-id": key_id, "llm-gateway:tenant": tenant},
        )["id"]
        record = KeyRecord(
            key_id=key_id,
            key_hash=hash_key(key),
            key_hint=key_hint(key),
            tenant=tenant,
            plan=plan,
            models=tuple(models) if models else None,
            status="active",
            created_at=now,
            expires_at=expires_at,
            api_key_id=api_key_id,
            usage_identifier=usage_identifier,
            limits=limits or TokenLimits(),
            team=team,
        )
        on_plan = False
        try:
            self._apigateway.create_usage_plan_key(usagePlanId=self._plans[plan], keyId=api_key_id, keyType="API_KEY")
            on_plan = True
            self._store.create(record)
        except Exception as failure:
            # A refused conditional write means another record holds this secret: ours was not written.
            written = False if isinstance(failure, KeyStateError) else self._record_written(record)
            if written:
                # The write landed even though the call failed (e.g. a lost response): the key is complete.
                return IssuedKey(key, record)
            if written is None:
                raise PartialFailureError(
                    f"Creating key {key_id} failed ({failure}) and whether its record was written cannot be "
                    f"checked now. Its API Gateway key {api_key_id} was kept so that a written record is not "
                    f"left without one. Run 'gatewayctl keys show {key_id}': if the key is unknown, remove the "
                    f"leftover with: aws apigateway delete-api-key --api-key {api_key_id}"
                ) from failure
            self._remove_api_key(api_key_id, self._plans[plan] if on_plan else None, failure)
            raise KeyAdminFailure(f"Creating the key failed and was rolled back: {failure}") from failure
        return IssuedKey(key, record)

    def list(
        self,
        tenant: str | None = None,
        *,
        team: str | None = None,
        plan: str | None = None,
        status: KeyFilter | None = None,
        query: str | None = None,
    ) -> list[KeyRecord]:
        """The keys matching every given filter, sorted by tenant then creation (the store's order). `status`
        expired: active records past their expiry (their stored status stays active); `query` matches the key id,
        hint, tenant or team, case-insensitively."""
        now = self._clock()
        return [
            record
            for record in self._store.list(tenant)
            if _matches(record, now, team=team, plan=plan, status=status, query=query)
        ]

    def plan_of(self, name: str) -> str:
        """The usage plan's name, checked (KeyAdminError names the plans)."""
        if name not in self._plans:
            raise KeyAdminError(f"Unknown plan '{name}'; plans: {', '.join(self.plans)}", param="plan")
        return name

    def show(self, key_id: str) -> KeyRecord:
        return self._store.get_by_id(key_id)

    def revoke(self, key_id: str) -> Revocation:
        """Revoke the record (the authorizer stops accepting it) and disable its API Gateway key. Old secrets still
        in a rotation's grace period are refused from now too."""
        record = self._store.get_by_id(key_id)
        now = self._clock()
        if record.status == "active":
            self._store.end_grace(self._retiring(key_id, now), now)
        revoked = self._store.revoke(record, now)
        try:
            self._apigateway.update_api_key(
                apiKey=record.api_key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
            )
        except Exception as failure:
            return Revocation(
                revoked,
                f"The key is revoked, but its API Gateway key {record.api_key_id} could not be disabled "
                f"({failure}); disable it with: aws apigateway update-api-key --api-key {record.api_key_id} "
                "--patch-operations op=replace,path=/enabled,value=false",
            )
        return Revocation(revoked)

    def update(self, key_id: str, models: tuple[str, ...] | None, limits: TokenLimits) -> KeyRecord:
        """Set an active key's models (None: every model) and limits (None fields: the plan's default).

        The authorizer sees the change within its cache time, like a revocation. Old secrets in a grace period
        change with the key: every secret that still serves speaks for the same key.
        """
        return self._each_serving(key_id, lambda record: self._store.update(record, models, limits))

    def move(self, key_id: str, team: str) -> KeyRecord:
        """Move an active key to another team of its tenant: its next request (within the authorizer's cache time)
        is charged to the new team; what it spent stays counted in the old team's windows."""
        self.check_team(team, self._active(key_id).tenant)
        return self._each_serving(key_id, lambda record: self._store.set_team(record, team))

    def leave_team(self, key_id: str) -> KeyRecord:
        """Take an active key out of its team: from its next request it is charged to its own windows only; what it
        spent stays counted in the team's windows."""
        return self._each_serving(key_id, lambda record: self._store.set_team(record, None))

    def set_expiry(self, key_id: str, expires_at: datetime | None) -> KeyRecord:
        """Set, extend, shorten or (None) clear an active key's expiry; an expired key given a later expiry serves
        again. KeyAdminError for a time not in the future."""
        if expires_at is not None and expires_at <= self._clock():
            raise KeyAdminError("The expiry must be in the future", param="expires_at")
        return self._each_serving(key_id, lambda record: self._store.set_expiry(record, expires_at))

    def change_plan(self, key_id: str, plan: str) -> KeyRecord:
        """Move an active key to another usage plan: its API Gateway key leaves the old plan's usage plan and joins
        the new one's (key_plans.move_plan), then its records name the new plan. The new plan's throttle
        and quota apply from the move; its token defaults from the authorizer's next look (its cache time)."""
        self.plan_of(plan)
        record = self._active(key_id)
        if record.plan == plan:
            return record
        return move_plan(self._apigateway, self._store, self._plans, self._serving(key_id), plan)

    def check_team(self, team: str, tenant: str) -> None:
        """The key's record carries its chain (team, tenant): the team must exist and belong to the tenant."""
        node = self._tree.get_node("team", team) if self._tree is not None else None
        if node is None:
            raise KeyAdminError(f"No team '{team}'; create it with `gatewayctl teams create`", param="team")
        if node.parent != tenant:
            raise KeyAdminError(f"Team '{team}' belongs to tenant '{node.parent}', not '{tenant}'", param="team")

    def rotate(self, key_id: str, grace: timedelta = timedelta(0)) -> IssuedKey:
        """A new secret for the same key: same id, tenant, plan, models, limits and usage-plan key; the old
        secret's record is revoked as of the end of `grace` (0 to MAX_GRACE; KeyAdminError otherwise).

        Until then both secrets are accepted, and both speak for the same key: one key id (the budgets it is
        charged to, its usage history) and one API Gateway key (its usage plan's throttle and quota), so spending
        through either counts once against every cap. The authorizer ends the grace from the old record's
        `revoked_at`, to the second, with no job to run and the API Gateway key left enabled for the new secret.
        Older secrets still in a grace period end no later than this one. All records change in one transaction.
        `rotated_from` holds the hint of the secret replaced.
        """
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise KeyAdminError(
                f"The grace period is 0 to {int(MAX_GRACE.total_seconds())} seconds", param="grace_period_seconds"
            )
        old = self._active(key_id, "rotated")
        now = self._clock()
        ends = now + grace
        key = generate_key()
        new = replace(
            old,
            key_hash=hash_key(key),
            key_hint=key_hint(key),
            created_at=now,
            rotated_from=old.key_hint,
            revoked_at=None,
        )
        outlasting = [
            record for record in self._retiring(key_id, now) if record.revoked_at and record.revoked_at > ends
        ]
        previous = self._store.rotate(old, new, ends, outlasting)
        return IssuedKey(key, new, previous)

    def reattach(self) -> tuple[KeyRecord, ...]:
        """Give active keys whose API Gateway key is missing a new one with the same usage identifier.

        API Gateway state of the local gateway lasts as long as its process, while a persistent DynamoDB
        keeps the records; without this, keys from an earlier run would fail the usage-plan check.
        """
        known = {
            item.get("value")
            for page in self._apigateway.get_paginator("get_api_keys").paginate(includeValues=True)
            for item in page.get("items", [])
        }
        reattached: tuple[KeyRecord, ...] = ()
        for record in self._store.list():
            if record.status != "active" or record.usage_identifier in known or record.plan not in self._plans:
                continue
            api_key_id = self._apigateway.create_api_key(
                name=f"{record.tenant}-{record.key_id}", enabled=True, value=record.usage_identifier
            )["id"]
            self._apigateway.create_usage_plan_key(
                usagePlanId=self._plans[record.plan], keyId=api_key_id, keyType="API_KEY"
            )
            reattached += (self._store.set_api_key_id(record, api_key_id),)
        return reattached

    def _active(self, key_id: str, verb: str = "changed") -> KeyRecord:
        record = self._store.get_by_id(key_id)
        if record.status != "active":
            raise KeyStateError(f"Key {key_id} is {record.status}; only active keys can be {verb}")
        return record

    def _retiring(self, key_id: str, now: datetime) -> tuple[KeyRecord, ...]:
        return tuple(record for record in self._store.records_of(key_id) if record.is_retiring(now))

    def _serving(self, key_id: str) -> tuple[KeyRecord, ...]:
        """The key's records that the authorizer accepts now: old secrets in a grace period, then the active one."""
        active = self._active(key_id)
        return (*self._retiring(key_id, self._clock()), active)

    def _each_serving(self, key_id: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
        """`change` applied to every serving record, the active one last; its changed active record."""
        return [change(record) for record in self._serving(key_id)][-1]

    def _record_written(self, record: KeyRecord) -> bool | None:
        """Whether this very record (not merely one with the same secret) is in the table; None when that
        cannot be checked."""
        try:
            found = self._store.get_by_hash(record.key_hash)
        except Exception:
            return None
        return found is not None and found.key_id == record.key_id

    def _remove_api_key(self, api_key_id: str, usage_plan_id: str | None, failure: Exception) -> None:
        try:
            if usage_plan_id is not None:
                self._apigateway.delete_usage_plan_key(usagePlanId=usage_plan_id, keyId=api_key_id)
            self._apigateway.delete_api_key(apiKey=api_key_id)
        except Exception as cleanup:
            raise PartialFailureError(
                f"Creating the key failed ({failure}) and its API Gateway key {api_key_id} could not be removed "
                f"({cleanup}). No key record was written. Remove the leftover with: "
                f"aws apigateway delete-api-key --api-key {api_key_id}"
            ) from failure


def _matches(
    record: KeyRecord,
    now: datetime,
    *,
    team: str | None,
    plan: str | None,
    status: KeyFilter | None,
    query: str | None,
) -> bool:
    if team is not None and record.team != team:
        return False
    if plan is not None and record.plan != plan:
        return False
    if status is not None and key_status(record, now) != status:
        return False
    if query:
        wanted = query.casefold()
        return any(wanted in (value or "").casefold() for value in _searched(record))
    return True


def key_status(record: KeyRecord, now: datetime) -> KeyFilter:
    """What operators see: `expired` for an active record past its expiry, `retiring` for an old secret in its
    grace period."""
    if record.status == "active":
        return "expired" if record.is_expired(now) else "active"
    return "retiring" if record.is_retiring(now) else "revoked"


def _searched(record: KeyRecord) -> Iterator[str | None]:
    yield from (record.key_id, record.key_hint, record.tenant, record.team)
