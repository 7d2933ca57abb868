"""``policyd serve --workers N``: real processes behind one address, one daemon's behaviour.

Each test starts a supervisor with two workers (``policyd.testing.DaemonProcess``) on
127.0.0.1:0 and talks to the address it printed over many TCP connections (one channel each,
with its own subchannel pool), so the kernel spreads them over the workers. Which worker holds
a connection is read from /proc: the workers' sockets connected to the group's port.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policyd.testing.process import DaemonProcess, run_cli
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc
from policyd.workers.count import available_cpus

pytestmark = pytest.mark.timeout(180)

POLICY = """
version: {version}
providers:
  simulated: {{kind: simulated, latency_scale: {latency}}}
policies:
  default:
    rules:
      - name: plain
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
ledger: {{flush_interval_ms: 60000}}
{extra}
"""
CONNECTIONS = 16
"""Connections per check: the chance that all land on one of two workers is 2**-15."""


def policy(extra: str = "", version: str = "v1", latency: float = 0.0) -> str:
    return POLICY.format(extra=extra, version=version, latency=latency)


@contextmanager
def group(text: str, workers: int = 2, args: tuple[str, ...] = ()) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(text, args=("--workers", str(workers), *args))
    try:
        yield daemon
    finally:
        daemon.stop()


def worker_pids(daemon: DaemonProcess) -> list[int]:
    """The live workers' pids, from the supervisor's log (latest start of each worker index)."""
    latest: dict[int, int] = {}
    for index, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", daemon.log()):
        latest[int(index)] = int(pid)
    return [pid for _, pid in sorted(latest.items())]


def _established_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def connections_by_worker(daemon: DaemonProcess) -> dict[int, int]:
    """How many client connections each worker holds on the group's port."""
    port = int(daemon.address.rsplit(":", 1)[1])
    inodes = _established_inodes(port)
    counts: dict[int, int] = {}
    for pid in worker_pids(daemon):
        n = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def request(text: str, tenant: str = "acme", request_id: str = "") -> pb.CompleteRequest:
    msg = pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], tenant=tenant)
    msg.request_id = request_id or uuid.uuid4().hex
    msg.params.max_output_tokens = 100
    return msg


def channel(address: str) -> grpc.aio.Channel:
    """A channel with its own TCP connection (no subchannel shared with the test's other channels)."""
    return grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


async def spread(daemon: DaemonProcess, msgs: list[pb.CompleteRequest]) -> tuple[list[object], dict[int, int]]:
    """Send ``msgs`` round-robin over CONNECTIONS connections; the answers (or errors) and who held them."""
    channels = [channel(daemon.address) for _ in range(CONNECTIONS)]
    try:
        stubs = [policyd_pb2_grpc.PolicyServiceStub(c) for c in channels]
        await asyncio.gather(*(c.channel_ready() for c in channels))

        async def one(i: int, m: pb.CompleteRequest) -> object:
            try:
                return await stubs[i % CONNECTIONS].Complete(m, timeout=30)
            except grpc.aio.AioRpcError as exc:
                return exc

        results = list(await asyncio.gather(*(one(i, m) for i, m in enumerate(msgs))))
        return results, connections_by_worker(daemon)
    finally:
        await asyncio.gather(*(c.close() for c in channels))


def answered(results: list[object]) -> list[pb.CompleteResponse]:
    return [r for r in results if isinstance(r, pb.CompleteResponse)]


async def test_connections_spread_over_the_workers_and_get_stats_sees_every_workers_rows():
    with group(policy()) as daemon:
        results, held = await spread(daemon, [request(f"question {i}") for i in range(48)])
        assert len(answered(results)) == 48, [r for r in results if not isinstance(r, pb.CompleteResponse)][:2]
        assert len(held) == 2 and all(n > 0 for n in held.values()), f"both workers serve: {held}"
        # Rows wait in each worker's queue for up to a minute (flush_interval_ms): GetStats flushes the group's.
        stats = daemon.stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert stats.requests == 48
        assert stats.total_cost_usd == pytest.approx(sum(r.total_cost_usd for r in answered(results)))


