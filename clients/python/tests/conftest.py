"""A real policyd daemon for the client's tests, started once per session.

The interpreter is $POLICYD_PYTHON (default: this one); the repository is found above this
folder, or named by $POLICYD_REPO. The daemon runs the offline default policy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LISTENING = re.compile(r"policyd listening on (\S+:\d+)")


def repo_root() -> Path:
    if os.environ.get("POLICYD_REPO"):
        return Path(os.environ["POLICYD_REPO"]).resolve()
    for folder in Path(__file__).resolve().parents:
        if (folder / "policyd" / "__main__.py").exists():
            return folder
    raise RuntimeError("no policyd repository above the client's tests; set POLICYD_REPO")


REFUSALS = """
limits: {tenants: {throttled: {requests_per_minute: 1}}}
budgets: {tenants: {broke: {daily_usd: 0.000001}}}
"""
"""Two tenants with limits the contract tests can hit; every other tenant is unlimited."""


@pytest.fixture(scope="session")
def daemon_addr() -> Iterator[str]:
    yield from _daemon()


@pytest.fixture(scope="session")
def contract_addr() -> Iterator[str]:
    """A daemon on the bundled default plus :data:`REFUSALS`."""
    yield from _daemon(REFUSALS)


def _daemon(extra: str = "") -> Iterator[str]:
    repo = repo_root()
    data_dir = tempfile.mkdtemp(prefix="policyd-py-client-test-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "plugins")]), "PYTHONUNBUFFERED": "1"}
    python = os.environ.get("POLICYD_PYTHON") or sys.executable
    config: list[str] = []
    if extra:
        policy = Path(data_dir) / "policy.yaml"
        bundled = (repo / "policyd" / "config" / "default.yaml").read_text(encoding="utf-8")
        policy.write_text(bundled + "\n" + extra, encoding="utf-8")
        config = ["--config", str(policy)]
    proc = subprocess.Popen(
        [python, "-m", "policyd", "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *config],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    found = threading.Event()
    addr: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keep draining so the daemon never blocks on a full pipe
            lines.append(line)
            match = LISTENING.search(line)
            if match and not found.is_set():
                addr.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    started = time.monotonic()
    while not found.wait(0.1) and time.monotonic() - started < 60:
        pass
    if not addr:
        proc.kill()
        raise RuntimeError("policyd did not start:\n" + "".join(lines))
    yield addr[0]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
