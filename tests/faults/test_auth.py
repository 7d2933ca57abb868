"""Who may call: bearer tokens name the tenant; nothing in the body or other headers can."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import grpc
import grpc.aio
import pytest
from faultkit import TOKEN_A, TOKEN_B, TOKEN_OPS, auth_section, bearer, gauge_config, status_of, user
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from policyd.errors import ConfigError
from policyd.v1 import policyd_pb2 as pb

CONFIG = gauge_config() + auth_section()


async def test_missing_invalid_and_malformed_credentials_are_unauthenticated_on_every_method(live, gauge_host, gauge):
    _, _, stub = await live(CONFIG, host=gauge_host)
    calls = {
        "Complete": lambda md: stub.Complete(user("hi"), metadata=md, timeout=5),
        "StreamComplete": lambda md: stub.StreamComplete(user("hi"), metadata=md, timeout=5),
        "Explain": lambda md: stub.Explain(user("hi"), metadata=md, timeout=5),
        "ListModels": lambda md: stub.ListModels(pb.ListModelsRequest(), metadata=md, timeout=5),
        "GetStats": lambda md: stub.GetStats(pb.GetStatsRequest(), metadata=md, timeout=5),
        "ReportOutcome": lambda md: stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="x"), metadata=md, timeout=5),
    }
    wrong = [(), bearer("not-a-token"), (("authorization", TOKEN_A),), (("authorization", "Basic dXNlcjpwdw=="),)]
    for name, make in calls.items():
        for metadata in wrong:
            assert await status_of(make(metadata)) == grpc.StatusCode.UNAUTHENTICATED, (name, metadata)
    assert gauge.calls == [], "no upstream call for an unauthenticated request"
    assert await status_of(calls["Complete"](bearer(TOKEN_A))) == grpc.StatusCode.OK


async def test_the_error_never_echoes_the_presented_token(live, gauge_host):
    _, _, stub = await live(CONFIG, host=gauge_host)
    canary = "sk-canary-presented-token-0042"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("hi"), metadata=bearer(canary), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert canary not in (info.value.details() or "") and canary not in str(info.value)


async def test_health_and_reflection_stay_open_without_a_token(live, gauge_host):
    _, running, _ = await live(CONFIG, host=gauge_host)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        answer = await call.read()
        await call.done_writing()
        assert "policyd.v1.PolicyService" in {s.name for s in answer.list_services_response.service}


async def test_a_tenant_limited_to_some_policies_is_denied_the_others(live, gauge_host, gauge):
    _, _, stub = await live(CONFIG, host=gauge_host)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(user("hi", policy="other"), metadata=bearer(TOKEN_B), timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "team-b" in (info.value.details() or "") and "'other'" in (info.value.details() or "")
    assert gauge.calls == []
    ok = await stub.Complete(user("hi"), metadata=bearer(TOKEN_B), timeout=5)
    assert ok.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    other = await stub.Complete(user("hi", policy="other"), metadata=bearer(TOKEN_A), timeout=5)
    assert other.explanation.policy == "other", "team-a may use any policy"


async def test_tenant_b_spoofing_a_in_body_and_headers_never_gets_a_cache_hit(live, gauge_host, gauge):
    _, _, stub = await live(CONFIG, host=gauge_host)
    first = await stub.Complete(user("the same prompt"), metadata=bearer(TOKEN_A), timeout=5)
    again = await stub.Complete(user("the same prompt"), metadata=bearer(TOKEN_A), timeout=5)
    assert not first.attempts[0].cached and again.attempts[0].cached
    spoof = (*bearer(TOKEN_B), ("x-tenant", "team-a"), ("x-policyd-tenant", "team-a"), ("tenant", "team-a"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(
            user("the same prompt", tenant="team-a", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED), metadata=spoof, timeout=5
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, "B cannot even learn that A cached it"
    b = await stub.Complete(user("the same prompt", tenant="team-a"), metadata=spoof, timeout=5)
    assert not b.attempts[0].cached and b.total_cost_usd > 0
    assert [c.tenant for c in gauge.calls] == ["team-a", "team-b"], "the upstream saw B as B"


async def test_get_stats_shows_a_tenant_only_its_own_figures(live, gauge_host):
    _, _, stub = await live(CONFIG, host=gauge_host)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetStats(pb.GetStatsRequest(tenant="team-a"), metadata=bearer(TOKEN_B), timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    own = await stub.GetStats(pb.GetStatsRequest(), metadata=bearer(TOKEN_B), timeout=5)
    anyone = await stub.GetStats(pb.GetStatsRequest(tenant="team-a"), metadata=bearer(TOKEN_OPS), timeout=5)
    assert own.policy_version == anyone.policy_version == "v1"


async def test_a_tenant_reports_only_on_its_own_outcomes(live, gauge_host):
    _, _, stub = await live(CONFIG, host=gauge_host)
    a = await stub.Complete(user("hi", request_id="req-of-a"), metadata=bearer(TOKEN_A), timeout=5)
    assert a.request_id == "req-of-a"
    report = pb.ReportOutcomeRequest(request_id="req-of-a", success=False)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ReportOutcome(report, metadata=bearer(TOKEN_B), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, "B is told nothing about A's request"
    assert (await stub.ReportOutcome(report, metadata=bearer(TOKEN_A), timeout=5)).changed
    repeat = await stub.ReportOutcome(report, metadata=bearer(TOKEN_OPS), timeout=5)
    assert not repeat.changed, "an all_stats operator may report on any tenant's outcome"


def test_tokens_in_the_file_must_be_digests_and_tenants_policies_must_exist(make_config, single_model_config):
    with pytest.raises(ConfigError, match=r"auth\.tenants\.a\.token_sha256.*64 lower-case hex digits"):
        make_config(single_model_config + "auth: {tenants: {a: {token_sha256: [my-plain-token]}}}")
    a = "{token_sha256: ['" + "0" * 64 + "']"
    with pytest.raises(ConfigError, match=r"auth\.tenants\.a\.policies\[1\]: unknown policy 'nope'"):
        make_config(single_model_config + "auth: {tenants: {a: " + a + ", policies: [default, nope]}}}")
    with pytest.raises(ConfigError, match="also given to tenant 'a'"):
        make_config(single_model_config + "auth: {tenants: {a: " + a + "}, b: " + a + "}}}")


def test_hash_token_reads_stdin_and_generates(tmp_path):
    from policyd.server.auth import hash_token

    out = subprocess.run(
        [sys.executable, "-m", "policyd", "hash-token"], input="s3cret\n", capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == hash_token("s3cret")
    gen = subprocess.run([sys.executable, "-m", "policyd", "hash-token", "--generate"], capture_output=True, text=True)
    token = gen.stdout.split("token:")[1].split()[0]
    assert gen.stdout.split("token_sha256:")[1].strip() == hash_token(token) and len(token) >= 40


async def test_concurrent_tenants_each_get_their_own_identity(live, gauge_host, gauge):
    _, _, stub = await live(gauge_config(delay_s=0.05) + auth_section(), host=gauge_host)
    tokens = [TOKEN_A, TOKEN_B] * 10
    await asyncio.gather(*(stub.Complete(user(f"p{i}"), metadata=bearer(t), timeout=10) for i, t in enumerate(tokens)))
    seen = {c.messages[0].content: c.tenant for c in gauge.calls}
    assert seen == {f"p{i}": ("team-a" if t == TOKEN_A else "team-b") for i, t in enumerate(tokens)}
