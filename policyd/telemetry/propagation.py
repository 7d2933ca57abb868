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

from opentelemetry import propagate

log = logging.getLogger(__name__)


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context to ``headers`` (W3C ``traceparent``, per ``OTEL_PROPAGATORS``)."""
    try:
        propagate.inject(headers)
    except Exception:  # a misbehaving custom propagator must not fail an upstream call
        log.debug("trace context injection failed", exc_info=True)
