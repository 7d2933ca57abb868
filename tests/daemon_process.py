"""The daemon as a subprocess, run the way a container runs it: `policyd ...` with an environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
"""This process's environment, with the worktree's packages importable."""


MODULES = {"policyd": "policyd", "policyd-health": "policyd.cli.health_cmd"}
"""The console scripts of pyproject.toml, as modules."""


def argv(command: list[str]) -> list[str]:
    """A container command starting with a policyd console script, run with this interpreter."""
    assert command[0] in MODULES, command
    return [sys.executable, "-m", MODULES[command[0]], *command[1:]]


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv(command), env=env or ENV, capture_output=True, text=True, timeout=30, check=False)


def start(command: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Starts a daemon and waits for its ready line; returns (process, that line)."""
    proc = subprocess.Popen(argv(command), env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "policyd listening on" not in line:
        proc.kill()
        raise AssertionError(f"daemon not ready: {line!r}\n{proc.communicate(timeout=10)[1]}")
    return proc, line


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM, wait for the drain, return the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=timeout_s)
    return proc.returncode


def free_port() -> int:
    """A loopback port nothing listens on now (for a daemon's second listener, such as /metrics)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
