"""The model registry: public model names mapped to provider targets and per-1K-token prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_gateway.errors import ModelNotFoundError

ProviderName = Literal["echo", "bedrock", "openai"]


class Prices(BaseModel):
    """USD per 1,000 tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_1k: Decimal = Field(Decimal(0), ge=0)
    output_per_1k: Decimal = Field(Decimal(0), ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.input_per_1k * prompt_tokens + self.output_per_1k * completion_tokens) / 1000


class Target(BaseModel):
    """One place a public model can be served from.

    bedrock: `model_id` is a model id, an inference-profile id (us., eu., global. ...) or an ARN; `region`
    defaults to the ARN's region, then to the function's own region.
    openai: any OpenAI-compatible server at `base_url` (ending in /v1 or the like); its key comes from the
    Secrets Manager secret `api_key_secret` (plain string, or JSON with an "api_key" field) or, for local
    use, from the environment variable `api_key_env`; Azure-style servers take the key in an `api-key`
    header (`auth_header: "api-key"`) and may need `query` parameters such as api-version.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderName
    model_id: str = Field(min_length=1)
    region: str | None = None
    base_url: str | None = None
    api_key_secret: str | None = None
    api_key_env: str | None = None
    auth_header: Literal["bearer", "api-key"] = "bearer"
    query: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(None, gt=0, description="Per-attempt timeout.")

    @model_validator(mode="after")
    def _fits_provider(self) -> Target:
        if self.provider == "openai":
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError("an openai target needs base_url (http:// or https://)")
        elif self.base_url or self.api_key_secret or self.api_key_env:
            raise ValueError(f"base_url and api keys only apply to openai targets, not {self.provider}")
        return self

    @property
    def label(self) -> str:
        """How responses and logs name this target: provider/model id."""
        return f"{self.provider}/{self.model_id}"


class ModelEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    owned_by: str = "llm-gateway"
    created: int = 0
    targets: tuple[Target, ...] = Field(min_length=1)
    prices: Prices = Prices()


class ModelRegistry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, ModelEntry] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _names_are_usable(cls, models: dict[str, ModelEntry]) -> dict[str, ModelEntry]:
        for name in models:
            if not name or name != name.strip() or len(name) > 256:
                raise ValueError(f"invalid public model name {name!r}")
        return models

    def get(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFoundError(name) from None

    def names(self) -> list[str]:
        return sorted(self.models)
