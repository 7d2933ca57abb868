"""The resolved, immutable configuration the engine runs on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from policyd.config.schema import DefaultsConfig, FileConfig, MatchConfig
from policyd.plugin.specs import TransformSpec, Validator
from policyd.types import ModelSpec


@dataclass(frozen=True)
class ProviderInstance:
    name: str
    kind: str
    settings: BaseModel


@dataclass(frozen=True)
class Plan:
    """What a rule yields: a strategy, its validated parameters and the models it may use."""

    strategy: str
    params: Any
    models: tuple[str, ...]
    transforms: tuple[tuple[TransformSpec, Any], ...] = ()
    cache_enabled: bool = True
    cache_ttl_s: int | None = None
    """None: the ``cache:`` section's ``default_ttl_s``."""
    max_cost_usd: float | None = None
    stream_draft: str = "off"
    """``provisional``: a gated draft streams as provisional deltas its gate confirms or retracts."""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    match: MatchConfig
    plan: Plan


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Config:
    source: str
    """The file it came from (or ``<bundled default>``)."""
    version: str
    defaults: DefaultsConfig
    providers: Mapping[str, ProviderInstance]
    catalog: Mapping[str, ModelSpec]
    policies: Mapping[str, Policy]
    raw: FileConfig
    """The validated file as written, for subsystems that own a section (cache, auth, limits...).

    Always present: every section has its default filled in, so no reader writes its own."""
    validators: Mapping[str, Validator] = field(default_factory=dict)
    """Built validators keyed by :func:`policyd.plugin.specs.validator_key`."""
