"""Three daemon processes on one Valkey/Redis and one PostgreSQL, as the fleet runs them.

Each test starts ``policyd serve`` three times (``policyd.testing.DaemonProcess``) against
private servers (tests/fleet/servers.py) and drives them over gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import pytest

from policyd.testing.process import DaemonProcess
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc
from tests.fleet.servers import PostgresServer, RedisServer

FLEET = """
version: three-replicas
providers:
  simulated: {{kind: simulated, latency_scale: 0.05}}
policies:
  default:
    rules:
      - name: plain
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
budgets:
  tenants:
    acme: {{daily_usd: {budget}}}
limits:
  rate:
    requests_per_minute: {rpm}
ledger: {{durability: sync}}
fleet:
  valkey: {{prefix: {prefix}, timeout_ms: {valkey_ms}, on_unavailable: fail_closed, retry_after_ms: 200}}
  postgres: {{timeout_ms: 1500, ship_interval_ms: 100}}
"""

pytestmark = pytest.mark.timeout(300)


def policy(budget: float = 1000.0, rpm: int = 1_000_000, valkey_ms: int = 2000) -> str:
    """Valkey's per-operation timeout is generous by default: two shared cores under 300 requests are slow."""
    return FLEET.format(budget=budget, rpm=rpm, valkey_ms=valkey_ms, prefix=f"p{uuid.uuid4().hex[:8]}")


@pytest.fixture
def fleet_env(redis_server: RedisServer, pg_dsn: str) -> dict[str, str]:
    return {"POLICYD_VALKEY_URL": redis_server.url, "POLICYD_POSTGRES_DSN": pg_dsn}


@contextlib.contextmanager
def replicas(text: str, env: dict[str, str], n: int = 3) -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    try:
        for _ in range(n):
            started.append(DaemonProcess(text, env=env))
        yield started
    finally:
        for d in started:
            d.stop()


def request(text: str, request_id: str = "", tenant: str = "acme") -> pb.CompleteRequest:
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], tenant=tenant)
    msg.request_id = request_id or uuid.uuid4().hex
    msg.params.max_output_tokens = 100
    return msg


async def ask(address: str, msgs: list[pb.CompleteRequest], deadline_s: float = 30) -> list[object]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)

        async def one(m: pb.CompleteRequest) -> object:
            try:
                return await stub.Complete(m, timeout=deadline_s)
            except grpc.aio.AioRpcError as exc:
                return exc

        return list(await asyncio.gather(*(one(m) for m in msgs)))


async def fleet_request_ids(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch("SELECT request_id FROM outcomes")]
    finally:
        await conn.close()


async def until_shipped(dsn: str, wanted: set[str], timeout_s: float = 30) -> list[str]:
    end = time.monotonic() + timeout_s
    while True:
        ids = await fleet_request_ids(dsn)
        if wanted <= set(ids) or time.monotonic() > end:
            return ids
        await asyncio.sleep(0.2)


async def test_300_concurrent_requests_over_three_processes_keep_one_budget(fleet_env):
    with replicas(policy(budget=0.002), fleet_env) as fleet:
        batches = [[request(f"question {i}") for i in range(k, 300, 3)] for k in range(3)]
        per_replica = await asyncio.gather(*(ask(d.address, b) for d, b in zip(fleet, batches, strict=True)))
        results = [r for replies in per_replica for r in replies]
        answered = [r for r in results if isinstance(r, pb.CompleteResponse)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert answered and refused
        why = sorted({f"{r.code().name}: {r.details()}" for r in refused})[:4]
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}, why
        spent = sum(r.total_cost_usd for r in answered)
        assert spent <= 0.002, "the three replicas together never exceed the tenant's one budget"
        ids = await until_shipped(fleet_env["POLICYD_POSTGRES_DSN"], {r.request_id for r in answered})
        assert len(ids) == len(answered), "every answer is in the fleet ledger once"
        stats = fleet[1].stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert stats.requests == len(answered) and stats.total_cost_usd == pytest.approx(spent)


async def test_a_rate_limit_holds_over_three_processes(fleet_env):
    with replicas(policy(rpm=9), fleet_env) as fleet:
        results = []
        for i in range(18):
            results += await ask(fleet[i % 3].address, [request(f"q{i}")])
        answered = [r for r in results if isinstance(r, pb.CompleteResponse)]
        assert len(answered) == 9
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_report_outcome_on_c_moves_the_fleet_cost_per_success_on_b(fleet_env):
    with replicas(policy(), fleet_env) as (a, b, c):
        for i in range(4):
            a.stub().Complete(request(f"q{i}", request_id=f"answered-by-a-{i}"))
        before = b.stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert (before.requests, before.successes) == (4, 4)
        assert c.stub().ReportOutcome(pb.ReportOutcomeRequest(request_id="answered-by-a-2", success=False)).changed
        after = b.stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert after.successes == 3
        assert after.cost_per_success_usd == pytest.approx(before.total_cost_usd / 3)
        out = b.cli("stats", "--address", b.address, "--json")
        assert out.returncode == 0, out.stderr
        assert int(json.loads(out.stdout)["rows"][0]["successes"]) == 3, "policyd stats answers for the fleet"


