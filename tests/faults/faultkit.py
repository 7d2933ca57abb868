"""Fault-suite helpers: the daemon as a real process, tokens, requests, and a gauged provider.

``spawn`` runs ``python -m policyd serve`` the way an operator does and drains its
stderr continuously (a chatty daemon under load must never block on a full pipe),
so a test can read the whole log afterwards and look for what must not be there.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
from pydantic import BaseModel, ConfigDict

from policyd.plugin import hookimpl
from policyd.plugin.specs import DeltaSink, ProviderSpec
from policyd.server.auth import hash_token
from policyd.types import Message, ModelCall, ModelResponse, Role, Usage
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"policyd listening on (\S+)")

TOKEN_A = "tok-a-7f3e9c"
TOKEN_B = "tok-b-1d2c8a"
TOKEN_OPS = "tok-ops-55e0b1"


def auth_section() -> str:
    """``auth:`` with tenants team-a, team-b (limited to the default policy) and ops (every stats row)."""
    return f"""
auth:
  tenants:
    team-a: {{token_sha256: ["{hash_token(TOKEN_A)}"]}}
    team-b: {{token_sha256: ["{hash_token(TOKEN_B)}"], policies: [default]}}
    ops: {{token_sha256: ["{hash_token(TOKEN_OPS)}"], all_stats: true}}
"""


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def user(text: str, **kw: object) -> pb.CompleteRequest:
    return pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)], **kw)


async def status_of(call: object) -> grpc.StatusCode:
    """The status an RPC ends with (OK when it answers)."""
    try:
        result = call
        if hasattr(call, "__aiter__"):
            async for _ in call:  # type: ignore[attr-defined]
                pass
        else:
            await result  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# ---------------------------------------------------------------- a daemon process


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    address: str
    log: list[str] = field(default_factory=list)
    """Every stderr line so far."""

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def stderr(self) -> str:
        return "".join(self.log)

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.address)

    def stub(self, channel: grpc.aio.Channel) -> policyd_pb2_grpc.PolicyServiceStub:
        return policyd_pb2_grpc.PolicyServiceStub(channel)

    async def wait_exit(self, timeout_s: float) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout_s)


def daemon_env(**extra: str) -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", POLICYD_DISABLE_PLUGIN_AUTOLOAD="1", **extra
    )


@asynccontextmanager
async def spawn(
    config: Path, data_dir: Path, *args: str, listen: str = "127.0.0.1:0", env: dict[str, str] | None = None
) -> AsyncIterator[Proc]:
    cmd = [sys.executable, "-m", "policyd", "--log-level", "DEBUG", "serve", "--listen", listen]
    cmd += ["--config", str(config), "--data-dir", str(data_dir), *args]
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env or daemon_env(), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    log: list[str] = []

    async def drain(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.append(line.decode(errors="replace"))

    drainer = asyncio.ensure_future(drain(proc.stderr))
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    found = LISTENING.search(line)
    if found is None:
        proc.kill()
        await proc.wait()
        await drainer
        raise AssertionError(f"daemon did not start: {line!r}\n{''.join(log)}")
    running = Proc(proc, found.group(1), log)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(drainer, 10)


async def until(predicate: Callable[[], bool], timeout_s: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- a gauged provider


class GaugeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: float = 0.0
    behaviour: str = "answer"
    """``answer``, ``raise`` (a plain exception, not an UpstreamError) or ``wrong-type``."""
    text: str = "gauged answer"


@dataclass
class Gauge:
    """What the ``gauge`` providers saw: calls started, calls finished, providers closed."""

    calls: list[ModelCall] = field(default_factory=list)
    finished: int = 0
    cancelled: int = 0
    closed: list[str] = field(default_factory=list)
    """Labels (``text``) of the provider instances closed, in order."""
    in_flight: int = 0


class GaugePlugin:
    """Provider kind ``gauge``: answers after ``delay_s``, counting everything."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge

    @hookimpl
    def policyd_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        gauge = self.gauge

        class GaugeProvider:
            def __init__(self, name: str, settings: GaugeSettings) -> None:
                self.settings = settings

            async def complete(self, call: ModelCall, on_delta: DeltaSink | None = None) -> ModelResponse:
                gauge.calls.append(call)
                gauge.in_flight += 1
                try:
                    await asyncio.sleep(self.settings.delay_s)
                except asyncio.CancelledError:
                    gauge.cancelled += 1
                    raise
                finally:
                    gauge.in_flight -= 1
                if self.settings.behaviour == "raise":
                    raise RuntimeError("gauge exploded with sk-canary-plugin-secret")
                if self.settings.behaviour == "wrong-type":
                    return "not a ModelResponse"  # type: ignore[return-value]
                gauge.finished += 1
                if on_delta is not None:
                    on_delta(self.settings.text)
                return ModelResponse(
                    message=Message(role=Role.ASSISTANT, content=self.settings.text),
                    usage=Usage(input_tokens=10, output_tokens=5),
                    finish_reason="stop",
                )

            async def aclose(self) -> None:
                gauge.closed.append(self.settings.text)

        register(ProviderSpec(kind="gauge", factory=GaugeProvider, settings=GaugeSettings))


def gauge_config(delay_s: float = 0.0, text: str = "gauged answer", version: str = "v1", extra: str = "") -> str:
    return f"""
version: {version}
providers:
  g: {{kind: gauge, delay_s: {delay_s}, text: "{text}"}}
models:
  gpt-oss-120b: {{provider: g}}
policies:
  default:
    rules:
      - name: one
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
  other:
    rules:
      - name: other
        plan: {{strategy: single, params: {{model: gpt-oss-120b}}}}
{extra}
"""