async def test_concurrent_requests_over_both_workers_never_overspend_one_budget():
    with group(policy("budgets: {tenants: {acme: {daily_usd: 0.002}}}")) as daemon:
        results, held = await spread(daemon, [request(f"question {i}") for i in range(160)])
        assert all(n > 0 for n in held.values()), held
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert answered(results) and refused
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}, [r.details() for r in refused][:2]
        assert all("budget" in (r.details() or "") for r in refused)
        spent = sum(r.total_cost_usd for r in answered(results))
        assert spent <= 0.002, "two workers together stay within the tenant's one budget"


async def test_a_tenants_rate_limit_is_the_groups_not_each_workers():
    with group(policy("limits: {rate: {requests_per_minute: 9}}")) as daemon:
        results, held = await spread(daemon, [request(f"q{i}") for i in range(CONNECTIONS * 2)])
        assert all(n > 0 for n in held.values()), held
        assert len(answered(results)) == 9
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert "9 requests per minute" in (refused[0].details() or "")


async def test_a_retried_request_id_is_replayed_whichever_worker_it_lands_on():
    with group(policy()) as daemon:
        same = request("once only", request_id="retry-me")
        results, held = await spread(daemon, [same] * CONNECTIONS)
        assert all(n > 0 for n in held.values()), held
        replies = answered(results)
        assert len(replies) == CONNECTIONS
        assert sum(not r.replayed for r in replies) == 1, "one worker ran it, every other answer is the replay"
        assert {r.output.content for r in replies} == {replies[0].output.content}
        stats = daemon.stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert stats.requests == 1, "one ledger row for the request, however many workers saw it"
        other = request("another request", request_id="retry-me")
        conflicts, _ = await spread(daemon, [other] * 4)
        assert {r.code() for r in conflicts if isinstance(r, grpc.aio.AioRpcError)} == {grpc.StatusCode.ALREADY_EXISTS}
        assert not answered(conflicts)