async def test_kill_9_of_a_replica_mid_load_loses_no_acknowledged_outcome(fleet_env, tmp_path: Path):
    text = policy()
    folder = tmp_path / "a"
    folder.mkdir()
    a = DaemonProcess(text, env=fleet_env, folder=folder)
    acknowledged: list[str] = []
    try:
        async with grpc.aio.insecure_channel(a.address) as channel:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)

            async def load(k: int) -> None:
                for i in range(1000):
                    try:
                        reply = await stub.Complete(request(f"load {k} {i}"), timeout=10)
                    except grpc.aio.AioRpcError:
                        return
                    acknowledged.append(reply.request_id)
                    if len(acknowledged) >= 40:
                        enough.set()

            enough = asyncio.Event()
            workers = [asyncio.create_task(load(k)) for k in range(8)]
            await enough.wait()
            os.kill(a.proc.pid, signal.SIGKILL)  # mid-load: replies were in flight
            await asyncio.gather(*workers)
    finally:
        a.stop()
    again = DaemonProcess(text, env=fleet_env, folder=folder)  # the same data directory: its spool
    try:
        ids = await until_shipped(fleet_env["POLICYD_POSTGRES_DSN"], set(acknowledged))
    finally:
        again.stop()
    assert set(acknowledged) <= set(ids), "every acknowledged outcome reached the fleet ledger"
    assert len(ids) == len(set(ids)), "none twice"


async def test_postgresql_stopped_for_10_s_under_load_loses_nothing(fleet_env, postgres_server: PostgresServer):
    with replicas(policy(), fleet_env, n=2) as fleet:
        answered: list[str] = []
        stop_at, restart_at = time.monotonic() + 1, time.monotonic() + 11
        stopped = False
        i = 0
        while time.monotonic() < restart_at + 1:
            now = time.monotonic()
            if not stopped and now >= stop_at:
                await asyncio.to_thread(postgres_server.stop, "immediate")
                stopped = True
            if stopped and postgres_server.running is False and now >= restart_at:
                await asyncio.to_thread(postgres_server.start)
            results = await ask(fleet[i % 2].address, [request(f"q{i}-{j}") for j in range(4)])
            answered += [r.request_id for r in results if isinstance(r, pb.CompleteResponse)]
            assert all(isinstance(r, pb.CompleteResponse) for r in results), "answers go on without PostgreSQL"
            i += 1
            await asyncio.sleep(0.05)
        ids = await until_shipped(fleet_env["POLICYD_POSTGRES_DSN"], set(answered), timeout_s=60)
        assert set(answered) <= set(ids) and len(ids) == len(set(ids))


async def test_valkey_stopped_gives_unavailable_with_the_reason_within_the_deadline(
    fleet_env, redis_server: RedisServer
):
    with replicas(policy(valkey_ms=300), fleet_env, n=1) as (a,):
        assert isinstance((await ask(a.address, [request("warm")]))[0], pb.CompleteResponse)
        redis_server.stop()
        try:
            started = time.monotonic()
            (result,) = await ask(a.address, [request("while Valkey is down")], deadline_s=2.0)
            took = time.monotonic() - started
        finally:
            redis_server.start()
        assert isinstance(result, grpc.aio.AioRpcError)
        assert result.code() == grpc.StatusCode.UNAVAILABLE
        assert "Valkey" in result.details() and "fail_closed" in result.details()
        assert took < 2.0


async def test_a_prompt_answered_by_a_is_a_hit_on_b_and_c_and_50_identical_make_one_upstream_call(fleet_env):
    with replicas(policy(), fleet_env) as (a, b, c):
        (first,) = await ask(a.address, [request("what does the fleet share?")])
        assert isinstance(first, pb.CompleteResponse) and not first.attempts[0].cached
        for other in (b, c):
            (again,) = await ask(other.address, [request("what does the fleet share?")])
            assert isinstance(again, pb.CompleteResponse)
            assert again.attempts[0].cached and again.output.content == first.output.content
        same = [request("fifty times the same question") for _ in range(50)]
        per_replica = await asyncio.gather(*(ask(d.address, same[k::3]) for k, d in enumerate((a, b, c))))
        answers = [r for batch in per_replica for r in batch]
        assert all(isinstance(r, pb.CompleteResponse) for r in answers)
        assert sum(1 for r in answers if not r.attempts[0].cached) == 1, "one upstream call for the whole fleet"
