"""Tracer, meter and logger providers from the standard ``OTEL_*`` environment variables.

* ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER``:
  comma-separated ``otlp``, ``console`` or ``none``, and for metrics ``prometheus`` (a
  scrape endpoint on ``OTEL_EXPORTER_PROMETHEUS_HOST``/``_PORT``, see ``prometheus.py``).
  Unset means ``otlp`` when an OTLP endpoint is set for the signal
  (``OTEL_EXPORTER_OTLP_ENDPOINT`` or the per-signal one), else ``none``: a daemon
  started with no telemetry configuration exports nothing.
* ``OTEL_EXPORTER_OTLP_PROTOCOL`` (and ``..._TRACES_/_METRICS_/_LOGS_PROTOCOL``):
  ``grpc`` or ``http/protobuf`` (the default, as the spec says).
* Endpoints, headers, timeouts, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*`` and ``OTEL_METRIC_EXPORT_INTERVAL`` are read
  by the SDK and the exporters themselves.
* ``OTEL_SDK_DISABLED=true`` turns everything off.

A signal with no exporter gets **no SDK provider at all**: the API's no-op tracer and
meter, which still carry an incoming ``traceparent`` through to outgoing calls. That
is what keeps the unconfigured daemon's cost near zero.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry._logs import LoggerProvider as APILoggerProvider

from policyd import __version__
from policyd.errors import ConfigError
from policyd.telemetry import semconv
from policyd.telemetry.prometheus import PrometheusEndpoint, ScrapeAddress, address_from_env
from policyd.telemetry.redact import SCRUBBER

if TYPE_CHECKING:  # the SDK loads only for a signal that exports (docs/deploy.md, "Start-up")
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

EXPORTERS = ("otlp", "console", "none")
KNOWN_EXPORTERS = {"traces": EXPORTERS, "metrics": ("otlp", "prometheus", "console", "none"), "logs": EXPORTERS}
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL = "http/protobuf"
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SIGNALS = ("traces", "metrics", "logs")


@dataclass(frozen=True)
class Exporters:
    """What the environment asks for: exporter names and OTLP protocol per signal."""

    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    protocol: Mapping[str, str] = field(default_factory=dict)
    prometheus: ScrapeAddress | None = None
    """Where to serve ``/metrics``, when ``prometheus`` is among the metrics exporters."""

    def of(self, signal: str) -> tuple[str, ...]:
        return tuple(getattr(self, signal))


def _env_error(name: str, problem: str) -> ConfigError:
    return ConfigError("environment", name, problem)


def exporters_from_env(environ: Mapping[str, str]) -> Exporters:
    """Read and check the exporter choice; a bad value raises ConfigError naming the variable."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Exporters()
    chosen: dict[str, tuple[str, ...]] = {}
    protocols: dict[str, str] = {}
    for signal in SIGNALS:
        upper = signal.upper()
        var = f"OTEL_{upper}_EXPORTER"
        raw = environ.get(var)
        if raw is None or not raw.strip():
            has_endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
                f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"
            )
            names = ["otlp"] if has_endpoint else []
        else:
            names = [n.strip().lower() for n in raw.split(",") if n.strip()]
        known = KNOWN_EXPORTERS[signal]
        for n in names:
            if n not in known:
                raise _env_error(var, f"unknown exporter {n!r} (known: {', '.join(known)})")
        chosen[signal] = tuple(dict.fromkeys(n for n in names if n != "none"))
        pvar = f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL"
        protocol = (environ.get(pvar) or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or DEFAULT_PROTOCOL).strip()
        if protocol not in PROTOCOLS:
            where = pvar if environ.get(pvar) else "OTEL_EXPORTER_OTLP_PROTOCOL"
            raise _env_error(where, f"unknown OTLP protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
        protocols[signal] = protocol
    scrape = address_from_env(environ) if "prometheus" in chosen["metrics"] else None
    return Exporters(chosen["traces"], chosen["metrics"], chosen["logs"], protocols, scrape)


def capture_from_env(environ: Mapping[str, str]) -> bool:
    return environ.get(CAPTURE_ENV, "").strip().lower() == "true"


# ---------------------------------------------------------------- exporters

_EXPORTERS: dict[tuple[str, str], str] = {
    ("traces", "console"): "opentelemetry.sdk.trace.export:ConsoleSpanExporter",
    ("traces", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    ("traces", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
    ("metrics", "console"): "opentelemetry.sdk.metrics.export:ConsoleMetricExporter",
    ("metrics", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    ("metrics", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
    ("logs", "console"): "opentelemetry.sdk._logs.export:ConsoleLogRecordExporter",
    ("logs", "grpc"): "opentelemetry.exporter.otlp.proto.grpc._log_exporter:OTLPLogExporter",
    ("logs", "http/protobuf"): "opentelemetry.exporter.otlp.proto.http._log_exporter:OTLPLogExporter",
}
"""(signal, ``console`` or OTLP protocol) → exporter class, imported only when chosen."""


def _exporter(signal: str, name: str, protocol: str) -> Any:
    module, cls = _EXPORTERS[(signal, "console" if name == "console" else protocol)].split(":")
    return getattr(importlib.import_module(module), cls)()


# ---------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class Telemetry:
    """The providers a daemon uses. Never installed globally: several daemons (tests) may coexist."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: APILoggerProvider | None
    """None when no logs exporter is configured (the ``otel-logs`` decision sink needs one)."""
    capture_content: bool = False
    flushers: tuple[Callable[[], Any], ...] = ()
    """Called on shutdown (force_flush then shutdown of each SDK provider)."""
    prometheus: PrometheusEndpoint | None = None
    """The ``/metrics`` endpoint, serving, when ``OTEL_METRICS_EXPORTER`` names ``prometheus``."""

    @property
    def tracing(self) -> bool:
        return _sdk_instance(self.tracer_provider, "opentelemetry.sdk.trace", "TracerProvider")

    @property
    def metering(self) -> bool:
        return _sdk_instance(self.meter_provider, "opentelemetry.sdk.metrics", "MeterProvider")

    @property
    def enabled(self) -> bool:
        return self.tracing or self.metering

    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)

    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)

    def with_capture(self, capture: bool) -> Telemetry:
        return replace(self, capture_content=self.capture_content or capture)

    def shutdown_sync(self) -> None:
        for flush in self.flushers:
            try:
                flush()
            except Exception:
                log.exception("telemetry shutdown step failed")

    async def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters (in a thread: exporting may block on the network)."""
        await asyncio.to_thread(self.shutdown_sync)


def _sdk_instance(provider: object, module: str, name: str) -> bool:
    """``isinstance(provider, <module>.<name>)`` without importing the SDK: an SDK provider
    cannot exist before its module was imported."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(provider, getattr(loaded, name))


def disabled() -> Telemetry:
    """No SDK at all: the API's no-op providers."""
    return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), None)


def _resource(environ: Mapping[str, str]) -> Resource:
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = {"service.version": __version__}
    if not environ.get("OTEL_SERVICE_NAME"):
        attrs["service.name"] = "policyd"
    return Resource.create(attrs)


def build_telemetry(
    environ: Mapping[str, str] | None = None,
    *,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    capture_content: bool = False,
) -> Telemetry:
    """Providers for what ``environ`` (default ``os.environ``) configures, plus the given exporters.

    Extra exporters (tests, benchmarks) are exported synchronously; configured ones in
    batches on background threads. Every span exporter is wrapped by the scrubber.
    """
    env = os.environ if environ is None else environ
    choice = exporters_from_env(env)
    SCRUBBER.add_secrets_from_env(env)
    capture = capture_content or capture_from_env(env)
    flushers: list[Callable[[], Any]] = []
    if not (choice.traces or span_exporters or choice.metrics or metric_readers or choice.logs or log_exporters):
        return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), None, capture)
    resource = _resource(env)

    tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
    if choice.traces or span_exporters:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        from policyd.telemetry.export import ScrubbingSpanExporter

        sdk_tp = TracerProvider(resource=resource)
        for name in choice.traces:
            exporter = ScrubbingSpanExporter(_exporter("traces", name, choice.protocol["traces"]))
            processor = SimpleSpanProcessor(exporter) if name == "console" else BatchSpanProcessor(exporter)
            sdk_tp.add_span_processor(processor)
        for extra in span_exporters:
            sdk_tp.add_span_processor(SimpleSpanProcessor(ScrubbingSpanExporter(extra)))
        flushers += [sdk_tp.force_flush, sdk_tp.shutdown]
        tracer_provider = sdk_tp

    meter_provider: metrics.MeterProvider = metrics.NoOpMeterProvider()
    prometheus: PrometheusEndpoint | None = None
    readers: list[MetricReader] = []
    for name in choice.metrics:
        if name == "prometheus":
            prometheus = PrometheusEndpoint(choice.prometheus or ScrapeAddress())
            readers.append(prometheus.reader)
        else:
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(_exporter("metrics", name, choice.protocol["metrics"])))
    readers += metric_readers
    if readers:
        from opentelemetry.sdk.metrics import MeterProvider

        sdk_mp = MeterProvider(metric_readers=readers, resource=resource)
        flushers += [sdk_mp.force_flush, sdk_mp.shutdown]
        meter_provider = sdk_mp

    logger_provider: LoggerProvider | None = None
    if choice.logs or log_exporters:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

        logger_provider = LoggerProvider(resource=resource)
        for name in choice.logs:
            log_exp = _exporter("logs", name, choice.protocol["logs"])
            logger_provider.add_log_record_processor(
                SimpleLogRecordProcessor(log_exp) if name == "console" else BatchLogRecordProcessor(log_exp)
            )
        for log_exp in log_exporters:
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exp))
        flushers += [logger_provider.force_flush, logger_provider.shutdown]

    if prometheus is not None:
        flushers.append(prometheus.stop)  # after the meter provider's shutdown
    telemetry = Telemetry(tracer_provider, meter_provider, logger_provider, capture, tuple(flushers), prometheus)
    if prometheus is not None:
        try:
            prometheus.start()  # last: a port in use must not leave the other exporters running
        except ConfigError:
            telemetry.shutdown_sync()
            raise
    return telemetry
