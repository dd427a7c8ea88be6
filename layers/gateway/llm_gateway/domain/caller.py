"""Who is calling: the identity the authorizer established, and what it may use."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_gateway.domain.keys import TokenLimits

ALL_MODELS = "*"


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str
    plan: str
    # None means every model in the registry.
    allowed_models: frozenset[str] | None = None
    limits: TokenLimits = field(default_factory=TokenLimits)
    # The key's team in the budget tree (its tenant is `tenant`); None: the key is in no team.
    team: str | None = None

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


def parse_allowed_models(value: str) -> frozenset[str] | None:
    """Decode the comma-separated allowed-models list used in key records and authorizer context."""
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    return None if not names or ALL_MODELS in names else names


@dataclass(frozen=True)
class ApiRequest:
    """What the gateway needs to know about an API request besides its body."""

    request_id: str
    caller: Caller
    # Time left before the Lambda function itself times out, in seconds.
    seconds_left: float
    # Request headers a surface honours (lower-case names), e.g. anthropic-beta.
    headers: tuple[tuple[str, str], ...] = ()
