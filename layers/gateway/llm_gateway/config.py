"""Typed gateway settings and the model registry source, read lazily from the environment and cached."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

from llm_gateway.domain.attribution import allowed_tag_names
from llm_gateway.domain.budget import PlanLimits, QuotaPeriod
from llm_gateway.domain.model_catalog import TraitCatalog, resolve_registry
from llm_gateway.domain.registry import ModelRegistry
from llm_gateway.errors import ConfigurationError

ENV_PREFIX = "GATEWAY_"


class PlanLimitSettings(BaseModel):
    """One plan's token and spend defaults as configured; 0 means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens_per_minute: int = Field(0, ge=0)
    tokens_per_day: int = Field(0, ge=0)
    usd_per_month: Decimal = Field(Decimal(0), ge=0)
    max_output_tokens: int = Field(0, ge=0)
    # The plan's usage-plan quota, as the template gives it to API Gateway: requests per period.
    requests_per_period: int = Field(0, ge=0)
    quota_period: QuotaPeriod = "DAY"

    def limits(self) -> PlanLimits:
        return PlanLimits(
            tokens_per_minute=self.tokens_per_minute or None,
            tokens_per_day=self.tokens_per_day or None,
            usd_per_month=self.usd_per_month or None,
            max_output_tokens=self.max_output_tokens or None,
            requests_per_period=self.requests_per_period or None,
            quota_period=self.quota_period,
        )


