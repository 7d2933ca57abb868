"""Shared fixtures: plugin hosts without autoload, configs from text, a live daemon."""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import grpc.aio
import pytest

os.environ["POLICYD_DISABLE_PLUGIN_AUTOLOAD"] = "1"
# Daemons the tests start serve in one process unless a test asks for workers (``--workers N``,
# tests/server/test_workers.py); the default (one worker per core) is what the image runs.
os.environ.setdefault("POLICYD_WORKERS", "1")

from policyd.config import Config, load_text
from policyd.daemon import Daemon, DaemonOptions, build_daemon
from policyd.plugin.manager import PluginHost, default_host
from policyd.plugin.specs import Registered
from policyd.server.app import RunningServer, start_server
from policyd.v1 import policyd_pb2_grpc

pytest_plugins = ["policyd.testing"]

FAST_SIM = """
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
"""

SINGLE_MODEL = (
    FAST_SIM
    + """
policies:
  default:
    rules:
      - name: one
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""
)


@pytest.fixture
def single_model_config() -> str:
    """A policy answering everything with one simulated model, at once."""
    return SINGLE_MODEL


@pytest.fixture
def host() -> PluginHost:
    return default_host(entry_points=False)


@pytest.fixture
def registered(host: PluginHost) -> Registered:
    return host.collect()


@pytest.fixture
def make_config(registered: Registered) -> Callable[[str], Config]:
    def make(text: str) -> Config:
        return load_text(textwrap.dedent(text), registered, "test.yaml")

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "policy.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
async def live() -> AsyncIterator[Callable[..., object]]:
    """``await live(config_text)`` → (daemon, running server, stub) on 127.0.0.1:0."""
    started: list[tuple[Daemon, RunningServer, grpc.aio.Channel]] = []

    async def start(
        config_text: str | None = None, *, host: PluginHost | None = None, data_dir: Path | None = None
    ) -> tuple[Daemon, RunningServer, object]:
        path = None
        if config_text is not None:
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="policyd-test-"))
            path = folder / "policy.yaml"
            path.write_text(textwrap.dedent(config_text), encoding="utf-8")
        import tempfile as _t

        daemon = build_daemon(
            DaemonOptions(
                config_path=str(path) if path else None, data_dir=data_dir or Path(_t.mkdtemp()), entry_points=False
            ),
            host=host,
        )
        running = await start_server(daemon, "127.0.0.1:0")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        started.append((daemon, running, channel))
        return daemon, running, policyd_pb2_grpc.PolicyServiceStub(channel)

    yield start
    for daemon, running, channel in started:
        await channel.close()
        await running.server.stop(0)
        await daemon.aclose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each test in its tier (tests/tiers.py): ``-m process`` or ``-m "not process"``."""
    from tests import tiers

    tiers.mark(items, str(Path(__file__).resolve().parent))
