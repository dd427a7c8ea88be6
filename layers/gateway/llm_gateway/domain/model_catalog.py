"""Model traits by provider model: the catalog of what the gateway knows of each provider model id, and how a
registry entry's traits resolve from it (the entry's own traits override the catalog's field by field)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.domain.registry import (
    INFERENCE_PROFILE_PREFIXES,
    ExclusiveParameters,
    ModelEntry,
    ModelRegistry,
    ModelTraits,
    Target,
    ValueRange,
)

# A trait field: (group, field), e.g. ("limits", "context_window").
TraitField = tuple[str, str]
TRAIT_GROUPS = ("limits", "sampling", "capabilities", "bedrock", "embedding")
ENTRY_ORIGIN = "entry"

# Bedrock ARNs that name a model: arn:aws:bedrock:REGION:ACCOUNT:inference-profile/us.anthropic.… and
# arn:aws:bedrock:REGION::foundation-model/anthropic.…; an application inference profile's or a provisioned
# model's ARN names no model (its id is opaque).
_MODEL_ARN_RESOURCES = ("inference-profile", "foundation-model")
# Flags that say what a model requires: one target requiring it makes the entry require it. The other Bedrock
# flags say what a model takes: the entry takes it only when every target stating it does.
_REQUIREMENT_FLAGS = {("bedrock", "inference_profile_required")}


def provider_model_key(target: Target) -> tuple[str, str]:
    """(provider, provider model id) of the model a target serves: on Bedrock, an inference profile
    (`us.`/`eu.`/`global.` ... + the model id) and an inference-profile or foundation-model ARN name the model id
    behind them (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html)."""
    model_id = target.model_id
    if target.provider == "bedrock":
        if model_id.startswith("arn:"):
            resource = model_id.split(":", 5)[-1]
            kind, _, named = resource.partition("/")
            if kind not in _MODEL_ARN_RESOURCES or not named:
                return target.provider, model_id
            model_id = named
        for prefix in INFERENCE_PROFILE_PREFIXES:
            if model_id.startswith(prefix):
                model_id = model_id[len(prefix) :]
                break
    return target.provider, model_id


def stated_traits(traits: ModelTraits) -> dict[TraitField, Any]:
    """The trait fields a registry entry states (its JSON names them), sources left out."""
    stated: dict[TraitField, Any] = {}
    for group in TRAIT_GROUPS:
        if group not in traits.model_fields_set:
            continue
        values = getattr(traits, group)
        for name in sorted(values.model_fields_set - {"source"}):
            stated[(group, name)] = getattr(values, name)
    return stated


@dataclass(frozen=True)
class CatalogModel:
    """What the catalog knows of one provider model: the stated trait fields, each group's source, and the
    registry entry that states them."""

    name: str
    key: tuple[str, str]
    fields: Mapping[TraitField, Any]
    sources: Mapping[str, str]

    @property
    def origin(self) -> str:
        return f"catalog: {self.name} ({'/'.join(self.key)})"


class TraitCatalog:
    """Trait fields by (provider, provider model id), read from a registry (the one shipped in the layer)."""

    def __init__(self, models: Mapping[tuple[str, str], CatalogModel]) -> None:
        self._models = dict(models)

    @classmethod
    def from_registry(cls, registry: ModelRegistry) -> TraitCatalog:
        """Every target of every entry that states traits; the first entry naming a provider model wins."""
        models: dict[tuple[str, str], CatalogModel] = {}
        for name, entry in registry.models.items():
            fields = stated_traits(entry.traits)
            if not fields:
                continue
            sources = {
                group: getattr(entry.traits, group).source
                for group in TRAIT_GROUPS
                if getattr(entry.traits, group).source
            }
            for target in entry.targets:
                key = provider_model_key(target)
                models.setdefault(key, CatalogModel(name, key, fields, sources))
        return cls(models)

    def lookup(self, target: Target) -> CatalogModel | None:
        return self._models.get(provider_model_key(target))


@dataclass(frozen=True)
class ResolvedTraits:
    """An entry's traits in force, and where each stated field came from ("group.field" -> "entry" or
    "catalog: <shipped entry> (<provider>/<model id>)", several joined by ", " when targets contributed)."""

    traits: ModelTraits
    origins: Mapping[str, str]


def resolve_traits(entry: ModelEntry, catalog: TraitCatalog) -> ResolvedTraits:
    """The entry's traits: the catalog's for its targets' provider models (the stricter where targets disagree),
    each field the entry states itself overriding them."""
    known = _distinct(model for model in (catalog.lookup(target) for target in entry.targets) if model is not None)
    return _resolve(entry, known)


def resolve_target_traits(entry: ModelEntry, target: Target, catalog: TraitCatalog) -> ModelTraits:
    """The traits a provider calls one target with: the catalog's for that target's provider model, overridden by
    the entry's own fields."""
    model = catalog.lookup(target)
    return _resolve(entry, [] if model is None else [model]).traits


