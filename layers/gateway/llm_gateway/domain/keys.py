"""API keys: their format, hashing, records and the decision whether a presented key may call the API."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, Protocol

# Every gateway key starts with this prefix so leaked keys are easy to scan for (secret scanners, grep).
KEY_PREFIX = "sk-llmgw-"
# 32 random bytes (256 bits) from `secrets`, base64url without padding: 43 characters.
KEY_PATTERN = re.compile(r"^sk-llmgw-[A-Za-z0-9_-]{43}$")
KEY_ID_PREFIX = "key_"

KeyStatus = Literal["active", "revoked"]


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def generate_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(6)


def generate_usage_identifier() -> str:
    """Value of the API Gateway key that meters a gateway key on its usage plan.

    With ApiKeySourceType AUTHORIZER callers never present this value (the authorizer returns it as
    usageIdentifierKey), so it is an internal metering id, not a credential.
    """
    return "usage-" + secrets.token_urlsafe(30)


def hash_key(key: str) -> str:
    """SHA-256 hex digest: the only form in which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(value: str) -> bool:
    return KEY_PATTERN.fullmatch(value) is not None


def key_hint(key: str) -> str:
    """What operators see of a key: the prefix and its last four characters."""
    return f"{KEY_PREFIX}...{key[-4:]}"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key sent as `x-api-key` (curl) or `Authorization: Bearer` (OpenAI SDKs); None when absent."""
    lowered = {name.lower(): value for name, value in headers.items() if isinstance(value, str)}
    api_key = lowered.get("x-api-key", "").strip()
    if api_key:
        return api_key
    scheme, _, credentials = lowered.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


@dataclass(frozen=True)
class TokenLimits:
    """Per-key token and spend limits; None means the plan's default applies."""

    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    usd_per_month: Decimal | None = None


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    key_hash: str
    key_hint: str
    tenant: str
    plan: str
    # None: every model in the registry.
    models: tuple[str, ...] | None
    status: KeyStatus
    created_at: datetime
    api_key_id: str
    usage_identifier: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_from: str | None = None
    limits: TokenLimits = field(default_factory=TokenLimits)
    # The key's place in the budget tree: its team (the team's tenant is `tenant`); None: no team.
    team: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_revoked(self, now: datetime) -> bool:
        """Refused as revoked at `now`. A secret replaced by a rotation with a grace period is stored revoked with
        `revoked_at` at the grace's end, and is accepted until then; a revoked record without a time is refused."""
        return self.status != "active" and (self.revoked_at is None or now >= self.revoked_at)

    def is_retiring(self, now: datetime) -> bool:
        """A rotated-out secret still inside its grace period."""
        return self.status != "active" and not self.is_revoked(now)

    def revoked(self, at: datetime) -> KeyRecord:
        return replace(self, status="revoked", revoked_at=at)


class KeyLookup(Protocol):
    def get_by_hash(self, key_hash: str) -> KeyRecord | None: ...


@dataclass(frozen=True)
class Denial:
    reason: Literal["missing", "malformed", "unknown", "revoked", "expired"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """Decides who a presented key belongs to, caching records in memory for `cache_seconds`.

    API Gateway's own authorizer cache would require every identity source (both headers) on every
    request, so the cache lives here instead. A revocation is therefore seen within `cache_seconds`;
    an expiry and the end of a rotation's grace period immediately, since they are checked on every request.
    """

    def __init__(
        self,
        lookup: KeyLookup,
        cache_seconds: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, KeyRecord]] = {}

    def authenticate(self, key: str | None) -> KeyRecord | Denial:
        if key is None:
            return Denial("missing")
        if not looks_like_key(key):
            return Denial("malformed")
        digest = hash_key(key)
        record = self._cached(digest)
        if record is None:
            record = self._lookup.get_by_hash(digest)
            if record is None:
                return Denial("unknown")
            self._cache[digest] = (self._monotonic(), record)
        # Found by this digest, the record matches by construction; the constant-time comparison makes the
        # match an explicit check rather than an assumption about the store and the cache.
        if not hmac.compare_digest(record.key_hash, digest):
            return Denial("unknown")
        now = self._clock()
        # Both times are checked on every request, cached record or not: a grace period ends to the second.
        if record.is_revoked(now):
            return Denial("revoked")
        if record.is_expired(now):
            return Denial("expired")
        return record

    def _cached(self, digest: str) -> KeyRecord | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        stored_at, record = entry
        if self._monotonic() - stored_at >= self._cache_seconds:
            del self._cache[digest]
            return None
        return record
