"""Assembles a running policyd: plugins, config, engine and the subsystems around it.

This is the one place that decides which layers wrap the engine (cache, retries,
tracing, ledger). The server and the CLI build a Daemon and never wire parts
themselves, so a subsystem is added here in a few lines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from policyd.cache.service import ResponseCache, open_cache
from policyd.cache.settings import CacheSettings
from policyd.config import Config, load
from policyd.config.security import LimitsConfig
from policyd.engine import Engine
from policyd.engine.ratelimit import TenantRateLimiter
from policyd.engine.retry import RetryLayer
from policyd.ledger.wiring import install_ledger
from policyd.lifecycle import bounded_close, require_data_dir
from policyd.plugin.manager import PluginHost
from policyd.plugin.settings import host_for
from policyd.plugin.specs import Registered
from policyd.telemetry.setup import Telemetry, build_telemetry, disabled
from policyd.telemetry.wiring import instrument

if TYPE_CHECKING:
    from policyd.ledger.ledger import Ledger

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


def default_data_dir() -> Path:
    """``$POLICYD_DATA_DIR``, else ``$XDG_STATE_HOME/policyd``, else ``~/.local/state/policyd``."""
    if os.environ.get("POLICYD_DATA_DIR"):
        return Path(os.environ["POLICYD_DATA_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "policyd"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed; cache and ledger live below it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass
class DaemonOptions:
    config_path: str | None = None
    data_dir: Path | None = None
    entry_points: bool = True
    telemetry: Telemetry | None = None
    """Providers to use (tests, benchmarks); None builds them from the OTEL_* environment."""


@dataclass
class Daemon:
    host: PluginHost
    registered: Registered
    engine: Engine
    options: DaemonOptions
    data_dir: Path
    closers: list[Closer] = field(default_factory=list)
    """Run in reverse order on shutdown: flush and close what was opened."""
    cache: ResponseCache | None = None
    config_error: str | None = None
    """Why the policy file on disk was rejected at the last reload (the old policy keeps serving)."""
    telemetry: Telemetry = field(default_factory=disabled)
    ledger: Ledger | None = None
    """Outcomes, reports and stats (``policyd.ledger``); answers ReportOutcome and GetStats."""

    @property
    def config(self) -> Config:
        return self.engine.config

    async def aclose(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing %r", closer)
        await self.engine.aclose()


def _limits(config: Config) -> LimitsConfig:
    return config.raw.limits if config.raw is not None else LimitsConfig()


def build_daemon(options: DaemonOptions, host: PluginHost | None = None) -> Daemon:
    host = host or host_for(options.config_path, entry_points=options.entry_points)
    registered = host.collect()
    config = load(options.config_path, registered)
    data_dir = options.data_dir or default_data_dir()
    require_data_dir(data_dir, config)  # or a start-up error naming the directory and the fix
    cache = open_cache(config.raw.cache if config.raw else CacheSettings(), data_dir)
    instr = instrument(options.telemetry or build_telemetry(), config, registered, data_dir, lambda: engine.config)
    engine = Engine(
        config,
        registered,
        # Tracing outermost, so that a cache hit is a model-call span too.
        call_layers=[*instr.call_layers, *([cache.layer] if cache else [])],
        request_layers=instr.request_layers,
        listeners=instr.listeners,
    )
    # Innermost call layer: the layers outside it (cache, tracing) see one call, however many retries it makes.
    engine.call_layers.append(RetryLayer.for_config(lambda: engine.config))
    # Outermost request layer: a request over its tenant's rate costs nothing and touches nothing.
    engine.request_layers.insert(0, TenantRateLimiter(lambda: _limits(engine.config)))
    daemon = Daemon(host=host, registered=registered, engine=engine, options=options, data_dir=data_dir, cache=cache)
    daemon.telemetry = instr.telemetry
    daemon.closers.append(bounded_close(instr))  # closers run in reverse: telemetry flushes last, bounded
    if cache is not None:
        daemon.closers.append(cache.aclose)
    install_ledger(daemon)
    return daemon
