"""Telemetry's parts of the pipeline: the decision span, the call spans, the metrics, the decision log.

``build_daemon`` calls :func:`instrument` once and places the returned parts in its
pipeline literal; everything telemetry needs from the configuration (the
``telemetry:`` section, provider settings holding secrets, sink parameters) is read here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from policyd.config.loader import _unknown, format_loc
from policyd.config.model import Config
from policyd.engine.pipeline import CallLayer, Wrap
from policyd.engine.turn import Observe
from policyd.errors import ConfigError
from policyd.plugin.attribution import plugin_label
from policyd.plugin.specs import DecisionSink, Registered, SinkContext
from policyd.telemetry.config import SinkRef, TelemetryConfig
from policyd.telemetry.decision import DecisionLog
from policyd.telemetry.metrics import Instruments
from policyd.telemetry.redact import SCRUBBER, install_log_scrubber
from policyd.telemetry.setup import Telemetry
from policyd.telemetry.spans import TelemetryLayers


@dataclass
class Instrumentation:
    telemetry: Telemetry
    layers: TelemetryLayers
    decisions: DecisionLog | None

    @property
    def decision_span(self) -> Wrap:
        """The ``decision-span`` Around step (with tracing off it only stamps the trace id)."""
        return self.layers.decision_step()

    @property
    def call_spans(self) -> CallLayer | None:
        """The ``trace`` call layer; None when no telemetry is exported."""
        return self.layers.call_span if self.telemetry.enabled else None

    @property
    def attempt_spans(self) -> Mapping[type, Observe] | None:
        return self.layers.attempt_spans() if self.telemetry.enabled else None

    @property
    def metrics(self) -> Mapping[type, Observe] | None:
        return self.layers.metrics()

    @property
    def decision_log(self) -> Mapping[type, Observe] | None:
        return self.decisions.observer() if self.decisions is not None else None

    async def aclose(self) -> None:
        """Deliver queued decision events, then flush and stop the exporters."""
        if self.decisions is not None:
            await asyncio.to_thread(self.decisions.close)
        await self.telemetry.shutdown()


def section(config: Config) -> TelemetryConfig:
    return config.raw.telemetry


def instrument(telemetry: Telemetry, config: Config, registered: Registered, data_dir: Path) -> Instrumentation:
    """Build the parts and the decision log for ``config``; raises ConfigError for a bad sink entry."""
    install_log_scrubber()
    for inst in config.providers.values():
        SCRUBBER.add_secrets_from_settings(inst.settings)
    cfg = section(config)
    telemetry = telemetry.with_capture(cfg.capture_content)
    instruments = Instruments(telemetry.meter()) if telemetry.metering else None
    out = Instrumentation(telemetry, TelemetryLayers(telemetry, instruments), None)
    sinks = build_sinks(cfg, config.source, registered, SinkContext(data_dir, telemetry.logger_provider))
    if sinks:
        out.decisions = DecisionLog(
            sinks,
            capture=telemetry.capture_content,
            queue_size=cfg.decisions.queue_size,
            meter=telemetry.meter() if telemetry.metering else None,
        )
    return out


def build_sinks(
    cfg: TelemetryConfig, source: str, registered: Registered, context: SinkContext
) -> list[tuple[str, DecisionSink]]:
    refs = cfg.decisions.sinks
    explicit = refs is not None
    if refs is None:
        refs = [SinkRef(name="otel-logs")] if context.logger_provider is not None else []
    sinks: list[tuple[str, DecisionSink]] = []
    for i, ref in enumerate(refs):
        path = f"telemetry.decisions.sinks[{i}]"
        spec = registered.decision_sinks.get(ref.name)
        if spec is None:
            if not explicit:
                continue  # the default sink's plugin is denied: nothing to do
            raise ConfigError(source, f"{path}.name", _unknown("decision sink", ref.name, registered.decision_sinks))
        try:
            params = spec.params.model_validate(ref.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = format_loc([*path.split("."), "params", *err["loc"]]) if err["loc"] else f"{path}.params"
            raise ConfigError(source, where, str(err["msg"])) from None
        try:
            sinks.append((ref.name, spec.factory(context, params)))
        except Exception as exc:
            plugin = plugin_label(registered, "decision_sinks", ref.name)
            raise ConfigError(source, path, f"decision sink {ref.name!r} (plugin {plugin}): {exc}") from exc
    return sinks
