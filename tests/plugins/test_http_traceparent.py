"""Real HTTP providers carry the model-call span's W3C traceparent to their upstream."""

from __future__ import annotations

from fake_upstream import Json
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_openai import completion, model, provider

from policyd.telemetry.setup import build_telemetry
from policyd.telemetry.spans import TelemetryLayers
from policyd.types import Message, ModelCall, Role


async def test_openai_compatible_request_carries_the_call_spans_traceparent(upstream, monkeypatch):
    spans = InMemorySpanExporter()
    layers = TelemetryLayers(build_telemetry({}, span_exporters=[spans]), None)
    upstream.queue(Json(completion()))
    call = ModelCall(model=model(), messages=(Message(role=Role.USER, content="hi"),))
    complete = provider(upstream, monkeypatch).complete
    response = await layers.call_span(None, call, None, lambda _turn, c, d: complete(c, d))
    assert response.message.content == "Hello!"
    (span,) = spans.get_finished_spans()
    version, trace_id, parent_id, _ = upstream.seen[0].headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    )


async def test_without_a_trace_no_traceparent_is_sent(upstream, monkeypatch):
    upstream.queue(Json(completion()))
    call = ModelCall(model=model(), messages=(Message(role=Role.USER, content="hi"),))
    await provider(upstream, monkeypatch).complete(call)
    assert "traceparent" not in upstream.seen[0].headers


def test_baggage_without_a_span_and_a_custom_propagator_still_reach_the_headers():
    """The shortcut for "no span, no baggage" skips only what the W3C propagators would skip."""
    from opentelemetry import baggage, context, propagate
    from opentelemetry.propagators.textmap import DefaultSetter, TextMapPropagator

    from policyd.telemetry.propagation import inject_headers

    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        headers: dict[str, str] = {}
        inject_headers(headers)
        assert headers == {"baggage": "tenant=acme"}
    finally:
        context.detach(token)

    class Fixed(TextMapPropagator):
        def inject(self, carrier, context=None, setter=DefaultSetter()):  # type: ignore[no-untyped-def]
            setter.set(carrier, "x-fixed", "1")

        def extract(self, carrier, context=None, getter=None):  # type: ignore[no-untyped-def]
            return context

        @property
        def fields(self) -> set[str]:
            return {"x-fixed"}

    default = propagate.get_global_textmap()
    propagate.set_global_textmap(Fixed())
    try:
        headers = {}
        inject_headers(headers)
        assert headers == {"x-fixed": "1"}
    finally:
        propagate.set_global_textmap(default)
    headers = {}
    inject_headers(headers)
    assert headers == {}