def resolve_registry(registry: ModelRegistry, catalog: TraitCatalog) -> ModelRegistry:
    """The registry with every entry's traits resolved from the catalog (entry-wide and per target); entries
    whose targets the catalog does not know are kept as they are."""
    models: dict[str, ModelEntry] = {}
    for name, entry in registry.models.items():
        if not any(catalog.lookup(target) for target in entry.targets):
            models[name] = entry
            continue
        # Not validated again: an entry's own traits decide what refuses it at load (a plain Bedrock id where it
        # states that the model needs a profile); a catalog trait never stops a registry that loaded before.
        resolved = entry.model_copy(update={"traits": resolve_traits(entry, catalog).traits})
        resolved.set_target_traits(tuple(resolve_target_traits(entry, target, catalog) for target in entry.targets))
        models[name] = resolved
    return registry.model_copy(update={"models": models})


def _distinct(models: Iterable[CatalogModel]) -> list[CatalogModel]:
    seen: dict[tuple[str, str], CatalogModel] = {}
    for model in models:
        seen.setdefault(model.key, model)
    return list(seen.values())


def _resolve(entry: ModelEntry, known: list[CatalogModel]) -> ResolvedTraits:
    fields: dict[TraitField, Any] = {}
    origins: dict[str, str] = {}
    for field in sorted({field for model in known for field in model.fields}):
        stating = [model for model in known if field in model.fields]
        fields[field] = _stricter(field, [model.fields[field] for model in stating])
        origins[".".join(field)] = ", ".join(model.origin for model in stating)
    own = stated_traits(entry.traits)
    for field, value in own.items():
        fields[field] = value
        origins[".".join(field)] = ENTRY_ORIGIN
    groups: dict[str, dict[str, Any]] = {}
    for (group, name), value in fields.items():
        groups.setdefault(group, {})[name] = value
    for group, values in groups.items():
        values["source"] = _source(group, entry, known, own)
    return ResolvedTraits(ModelTraits.model_validate(groups), origins)


def _source(group: str, entry: ModelEntry, known: list[CatalogModel], own: Mapping[TraitField, Any]) -> str | None:
    sources: list[str] = []
    own_source = getattr(entry.traits, group).source
    if own_source and any(field[0] == group for field in own):
        sources.append(own_source)
    for model in known:
        source = model.sources.get(group)
        if source and source not in sources and any(field[0] == group for field in model.fields):
            sources.append(source)
    return "; ".join(sources) or None


def _stricter(field: TraitField, values: list[Any]) -> Any:
    """The stricter of the values targets' models state for one field."""
    values = [value for value in values if value is not None]
    if len(values) <= 1:
        return values[0] if values else None
    first = values[0]
    if isinstance(first, bool):
        # A capability is refused when one target's model lacks it; a requirement holds when one target's has it.
        return any(values) if field in _REQUIREMENT_FLAGS else all(values)
    if isinstance(first, int):
        return min(values)
    if isinstance(first, ValueRange):
        low, high = max(value.min for value in values), min(value.max for value in values)
        # Ranges that do not overlap leave no value every target takes: the narrowest one stands.
        return ValueRange(min=low, max=high) if low <= high else min(values, key=lambda value: value.max - value.min)
    if field == ("sampling", "exclusive"):
        groups: list[ExclusiveParameters] = []
        for value in values:
            groups.extend(group for group in value if group not in groups)
        return tuple(groups)
    if field == ("embedding", "supported_dimensions"):
        return tuple(size for size in first if all(size in value for value in values[1:]))
    if isinstance(first, tuple):
        union: list[Any] = []
        for value in values:
            union.extend(item for item in value if item not in union)
        return tuple(union)
    return first
