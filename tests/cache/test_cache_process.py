"""The cache across real daemon processes: kill -9 under load, restarts, a read-only directory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cache_helpers import committed_entries

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"policyd listening on [\d.]+:(\d+)")


class Daemon:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.stderr = ""


def _drop_root_privileges() -> list[str]:
    """As root, file modes do not bind; run the daemon without the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be enforced")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@asynccontextmanager
async def daemon(data_dir: Path, config: Path, prefix: list[str] | None = None) -> AsyncIterator[Daemon]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", POLICYD_DISABLE_PLUGIN_AUTOLOAD="1")
    cmd = [*(prefix or []), sys.executable, "-m", "policyd", "serve", "--listen", "127.0.0.1:0"]
    cmd += ["--data-dir", str(data_dir), "--config", str(config)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    match = LISTENING.search(line)
    if match is None:
        proc.kill()
        raise AssertionError(f"daemon did not start: {line!r} {(await proc.stderr.read()).decode()}")
    d = Daemon(proc, int(match.group(1)))
    try:
        yield d
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        d.stderr = (await proc.stderr.read()).decode()


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def _stub(port: int) -> tuple[grpc.aio.Channel, policyd_pb2_grpc.PolicyServiceStub]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return channel, policyd_pb2_grpc.PolicyServiceStub(channel)


@pytest.fixture
def config_file(tmp_path: Path, single_model_config: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(single_model_config, encoding="utf-8")
    return path


async def _load(stub: policyd_pb2_grpc.PolicyServiceStub, done: list[str], enough: asyncio.Event, worker: int) -> None:
    """Distinct requests (each one a miss, so a write) until the daemon dies."""
    i = 0
    while True:
        prompt = f"load {worker}-{i}"
        i += 1
        try:
            await stub.Complete(user(prompt), timeout=5)
        except grpc.aio.AioRpcError:
            return
        done.append(prompt)
        if len(done) >= 300:
            enough.set()


async def _until(predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_kill_9_while_writing_under_load_then_restart_opens_and_serves(tmp_path: Path, config_file: Path):
    data = tmp_path / "data"
    warm = [f"warm {i}" for i in range(20)]
    done: list[str] = []
    async with daemon(data, config_file) as first:
        channel, stub = await _stub(first.port)
        for prompt in warm:
            await stub.Complete(user(prompt), timeout=5)
        await _until(lambda: committed_entries(data / "cache") >= len(warm), 30)
        enough = asyncio.Event()
        workers = [asyncio.ensure_future(_load(stub, done, enough, w)) for w in range(8)]
        await asyncio.wait_for(enough.wait(), 30)
        first.proc.send_signal(signal.SIGKILL)  # mid-load: requests answered, writes queued and in progress
        await asyncio.wait_for(first.proc.wait(), 10)
        await asyncio.gather(*workers)
        await channel.close()
    assert first.proc.returncode == -signal.SIGKILL
    for shard in sorted((data / "cache").glob("[0-9][0-9][0-9]")):
        with closing(sqlite3.connect(shard / "cache.db")) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",), shard
    async with daemon(data, config_file) as second:
        channel, stub = await _stub(second.port)
        for prompt in warm:
            again = await stub.Complete(user(prompt, cache_mode=pb.CACHE_MODE_ONLY_IF_CACHED), timeout=5)
            assert again.attempts[0].cached and again.total_cost_usd == 0 and again.saved_usd > 0
        fresh = [await stub.Complete(user("after the crash"), timeout=5) for _ in range(2)]
        assert [r.attempts[0].cached for r in fresh] == [False, True]
        await channel.close()
    assert "Traceback" not in second.stderr


async def test_repeated_request_costs_nothing_after_a_process_restart(tmp_path: Path, config_file: Path):
    async with daemon(tmp_path / "data", config_file) as first:
        channel, stub = await _stub(first.port)
        paid = await stub.Complete(user("restart me"), timeout=5)
        await channel.close()
    async with daemon(tmp_path / "data", config_file) as second:
        channel, stub = await _stub(second.port)
        again = await stub.Complete(user("restart me"), timeout=5)
        await channel.close()
    assert paid.total_cost_usd > 0 and not paid.attempts[0].cached
    assert again.attempts[0].cached and again.total_cost_usd == 0
    assert again.saved_usd == pytest.approx(paid.total_cost_usd)


@pytest.mark.parametrize("populated", [False, True], ids=["empty", "populated"])
async def test_read_only_data_directory_stops_the_daemon_at_start_naming_it(
    tmp_path: Path, config_file: Path, populated: bool
):
    """No silent half-service: a daemon that could keep neither cache nor ledger does not start."""
    data = tmp_path / "data"
    data.mkdir()
    if populated:
        async with daemon(data, config_file) as first:
            channel, stub = await _stub(first.port)
            await stub.Complete(user("before read-only"), timeout=5)
            await channel.close()
    _chmod_tree(data, lambda mode: mode & ~0o222)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", POLICYD_DISABLE_PLUGIN_AUTOLOAD="1")
    cmd = [*_drop_root_privileges(), sys.executable, "-m", "policyd", "serve", "--listen", "127.0.0.1:0"]
    cmd += ["--data-dir", str(data), "--config", str(config_file)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        _chmod_tree(data, lambda mode: mode | 0o200)
    stderr = err.decode()
    assert proc.returncode == 2, stderr
    assert b"listening" not in out
    assert f"data directory {data} is not writable" in stderr
    assert "the cache and the ledger live there" in stderr and "Fix:" in stderr
    assert "Traceback" not in stderr


def _chmod_tree(root: Path, change: Callable[[int], int]) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(change(path.stat().st_mode & 0o7777))