async def _until(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


async def test_a_worker_killed_with_sigkill_is_restarted_and_the_group_serves_again():
    with group(policy()) as daemon:
        first = worker_pids(daemon)
        supervisor = _cmdline(daemon.proc.pid)
        # The group's first workers are forks of the supervisor (its command line); a restart is exec'd.
        assert [_cmdline(pid) for pid in first] == [supervisor, supervisor]
        os.kill(first[0], signal.SIGKILL)
        await _until(lambda: "worker 0 rejoined" in daemon.log())
        assert worker_pids(daemon)[0] != first[0]
        restarted = _cmdline(worker_pids(daemon)[0])
        assert restarted[1:4] == ["-m", "policyd", "--log-level"] and "--workers" in restarted, restarted
        assert restarted[restarted.index("--workers") + 1] == "1"
        assert re.search(rf"worker 0 \(pid {first[0]}\) exited with signal SIGKILL", daemon.log())
        check = daemon.cli("health", "--address", daemon.address)
        assert check.returncode == 0, check.stdout + check.stderr

        async def both_serve() -> dict[int, int]:
            results, held = await spread(daemon, [request(f"after {i}") for i in range(CONNECTIONS)])
            assert len(answered(results)) == CONNECTIONS
            return held

        held = await both_serve()
        await _until(lambda: all(_alive(p) for p in worker_pids(daemon)))
        assert set(held) == set(worker_pids(daemon)) and first[0] not in held
        assert all(n > 0 for n in held.values()), f"the restarted worker serves too: {held}"


async def test_sigterm_drains_every_worker_and_exits_0():
    with group(policy(latency=1.0)) as daemon:  # a simulated call takes about a second
        pids = worker_pids(daemon)
        channels = [channel(daemon.address) for _ in range(CONNECTIONS)]
        stubs = [policyd_pb2_grpc.PolicyServiceStub(c) for c in channels]
        await asyncio.gather(*(c.channel_ready() for c in channels))
        assert all(n > 0 for n in connections_by_worker(daemon).values())
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        statuses = await asyncio.gather(*(h.Check(health_pb2.HealthCheckRequest(), timeout=10) for h in health))
        assert {s.status for s in statuses} == {health_pb2.HealthCheckResponse.SERVING}
        in_flight = [asyncio.ensure_future(s.Complete(request(f"slow {i}"), timeout=30)) for i, s in enumerate(stubs)]
        await asyncio.sleep(0.3)
        daemon.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        after = await asyncio.gather(
            *(h.Check(health_pb2.HealthCheckRequest(), timeout=10) for h in health), return_exceptions=True
        )
        for answer in after:  # NOT_SERVING, or the worker already refuses new RPCs (it drains)
            if isinstance(answer, grpc.aio.AioRpcError):
                assert answer.code() == grpc.StatusCode.UNAVAILABLE
            else:
                assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING, "no worker answers SERVING"
        replies = await asyncio.gather(*in_flight)
        assert all(r.output.content for r in replies), "every request in flight at SIGTERM is answered"
        assert await asyncio.to_thread(daemon.proc.wait, 30) == 0
        assert not any(_alive(p) for p in pids)
        await asyncio.gather(*(c.close() for c in channels))
        assert "draining 2 workers" in daemon.log()


async def test_sigkill_of_the_supervisor_takes_its_workers_down_and_the_ledger_survives(tmp_path: Path):
    text = policy().replace("flush_interval_ms: 60000", "durability: sync")
    daemon = DaemonProcess(text, args=("--workers", "2"), folder=tmp_path)
    try:
        pids = worker_pids(daemon)
        results, _ = await spread(daemon, [request(f"kept {i}") for i in range(20)])
        assert len(answered(results)) == 20
        os.kill(daemon.proc.pid, signal.SIGKILL)
        await _until(lambda: not any(_alive(p) for p in pids))
    finally:
        daemon.stop()
    again = DaemonProcess(text, args=("--workers", "2"), folder=tmp_path)  # the same data directory
    try:
        stats = again.stub().GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert stats.requests == 20
    finally:
        again.stop()


async def test_sighup_to_the_supervisor_reloads_every_worker(tmp_path: Path):
    with group(policy(version="v1"), args=("--reload-interval", "0")) as daemon:
        assert daemon.config_path is not None
        daemon.config_path.write_text(policy(version="v2"), encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)

        async def versions() -> set[str]:
            results, held = await spread(daemon, [request(f"v {i}") for i in range(CONNECTIONS)])
            assert all(n > 0 for n in held.values()), held
            return {r.explanation.policy_version for r in answered(results)}

        end = time.monotonic() + 20
        while (seen := await versions()) != {"v2"}:
            assert time.monotonic() < end, seen
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "100000"])
def test_a_bad_worker_count_is_refused_naming_the_flag(value: str):
    out = run_cli("serve", "--listen", "127.0.0.1:0", "--workers", value)
    assert out.returncode == 2
    assert "--workers" in out.stderr and "from 1 to 256" in out.stderr, out.stderr


def test_a_bad_policyd_workers_variable_is_refused_naming_it():
    out = run_cli("serve", "--listen", "127.0.0.1:0", env={"POLICYD_WORKERS": "lots"})
    assert out.returncode == 2
    assert "POLICYD_WORKERS" in out.stderr and "--workers" in out.stderr, out.stderr


def test_several_workers_cannot_share_a_unix_socket(tmp_path: Path):
    out = run_cli("serve", "--listen", f"unix://{tmp_path}/p.sock", "--workers", "2")
    assert out.returncode == 2
    assert "--workers" in out.stderr and "Unix socket" in out.stderr, out.stderr


