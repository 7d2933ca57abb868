"""Assembles a running policyd: plugins, config, engine and the pipeline around it.

This is the one place that declares what every request goes through and in which
order (:func:`pipeline`, one literal, pinned by ``tests/engine/test_pipeline.py``).
Subsystems (cache, ledger, budgets, telemetry) return their parts; they never edit
the engine. The server and the CLI build a Daemon and never wire parts themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from policyd.cache.embeddings import EmbeddingCache
from policyd.cache.service import ResponseCache, open_cache
from policyd.config import Config, load
from policyd.datadir import default_data_dir, ensure_private_dir
from policyd.engine import Engine
from policyd.engine.embed import Embedder
from policyd.engine.pipeline import Admit, Around, Call, Pipeline, Record
from policyd.engine.ratelimit import TenantRateLimiter
from policyd.engine.retry import RetryLayer
from policyd.fleet.wiring import FleetParts, ledger_maker, open_fleet
from policyd.ledger.ledger import Ledger
from policyd.ledger.wiring import LedgerParts, open_ledger
from policyd.lifecycle import bounded_close, collector_paused, require_data_dir
from policyd.plugin.manager import PluginHost
from policyd.plugin.settings import host_for
from policyd.plugin.specs import Registered
from policyd.telemetry.decision import DecisionLog
from policyd.telemetry.embed_spans import EmbedSpans
from policyd.telemetry.setup import Telemetry, build_telemetry, disabled
from policyd.telemetry.spans import scrub_attempt
from policyd.telemetry.wiring import Instrumentation, instrument

if TYPE_CHECKING:
    from policyd.workers.link import GroupLink

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]

__all__ = ["Daemon", "DaemonOptions", "build_daemon", "default_data_dir", "ensure_private_dir", "pipeline"]


@dataclass
class DaemonOptions:
    config_path: str | None = None
    data_dir: Path | None = None
    entry_points: bool = True
    telemetry: Telemetry | None = None
    """Providers to use (tests, benchmarks); None builds them from the OTEL_* environment."""
    group: GroupLink | None = None
    """This daemon is one worker of ``policyd serve --workers N``: rate limits, the ``local`` budget
    store and idempotency keys are the group's, and ledger reads commit every worker's rows first."""


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
    decisions: DecisionLog | None = None
    """The decision log's queue and sinks (None without sinks)."""
    fleet: FleetParts = field(default_factory=FleetParts)
    """The shared stores of a fleet (``fleet:`` in the file); empty by default."""
    group: GroupLink | None = None
    """The worker group this daemon belongs to (``policyd serve --workers N``); None on its own."""

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


def pipeline(
    instr: Instrumentation,
    cache: ResponseCache | None,
    ledger: LedgerParts,
    limiter: TenantRateLimiter,
    fleet: FleetParts | None = None,
) -> Pipeline:
    """Every step a request goes through, in order (``docs/architecture.md``). A new step is one entry.

    In a fleet (``fleet:`` in the file) the rate-limit and budget steps are Valkey's, shared by every
    replica, and a shared cache tier sits behind the disk cache."""
    shared = fleet or FleetParts()
    return Pipeline(
        admit=(
            Admit("rate-limit", shared.limiter or limiter),  # first: over its rate, a request costs nothing, no span
            Around("decision-span", instr.decision_span),  # the rest runs inside the decision span
            Admit("budget", shared.budgets or ledger.budgets),  # reserves the worst case; settled at the real cost
        ),
        calls=(
            Call("trace", instr.call_spans),  # outermost, so a cache hit is a model-call span too
            Call("cache", cache.layer if cache is not None else None),
            Call("shared-cache", shared.cache),  # a fleet's L2 in Valkey: single-flight across replicas
            Call("retry", RetryLayer()),  # innermost: the layers outside see one call, however many retries
        ),
        record=(
            Record("call-spans", instr.attempt_spans),  # binds each attempt to its call's span
            Record("metrics", instr.metrics),
            Record("ledger", ledger.record),  # durability sync: committed before the answer leaves
            Record("decision-log", instr.decision_log),
        ),
        redact=scrub_attempt,  # attempt errors are scrubbed before anyone sees them
    )


def embedder(cache: ResponseCache | None, retry: RetryLayer, instr: Instrumentation, closers: list[Closer]) -> Embedder:
    """Embed's run step: the per-text cache in the response cache's store, the pipeline's retry
    layer (shared breakers) and an ``embeddings`` span per model when tracing is on."""
    telemetry = instr.telemetry
    spans = (
        EmbedSpans(telemetry.tracer(), instr.layers.instruments, tracing=telemetry.tracing)
        if telemetry.enabled
        else None
    )
    if cache is None:  # not ``store.available``, which waits for the shards (a store that cannot open: misses)
        return Embedder(retry=retry, spans=spans)
    vectors = EmbeddingCache(cache.store, cache.settings.default_ttl_s)
    closers.append(vectors.flush)  # after the cache's own close in the list, so it runs before it
    return Embedder(vectors, retry, default_ttl_s=cache.settings.default_ttl_s, spans=spans)


@collector_paused()  # start-up allocates much and frees little (docs/deploy.md, "Start-up")
def build_daemon(options: DaemonOptions, host: PluginHost | None = None) -> Daemon:
    host = host or host_for(options.config_path, entry_points=options.entry_points)
    registered = host.collect()
    config = load(options.config_path, registered)
    data_dir = options.data_dir or default_data_dir()
    require_data_dir(data_dir, config)  # or a start-up error naming the directory and the fix
    cache = open_cache(config.raw.cache, data_dir)
    instr = instrument(options.telemetry or build_telemetry(), config, registered, data_dir)
    # Closers run in reverse: telemetry flushes last, within one total limit.
    closers: list[Closer] = [bounded_close(instr)]
    if cache is not None:
        closers.append(cache.aclose)
    ledger = open_ledger(config, registered, data_dir, make=ledger_maker(config))
    closers.extend(ledger.closers)
    fleet = open_fleet(config, ledger.ledger)  # shared rate limits and budgets when the file has ``fleet:``
    closers.extend(fleet.closers)
    limiter = TenantRateLimiter()
    if options.group is not None:  # one of N workers: the group's buckets, budgets and ledger
        from policyd.workers.link import share_with_group

        limiter = share_with_group(options.group, config, ledger)
    engine = Engine(config, registered, pipeline=pipeline(instr, cache, ledger, limiter, fleet))
    engine.embedder = embedder(cache, engine.pipeline.step("retry"), instr, closers)
    return Daemon(
        host=host,
        registered=registered,
        engine=engine,
        options=options,
        data_dir=data_dir,
        closers=closers,
        cache=cache,
        telemetry=instr.telemetry,
        ledger=ledger.ledger,
        decisions=instr.decisions,
        fleet=fleet,
        group=options.group,
    )
