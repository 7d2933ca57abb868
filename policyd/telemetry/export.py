"""Span exporters wrapped by the scrubber, so no secret leaves the process in a trace.

Scrubbing happens here, at export, rather than when attributes are set: it covers
every attribute, event (``exception.message`` and ``exception.stacktrace`` included),
status description and link of every span, whoever set them (our layers, the gRPC
instrumentation, a plugin), and it runs on the exporter's thread, off the request path.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from policyd.telemetry.redact import SCRUBBER, Scrubber


def scrub_span(span: ReadableSpan, scrubber: Scrubber = SCRUBBER) -> ReadableSpan:
    """A copy of ``span`` with every string attribute, event attribute and status text scrubbed."""
    status = span.status
    if status.description:
        status = Status(status.status_code, scrubber.scrub(status.description))
    return ReadableSpan(
        name=scrubber.scrub(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrubber.scrub_mapping(span.attributes),
        events=[Event(e.name, scrubber.scrub_mapping(e.attributes), timestamp=e.timestamp) for e in span.events],
        links=[Link(link.context, scrubber.scrub_mapping(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingSpanExporter(SpanExporter):
    """Scrubs each span, then hands the batch to the wrapped exporter."""

    def __init__(self, inner: SpanExporter, scrubber: Scrubber = SCRUBBER) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub_span(s, self.scrubber) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
