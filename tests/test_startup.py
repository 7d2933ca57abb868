"""Start-up stays lean: serving the offline default never imports what its requests do not use.

Not timed (``bench/startup_bench.py`` measures exec → SERVING): a fresh interpreter imports the
serve path as ``policyd serve`` does, builds the daemon on the offline default, starts the gRPC
server, answers one Complete through a real stub, and reports which heavy modules it loaded.
A real group of two workers shows what its supervisor had loaded when it started them and
when the group served: its workers serve; it only holds the address and the group's state.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyd.cli import main
from policyd.cli.main import COMMANDS, build_parser, chosen_command, command_parser
from policyd.lifecycle import COLLECTOR_THRESHOLDS, collector_paused

ROOT = Path(__file__).resolve().parents[1]

DEFERRED = (
    "aiohttp",  # the HTTP front door (--http-listen) and the HTTP providers' transport
    "opentelemetry.sdk",  # only for a signal with an exporter (OTEL_*)
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",  # RPC spans, only when tracing
    "prometheus_client",
    "jsonschema",  # the json-schema validator's first check
    "redis",  # a fleet's Valkey
    "asyncpg",  # a fleet's PostgreSQL
    "policyd.fleet.postgres",
    "policyd.fleet.valkey",
    "policyd.eval",  # policyd eval / router, and a route strategy's router file
    "policyd.server.openai.app",
    "numpy",
    "sklearn",
    "matplotlib",
)

SERVE_AND_ANSWER = """
import asyncio, json, sys, tempfile
from pathlib import Path

from policyd.cli import main
main.command_parser(["serve"])  # what `policyd serve` imports before running

import grpc.aio
from policyd.daemon import DaemonOptions, build_daemon
from policyd.server.app import start_server
from policyd.v1 import policyd_pb2 as pb, policyd_pb2_grpc

async def serve_one() -> str:
    daemon = build_daemon(DaemonOptions(data_dir=Path(tempfile.mkdtemp()) / "data", entry_points=False))
    running = await start_server(daemon, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)
            reply = await stub.Complete(pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]))
        return reply.output.content
    finally:
        await running.shutdown(0)
        await daemon.aclose()

output = asyncio.run(serve_one())
print(json.dumps({"output": output, "modules": sorted(sys.modules)}))
"""


SUPERVISE_A_GROUP = """
import asyncio, gc, json, os, signal, sys
from policyd.workers import spawn

start_group, seen = spawn.start_group, {}

