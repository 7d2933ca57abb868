"""A live daemon with its HTTP front door on 127.0.0.1:0, and OpenAI SDK clients pointed at it."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from policyd.daemon import Daemon, DaemonOptions, build_daemon
from policyd.plugin.manager import PluginHost
from policyd.server.app import RunningServer, start_server
from policyd.server.openai.server import RunningHttp, start_http
from policyd.telemetry.setup import Telemetry
from policyd.testing import make_host
from policyd.testing.harness import policy_text

FAST = """
version: oa-1
providers:
  simulated: {kind: simulated, latency_scale: 0.0}
policies:
  default:
    rules:
      - name: coding
        match: {tasks: [coding]}
        plan: {strategy: fallback, params: {models: [qwen3-coder-480b-a35b, claude-sonnet-4]}}
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
  premium:
    rules:
      - name: only
        plan: {strategy: single, params: {model: claude-sonnet-4}}
"""


@dataclass
class Front:
    daemon: Daemon
    grpc: RunningServer
    http: RunningHttp
    clients: list[openai.AsyncOpenAI] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}/v1"

    def client(self, api_key: str = "unused", **kw: Any) -> openai.OpenAI:
        """A sync client (call it from a thread: the daemon runs on the test's event loop)."""
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, **kw)

    def aclient(self, api_key: str = "unused", **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, **kw)
        self.clients.append(client)
        return client


StartFront = Callable[..., Awaitable[Front]]


@pytest.fixture
async def front() -> AsyncIterator[StartFront]:
    """``await front(policy, script=None, host=None, telemetry=None)`` → a live daemon serving gRPC and HTTP."""
    started: list[Front] = []

    async def start(
        policy: str | Mapping[str, Any] = FAST,
        script: Mapping[str, Any] | None = None,
        host: PluginHost | None = None,
        telemetry: Telemetry | None = None,
    ) -> Front:
        host = host or make_host()
        folder = Path(tempfile.mkdtemp(prefix="policyd-openai-"))
        path = folder / "policy.yaml"
        path.write_text(policy_text(policy, script, host), encoding="utf-8")
        options = DaemonOptions(
            config_path=str(path), data_dir=folder / "data", entry_points=False, telemetry=telemetry
        )
        daemon = build_daemon(options, host=host)
        grpc_server = await start_server(daemon, "127.0.0.1:0")
        http = await start_http(daemon, "127.0.0.1:0", grace_s=1.0)
        started.append(Front(daemon, grpc_server, http))
        return started[-1]

    yield start
    for f in started:
        for client in f.clients:
            await client.close()
        await f.http.shutdown()
        await f.grpc.server.stop(0)
        await f.daemon.aclose()
