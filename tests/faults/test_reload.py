"""Hot reload: a good file swaps atomically, a bad one changes nothing and says why, in-flight work is kept."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import grpc.aio
import pytest
from faultkit import gauge_config, spawn, until, user
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policyd.server.reload import CONFIG_HEALTH
from policyd.v1 import policyd_pb2 as pb

BAD_FILES = {
    "unknown-strategy": gauge_config(version="v2").replace("strategy: single", "strategy: singel", 1),
    "not-yaml": "policies: [unclosed",
    "unknown-key": gauge_config(version="v2") + "limits: {max_mesages: 3}",
}


async def _config_health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        req = health_pb2.HealthCheckRequest(service=CONFIG_HEALTH)
        return (await health_pb2_grpc.HealthStub(channel).Check(req, timeout=5)).status


@pytest.mark.parametrize("bad", list(BAD_FILES), ids=list(BAD_FILES))
async def test_a_bad_file_is_rejected_visibly_and_the_old_policy_keeps_serving(live, gauge_host, gauge, bad, caplog):
    daemon, running, stub = await live(gauge_config(version="v1"), host=gauge_host)
    path = Path(daemon.options.config_path)
    await asyncio.to_thread(path.write_text, BAD_FILES[bad])
    assert await running.reloader.reload("test") is False
    stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.policy_version == "v1" and stats.config_error.startswith(str(path))
    if bad == "unknown-strategy":
        assert "policies.default.rules[0].plan.strategy: unknown strategy 'singel'" in stats.config_error
    if bad == "unknown-key":
        assert "limits.max_mesages: unknown key" in stats.config_error
    assert await _config_health(running.port) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert "reload (test) rejected, still serving version v1" in caplog.text
    resp = await stub.Complete(user("still here"), timeout=5)
    assert resp.explanation.policy_version == "v1" and resp.output.content == "gauged answer"
    await asyncio.to_thread(path.write_text, gauge_config(version="v3", text="fixed"))
    assert await running.reloader.reload("test") is True
    stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert (stats.policy_version, stats.config_error) == ("v3", "")
    assert await _config_health(running.port) == health_pb2.HealthCheckResponse.SERVING
    assert (await stub.Complete(user("new"), timeout=5)).output.content == "fixed"


async def test_in_flight_requests_finish_on_their_policy_and_old_providers_close_after(live, gauge_host, gauge):
    daemon, running, stub = await live(gauge_config(delay_s=0.6, text="old", version="v1"), host=gauge_host)
    slow = [asyncio.ensure_future(stub.Complete(user(f"slow {i}"), timeout=10)) for i in range(3)]
    await until(lambda: gauge.in_flight == 3, 5, "three calls in flight")
    await asyncio.to_thread(Path(daemon.options.config_path).write_text, gauge_config(text="new", version="v2"))
    assert await running.reloader.reload("test") is True
    fresh = await stub.Complete(user("fresh"), timeout=5)
    assert (fresh.output.content, fresh.explanation.policy_version) == ("new", "v2")
    assert gauge.closed == [], "the old provider is still serving in-flight requests"
    for resp in await asyncio.gather(*slow):
        assert (resp.output.content, resp.explanation.policy_version) == ("old", "v1")
    await until(lambda: gauge.closed == ["old"], 5, "the old provider closed")
    assert gauge.cancelled == 0 and gauge.finished == 4


async def test_sighup_and_a_file_change_reload_a_running_process(tmp_path, single_model_config):
    config = tmp_path / "policy.yaml"
    config.write_text("version: one\n" + single_model_config)
    async with spawn(config, tmp_path / "data", "--reload-interval", "0.2") as proc:
        async with proc.channel() as channel:
            stub = proc.stub(channel)

            async def version() -> str:
                return (await stub.Explain(user("hi"), timeout=5)).explanation.policy_version

            assert await version() == "one"
            config.write_text("version: two\n" + single_model_config)
            await _eventually(version, "two")  # noticed by the file watch
            config.write_text("version: [broken\n")
            await _eventually(lambda: _stats_error(stub), True)
            assert await version() == "two"
            await channel_health_is(proc.port, health_pb2.HealthCheckResponse.NOT_SERVING)
            config.write_text("version: three\n" + single_model_config)
            proc.proc.send_signal(signal.SIGHUP)
            await _eventually(version, "three")
        proc.proc.terminate()
        assert await proc.wait_exit(15) == 0
    assert "reload (file changed) rejected, still serving version two" in proc.stderr
    assert "policy reloaded (SIGHUP)" in proc.stderr
    assert "Traceback" not in proc.stderr


async def _stats_error(stub) -> bool:
    return bool((await stub.GetStats(pb.GetStatsRequest(), timeout=5)).config_error)


async def channel_health_is(port: int, status: int) -> None:
    assert await _config_health(port) == status


async def _eventually(probe, want, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while (got := await probe()) != want:
        assert loop.time() < end, f"still {got!r}, wanted {want!r}"
        await asyncio.sleep(0.05)


async def test_reloads_are_counted_by_result_in_a_metric(tmp_path, gauge_host):
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from policyd.daemon import DaemonOptions, build_daemon
    from policyd.server.reload import Reloader
    from policyd.telemetry import semconv as sc
    from policyd.telemetry.setup import build_telemetry
    from tests.telemetry.support import points

    reader = InMemoryMetricReader()
    path = tmp_path / "policy.yaml"
    path.write_text(gauge_config())
    options = DaemonOptions(
        config_path=str(path),
        data_dir=tmp_path / "data",
        entry_points=False,
        telemetry=build_telemetry({}, metric_readers=[reader]),
    )
    daemon = build_daemon(options, host=gauge_host)
    reloader = Reloader(daemon)
    assert await reloader.reload("test")
    await asyncio.to_thread(path.write_text, "policies: [broken")
    assert not await reloader.reload("test")
    assert not await reloader.reload("test")
    await reloader.aclose()
    await daemon.aclose()
    counted = {p.attributes[sc.POLICYD_RELOAD_RESULT]: p.value for p in points(reader)[sc.METRIC_CONFIG_RELOADS]}
    assert counted == {"applied": 1, "rejected": 2}
