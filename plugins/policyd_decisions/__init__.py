"""policyd's built-in decision sinks, registered through the public hook like any plugin.

* ``jsonl``: one JSON object per line, appended to a file (``path``, relative to the
  daemon's data directory unless absolute);
* ``otel-logs``: one OpenTelemetry log record per decision (``event_name``
  ``policyd.decision``, the event as a structured body, the request's trace context),
  through the daemon's logs exporter (``OTEL_LOGS_EXPORTER``).
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.plugin import hookimpl
from policyd.plugin.specs import DecisionSinkSpec
from policyd_decisions.jsonl import JsonLinesParams, JsonLinesSink
from policyd_decisions.otel_logs import OtelLogsSink


@hookimpl
def policyd_register_decision_sinks(register: Callable[[DecisionSinkSpec], None]) -> None:
    register(DecisionSinkSpec(name="jsonl", factory=JsonLinesSink.build, params=JsonLinesParams))
    register(DecisionSinkSpec(name="otel-logs", factory=OtelLogsSink.build))
