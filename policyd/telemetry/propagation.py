"""W3C trace context on outgoing HTTP calls, for provider plugins.

A provider calls :func:`inject_headers` on the headers of every upstream request::

    from policyd.telemetry.propagation import inject_headers

    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    inject_headers(headers)          # adds traceparent (and tracestate/baggage when present)
    async with session.post(url, json=body, headers=headers) as resp: ...

It must be called inside ``Provider.complete`` (where the model-call span is current),
not when the session is created. With tracing off it still forwards the caller's own
``traceparent``, and with no trace at all it adds nothing; it never raises.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_W3C = (TraceContextTextMapPropagator, W3CBaggagePropagator)
_checked: list[object] = [None, False]
"""The global propagator last looked at, and whether it is only the W3C ones (the default)."""


def _only_w3c(textmap: TextMapPropagator) -> bool:
    if _checked[0] is not textmap:
        parts = getattr(textmap, "_propagators", None) if type(textmap) is CompositePropagator else [textmap]
        _checked[:] = [textmap, parts is not None and all(type(p) in _W3C for p in parts)]
    return bool(_checked[1])


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context to ``headers`` (W3C ``traceparent``, per ``OTEL_PROPAGATORS``)."""
    try:
        if _only_w3c(propagate.get_global_textmap()):
            # What the W3C propagators check first: with no span and no baggage they add nothing
            # (most calls when tracing is off); skipping them saves about half of the ~2.5 µs.
            current = context.get_current()
            if not current:  # nothing set at all (no span, no baggage): the usual call with tracing off
                return
            if trace.get_current_span(current).get_span_context() == trace.INVALID_SPAN_CONTEXT and not (
                baggage.get_all(current)
            ):
                return
        propagate.inject(headers)
    except Exception:  # a misbehaving custom propagator must not fail an upstream call
        log.debug("trace context injection failed", exc_info=True)
