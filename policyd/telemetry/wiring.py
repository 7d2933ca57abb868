"""Attaches telemetry to an engine: layers, decision sinks, secret registration, shutdown.

``build_daemon`` calls :func:`instrument` once and passes the returned layers and
listeners to the Engine; everything telemetry needs from the configuration (the
``telemetry:`` section, provider settings holding secrets, sink parameters) is read here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from policyd.config.loader import _unknown, format_loc
from policyd.config.model import Config
from policyd.engine.engine import CallLayer, OutcomeListener, RequestLayer
from policyd.errors import ConfigError
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
    call_layers: list[CallLayer] = field(default_factory=list)
    request_layers: list[RequestLayer] = field(default_factory=list)
    listeners: list[OutcomeListener] = field(default_factory=list)

    async def aclose(self) -> None:
        """Deliver queued decision events, then flush and stop the exporters."""
        if self.decisions is not None:
            await asyncio.to_thread(self.decisions.close)
        await self.telemetry.shutdown()


def section(config: Config) -> TelemetryConfig:
    raw = config.raw
    return raw.telemetry if raw is not None else TelemetryConfig()


def instrument(
    telemetry: Telemetry,
    config: Config,
    registered: Registered,
    data_dir: Path,
    current_config: Callable[[], Config] | None = None,
) -> Instrumentation:
    """Build the layers and the decision log for ``config``; raises ConfigError for a bad sink entry."""
    install_log_scrubber()
    for inst in config.providers.values():
        SCRUBBER.add_secrets_from_settings(inst.settings)
    cfg = section(config)
    telemetry = telemetry.with_capture(cfg.capture_content)
    instruments = Instruments(telemetry.meter()) if telemetry.metering else None
    get_config = current_config or (lambda: config)

    def provider_kind(name: str) -> str:
        inst = get_config().providers.get(name)
        return inst.kind if inst is not None else name

    layers = TelemetryLayers(telemetry, instruments, provider_kind)
    out = Instrumentation(telemetry, layers, None, request_layers=[layers.request_layer])
    if telemetry.enabled:
        out.call_layers.append(layers.call_layer)
    sinks = build_sinks(cfg, config.source, registered, SinkContext(data_dir, telemetry.logger_provider))
    if sinks:
        out.decisions = DecisionLog(
            sinks,
            capture=telemetry.capture_content,
            queue_size=cfg.decisions.queue_size,
            meter=telemetry.meter() if telemetry.metering else None,
        )
        out.listeners.append(out.decisions)
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
            plugin = registered.origins.get(("decision_sinks", ref.name), ref.name)
            raise ConfigError(source, path, f"decision sink {ref.name!r} (plugin {plugin}): {exc}") from exc
    return sinks
