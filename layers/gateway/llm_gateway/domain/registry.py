"""The model registry: public model names mapped to provider targets, per-1K-token prices and model traits."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from llm_gateway.errors import ModelNotFoundError

ProviderName = Literal["echo", "bedrock", "openai"]
SamplingParameter = Literal["temperature", "top_p"]
# What a model does: chat (POST /chat/completions, /messages, /model) or embeddings (POST /embeddings). litellm's
# catalog calls it `mode`, with the same values.
ModelKind = Literal["chat", "embedding"]
# The InvokeModel body an embedding model on Bedrock takes (each provider's documented schema):
# titan-embed-text-v2: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
# cohere-embed-v3: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html
BedrockEmbeddingSchema = Literal["titan-embed-text-v2", "cohere-embed-v3"]

# Bedrock's system-defined cross-Region inference profiles are the model id behind a geography prefix.
# https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")


def is_inference_profile_or_arn(model_id: str) -> bool:
    """A Bedrock model id that names an inference profile (us., eu., global. ...) or any Bedrock ARN."""
    return model_id.startswith(INFERENCE_PROFILE_PREFIXES) or model_id.startswith("arn:")


class Prices(BaseModel):
    """USD per 1,000 tokens, with where the figures come from. Input tokens read from or written to a prompt
    cache have prices of their own where the provider charges them differently; unset, they cost as input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_1k: Decimal = Field(Decimal(0), ge=0)
    output_per_1k: Decimal = Field(Decimal(0), ge=0)
    cache_read_per_1k: Decimal | None = Field(None, ge=0)
    cache_write_per_1k: Decimal | None = Field(None, ge=0)
    source: str | None = None

    def cost(
        self, prompt_tokens: int, completion_tokens: int, *, cache_read_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal:
        """USD for a call; `prompt_tokens` counts every input token, the cache reads and writes included."""
        uncached = max(0, prompt_tokens - cache_read_tokens - cache_write_tokens)
        read = self.input_per_1k if self.cache_read_per_1k is None else self.cache_read_per_1k
        write = self.input_per_1k if self.cache_write_per_1k is None else self.cache_write_per_1k
        total = (
            self.input_per_1k * uncached
            + read * cache_read_tokens
            + write * cache_write_tokens
            + self.output_per_1k * completion_tokens
        )
        return total / 1000


class Target(BaseModel):
    """One place a public model can be served from.

    bedrock: `model_id` is a model id, an inference-profile id (us., eu., global. ...) or an ARN; `region`
    defaults to the ARN's region, then to the function's own region.
    openai: any OpenAI-compatible server at `base_url` (ending in /v1 or the like); its key comes from the
    Secrets Manager secret `api_key_secret` (plain string, or JSON with an "api_key" field) or, for local
    use, from the environment variable `api_key_env`; Azure-style servers take the key in an `api-key`
    header (`auth_header: "api-key"`) and may need `query` parameters such as api-version; `responses_api`: the
    server serves OpenAI's Responses API too, so requests in that format go to its /responses as sent.
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
    responses_api: bool = False

    @model_validator(mode="after")
    def _fits_provider(self) -> Target:
        if self.provider == "openai":
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError("an openai target needs base_url (http:// or https://)")
        elif self.base_url or self.api_key_secret or self.api_key_env or self.responses_api:
            raise ValueError(f"base_url, api keys and responses_api only apply to openai targets, not {self.provider}")
        return self

    @property
    def label(self) -> str:
        """How responses and logs name this target: provider/model id."""
        return f"{self.provider}/{self.model_id}"


class _Traits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContextLimits(_Traits):
    """Tokens: the context window holds the prompt and the output together; None is unknown (not enforced)."""

    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    source: str | None = None


class ValueRange(_Traits):
    """The inclusive range a sampling parameter must be in."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def __contains__(self, value: float) -> bool:
        return self.min <= value <= self.max


class ExclusiveParameters(_Traits):
    """Sampling parameters the model refuses together; a request naming several sends only `keep`."""

    parameters: tuple[SamplingParameter, ...] = Field(min_length=2)
    keep: SamplingParameter

    @model_validator(mode="after")
    def _keeps_one_of_them(self) -> ExclusiveParameters:
        if self.keep not in self.parameters:
            raise ValueError(f"keep '{self.keep}' is not one of {list(self.parameters)}")
        return self


class Sampling(_Traits):
    """What the model accepts of OpenAI's sampling parameters.

    A value outside its range is refused (400 naming the parameter); `exclusive` groups are reduced to their
    `keep` parameter; `unsupported` parameters (the model has no such knob) are not sent.
    """

    temperature: ValueRange | None = None
    top_p: ValueRange | None = None
    exclusive: tuple[ExclusiveParameters, ...] = ()
    unsupported: tuple[SamplingParameter, ...] = ()
    source: str | None = None


class Capabilities(_Traits):
    """What the model can take; None is unknown and not enforced, False is refused before any provider call.

    tools: function tools; tool_choice: forcing a call ("required" or a named tool); images and documents:
    inputs of those kinds; reasoning: extended thinking; prompt_caching: cache points; assistant_prefill: a
    conversation that ends with an assistant turn, which the model continues.
    """

    tools: bool | None = None
    tool_choice: bool | None = None
    images: bool | None = None
    documents: bool | None = None
    reasoning: bool | None = None
    prompt_caching: bool | None = None
    assistant_prefill: bool | None = None
    source: str | None = None


class BedrockTraits(_Traits):
    """inference_profile_required: Bedrock serves the model on demand only through an inference profile.
    anthropic_messages: the model is one of Anthropic's, which take Anthropic's Messages API body through
    InvokeModel (requests of the Anthropic surface go that way, unchanged) and Anthropic's `thinking` and `top_k`
    settings through Converse's additionalModelRequestFields.
    adaptive_thinking: the model takes `thinking: {"type": "adaptive"}` (Claude 4.6 and later); without it, such a
    request is sent with a thinking budget instead.
    output_config: the model takes Anthropic's `output_config` in its InvokeModel body without a beta; without it,
    the field is sent only with the effort-2025-11-24 beta.
    embedding_schema: for an embedding model, the InvokeModel body it takes (BedrockEmbeddingSchema)."""

    inference_profile_required: bool = False
    anthropic_messages: bool = False
    adaptive_thinking: bool = False
    output_config: bool = False
    embedding_schema: BedrockEmbeddingSchema | None = None
    source: str | None = None


class EmbeddingTraits(_Traits):
    """What an embedding model takes and gives; None is unknown and not enforced.

    dimensions: the length of its vectors by default; supported_dimensions: the lengths `dimensions` may ask for
    (empty: only `dimensions`); max_inputs: inputs per request the gateway accepts for it; batch_size: inputs one
    provider call takes (the provider splits a request into calls of at most this many); max_input_characters and
    max_input_tokens: the longest input (a text, or a token array).
    """

    dimensions: int | None = Field(None, gt=0)
    supported_dimensions: tuple[int, ...] = ()
    max_inputs: int | None = Field(None, gt=0)
    batch_size: int | None = Field(None, gt=0)
    max_input_characters: int | None = Field(None, gt=0)
    max_input_tokens: int | None = Field(None, gt=0)
    source: str | None = None


class ModelTraits(_Traits):
    """What the gateway must know to call a model well; every group names its source."""

    limits: ContextLimits = ContextLimits()
    sampling: Sampling = Sampling()
    capabilities: Capabilities = Capabilities()
    bedrock: BedrockTraits = BedrockTraits()
    embedding: EmbeddingTraits = EmbeddingTraits()


class ModelEntry(BaseModel):
    """A public model: what it does (`kind`), its targets (tried in order, all serving the same model), prices and
    traits. An embedding model's prices are per 1K input tokens (`input_per_1k`); it produces no output tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ModelKind = "chat"
    description: str = ""
    owned_by: str = "llm-gateway"
    created: int = 0
    # Other names callers may use for this model (e.g. the dated ids Claude Code and the Anthropic SDKs send).
    aliases: tuple[str, ...] = ()
    targets: tuple[Target, ...] = Field(min_length=1)
    prices: Prices = Prices()
    traits: ModelTraits = ModelTraits()
    # Each target's own traits where its provider model's differ from the entry's (see domain/model_catalog.py).
    _target_traits: tuple[ModelTraits, ...] = PrivateAttr(default=())

    def set_target_traits(self, traits: tuple[ModelTraits, ...]) -> None:
        """Give each target (in order) the traits a provider calls it with."""
        if len(traits) != len(self.targets):
            raise ValueError(f"{len(traits)} target traits for {len(self.targets)} targets")
        self._target_traits = traits

    def traits_for(self, target: Target) -> ModelTraits:
        """The traits a provider calls `target` with: its own when resolved per target, else the entry's."""
        if self._target_traits:
            for position, candidate in enumerate(self.targets):
                if candidate is target or candidate == target:
                    return self._target_traits[position]
        return self.traits

    @model_validator(mode="after")
    def _targets_are_invokable(self) -> ModelEntry:
        if self.traits.bedrock.inference_profile_required:
            for target in self.targets:
                if target.provider == "bedrock" and not is_inference_profile_or_arn(target.model_id):
                    raise ValueError(
                        f"Bedrock serves '{target.model_id}' on demand only through an inference profile: name "
                        f"the profile ({', '.join(INFERENCE_PROFILE_PREFIXES)} + the id) or its ARN"
                    )
        if self.kind == "embedding":
            for target in self.targets:
                if target.provider == "bedrock" and self.traits.bedrock.embedding_schema is None:
                    raise ValueError(
                        f"the Bedrock embedding target '{target.model_id}' needs traits.bedrock.embedding_schema "
                        "(the InvokeModel body the model takes)"
                    )
        return self


class ModelRegistry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, ModelEntry] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _names_are_usable(cls, models: dict[str, ModelEntry]) -> dict[str, ModelEntry]:
        taken: dict[str, str] = {}
        for name, entry in models.items():
            for alias in (name, *entry.aliases):
                if not alias or alias != alias.strip() or len(alias) > 256:
                    raise ValueError(f"invalid public model name {alias!r}")
                if alias in taken:
                    raise ValueError(f"the name {alias!r} is given to both {taken[alias]!r} and {name!r}")
                taken[alias] = name
        return models

    @cached_property
    def _canonical(self) -> dict[str, str]:
        return {alias: name for name, entry in self.models.items() for alias in (name, *entry.aliases)}

    def canonical_name(self, name: str) -> str | None:
        """The model a public name or alias designates, or None."""
        return self._canonical.get(name)

    def get(self, name: str) -> ModelEntry:
        """The entry for a model's name or one of its aliases; ModelNotFoundError (404) for any other name."""
        canonical = self.canonical_name(name)
        if canonical is None:
            raise ModelNotFoundError(name)
        return self.models[canonical]

    def names(self) -> list[str]:
        return sorted(self.models)
