"""The fleet ledger on a real PostgreSQL: any replica answers for the fleet; the local spool loses nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from policyd.fleet.postgres import MIGRATIONS, PostgresLedger, migrate
from policyd.v1 import policyd_pb2 as pb
from tests.fleet.servers import PostgresServer

LEDGER = """
version: fleet-ledger
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: plain
        plan: {strategy: single, params: {model: gpt-oss-120b}}
ledger: {durability: sync}
fleet:
  postgres:
    timeout_ms: 1000
    ship_interval_ms: 50
"""


def user(text: str, request_id: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=text)], tenant="acme", request_id=request_id
    )


@pytest.fixture
def fleet_env(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POLICYD_POSTGRES_DSN", pg_dsn)
    return pg_dsn


async def test_report_on_c_for_an_answer_of_a_moves_the_cost_per_success_on_b(live, fleet_env):
    (a, _, stub_a), (_, _, stub_b), (_, _, stub_c) = [await live(LEDGER) for _ in range(3)]
    assert isinstance(a.ledger, PostgresLedger)
    answers = [await stub_a.Complete(user(f"q{i}", f"r{i}")) for i in range(4)]
    before = (await stub_b.GetStats(pb.GetStatsRequest(tenant="acme"))).rows[0]
    assert before.requests == 4 and before.successes == 4
    reply = await stub_c.ReportOutcome(pb.ReportOutcomeRequest(request_id="r1", success=False))
    assert reply.changed
    after = (await stub_b.GetStats(pb.GetStatsRequest(tenant="acme"))).rows[0]
    assert after.successes == 3 and after.reported == 1
    total = sum(r.total_cost_usd for r in answers)
    assert after.total_cost_usd == pytest.approx(total)
    assert after.cost_per_success_usd == pytest.approx(total / 3)
    assert after.cost_per_success_usd > before.cost_per_success_usd
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub_c.ReportOutcome(pb.ReportOutcomeRequest(request_id="never-seen", success=False))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_migrations_apply_once_even_when_replicas_start_together(fleet_env):
    conns = [await asyncpg.connect(fleet_env) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(applied, key=len) == [[], [], [v for v, _ in MIGRATIONS]]
        versions = await conns[0].fetch("SELECT version FROM policyd_schema_migrations ORDER BY version")
        assert [r[0] for r in versions] == [v for v, _ in MIGRATIONS]
    finally:
        for c in conns:
            await c.close()


async def test_an_outage_keeps_outcomes_in_the_spool_and_ships_each_exactly_once(
    live, fleet_env, postgres_server: PostgresServer
):
    daemon, _, stub = await live(LEDGER)
    ledger = daemon.ledger
    assert isinstance(ledger, PostgresLedger)
    for i in range(5):
        await stub.Complete(user(f"before {i}", f"b{i}"))
    assert await ledger.ship() >= 0
    postgres_server.stop()
    try:
        for i in range(20):  # PostgreSQL is down: answers go on, outcomes wait in the local ledger
            reply = await stub.Complete(user(f"during {i}", f"d{i}"))
            assert reply.output.content
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await stub.GetStats(pb.GetStatsRequest(tenant="acme"))
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "PostgreSQL" in down.value.details()
        kept = await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="d3", success=False))
        assert kept.changed, "a report on this replica's answer is kept in its spool"
        with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
            await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id="answered-elsewhere", success=False))
        assert elsewhere.value.code() == grpc.StatusCode.UNAVAILABLE, "only PostgreSQL knows other replicas' answers"
    finally:
        postgres_server.start()
    await ledger._pool.expire_connections()
    await ledger.ship()
    ledger.shipped_seq = 0  # as if a kill -9 lost the watermark: everything is sent again
    await ledger.ship()
    conn = await asyncpg.connect(fleet_env)
    try:
        ids = [r[0] for r in await conn.fetch("SELECT request_id FROM outcomes ORDER BY seq")]
    finally:
        await conn.close()
    assert ids == [f"b{i}" for i in range(5)] + [f"d{i}" for i in range(20)], "in order, none lost, none doubled"
    stats = (await stub.GetStats(pb.GetStatsRequest(tenant="acme"))).rows[0]
    assert stats.requests == 25
    assert (stats.successes, stats.reported) == (24, 1), "the spooled report reached the fleet ledger"
