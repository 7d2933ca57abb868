"""The Dockerfile, checked without building it (tests/docker/test_image.py builds and runs the image).

hadolint (a dev dependency that ships the binary) lints it; a small parser checks the
properties the deployment relies on; and the daemon is started with the image's own
environment and probed with the image's own HEALTHCHECK command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import daemon_process

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "clang", "python3-dev", "libc6-dev")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile: continuations joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        op, _, arg = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            words = arg.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=base, name=name))
        elif not stages and op == "ARG":
            key, _, value = arg.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append((op, arg.strip()))
    return args, stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for arg in stage.all("ENV"):
        for item in shlex.split(arg):
            key, _, value = item.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))[1]


def tool(name: str) -> str | None:
    """A dev dependency's executable: beside this interpreter (the venv's bin, on PATH or not), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which(name)


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint")
    assert hadolint, f"hadolint missing beside {sys.executable} and on PATH: it is a dev dependency (make setup)"
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_is_multi_stage_on_a_slim_python_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", stage.base), stage.base
    final = stages[-1]
    copies = final.all("COPY")
    assert copies == [f"--from={stages[0].name} /opt/policyd /opt/policyd"], copies


def test_final_stage_installs_no_build_tools(stages: list[Stage]) -> None:
    final = stages[-1]
    for cmd in final.all("RUN"):
        assert "apt-get install" not in cmd and "pip install" not in cmd, cmd
        for tool in BUILD_TOOLS:
            assert tool not in f"{cmd} ", f"build tool {tool!r} in the final stage: {cmd}"


def test_final_stage_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert gid.isdigit() and int(gid) > 0, users[-1]


def test_entrypoint_serves_on_all_interfaces_with_data_and_tmp_volumes(stages: list[Stage]) -> None:
    final = stages[-1]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["policyd", "serve"]
    env = env_of(final)
    assert env["POLICYD_LISTEN"] == "0.0.0.0:50051"
    assert final.all("EXPOSE") == ["50051"]
    volumes = json.loads(final.all("VOLUME")[-1])
    assert env["POLICYD_DATA_DIR"] in volumes and "/tmp" in volumes
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "a read-only root filesystem cannot take .pyc files"


def test_build_context_holds_only_the_package_sources() -> None:
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {"!image-requirements.txt", "!pyproject.toml", "!README.md", "!policyd/", "!plugins/"} <= set(lines)


def test_dependencies_come_from_the_lock_in_a_layer_before_the_source(stages: list[Stage]) -> None:
    build = stages[0]
    ops = [(op, arg) for op, arg in build.instructions if op in ("COPY", "RUN")]
    lock_at = ops.index(("COPY", "image-requirements.txt ./"))
    install_at = next(i for i, (op, arg) in enumerate(ops) if op == "RUN" and "-r image-requirements.txt" in arg)
    source_at = next(i for i, (op, arg) in enumerate(ops) if op == "COPY" and arg.startswith("policyd "))
    assert lock_at < install_at < source_at, ops
    assert "--require-hashes" in ops[install_at][1] and "--only-binary=:all:" in ops[install_at][1]
    last = ops[-1][1]
    assert "--no-deps" in last and "--no-index" in last, "the project itself must not pull anything unlocked"
    assert "uninstall --yes setuptools wheel" in last and "uninstall --yes pip" in last


def test_listen_address_has_one_source_for_the_daemon_and_the_healthcheck(stages: list[Stage]) -> None:
    """`policyd serve` and `policyd-health` both read POLICYD_LISTEN; no `--listen` in the image can disagree."""
    final = stages[-1]
    for op in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
        for arg in final.all(op):
            assert "--listen" not in arg and "--address" not in arg, f"{op} {arg}"
    chart = (ROOT / "helm" / "policyd" / "templates" / "_container.tpl").read_text(encoding="utf-8")
    assert "--listen" not in chart and "name: POLICYD_LISTEN" in chart, "the chart sets the address the same way"


def test_the_lock_file_is_current() -> None:
    from scripts import image

    problems = image.check_lock()
    assert not problems, f"{image.LOCK.name} is stale ({'; '.join(problems)}): run `make image-lock`"


def test_daemon_with_the_image_environment_passes_the_image_healthcheck(stages: list[Stage], tmp_path: Path) -> None:
    """The image's ENV, entrypoint and HEALTHCHECK, run here against the real daemon (port 0, local dirs)."""
    final = stages[-1]
    env = {**daemon_process.ENV, **env_of(final)}
    env.pop("POLICYD_WORKERS", None)  # not in the image: its default, one worker per core (docs/workers.md)
    env["PATH"] = daemon_process.ENV["PATH"]
    env["POLICYD_DATA_DIR"] = str(tmp_path / "data")
    env["HOME"] = str(tmp_path)
    env["POLICYD_LISTEN"] = env["POLICYD_LISTEN"].replace(":50051", ":0")
    proc, line = daemon_process.start(json.loads(final.all("ENTRYPOINT")[-1]), env)
    try:
        match = re.search(r"policyd listening on [\d.]+:(\d+)", line)
        assert match, f"no ready line: {line!r}"
        healthcheck = json.loads(final.all("HEALTHCHECK")[-1].split("CMD", 1)[1])
        probe = daemon_process.run(healthcheck, {**env, "POLICYD_LISTEN": f"0.0.0.0:{match.group(1)}"})
        assert probe.returncode == 0, probe.stderr
        assert "SERVING" in probe.stdout
    finally:
        assert daemon_process.stop(proc) == 0