class Settings(BaseModel):
    """Everything configurable; each field `x` is read from the environment variable GATEWAY_X."""

    model_config = ConfigDict(frozen=True)

    models_json: str | None = Field(None, description="Inline model registry JSON (highest precedence).")
    models_parameter: str | None = Field(None, description="SSM parameter name holding the registry JSON.")
    models_file: Path | None = Field(None, description="Path of a registry JSON file.")
    models_cache_seconds: int = Field(300, ge=0, description="How long an SSM registry is cached.")
    default_model: str = Field("echo", description="Model used by POST /model when the request names none.")
    time_budget_seconds: float = Field(
        280.0,
        gt=0,
        le=900,
        description="Time for the provider calls of a non-streamed answer. Its bytes flow only once it is "
        "complete, and API Gateway closes a streamed integration (REGIONAL) idle for 5 minutes.",
    )
    stream_time_budget_seconds: float = Field(
        870.0,
        gt=0,
        le=900,
        description="Time for a streamed answer, from the first provider call to its last chunk; API Gateway "
        "ends response streams after 15 minutes.",
    )
    stream_keepalive_seconds: float = Field(
        15.0,
        gt=0,
        description="An SSE comment is sent when a stream has been silent this long, so that API Gateway's idle "
        "timeout and proxies on the way keep the connection.",
    )
    max_request_bytes: int = Field(5_000_000, gt=0, description="Largest request body the function accepts.")
    max_json_containers: int = Field(
        50_000,
        gt=0,
        description="Most JSON arrays and objects a request body may hold: each costs memory once parsed, and "
        "50,000 keeps the costliest legal body well inside the function's 256 MB (bench/memory.py).",
    )
    max_json_members: int = Field(
        100_000, gt=0, description="Most object members (key: value pairs) a request body may hold, at any depth."
    )
    max_json_values: int = Field(
        500_000,
        gt=0,
        description="Most JSON values (array items and object members, counted as commas and containers) a request "
        "body may hold: above the 300,000 token ids OpenAI takes in one embeddings request.",
    )
    max_messages: int = Field(
        10_000,
        gt=0,
        description="Most messages a chat request may hold: each becomes several objects on its way to a provider.",
    )
    store: Literal["dynamodb", "sqlite"] = Field(
        "dynamodb",
        description="Where key records and usage live: DynamoDB (the tables below; deployed) or an embedded SQLite "
        "database in `data_dir` (the local gateway).",
    )
    data_dir: Path | None = Field(None, description="Directory of the embedded database (store sqlite).")
    keys_table: str | None = Field(None, description="DynamoDB table of API key records.")
    auth_cache_seconds: float = Field(
        30.0,
        ge=0,
        le=60,
        description="How long the authorizer trusts a cached key record (revocation delay).",
    )
    usage_table: str | None = Field(None, description="DynamoDB usage table; unset: no budgets, no usage records.")
    usage_retention_days: int = Field(400, ge=1, description="How long monthly usage items are kept (TTL).")
    usage_events_table: str | None = Field(
        None, description="DynamoDB table of usage events (one per finished request); unset: no events recorded."
    )
    usage_events_retention_days: int = Field(
        90, ge=1, description="How long usage events and their daily breakdowns are kept (TTL), in days."
    )
    allowed_tags: str = Field(
        "",
        description="Tag names callers may set in X-Gateway-Tags (`project,env`); a request naming another is a 400. "
        "Unset: no tags.",
    )
    budget_tree_mode: Literal["lease", "strict"] = Field(
        "lease",
        description="How a request is charged to its key > team > tenant chain: lease (one update of the key's lease "
        "in the common case) or strict (every window of the chain in one transaction); docs/budgets.md.",
    )
    plan_limits: Json[dict[str, PlanLimitSettings]] = Field(
        default_factory=dict, description="Token and spend defaults per plan, as JSON (the template builds it)."
    )
    default_output_tokens: int = Field(
        4096, ge=1, description="Output allowed a request that names no limit on a plan without a cap."
    )
    log_prompts: bool = Field(False, description="Log prompt and completion text (off: never logged).")
    cors_allow_origin: str | None = Field(
        None,
        description="The browser origin (https://app.example.com, or *) whose pages may read the API's answers; "
        "unset: no CORS headers (the template's CorsAllowOrigin).",
    )
    tracing_enabled: bool = Field(False, description="Create the X-Ray tracer (the template sets this).")
    responses_table: str | None = Field(
        None, description="DynamoDB table of stored Responses API responses; unset (store dynamodb): none stored."
    )
    responses_bucket: str | None = Field(
        None, description="S3 bucket of stored responses too large to keep in their DynamoDB item."
    )
    responses_expiry_days: int = Field(
        30, ge=1, description="Days a stored response can be read and continued (OpenAI keeps them 30 days)."
    )
    concurrency_per_environment: int | None = Field(
        None,
        ge=1,
        le=1600,
        description="Requests one process serves at once: on Lambda Managed Instances the function's "
        "PerExecutionEnvironmentMaxConcurrency (1 to 1,600; the template sets both from "
        "ManagedInstancesConcurrencyPerEnvironment); unset: on demand (one) or the local gateway.",
    )
    usage_plans: Json[dict[str, str]] = Field(
        default_factory=dict,
        description="API Gateway usage plan ids by plan name, as JSON (the admin function's; the template builds it).",
    )

    @field_validator("allowed_tags")
    @classmethod
    def _tag_names(cls, value: str) -> str:
        return ",".join(allowed_tag_names(value))

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(f"Invalid gateway settings: {exc}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()


def environment_variable(name: str) -> str | None:
    """A variable named by configuration rather than by the gateway (a local provider key's api_key_env)."""
    return os.environ.get(name)


@lru_cache(maxsize=1)
def shipped_registry_text() -> str:
    """The registry shipped in the layer, read once per container (it cannot change under a running function)."""
    return resources.files("llm_gateway").joinpath("models.json").read_text(encoding="utf-8")


def _registry_text(settings: Settings) -> tuple[str, str]:
    """Return (source description, JSON text) from the first configured source."""
    if settings.models_json:
        return "GATEWAY_MODELS_JSON", settings.models_json
    if settings.models_parameter:
        from aws_lambda_powertools.utilities import parameters

        # The template takes the name without its leading slash (IAM ARNs add one); SSM needs it back
        # for hierarchical names.
        name = settings.models_parameter
        if "/" in name and not name.startswith("/"):
            name = "/" + name
        try:
            value = parameters.get_parameter(name, max_age=settings.models_cache_seconds)
        except parameters.exceptions.GetParameterError as error:
            raise ConfigurationError(f"Cannot read the model registry from SSM parameter {name}: {error}") from error
        return f"SSM parameter {name}", str(value)
    if settings.models_file:
        try:
            return str(settings.models_file), settings.models_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"Cannot read model registry {settings.models_file}: {exc}") from exc
    return "shipped models.json", shipped_registry_text()


@lru_cache(maxsize=1)
def shipped_catalog() -> TraitCatalog:
    """What the shipped registry knows of each provider model, by provider and provider model id: the traits an
    operator's entry for the same model inherits."""
    return TraitCatalog.from_registry(ModelRegistry.model_validate(json.loads(shipped_registry_text())))


def parse_registry(source: str, text: str) -> ModelRegistry:
    """A registry's JSON as the gateway serves it, each entry's traits resolved from the shipped catalog;
    ConfigurationError names the source of an invalid one."""
    try:
        return resolve_registry(ModelRegistry.model_validate(json.loads(text)), shipped_catalog())
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"Invalid model registry in {source}: {exc}") from exc


_parse_registry = lru_cache(maxsize=4)(parse_registry)


def get_registry() -> ModelRegistry:
    """The current registry; an SSM-backed one refreshes after `models_cache_seconds`."""
    return _parse_registry(*_registry_text(get_settings()))
