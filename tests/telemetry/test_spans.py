"""Span tree and attributes of real requests through a live grpc.aio daemon, read from an in-memory exporter."""

from __future__ import annotations

import math

from opentelemetry.trace import SpanKind, StatusCode

from policyd.telemetry import semconv as sc
from policyd.v1 import policyd_pb2 as pb
from tests.telemetry.support import CANARY_PROMPT, client_metadata, policy, user


async def test_draft_validate_trace_is_rpc_then_decision_then_one_span_per_attempt(traced, upstream):
    t = await traced(policy(upstream.base_url))
    client, metadata = client_metadata()
    resp = await t.stub.Complete(user(CANARY_PROMPT, task="coding", request_id="r-1"), metadata=metadata)
    client.end()
    cctx = client.get_span_context()

    assert resp.trace_id == format(cctx.trace_id, "032x")
    assert [pb.AttemptRole.Name(a.role) for a in resp.attempts] == [
        "ATTEMPT_ROLE_DRAFT",
        "ATTEMPT_ROLE_VALIDATE",
        "ATTEMPT_ROLE_ESCALATE",
    ]
    spans = t.finished()
    assert {s.context.trace_id for s in spans} == {cctx.trace_id}
    (rpc,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert rpc.name == "/policyd.v1.PolicyService/Complete"
    assert rpc.parent.span_id == cctx.span_id and rpc.parent.is_remote
    (decision,) = t.by_name(sc.SPAN_DECISION)
    assert decision.parent.span_id == rpc.context.span_id
    calls = sorted(t.by_name("chat "), key=lambda s: s.attributes[sc.POLICYD_ATTEMPT_INDEX])
    assert [c.parent.span_id for c in calls] == [decision.context.span_id] * 3
    assert [c.name for c in calls] == [
        "chat drafter-v1",
        f"chat {t.daemon.config.catalog['claude-sonnet-4'].upstream}",
        f"chat {t.daemon.config.catalog['claude-opus-4.1'].upstream}",
    ]

    d = decision.attributes
    assert (d[sc.POLICYD_POLICY], d[sc.POLICYD_RULE], d[sc.POLICYD_STRATEGY]) == (
        "default",
        "checked-coding",
        "draft-validate",
    )
    assert d[sc.POLICYD_OUTCOME] == "accepted-unvalidated"
    assert d[sc.POLICYD_POLICY_VERSION] == "tel-1"
    assert math.isclose(d[sc.POLICYD_TOTAL_COST_USD], resp.total_cost_usd, rel_tol=1e-12)
    assert d[sc.POLICYD_DECISION_ID] == resp.decision_id
    assert list(d[sc.POLICYD_VERDICTS]) == ["llm-judge:reject"]

    for span, attempt in zip(calls, resp.attempts, strict=True):
        a = span.attributes
        assert span.kind is SpanKind.CLIENT
        assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert a[sc.POLICYD_MODEL] == attempt.model
        assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == attempt.input_tokens
        assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == attempt.output_tokens
        assert math.isclose(a[sc.POLICYD_COST_USD], attempt.cost_usd, rel_tol=1e-12)
        assert a[sc.POLICYD_CACHED] is False
        assert list(a[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    draft, judge, escalate = (c.attributes for c in calls)
    assert (draft[sc.GEN_AI_PROVIDER_NAME], draft[sc.GEN_AI_RESPONSE_MODEL]) == ("fixture-http", "drafter-v1-0915")
    assert (draft[sc.POLICYD_ROLE], draft[sc.POLICYD_EFFORT]) == ("draft", "off")
    assert judge[sc.GEN_AI_PROVIDER_NAME] == "simulated"
    assert (judge[sc.POLICYD_ROLE], judge[sc.POLICYD_VERDICT], judge[sc.POLICYD_VALIDATOR]) == (
        "validate",
        "reject",
        "llm-judge",
    )
    assert sc.POLICYD_VERDICT not in draft and sc.POLICYD_VERDICT not in escalate
    assert escalate[sc.POLICYD_ROLE] == "escalate"
    # The validate span ends when the call ends, not when the verdict is parsed later.
    assert calls[1].end_time <= calls[2].start_time


async def test_request_params_become_gen_ai_request_attributes(traced, upstream):
    t = await traced(policy(upstream.base_url))
    params = pb.GenerationParams(max_output_tokens=512, temperature=0.25, top_p=0.9)
    await t.stub.Complete(user("hello", params=params))
    (call,) = t.by_name("chat ")
    a = call.attributes
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 512
    assert math.isclose(a[sc.GEN_AI_REQUEST_TEMPERATURE], 0.25)
    assert math.isclose(a[sc.GEN_AI_REQUEST_TOP_P], 0.9)
    assert a[sc.GEN_AI_REQUEST_MODEL] == t.daemon.config.catalog["gpt-oss-120b"].upstream
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "simulated/" + a[sc.GEN_AI_REQUEST_MODEL]


async def test_provider_http_call_carries_the_call_spans_traceparent(traced, upstream):
    t = await traced(policy(upstream.base_url))
    client, metadata = client_metadata()
    await t.stub.Complete(user("write a sort", task="coding"), metadata=metadata)
    (draft,) = [s for s in t.by_name("chat ") if s.attributes[sc.POLICYD_ROLE] == "draft"]
    sent = upstream.requests[0]["headers"]["traceparent"]
    version, trace_id, parent_id, _flags = sent.split("-")
    assert (version, trace_id) == ("00", format(client.get_span_context().trace_id, "032x"))
    assert parent_id == format(draft.context.span_id, "016x")


async def test_health_checks_and_reflection_make_no_spans(traced, upstream):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    t = await traced(policy(upstream.base_url))
    health = health_pb2_grpc.HealthStub(t.channel)
    resp = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(t.channel)
    answers = [
        a
        async for a in reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    ]
    assert answers and answers[0].list_services_response.service
    await t.stub.ListModels(pb.ListModelsRequest())
    assert [s.name for s in t.finished()] == ["/policyd.v1.PolicyService/ListModels"]


async def test_failed_upstream_call_is_an_error_span_and_the_decision_records_the_failure(traced, upstream):
    t = await traced(policy(upstream.base_url))
    resp = await t.stub.Complete(user("FAIL-UPSTREAM please", task="coding"))
    draft = next(s for s in t.by_name("chat ") if s.attributes[sc.POLICYD_ROLE] == "draft")
    assert draft.status.status_code is StatusCode.ERROR
    assert draft.attributes[sc.ERROR_TYPE] == "UpstreamError"
    assert draft.attributes[sc.POLICYD_ATTEMPT_INDEX] == 0
    assert "HTTP 401" in draft.attributes[sc.POLICYD_ERROR]
    assert [e.name for e in draft.events] == ["exception"]
    assert resp.attempts[0].error.startswith("upstream: HTTP 401")
    (decision,) = t.by_name(sc.SPAN_DECISION)
    assert decision.attributes[sc.POLICYD_OUTCOME] == "accepted-unvalidated"
    assert decision.attributes[sc.POLICYD_ATTEMPT_COUNT] == 2
