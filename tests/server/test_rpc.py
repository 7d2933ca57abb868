"""End to end on a real grpc.aio server at 127.0.0.1:0 with a real stub."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from policyd.v1 import policyd_pb2 as pb

FAST = """
version: t1
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan: {strategy: fallback, params: {models: [qwen3-coder-480b-a35b, claude-sonnet-4]}}
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  slow:
    rules:
      - name: slow
        plan: {strategy: single, params: {model: claude-opus-4.1}}
"""

SLOW_SIM = FAST.replace("latency_scale: 0.0", "latency_scale: 1.0")


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def test_complete_returns_simulated_answer_with_attempts_and_cost(live):
    _, _, stub = await live(FAST)
    resp = await stub.Complete(user("write a binary search", task="coding", request_id="r-1"))
    assert resp.request_id == "r-1"
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert "simulated" in resp.output.content
    assert resp.output.role == pb.ROLE_ASSISTANT
    assert [a.model for a in resp.attempts] == ["qwen3-coder-480b-a35b"]
    attempt = resp.attempts[0]
    assert attempt.provider == "simulated"
    assert attempt.input_tokens > 0 and attempt.output_tokens > 0
    expected = (attempt.input_tokens * 2.0 + attempt.output_tokens * 2.0) / 1e6
    assert math.isclose(attempt.cost_usd, expected, rel_tol=1e-9)
    assert math.isclose(resp.total_cost_usd, expected, rel_tol=1e-9)
    assert resp.explanation.policy == "default"
    assert resp.explanation.rule == "coding"
    assert resp.explanation.strategy == "fallback"
    assert resp.decision_id


async def test_stream_complete_relays_deltas_then_final(live):
    _, _, stub = await live(FAST)
    events = [e async for e in stub.StreamComplete(user("hello there"))]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    finals = [e.final for e in events if e.WhichOneof("event") == "final"]
    attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
    assert len(finals) == 1 and events[-1].WhichOneof("event") == "final"
    assert len(deltas) > 1, "the answer should arrive in pieces"
    assert "".join(deltas) == finals[0].output.content
    assert [a.model for a in attempts] == ["gpt-oss-120b"]


async def test_explain_calls_no_model_and_estimates_cost(live):
    _, _, stub = await live(FAST)
    resp = await stub.Explain(user("x", task="coding"))
    e = resp.explanation
    assert (e.rule, e.strategy) == ("coding", "fallback")
    assert list(e.models) == ["qwen3-coder-480b-a35b", "claude-sonnet-4"]
    assert [s.model for s in e.steps] == list(e.models)
    assert 0 < e.estimated_cost.best_usd < e.estimated_cost.worst_usd
    assert e.policy_version == "t1"


async def test_list_models_filters_by_tag(live):
    _, _, stub = await live(FAST)
    all_models = await stub.ListModels(pb.ListModelsRequest())
    ids = {m.id for m in all_models.models}
    assert {"qwen3-coder-480b-a35b", "glm-4.5", "kimi-k2", "claude-sonnet-4", "claude-opus-4.1", "o3"} <= ids
    validators = await stub.ListModels(pb.ListModelsRequest(tag="validator"))
    assert {m.id for m in validators.models} == {"claude-sonnet-4", "claude-opus-4.1", "o3"}
    sonnet = next(m for m in all_models.models if m.id == "claude-sonnet-4")
    assert (sonnet.input_usd_per_mtok, sonnet.output_usd_per_mtok, sonnet.license) == (3.0, 15.0, "proprietary")


@pytest.mark.parametrize(
    ("request_msg", "field"),
    [
        (pb.CompleteRequest(), "messages"),
        (pb.CompleteRequest(messages=[pb.Message(content="hi")]), "messages[0].role"),
        (pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="")]), "messages[0].content"),
        (
            pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="hi")],
                params=pb.GenerationParams(max_output_tokens=-5),
            ),
            "params.max_output_tokens",
        ),
        (
            pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="hi")],
                params=pb.GenerationParams(temperature=float("nan")),
            ),
            "params.temperature",
        ),
        (
            pb.CompleteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="hi")],
                tools=[pb.Tool(name="t", parameters_json_schema="{not json")],
            ),
            "tools[0].parameters_json_schema",
        ),
        (
            pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_TOOL, content="42")]),
            "messages[0].tool_call_id",
        ),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(live, request_msg, field):
    _, _, stub = await live(FAST)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(request_msg)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(field + ":")


async def test_unknown_role_value_is_invalid_argument(live):
    _, _, stub = await live(FAST)
    msg = pb.CompleteRequest(messages=[pb.Message(role=99, content="hi")])  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(msg)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[0].role" in info.value.details()


async def test_unknown_policy_is_not_found(live):
    _, _, stub = await live(FAST)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("hi", policy="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in info.value.details()


async def test_expired_deadline_is_deadline_exceeded(live):
    _, _, stub = await live(SLOW_SIM)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("think hard", policy="slow"), timeout=0.2)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_health_serves_and_reflection_lists_the_service(live):
    _, running, _ = await live(FAST)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "policyd.v1.PolicyService"):
            resp = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = refl.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        answer = await call.read()
        await call.done_writing()
        names = {s.name for s in answer.list_services_response.service}
        assert "policyd.v1.PolicyService" in names


async def test_reflection_is_served_as_v1_too_and_describes_the_contract(live):
    """grpcurl and current tools try grpc.reflection.v1 first (same messages, another package)."""
    _, running, _ = await live(FAST)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        call = info()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed = await call.read()
        await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol="policyd.v1.PolicyService"))
        described = await call.read()
        await call.write(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection")
        )
        itself = await call.read()
        await call.done_writing()
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "policyd.v1.PolicyService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in described.file_descriptor_response.file_descriptor_proto
    ]
    assert any(f.package == "policyd.v1" and any(s.name == "PolicyService" for s in f.service) for f in files)
    [v1] = [
        descriptor_pb2.FileDescriptorProto.FromString(b) for b in itself.file_descriptor_response.file_descriptor_proto
    ]
    assert (v1.package, v1.service[0].name) == ("grpc.reflection.v1", "ServerReflection")


async def test_graceful_shutdown_finishes_in_flight_and_refuses_new(live):
    _, running, stub = await live(SLOW_SIM)
    in_flight = asyncio.ensure_future(stub.Complete(user("slow one", policy="slow"), timeout=10))
    await asyncio.sleep(0.3)
    shutdown = asyncio.create_task(running.shutdown(grace_s=5.0))
    await asyncio.sleep(0.05)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("too late"), timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    resp = await in_flight
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    await shutdown
