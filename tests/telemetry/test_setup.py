"""Exporters and content capture chosen by the standard OTEL_* environment variables."""

from __future__ import annotations

import pytest
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from policyd.errors import ConfigError
from policyd.telemetry.export import ScrubbingSpanExporter
from policyd.telemetry.prometheus import ScrapeAddress
from policyd.telemetry.setup import Exporters, build_telemetry, exporters_from_env

HTTP = {"traces": "http/protobuf", "metrics": "http/protobuf", "logs": "http/protobuf"}


def test_nothing_configured_means_no_sdk_at_all():
    tel = build_telemetry({})
    assert isinstance(tel.tracer_provider, trace.NoOpTracerProvider)
    assert isinstance(tel.meter_provider, metrics.NoOpMeterProvider)
    assert tel.logger_provider is None
    assert not tel.enabled and not tel.capture_content


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Exporters((), (), (), {"traces": "http/protobuf", "metrics": "http/protobuf", "logs": "http/protobuf"})),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            Exporters(("otlp",), ("otlp",), ("otlp",), {"traces": "grpc", "metrics": "grpc", "logs": "grpc"}),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces",
                "OTEL_METRICS_EXPORTER": "console,none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
            },
            Exporters(
                ("otlp",), ("console",), (), {"traces": "http/protobuf", "metrics": "http/protobuf", "logs": "grpc"}
            ),
        ),
        (
            {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
            Exporters(),
        ),
        (
            {"OTEL_METRICS_EXPORTER": "prometheus"},
            Exporters((), ("prometheus",), (), HTTP, ScrapeAddress("localhost", 9464)),
        ),
        (
            {
                "OTEL_METRICS_EXPORTER": "otlp, Prometheus,console",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0",
                "OTEL_EXPORTER_PROMETHEUS_PORT": "9100",
            },
            Exporters((), ("otlp", "prometheus", "console"), (), HTTP, ScrapeAddress("0.0.0.0", 9100)),
        ),
        (
            {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_PROMETHEUS_PORT": "not read without prometheus"},
            Exporters((), ("otlp",), (), HTTP),
        ),
    ],
)
def test_exporter_choice_follows_the_environment(env, expected):
    assert exporters_from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "environment: OTEL_TRACES_EXPORTER: unknown exporter 'jaeger'"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "environment: OTEL_EXPORTER_OTLP_PROTOCOL: unknown OTLP protocol 'http/json' (known: grpc, http/protobuf)",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "thrift"},
            "environment: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: unknown OTLP protocol 'thrift'",
        ),
        (
            {"OTEL_METRICS_EXPORTER": "otlp,prometheus,statsd"},
            "environment: OTEL_METRICS_EXPORTER: unknown exporter 'statsd' (known: otlp, prometheus, console, none)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "prometheus"},
            "environment: OTEL_TRACES_EXPORTER: unknown exporter 'prometheus' (known: otlp, console, none)",
        ),
        (
            {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "metrics"},
            "environment: OTEL_EXPORTER_PROMETHEUS_PORT: expected a port number 0-65535, got 'metrics'",
        ),
        (
            {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "94640"},
            "environment: OTEL_EXPORTER_PROMETHEUS_PORT: expected a port number 0-65535, got '94640'",
        ),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError) as err:
        exporters_from_env(env)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, HttpSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "console"}, ConsoleSpanExporter),
    ],
)
def test_each_configured_span_exporter_is_wrapped_by_the_scrubber(monkeypatch, env, kind):
    tel = build_telemetry(env)
    processors = tel.tracer_provider._active_span_processor._span_processors
    (processor,) = processors
    exporter = processor.span_exporter if hasattr(processor, "span_exporter") else processor._batch_processor._exporter
    assert isinstance(exporter, ScrubbingSpanExporter) and isinstance(exporter.inner, kind)
    tel.shutdown_sync()


def test_capture_env_switch():
    assert build_telemetry({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}).capture_content
    assert not build_telemetry({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}).capture_content
