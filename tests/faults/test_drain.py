"""SIGTERM with streams in flight, and kill -9 under load, on real daemon processes."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import grpc.aio
from faultkit import spawn, until, user
from grpc_health.v1 import health_pb2, health_pb2_grpc
from upstreams import chunk, completion, openai_policy

from policyd.v1 import policyd_pb2 as pb
from tests.cache.cache_helpers import committed_entries
from tests.plugins.fake_upstream import Json, Sse


async def _read_all(call) -> tuple[list[pb.StreamCompleteResponse], grpc.aio.AioRpcError | None]:
    events = []
    try:
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)
    except grpc.aio.AioRpcError as exc:
        return events, exc
    return events, None


async def test_sigterm_lets_streams_in_flight_finish_refuses_new_rpcs_flushes_and_exits_0(tmp_path, fake):
    config = tmp_path / "policy.yaml"
    config.write_text(openai_policy(fake.url))
    slow = [chunk("one "), 0.4, chunk("two "), 0.4, chunk("three", "stop")]
    for _ in range(3):
        fake.queue(Sse(list(slow)))
    async with spawn(config, tmp_path / "data", "--grace", "8") as proc:
        async with proc.channel() as channel:
            stub = proc.stub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            streams = [stub.StreamComplete(user(f"stream {i}"), timeout=20) for i in range(3)]
            firsts = [await s.read() for s in streams]
            assert all(f.WhichOneof("event") == "delta" for f in firsts), "every stream has started"
            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.NOT_SERVING
            await asyncio.sleep(0.1)
            with_new = await _status(stub.Complete(user("too late"), timeout=3))
            assert with_new == grpc.StatusCode.UNAVAILABLE
            results = await asyncio.gather(*(_read_all(s) for s in streams))
            for first, (events, error) in zip(firsts, results, strict=True):
                assert error is None
                text = first.delta + "".join(e.delta for e in events if e.WhichOneof("event") == "delta")
                assert text == "one two three"
                assert events[-1].final.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
        assert await proc.wait_exit(10) == 0
        assert time.monotonic() - started < 8
    assert len(fake.seen) == 3 and fake.client_gone == 0, "no upstream request was cut"
    assert "Traceback" not in proc.stderr
    # Ledger and cache were flushed before the exit: a new process counts the three and serves them from the cache.
    async with spawn(config, tmp_path / "data") as again:
        async with again.channel() as channel:
            stub = again.stub(channel)
            stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
            assert sum(row.requests for row in stats.rows) == 3
            for i in range(3):
                resp = await stub.Complete(user(f"stream {i}", cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED), timeout=5)
                assert resp.attempts[0].cached and resp.output.content == "one two three"
    assert len(fake.seen) == 3


async def _status(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_kill_9_under_load_then_restart_keeps_every_answer_committed_before_it(tmp_path, fake):
    config = tmp_path / "policy.yaml"
    config.write_text(openai_policy(fake.url, extra="ledger: {durability: sync}"))  # every reply acknowledges
    fake.default = Json(completion("fresh", prompt_tokens=5, completion_tokens=2), delay_s=0.01)
    answered: list[str] = []
    async with spawn(config, tmp_path / "data") as first:
        async with first.channel() as channel:
            stub = first.stub(channel)
            warm = [f"warm {i}" for i in range(10)]
            for prompt in warm:
                await stub.Complete(user(prompt), timeout=5)
            cache = tmp_path / "data" / "cache"
            await until(lambda: committed_entries(cache) >= len(warm), 20, "warm entries committed")

            async def load(worker: int) -> None:
                for i in range(10_000):
                    try:
                        await stub.Complete(user(f"load {worker}-{i}", request_id=f"load-{worker}-{i}"), timeout=5)
                    except grpc.aio.AioRpcError:
                        return
                    answered.append(f"load-{worker}-{i}")

            workers = [asyncio.ensure_future(load(w)) for w in range(6)]
            await until(lambda: len(answered) >= 150, 30, "load")
            first.proc.send_signal(signal.SIGKILL)
            await first.wait_exit(10)
            await asyncio.gather(*workers)
    assert first.proc.returncode == -signal.SIGKILL
    calls_before = len(fake.seen)
    async with spawn(config, tmp_path / "data") as second:
        async with second.channel() as channel:
            stub = second.stub(channel)
            for prompt in warm:
                resp = await stub.Complete(user(prompt, cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED), timeout=5)
                assert resp.attempts[0].cached and resp.output.content == "fresh"
            stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
            assert sum(row.requests for row in stats.rows) >= len(warm) + len(answered)
            for request_id in answered:  # every acknowledged outcome is in the ledger
                await stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=request_id, success=True), timeout=5)
            after = await stub.Complete(user("after the crash"), timeout=5)
            assert after.output.content == "fresh" and not after.attempts[0].cached
    assert len(fake.seen) == calls_before + 1, "only the new prompt reached the upstream"
    assert "Traceback" not in second.stderr
