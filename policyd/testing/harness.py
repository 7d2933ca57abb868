"""In-process harnesses: a plugin host, an engine on a policy, a live gRPC daemon.

Everything runs the real code paths (plugin registration through the hooks, the
policy loader, the engine, a grpc.aio server on ``127.0.0.1:0``); only upstreams are
scripted, by routing every catalog model to the ``scripted`` provider when a test
gives a script.
"""

from __future__ import annotations

import contextlib
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import yaml

from policyd.api import Message, Outcome, Request, Role, Stakes
from policyd.config import Config, load_text
from policyd.daemon import Daemon, DaemonOptions, build_daemon
from policyd.engine import Engine
from policyd.plugin.manager import PluginHost, default_host
from policyd.server.app import RunningServer, start_server
from policyd.testing.scripted import KIND, ScriptedProvider, ScriptedProviderPlugin
from policyd.v1 import policyd_pb2_grpc

SCRIPTED_PLUGIN = "policyd-testing-scripted"


def make_host() -> PluginHost:
    """Built-in plugins plus the scripted provider; no entry points are loaded."""
    host = default_host(entry_points=False)
    host.add(ScriptedProviderPlugin(), SCRIPTED_PLUGIN, version="test", origin="direct")
    return host


@contextlib.contextmanager
def registered_plugin(
    host: PluginHost, plugin: object, name: str | None = None, *, version: str = "0.0.0+test"
) -> Iterator[PluginHost]:
    """Register ``plugin`` (a module or an object with hook methods) for the block; always unregistered after."""
    label: str = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    host.add(plugin, label, version=version, origin="direct")
    try:
        yield host
    finally:
        host.remove(label)


def policy_text(policy: str | Mapping[str, Any], script: Mapping[str, Any] | None, host: PluginHost) -> str:
    """The policy as YAML; with a script, every catalog model answers from the scripted provider."""
    doc: dict[str, Any] = dict(yaml.safe_load(textwrap.dedent(policy)) if isinstance(policy, str) else policy)
    if script is None:
        return yaml.safe_dump(doc)
    registered = host.collect()
    doc.setdefault("providers", {})[KIND] = {"kind": KIND, "script": dict(script)}
    models: dict[str, Any] = {m.id: {"provider": KIND} for cat in registered.catalogs.values() for m in cat.models}
    for model_id, fields in (doc.get("models") or {}).items():
        models[model_id] = {**models.get(model_id, {}), **fields}
    doc["models"] = models
    return yaml.safe_dump(doc)


def make_request(
    prompt: str = "hello",
    *,
    task: str = "",
    stakes: str | Stakes = Stakes.NORMAL,
    deadline_s: float | None = 10.0,
    **fields: Any,
) -> Request:
    """A domain :class:`~policyd.api.Request` with one user message; other fields as keywords."""
    return Request(
        request_id=fields.pop("request_id", "test"),
        messages=fields.pop("messages", (Message(role=Role.USER, content=prompt),)),
        task=task,
        stakes=Stakes(stakes),
        deadline=None if deadline_s is None else time.monotonic() + deadline_s,
        **fields,
    )


@dataclass
class EngineHarness:
    """An engine on one policy, and the scripted provider behind it (None without a script)."""

    engine: Engine
    config: Config

    @property
    def provider(self) -> ScriptedProvider:
        provider = self.engine.runtime.providers.get(KIND)
        if not isinstance(provider, ScriptedProvider):
            raise LookupError("this engine has no script: pass script= to get a scripted provider")
        return provider

    async def complete(self, prompt: str | Request = "hello", **fields: Any) -> Outcome:
        request = prompt if isinstance(prompt, Request) else make_request(prompt, **fields)
        return await self.engine.complete(request)


def make_engine(
    host: PluginHost, policy: str | Mapping[str, Any], script: Mapping[str, Any] | None = None
) -> EngineHarness:
    registered = host.collect()
    config = load_text(policy_text(policy, script, host), registered, "test-policy.yaml")
    return EngineHarness(engine=Engine(config, registered), config=config)


@dataclass
class LiveDaemon:
    """A real grpc.aio daemon on ``127.0.0.1:<port>`` and an async stub to it."""

    daemon: Daemon
    server: RunningServer
    channel: grpc.aio.Channel
    stub: policyd_pb2_grpc.PolicyServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def provider(self) -> ScriptedProvider:
        return EngineHarness(self.daemon.engine, self.daemon.config).provider

    async def aclose(self) -> None:
        await self.channel.close()
        await self.server.server.stop(0)
        await self.daemon.aclose()


async def start_live(
    host: PluginHost, policy: str | Mapping[str, Any] | None = None, script: Mapping[str, Any] | None = None
) -> LiveDaemon:
    folder = Path(tempfile.mkdtemp(prefix="policyd-test-"))
    path = None
    if policy is not None:
        path = folder / "policy.yaml"
        path.write_text(policy_text(policy, script, host), encoding="utf-8")
    options = DaemonOptions(config_path=str(path) if path else None, data_dir=folder / "data", entry_points=False)
    daemon = build_daemon(options, host=host)
    server = await start_server(daemon, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return LiveDaemon(daemon, server, channel, policyd_pb2_grpc.PolicyServiceStub(channel))
