"""The layers in the cases a plain Complete does not reach: cache hits, tracing off, streaming."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from policyd.telemetry import semconv as sc
from policyd.telemetry.metrics import Instruments
from policyd.telemetry.setup import build_telemetry
from policyd.telemetry.spans import TelemetryLayers
from policyd.types import CacheMode, Message, ModelCall, ModelResponse, ModelSpec, Role, Usage
from policyd.v1 import policyd_pb2 as pb
from tests.telemetry.support import CANARY_KEY, client_metadata, points, policy, user

MODEL = ModelSpec("m1", "prov", "up-m1", 1.0, 2.0, 1000, "mit")


async def test_a_cached_answer_is_a_cache_hit_span_without_gen_ai_duration_or_tokens():
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tel = build_telemetry({}, span_exporters=[spans], metric_readers=[reader])
    layers = TelemetryLayers(tel, Instruments(tel.meter()))
    cached = ModelResponse(Message(role=Role.ASSISTANT, content="hi"), Usage(5, 7), cached=True)

    async def from_cache(turn, call, on_delta):
        return cached

    call = ModelCall(model=MODEL, messages=(Message(role=Role.USER, content="q"),), cache_mode=CacheMode.DEFAULT)
    assert await layers.call_span(None, call, None, from_cache) is cached
    (span,) = spans.get_finished_spans()
    assert span.name == "chat up-m1" and span.attributes[sc.POLICYD_CACHED] is True
    got = points(reader)
    assert [p.value for p in got[sc.METRIC_CACHE_HITS]] == [1]
    assert sc.METRIC_TOKEN_USAGE not in got and sc.METRIC_OPERATION_DURATION not in got


async def test_with_tracing_off_the_callers_trace_still_reaches_the_outcome_and_the_upstream(traced, upstream):
    t = await traced(policy(upstream.base_url), exporters=False)
    assert not t.daemon.telemetry.enabled
    client, metadata = client_metadata()
    cctx = client.get_span_context()
    resp = await t.stub.Complete(user("write a sort", task="coding"), metadata=metadata)
    assert resp.trace_id == format(cctx.trace_id, "032x")
    sent = upstream.requests[0]["headers"]["traceparent"]
    assert sent.split("-")[1:3] == [format(cctx.trace_id, "032x"), format(cctx.span_id, "016x")]


async def test_without_a_caller_trace_and_tracing_off_nothing_is_invented(traced, upstream):
    t = await traced(policy(upstream.base_url), exporters=False)
    resp = await t.stub.Complete(user("write a sort", task="coding"))
    assert resp.trace_id == ""
    assert "traceparent" not in upstream.requests[0]["headers"]


async def test_streamed_attempts_carry_scrubbed_errors_and_the_stream_is_traced(traced, upstream):
    t = await traced(policy(upstream.base_url))
    events = [e async for e in t.stub.StreamComplete(user("FAIL-UPSTREAM", task="coding"))]
    attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
    assert attempts[0].error.startswith("upstream: HTTP 401") and CANARY_KEY not in attempts[0].error
    final = events[-1].final
    assert final.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    (rpc,) = [s for s in t.finished() if s.name == "/policyd.v1.PolicyService/StreamComplete"]
    (decision,) = t.by_name(sc.SPAN_DECISION)
    assert decision.parent.span_id == rpc.context.span_id
    assert final.trace_id == format(rpc.context.trace_id, "032x")
    assert sorted(s.attributes[sc.POLICYD_ROLE] for s in t.by_name("chat ")) == ["draft", "escalate"]