async def test_the_http_front_door_and_prometheus_metrics_are_one_address_for_the_group():
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from tests.daemon_process import free_port

    metrics_port = free_port()
    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port)}
    daemon = DaemonProcess(policy(), env=env, args=("--workers", "2", "--http-listen", "127.0.0.1:0"))
    try:
        assert daemon.proc.stdout is not None
        http = daemon.proc.stdout.readline().split()[-1]
        body = {"model": "policyd/default", "messages": [{"role": "user", "content": "hello"}]}
        for _ in range(CONNECTIONS):  # a new session each time: a new connection, spread by the kernel
            async with aiohttp.ClientSession() as session:
                async with session.post(f"http://{http}/v1/chat/completions", json=body) as resp:
                    assert resp.status == 200, await resp.text()
        results, held = await spread(daemon, [request(f"grpc {i}") for i in range(CONNECTIONS)])
        assert len(answered(results)) == CONNECTIONS and all(n > 0 for n in held.values()), held
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://localhost:{metrics_port}/metrics") as resp:
                text = await resp.text()
        families = list(text_string_to_metric_families(text))  # one valid exposition
        workers = {s.labels.get("worker") for f in families for s in f.samples}
        assert workers == {"0", "1"}, "every sample names its worker; both workers are there"
        assert len({f.name for f in families}) == len(families), "each family once, merged over the workers"
    finally:
        daemon.stop()


async def stored_on_disk(daemon: DaemonProcess, entries: int, timeout_s: float = 15.0) -> None:
    """Wait until the shared disk cache holds ``entries`` answers (``policyd cache stats``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = run_cli("cache", "stats", "--json", "--data-dir", str(daemon.folder / "data"))
        if done.returncode == 0 and json.loads(done.stdout)["usage"]["entries"] >= entries:
            return
        assert time.monotonic() < deadline, f"the cache never held {entries} entries: {done.stdout}{done.stderr}"
        await asyncio.sleep(0.1)


async def test_an_answer_cached_by_one_worker_is_a_hit_on_every_worker():
    with group(policy()) as daemon:
        (first,), _ = await spread(daemon, [request("the same question")])
        assert isinstance(first, pb.CompleteResponse) and not first.attempts[0].cached
        await stored_on_disk(daemon, entries=1)  # the cache's writer thread stores it off the response path
        # Another worker sees a key stored on disk within ``cache.reread_after_s`` (1 s; docs/cache.md): its
        # filter of the keys on disk may date from just before the store until then.
        await asyncio.sleep(1.0)
        results, held = await spread(daemon, [request("the same question") for _ in range(CONNECTIONS)])
        assert all(n > 0 for n in held.values()), held
        assert all(r.attempts[0].cached for r in answered(results)) and len(answered(results)) == CONNECTIONS


async def test_report_outcome_finds_a_request_another_worker_answered_and_still_holds():
    with group(policy()) as daemon:  # rows wait up to a minute in the worker that answered
        msgs = [request(f"report me {i}", request_id=f"answered-{i}") for i in range(CONNECTIONS)]
        results, held = await spread(daemon, msgs)
        assert len(answered(results)) == CONNECTIONS and all(n > 0 for n in held.values()), held
        stub = daemon.stub()  # one connection: one worker answers every report
        for m in msgs:
            assert stub.ReportOutcome(pb.ReportOutcomeRequest(request_id=m.request_id, success=False)).changed
        stats = stub.GetStats(pb.GetStatsRequest(tenant="acme")).rows[0]
        assert (stats.requests, stats.successes) == (CONNECTIONS, 0)


def test_a_unix_socket_gets_one_worker_by_default(tmp_path: Path):
    sock = tmp_path / "p.sock"
    daemon = DaemonProcess(policy(), env={"POLICYD_WORKERS": ""}, args=("--listen", f"unix://{sock}"))
    try:
        assert daemon.address == f"unix://{sock}"
        assert "worker 0 started" not in daemon.log(), "no supervisor: the daemon itself serves"
        if available_cpus() > 1:
            assert "workers cannot share" in daemon.log()
        assert daemon.stub().Complete(request("over the socket"), timeout=30).output.content
    finally:
        daemon.stop()