def recording_start(plan):
    try:
        asyncio.get_running_loop()
        seen["loop_at_spawn"] = True
    except RuntimeError:
        seen["loop_at_spawn"] = False
    seen["at_spawn"] = sorted(sys.modules)
    seen["threads_at_spawn"] = len(os.listdir("/proc/self/task"))
    seen["frozen_at_spawn"] = gc.get_freeze_count()
    started = start_group(plan)
    from policyd.workers import supervisor

    announce = supervisor.Supervisor.announce

    def announced(self):
        announce(self)
        seen["serving"] = sorted(sys.modules)
        seen["open_files"] = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                seen["open_files"].append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # the directory's own descriptor, closed by now
                pass
        print(json.dumps(seen), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # the group drains and the supervisor exits 0

    supervisor.Supervisor.announce = announced
    return started

spawn.start_group = recording_start
from policyd.cli.main import main

argv = ["--log-level", "WARNING", "serve", "--workers", "2", "--listen", "127.0.0.1:0", "--data-dir", sys.argv[1]]
sys.exit(main(argv))
"""

SERVE_ALONE = """
import gc, json, os, sys
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
from policyd.cli import event_loop
from policyd.cli.main import main

def record(serving, factory):  # what `policyd serve --workers 1` loaded when its server would start
    serving.close()
    switch = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    print(json.dumps({"modules": sorted(sys.modules), "pydantic_switch": switch, "collections": collections,
                      "collector_on": gc.isenabled(), "frozen": gc.get_freeze_count(),
                      "thresholds": gc.get_threshold()}), flush=True)

event_loop.run = record
argv = ["--log-level", "WARNING", "serve", "--workers", "1", "--listen", "127.0.0.1:0", "--data-dir", sys.argv[1]]
sys.exit(main(argv))
"""

ALONE_NEVER = ("policyd.workers.supervisor", "policyd.workers.state", "policyd.workers.spawn", "policyd.workers.link")
"""One worker is one daemon: no supervisor, and none of a group's parts."""

SUPERVISOR_NEVER = DEFERRED
"""What a group's supervisor (no policy file, no ``OTEL_*``) never loads, as a lone daemon does not: the
serve path it imports before its forks is the lone daemon's."""

BEFORE_THE_FORKS = (
    "grpc",
    "google.protobuf",
    "pydantic",
    "policyd.daemon",
    "policyd.server.app",
    "policyd.server.openai.server",
    "policyd.workers.link",
    "policyd_plugins.simulated",
    "policyd_plugins.strategies",
)
"""The serve path, imported once by the supervisor before it forks its workers: they inherit it."""

AFTER_THE_FORKS = ("policyd.workers.supervisor", "policyd.workers.state")
"""The supervisor's own parts load once its workers run."""


def loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


@pytest.fixture(scope="module")
def served() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    out = subprocess.run(
        [sys.executable, "-c", SERVE_AND_ANSWER], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POLICYD_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    data = tmp_path_factory.mktemp("group") / "data"
    out = subprocess.run(
        [sys.executable, "-c", SUPERVISE_A_GROUP, str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "(policy " in out.stdout and "2 workers)" in out.stdout  # the group served: every worker was up
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", SUPERVISOR_NEVER)
def test_a_group_supervisor_never_imports_what_serving_the_offline_default_does_not(supervised, module):
    assert loaded(supervised["serving"], module) == [], f"the supervisor of a group imported {module}"


@pytest.mark.parametrize("module", BEFORE_THE_FORKS)
def test_a_group_supervisor_imports_the_serve_path_once_before_it_forks_its_workers(supervised, module):
    assert loaded(supervised["at_spawn"], module) != [], f"{module} was not imported before the workers started"


@pytest.mark.parametrize("module", AFTER_THE_FORKS)
def test_a_group_supervisor_loads_its_own_parts_after_its_workers_start(supervised, module):
    assert loaded(supervised["at_spawn"], module) == [], f"{module} was imported before the workers started"
    assert loaded(supervised["serving"], module) != []  # then it was: the supervisor runs on it


def test_a_group_supervisor_forks_without_a_thread_or_an_event_loop_and_with_its_imports_frozen(supervised):
    assert supervised["threads_at_spawn"] == 1  # no grpc, store or Python thread is copied into a fork
    assert supervised["loop_at_spawn"] is False
    assert supervised["frozen_at_spawn"] > 10_000  # the forks' collections never walk (or copy) the shared imports


def test_a_group_supervisor_never_opens_the_cache_or_the_ledger(supervised):
    # Its workers build the daemon: the supervisor holds no file of the data directory (it holds the address).
    data_files = [f for f in supervised["open_files"] if "/data/" in f or f.endswith("/data")]
    assert data_files == [], data_files


def test_an_entry_point_pass_is_adopted_for_the_sys_path_it_was_made_over(monkeypatch):
    from policyd import discovery

    monkeypatch.setattr(discovery, "_adopted", {})
    monkeypatch.setenv(discovery.PYDANTIC_SWITCH, "")  # adopt() leaves a set variable alone
    assert not discovery.adopted()
    discovery.adopt()
    assert discovery.adopted()  # a fork of a supervisor that made the pass does not make it again
    monkeypatch.setattr(sys, "path", [*sys.path, "/nonexistent-boot6"])
    assert not discovery.adopted()  # sys.path changed since: scanned again


def test_one_worker_serves_alone_without_a_groups_parts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "POLICYD_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    out = subprocess.run(
        [sys.executable, "-c", SERVE_ALONE, str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    modules = result["modules"]
    assert "policyd.daemon" in modules  # it got as far as serving
    for module in ALONE_NEVER:
        assert loaded(modules, module) == [], f"policyd serve --workers 1 imported {module}"
    # One entry-point pass before the first model: with no pydantic plugin installed, pydantic skips its own.
    pydantic_plugins = list(importlib.metadata.entry_points(group="pydantic"))
    assert result["pydantic_switch"] == (None if pydantic_plugins else "__all__")
    # The collector is paused while the serve path is imported and the daemon built (it ran 111 times
    # before: only the command module's imports were paused), and on again when the server starts.
    assert len(result["collections"]) <= 20, result["collections"]
    assert result["collector_on"]
    # What start-up built is frozen (no later pass walks it), and the young generation is collected less often.
    assert result["frozen"] > 10_000, result["frozen"]
    assert tuple(result["thresholds"]) == COLLECTOR_THRESHOLDS


def test_the_offline_default_answers_its_first_complete(served):
    assert "simulated" in str(served["output"]).lower()
    assert {"policyd.daemon", "policyd.server.app", "policyd_plugins.simulated"} <= set(served["modules"])  # type: ignore[arg-type]


@pytest.mark.parametrize("module", DEFERRED)
def test_serving_the_offline_default_never_imports(served, module):
    modules = served["modules"]
    assert isinstance(modules, list)
    assert loaded(modules, module) == [], f"{module} was imported by serving the offline default"


def test_the_serve_command_imports_only_its_own_subcommand_module():
    assert chosen_command(["serve", "--listen", "127.0.0.1:0"]) == "serve"
    assert chosen_command(["--log-level", "DEBUG", "hash-token", "--generate"]) == "hash_token"
    assert chosen_command(["--log-level=DEBUG", "check"]) == "check"
    sub = build_parser("serve")._subparsers
    assert sub is not None
    (action,) = [a for a in sub._group_actions if a.dest == "command"]
    assert list(action.choices) == ["serve"]


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h", "serve"], ["--version"], ["bogus"], ["--log-level", "INFO"]])
def test_help_version_and_unknown_commands_get_every_subcommand(argv):
    assert chosen_command(argv) is None
    sub = build_parser(chosen_command(argv))._subparsers
    assert sub is not None
    (action,) = [a for a in sub._group_actions if a.dest == "command"]
    assert [name.replace("-", "_") for name in action.choices] == list(COMMANDS)


def test_the_collector_is_paused_while_the_command_is_imported_and_on_again_after(monkeypatch):
    seen: list[tuple[str | None, bool]] = []

    def spy(only: str | None = None):
        seen.append((only, gc.isenabled()))
        return build_parser(only)

    monkeypatch.setattr(main, "build_parser", spy)
    assert gc.isenabled()
    command_parser(["check"]).parse_args(["check"])
    assert seen == [("check", False)] and gc.isenabled()

    def broken(only: str | None = None):
        raise ImportError("a subcommand module failed to import")

    monkeypatch.setattr(main, "build_parser", broken)
    with pytest.raises(ImportError):
        command_parser(["serve"])
    assert gc.isenabled()


def test_a_paused_collector_is_restored_as_it_was_around_nested_pauses():
    @collector_paused()
    def inner() -> bool:
        return gc.isenabled()

    assert gc.isenabled()
    with collector_paused():
        assert inner() is False
        assert not gc.isenabled()  # the inner pause does not turn it on under the outer one
    assert gc.isenabled()


@pytest.mark.parametrize(("metrics", "imports"), [(None, 1), ("a Prometheus address", 0)])
def test_a_group_supervisor_imports_the_serve_path_only_for_workers_it_forks(monkeypatch, metrics, imports):
    from policyd.cli import serve_cmd
    from policyd.workers import plan as plan_module
    from policyd.workers import spawn, supervisor
    from policyd.workers.env import FD_ENV

    monkeypatch.delenv(FD_ENV, raising=False)
    loads: list[bool] = []
    started: list[int] = []
    plan = plan_module.Plan(2, [], None, None, 1.0, metrics=metrics)  # type: ignore[arg-type]
    monkeypatch.setattr(serve_cmd, "load_serve_path", lambda: loads.append(True))
    monkeypatch.setattr(plan_module, "plan_workers", lambda args: plan)
    monkeypatch.setattr(spawn, "start_group", lambda p: started.append(len(loads)) or [])
    monkeypatch.setattr(supervisor, "supervise", lambda p, children: 0)
    monkeypatch.setattr(serve_cmd, "configure_logging", lambda level: None)  # this test process's logging stays
    monkeypatch.setattr(gc, "freeze", lambda: None)  # and its collector
    args = command_parser(["serve"]).parse_args(["serve", "--listen", "127.0.0.1:0"])
    assert serve_cmd.run(args) == 0
    assert len(loads) == imports  # exec'd workers (a metrics group) import for themselves
    assert started == [imports]  # and the imports come before the workers start
