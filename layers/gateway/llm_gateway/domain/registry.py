"""The model registry: public model names mapped to provider targets and per-1K-token prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_gateway.errors import ModelNotFoundError

ProviderName = Literal["echo"]


class Prices(BaseModel):
    """USD per 1,000 tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_1k: Decimal = Field(Decimal(0), ge=0)
    output_per_1k: Decimal = Field(Decimal(0), ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.input_per_1k * prompt_tokens + self.output_per_1k * completion_tokens) / 1000


class Target(BaseModel):
    """One place a public model can be served from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderName
    model_id: str = Field(min_length=1)


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
