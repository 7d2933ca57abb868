"""The policy file's ``telemetry:`` section.

Exporters are chosen by the standard ``OTEL_*`` environment variables, not here: the
section holds what the environment cannot say, the content-capture switch and the
decision-event sinks. Sink parameters are validated against the registered sink's
model when the daemon is built (errors name ``telemetry.decisions.sinks[i]...``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SinkRef(_Strict):
    """A decision sink by its registered name, with its parameters."""

    name: str
    params: dict[str, Any] = {}


class DecisionsConfig(_Strict):
    sinks: list[SinkRef] | None = None
    """Sinks for decision events. None: the ``otel-logs`` sink when an OTel logs exporter is configured, else none."""
    queue_size: int = Field(default=10_000, gt=0)
    """Events waiting for the sinks; when full, new events are dropped and counted, never waited for."""


class TelemetryConfig(_Strict):
    capture_content: bool = False
    """Record prompts and outputs on spans and in decision events. The environment variable
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` opts in as well."""
    decisions: DecisionsConfig = DecisionsConfig()
