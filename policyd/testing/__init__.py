"""``policyd.testing``: a pytest plugin for plugin authors.

Enable it in your ``conftest.py``::

    pytest_plugins = ["policyd.testing"]

(it is also registered as the ``pytest11`` entry point ``policyd.testing``, so an
environment with policyd installed has it already). Fixtures, all prefixed
``policyd_``:

``policyd_host``
    A plugin host with policyd's built-ins and the scripted provider, no entry points.
``policyd_register(plugin, name=None, version=...)``
    Registers a plugin module or object on ``policyd_host`` through the real hooks;
    always unregistered when the test ends, pass or fail.
``policyd_engine(policy, script=None)``
    An :class:`EngineHarness`: ``await h.complete("prompt", task=...)`` returns the
    :class:`~policyd.api.Outcome`; ``h.provider.calls`` lists what the models saw.
``policyd_live(policy=None, script=None)`` (async)
    A real grpc.aio daemon on ``127.0.0.1:0`` with the registered plugins: ``.stub``,
    ``.address``, ``.provider``.
``policyd_daemon(policy=None, env=None)``
    A separate ``policyd serve`` process with entry-point discovery on, to prove an
    installed package loads: ``.stub()``, ``.cli("plugins")``, ``.log()``.
``policyd_cli(*args, env=None)``
    Runs ``policyd <args>`` as a process with entry-point discovery on; returns the
    ``subprocess.CompletedProcess`` (``.returncode``, ``.stdout``, ``.stderr``).

A script maps ``model`` or ``model@role`` to the answers it gives in order (see
:mod:`policyd.testing.scripted`); with one, every catalog model is routed to it.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import pytest

from policyd.plugin.manager import PluginHost
from policyd.testing.harness import (
    EngineHarness,
    LiveDaemon,
    make_engine,
    make_host,
    make_request,
    registered_plugin,
    start_live,
)
from policyd.testing.process import DaemonProcess, run_cli
from policyd.testing.scripted import ScriptedProvider, ScriptedSettings, ScriptStep

__all__ = [
    "DaemonProcess",
    "EngineHarness",
    "LiveDaemon",
    "ScriptStep",
    "ScriptedProvider",
    "ScriptedSettings",
    "make_engine",
    "make_host",
    "make_request",
    "policyd_cli",
    "policyd_daemon",
    "policyd_engine",
    "policyd_host",
    "policyd_live",
    "policyd_register",
    "registered_plugin",
    "run_cli",
    "start_live",
]

Script = Mapping[str, Any]


@pytest.fixture
def policyd_host() -> PluginHost:
    return make_host()


@pytest.fixture
def policyd_register(policyd_host: PluginHost) -> Iterator[Callable[..., PluginHost]]:
    with ExitStack() as stack:

        def register(plugin: object, name: str | None = None, *, version: str = "0.0.0+test") -> PluginHost:
            return stack.enter_context(registered_plugin(policyd_host, plugin, name, version=version))

        yield register


@pytest.fixture
def policyd_engine(policyd_host: PluginHost) -> Callable[..., EngineHarness]:
    def build(policy: str | Mapping[str, Any], script: Script | None = None) -> EngineHarness:
        return make_engine(policyd_host, policy, script)

    return build


@pytest.fixture
async def policyd_live(policyd_host: PluginHost) -> AsyncIterator[Callable[..., Awaitable[LiveDaemon]]]:
    started: list[LiveDaemon] = []

    async def start(policy: str | Mapping[str, Any] | None = None, script: Script | None = None) -> LiveDaemon:
        live = await start_live(policyd_host, policy, script)
        started.append(live)
        return live

    yield start
    for live in started:
        await live.aclose()


@pytest.fixture
def policyd_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(policy: str | None = None, *, env: Mapping[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(policy, env=env, folder=tmp_path_factory.mktemp("policyd-daemon"))
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def policyd_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=env)

    return cli
