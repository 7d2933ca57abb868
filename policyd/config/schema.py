"""The policy file's structure, as pydantic models.

This is the raw, as-written shape. ``policyd.config.loader`` checks it against what
plugins registered and resolves it into the immutable :class:`~policyd.config.model.Config`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from policyd.cache.settings import CacheSettings
from policyd.config.retries import RetriesConfig
from policyd.config.security import AuthConfig, LimitsConfig
from policyd.fleet.settings import FleetSettings
from policyd.ledger.settings import BudgetsSettings, LedgerSettings
from policyd.telemetry.config import TelemetryConfig
from policyd.types import Stakes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(BaseModel):
    """A provider instance: ``kind`` picks the plugin, the rest are its settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str


class ModelConfig(_Strict):
    """A model entry; for a catalog model, only the fields given are overridden."""

    provider: str | None = None
    upstream: str | None = None
    input_usd_per_mtok: float | None = Field(default=None, ge=0)
    output_usd_per_mtok: float | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    license: str | None = None
    tags: list[str] | None = None
    thinking: bool | None = None
    local: bool | None = None
    options: dict[str, Any] | None = None


class MatchConfig(_Strict):
    """Which requests a rule applies to. Every given condition must hold; empty matches all."""

    tasks: list[str] = []
    stakes: list[Stakes] = []
    labels: dict[str, str] = {}
    tenants: list[str] = []


class TransformRef(_Strict):
    name: str
    params: dict[str, Any] = {}


class CacheConfig(_Strict):
    enabled: bool = True
    ttl_s: int | None = Field(default=None, gt=0)
    """Lifetime of this plan's cached answers; None: ``cache.default_ttl_s``."""


def _yaml_off(value: Any) -> Any:
    return "off" if value is False else value


StreamDraft = Annotated[Literal["off", "provisional"], BeforeValidator(_yaml_off)]
"""How a gated draft reaches a streaming caller. YAML reads a bare ``off`` as false; that means off."""


class PlanConfig(_Strict):
    strategy: str
    params: dict[str, Any] = {}
    transforms: list[TransformRef] = []
    cache: CacheConfig = CacheConfig()
    max_cost_usd: float | None = Field(default=None, gt=0)
    stream_draft: StreamDraft = "off"
    """``off``: a gated draft reaches a streaming caller as one delta once its gate passed;
    ``provisional``: its deltas stream as they arrive, marked provisional, and the gate's
    verdict confirms or retracts them."""


class RuleConfig(_Strict):
    name: str
    description: str = ""
    match: MatchConfig = MatchConfig()
    plan: PlanConfig


class PolicyConfig(_Strict):
    description: str = ""
    rules: list[RuleConfig] = Field(min_length=1)


class DefaultsConfig(_Strict):
    policy: str = "default"
    tenant: str = "default"
    deadline_ms: int = Field(default=60_000, gt=0)
    """Deadline of a request that brings none."""
    max_deadline_ms: int = Field(default=600_000, gt=0)
    """Longer deadlines are cut to this."""
    max_cost_usd: float = Field(default=1.0, gt=0)
    """Budget of a request whose constraints and plan set none."""


class PluginTimeouts(_Strict):
    """Per-plugin time limits in milliseconds; null means only the request's deadline bounds it.

    Strategies and validators are charged their *own* time: time spent waiting on
    ``ctx.call`` / ``ctx.validate`` does not count. Transforms run in a worker thread
    and are charged their wall time.
    """

    strategy_ms: int | None = Field(default=5_000, gt=0)
    validator_ms: int | None = Field(default=5_000, gt=0)
    transform_ms: int | None = Field(default=1_000, gt=0)
    provider_ms: int | None = Field(default=None, gt=0)
    """Wall time of one model call through a provider plugin (retries included); past it the
    call is a failed attempt naming the provider and its plugin, and the strategy goes on.
    None: only the request's deadline (and the provider's own timeouts) bound it."""


class PluginsConfig(_Strict):
    """Which plugins load and how long their code may run. See ``docs/plugins.md``."""

    allow: list[str] | None = None
    """Entry-point plugins to load (built-ins always load); null loads every installed one."""
    deny: list[str] = []
    """Plugins never to load, built-ins included."""
    timeouts: PluginTimeouts = PluginTimeouts()
    per_plugin: dict[str, PluginTimeouts] = {}
    """Overrides by plugin name; only the keys given replace the defaults."""


class FileConfig(_Strict):
    version: str = ""
    defaults: DefaultsConfig = DefaultsConfig()
    providers: dict[str, ProviderConfig] = {}
    catalogs: list[str] | None = None
    """Registered catalogs to load; None loads all of them."""
    models: dict[str, ModelConfig] = {}
    policies: dict[str, PolicyConfig] = Field(min_length=1)
    retries: RetriesConfig = RetriesConfig()
    cache: CacheSettings = CacheSettings()
    auth: AuthConfig | None = None
    """Present: callers authenticate and the tenant comes from their credentials."""
    limits: LimitsConfig = LimitsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    ledger: LedgerSettings = LedgerSettings()
    budgets: BudgetsSettings | None = None
    fleet: FleetSettings | None = None
    """Shared state for several daemons (``docs/deploy.md``); absent: each daemon keeps its own."""
    plugins: PluginsConfig = PluginsConfig()
    http_listen: str | None = None
    """HOST:PORT (or unix:///path) of the OpenAI-compatible HTTP front door; None: off.
    Read at start-up; ``policyd serve --http-listen`` overrides it."""
