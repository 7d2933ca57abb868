"""Budgets and rate limits shared on a real Valkey/Redis: three daemons (real gRPC servers), one budget."""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid

import grpc
import pytest

from policyd.errors import Unavailable
from policyd.fleet.budgets import FleetBudgetLayer, ValkeyBudgetStore
from policyd.fleet.settings import ValkeySettings
from policyd.fleet.valkey import connect
from policyd.ledger.budgets import budget_lines
from policyd.plugin.specs import BudgetLine
from policyd.v1 import policyd_pb2 as pb
from tests.fleet.servers import RedisServer, free_port

FLEET = """
version: fleet-budgets
providers:
  simulated: {{kind: simulated, latency_scale: 0.05}}
policies:
  default:
    rules:
      - name: plain
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
budgets:
  tenants:
    acme: {{daily_usd: 0.001}}
limits:
  rate:
    requests_per_minute: {rpm}
fleet:
  valkey:
    prefix: {prefix}
    on_unavailable: {mode}
    timeout_ms: {timeout_ms}
"""


def config(rpm: int = 100_000, mode: str = "fail_closed", prefix: str | None = None, timeout_ms: int = 300) -> str:
    return FLEET.format(rpm=rpm, mode=mode, prefix=prefix or f"t{uuid.uuid4().hex[:8]}", timeout_ms=timeout_ms)


def user(text: str, **kw: object) -> pb.CompleteRequest:
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)
    msg.params.max_output_tokens = 100
    return msg


async def ask(stub: object, i: int, **kw: object) -> pb.CompleteResponse | grpc.aio.AioRpcError:
    try:
        return await stub.Complete(user(f"question number {i}", tenant="acme", **kw), timeout=30)  # type: ignore[attr-defined]
    except grpc.aio.AioRpcError as exc:
        return exc


