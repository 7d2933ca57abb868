"""Fixtures for telemetry tests: a fake HTTP upstream, and daemons with in-memory exporters."""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
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
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

FIXTURE_PLUGIN_DIR = Path(__file__).parent / "fixture_plugin"
sys.path.insert(0, str(FIXTURE_PLUGIN_DIR))

import policyd_telemetry_fixture  # noqa: E402

CANARY_KEY = "sk-canary-7f3a9c2e1b4d5a6f8e0c"
CANARY_KEY_ENV = "POLICYD_TEST_CANARY_API_KEY"
CANARY_PROMPT = "zebra-canary-prompt-4417 write a binary search"
FAIL_MARKER = "FAIL-UPSTREAM"

POLICY = """
version: tel-1
providers:
  simulated: {{kind: simulated, latency_scale: 0.0, seed: b}}  # seed b: the judge rejects the fixture draft
  upstream: {{kind: fixture-http, base_url: "{base_url}", api_key_env: {key_env}}}
models:
  fixture-drafter:
    provider: upstream
    upstream: drafter-v1
    input_usd_per_mtok: 0.10
    output_usd_per_mtok: 0.40
    context_window: 32000
    license: apache-2.0
  claude-sonnet-4: {{options: {{simulated: {{quality: 1.0}}}}}}
telemetry:
  capture_content: {capture}
  decisions:
    sinks: {sinks}
policies:
  default:
    rules:
      - name: checked-coding
        match: {{tasks: [coding]}}
        plan:
          strategy: draft-validate
          params:
            drafters: [fixture-drafter]
            validator: {{name: llm-judge, model: claude-sonnet-4}}
            max_rounds: 1
            escalate_to: claude-opus-4.1
      - name: rest
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
"""


def policy(base_url: str, *, capture: bool = False, sinks: str = "[]") -> str:
    return POLICY.format(base_url=base_url, key_env=CANARY_KEY_ENV, capture=str(capture).lower(), sinks=sinks)


def user(text: str, **kw: Any) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


@dataclass
class Upstream:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


UPSTREAM = web.AppKey("upstream", Upstream)


async def _upstream_handler(request: web.Request) -> web.Response:
    upstream = request.app[UPSTREAM]
    body = await request.json()
    upstream.requests.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body})
    prompt = body["messages"][-1]["content"]
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    if FAIL_MARKER in prompt:
        return web.Response(status=401, text=json.dumps({"error": f"invalid api key {key}"}))
    text = "[fixture draft, quality=flawed] a binary search that misses the empty case"
    return web.json_response({"text": text, "input_tokens": 21, "output_tokens": 13, "model": "drafter-v1-0915"})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = web.Application()
    up = Upstream(base_url="")
    app[UPSTREAM] = up
    app.router.add_post("/v1/complete", _upstream_handler)
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
