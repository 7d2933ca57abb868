"""Fixtures for telemetry tests: a fake HTTP upstream, and daemons with in-memory exporters."""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from aiohttp import web
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from policyd.daemon import Daemon, DaemonOptions, build_daemon
from policyd.plugin.manager import default_host
from policyd.server.app import RunningServer, start_server
from policyd.telemetry.setup import build_telemetry
from policyd.v1 import policyd_pb2_grpc
from tests.telemetry.support import (
    CANARY_KEY,
    CANARY_KEY_ENV,
    UPSTREAM,
    Upstream,
    policyd_telemetry_fixture,
    upstream_handler,
)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = web.Application()
    up = Upstream(base_url="")
    app[UPSTREAM] = up
    app.router.add_post("/v1/complete", upstream_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    up.base_url = f"http://127.0.0.1:{port}"
    yield up
    await runner.cleanup()


@dataclass
class Traced:
    daemon: Daemon
    running: RunningServer
    stub: policyd_pb2_grpc.PolicyServiceStub
    channel: grpc.aio.Channel
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter
    data_dir: Path

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def by_name(self, prefix: str) -> list[Any]:
        return [s for s in self.finished() if s.name.startswith(prefix)]


@pytest.fixture
async def traced(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Any]]:
    """``await traced(policy_text, env={})`` → a live daemon whose telemetry goes to in-memory exporters.

    ``exporters=False`` builds telemetry from ``env`` alone (nothing configured: no SDK).
    """
    monkeypatch.setenv(CANARY_KEY_ENV, CANARY_KEY)
    started: list[tuple[Daemon, RunningServer, grpc.aio.Channel]] = []

    async def start(text: str, env: dict[str, str] | None = None, *, exporters: bool = True) -> Traced:
        folder = Path(tempfile.mkdtemp(prefix="policyd-tel-"))
        path = folder / "policy.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
        telemetry = (
            build_telemetry(env or {}, span_exporters=[spans], metric_readers=[reader], log_exporters=[logs])
            if exporters
            else build_telemetry(env or {})
        )
        host = default_host(entry_points=False)
        host.add(policyd_telemetry_fixture, "telemetry_fixture", version="test", origin="direct")
        daemon = build_daemon(
            DaemonOptions(config_path=str(path), data_dir=folder / "data", entry_points=False, telemetry=telemetry),
            host=host,
        )
        running = await start_server(daemon, "127.0.0.1:0")
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        started.append((daemon, running, channel))
        stub = policyd_pb2_grpc.PolicyServiceStub(channel)
        return Traced(daemon, running, stub, channel, spans, reader, logs, folder / "data")

    yield start
    for daemon, running, channel in started:
        await channel.close()
        await running.server.stop(0)
        await daemon.aclose()
