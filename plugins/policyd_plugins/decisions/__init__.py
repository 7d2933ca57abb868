"""policyd's built-in decision sinks, registered through the public hook like any plugin.

* ``jsonl``: one JSON object per line, appended to a file (``path``, relative to the
  daemon's data directory unless absolute);
* ``otel-logs``: one OpenTelemetry log record per decision (``event_name``
  ``policyd.decision``, the event as a structured body, the request's trace context),
  through the daemon's logs exporter (``OTEL_LOGS_EXPORTER``).
"""

from __future__ import annotations

from collections.abc import Callable

from policyd.api import DecisionSinkSpec, hookimpl
from policyd_plugins.decisions.jsonl import JsonLinesParams, JsonLinesSink
from policyd_plugins.decisions.otel_logs import OtelLogsSink

POLICYD_API = "1.0"
"""The plugin API this plugin is written for (see docs/plugins.md)."""


@hookimpl
def policyd_register_decision_sinks(register: Callable[[DecisionSinkSpec], None]) -> None:
    register(DecisionSinkSpec(name="jsonl", factory=JsonLinesSink.build, params=JsonLinesParams))
    register(DecisionSinkSpec(name="otel-logs", factory=OtelLogsSink.build))