@pytest.fixture
def valkey_env(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    monkeypatch.setenv("POLICYD_VALKEY_URL", redis_server.url)
    return redis_server


async def test_300_concurrent_requests_over_three_daemons_never_exceed_the_shared_budget(live, valkey_env):
    # 300 calls at once on one event loop (three daemons and the client): on a loaded CI machine a Valkey
    # answer can wait longer than 300 ms for the loop, and fail_closed would refuse with UNAVAILABLE.
    text = config(timeout_ms=5000)
    replicas = [await live(text) for _ in range(3)]
    results = await asyncio.gather(*(ask(replicas[i % 3][2], i) for i in range(300)))
    answered = [r for r in results if isinstance(r, pb.CompleteResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert answered and refused, "the shared budget should let some through and refuse the rest"
    others = [f"{r.code().name}: {r.details()}" for r in refused if r.code() != grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert not others, others
    spent = sum(r.total_cost_usd for r in answered)
    assert spent <= 0.001
    layer = replicas[0][0].engine.pipeline.step("budget")
    assert isinstance(layer, FleetBudgetLayer)
    line = budget_lines(replicas[0][0].config.raw.budgets, "acme", "default", time.time())[0]
    held, reserved = await layer.store.usage(line.key)
    assert math.isclose(reserved, 0.0, abs_tol=1e-12), "every reservation is settled"
    assert math.isclose(held, spent, rel_tol=1e-9), "the remainder is accounted: Valkey's spend is the answers' cost"
    cheapest = min(r.total_cost_usd for r in answered)
    assert len(answered) <= 0.001 / cheapest, "three pods together get one budget, not three"


async def test_a_rate_limit_holds_across_the_fleet(live, valkey_env):
    text = config(rpm=6)
    replicas = [await live(text) for _ in range(3)]
    results = [await ask(replicas[i % 3][2], i) for i in range(12)]
    answered = [r for r in results if isinstance(r, pb.CompleteResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(answered) == 6, "six requests a minute for the whole fleet, not per replica"
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "over its rate limit of 6 requests per minute" in refused[0].details()


def _store(url: str, mode: str = "fail_closed", ledger: list[float] | None = None, **kw: object) -> ValkeyBudgetStore:
    """A store on ``url``; ``ledger`` stands for what the ledger recorded (it seeds a line Valkey lost).

    Each store reads its own variable, removed at once, so no test leaks a URL into another's environment."""
    name = f"u{uuid.uuid4().hex[:8]}"
    settings = ValkeySettings(url_env=f"POLICYD_TEST_{name}", prefix=name, on_unavailable=mode, timeout_ms=200, **kw)  # type: ignore[arg-type]
    os.environ[settings.url_env] = url
    try:
        client = connect(settings)
    finally:
        del os.environ[settings.url_env]

    async def recorded(line: BudgetLine) -> float:
        return sum(ledger or [])

    return ValkeyBudgetStore(client, settings, recorded)


def _line(limit: float = 1.0) -> BudgetLine:
    now = time.time()
    return BudgetLine(
        name="tenant 't' daily",
        key=f'["tenant","t","{uuid.uuid4().hex}"]',
        limit_usd=limit,
        period_start=now - 10,
        period_end=now + 3600,
        tenant="t",
    )


async def test_a_dead_replicas_reservation_expires_with_its_deadline(valkey_env):
    from policyd.fleet import budgets

    store = _store(valkey_env.url)
    line = _line(1.0)
    token = budgets._deadline.set(time.monotonic() + 0.2)  # the request's deadline, 0.2 s away
    try:
        assert await store.reserve([line], 0.8) is None  # then the replica dies: never settled
    finally:
        budgets._deadline.reset(token)
    refusal = await store.reserve([line], 0.5)
    assert refusal is not None and math.isclose(refusal.reserved_usd, 0.8)
    await asyncio.sleep(1.4)  # the deadline plus the one second's grace
    assert await store.reserve([line], 0.5) is None, "the dead hold was reaped"
    assert await store.usage(line.key) == (0.0, 0.5)
    await store.client.aclose()


async def test_valkey_down_fail_closed_refuses_as_unavailable_within_the_deadline(valkey_env):
    store = _store(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"Valkey .*fail_closed"):
        await store.reserve([_line()], 0.1)
    assert time.monotonic() - started < 1.0
    await store.client.aclose()


async def test_valkey_down_fail_open_serves_locally_and_reconciles_when_back(tmp_path, monkeypatch):
    server = RedisServer(tmp_path)
    server.start()
    ledger: list[float] = []
    store = _store(server.url, mode="fail_open", ledger=ledger, retry_after_ms=50)
    line = _line(1.0)
    assert await store.reserve([line], 0.3) is None
    await store.settle([line], 0.3, 0.2)
    ledger.append(0.2)
    server.stop()
    started = time.monotonic()
    assert await store.reserve([line], 0.3) is None, "fail_open admits on local counters"
    assert time.monotonic() - started < 1.0
    await store.settle([line], 0.3, 0.25)
    ledger.append(0.25)
    refusal = await store.reserve([line], 0.6)
    assert refusal is not None, "local counters start from the fleet's last total (0.2) plus local spend (0.25)"
    assert store.pending() == 1
    server.start()  # without persistence: Valkey lost the line, which the ledger seeds again
    await asyncio.sleep(0.1)
    assert await store.reserve([line], 0.1) is None  # the settlement kept while away is replayed first
    assert store.pending() == 0
    spent, reserved = await store.usage(line.key)
    assert math.isclose(spent, 0.45) and math.isclose(reserved, 0.1)
    await store.client.aclose()
    server.stop()


async def test_settlements_kept_while_valkey_was_unreachable_are_replayed_once(valkey_env):
    store = _store(valkey_env.url, mode="fail_open", retry_after_ms=50)
    line = _line(1.0)
    assert await store.reserve([line], 0.3) is None
    store.guard.fail(ConnectionError("network partition"))  # unreachable, but it keeps its data
    await store.settle([line], 0.3, 0.2)
    assert store.pending() == 1
    await asyncio.sleep(0.06)
    assert await store.reserve([line], 0.1) is None
    assert store.pending() == 0
    spent, reserved = await store.usage(line.key)
    assert math.isclose(spent, 0.2) and math.isclose(reserved, 0.1), "released once, spend counted once"
    await store.client.aclose()


async def test_valkey_down_fail_open_serves_on_local_counters_and_still_limits(live, tmp_path, monkeypatch):
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("POLICYD_VALKEY_URL", server.url)
    _, _, stub = await live(config(rpm=2, mode="fail_open"))
    server.stop()
    started = time.monotonic()
    results = [await ask(stub, i) for i in range(3)]
    assert time.monotonic() - started < 3.0, "no request waits on the dead server past timeout_ms"
    assert [isinstance(r, pb.CompleteResponse) for r in results] == [True, True, False]
    assert results[2].code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "this replica's own bucket still limits"


async def test_valkey_down_fail_closed_refuses_through_grpc_with_the_reason(live, tmp_path, monkeypatch):
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("POLICYD_VALKEY_URL", server.url)
    _, _, stub = await live(config(mode="fail_closed"))
    server.stop()
    result = await ask(stub, 1)
    assert isinstance(result, grpc.aio.AioRpcError) and result.code() == grpc.StatusCode.UNAVAILABLE
    assert "rate limiter 'valkey' is unavailable (Valkey" in result.details()
