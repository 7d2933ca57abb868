"""The OpenTelemetry logs decision sink: one log record per decision, in the request's trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber

from policyd.api import POLICYD_VERSION, NoParams, SinkContext
from policyd.api import semconv as sc


class OtelLogsSink:
    def __init__(self, logger_provider: Any) -> None:
        self.logger = logger_provider.get_logger(sc.INSTRUMENTATION_SCOPE, POLICYD_VERSION)

    @classmethod
    def build(cls, context: SinkContext, params: NoParams) -> OtelLogsSink:
        if context.logger_provider is None:
            raise ValueError("needs an OpenTelemetry logs exporter: set OTEL_LOGS_EXPORTER=otlp (or console)")
        return cls(context.logger_provider)

    def emit(self, event: Mapping[str, Any]) -> None:
        self.logger.emit(
            event_name=sc.EVENT_DECISION,
            body=dict(event),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={
                sc.POLICYD_DECISION_ID: event.get("decision_id", ""),
                sc.POLICYD_POLICY: event.get("policy", ""),
                sc.POLICYD_RULE: event.get("rule", ""),
                sc.POLICYD_OUTCOME: event.get("status", ""),
            },
            context=_trace_context(str(event.get("trace_id", "")), str(event.get("span_id", ""))),
        )

    def close(self) -> None:
        """The daemon's telemetry shutdown flushes the logger provider."""


def _trace_context(trace_id: str, span_id: str) -> Any:
    """A context whose current span carries the decision's trace and span ids, for log correlation."""
    try:
        tid, sid = int(trace_id, 16), int(span_id, 16)
    except ValueError:
        return None
    span_context = trace.SpanContext(tid, sid, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))
