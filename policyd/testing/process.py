"""A policyd daemon as a separate process, discovering plugins the way production does.

In-process harnesses register plugins by hand; this one runs ``python -m policyd
serve`` with entry-point autoload on, so a test proves that an installed package's
``[project.entry-points.policyd]`` is found, allowed and used.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc

from policyd.plugin.manager import BUILTIN_PLUGINS
from policyd.v1 import policyd_pb2_grpc

READY_PREFIX = "policyd listening on "


def _package_root(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).resolve().parents[1])


def daemon_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This interpreter's environment with autoload on and policyd's own code importable."""
    env = {k: v for k, v in os.environ.items() if k != "POLICYD_DISABLE_PLUGIN_AUTOLOAD"}
    builtins = BUILTIN_PLUGINS["policyd_simulated"].split(".")[0]  # the built-in plugins' top-level package
    roots = [r for r in (_package_root("policyd"), _package_root(builtins)) if r]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*roots, *filter(None, [env.get("PYTHONPATH")])]))
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``policyd <args>`` as a process with autoload on (e.g. ``run_cli("plugins")``)."""
    command = [sys.executable, "-m", "policyd", *args]
    return subprocess.run(command, capture_output=True, text=True, env=daemon_env(env), timeout=timeout_s, check=False)


class DaemonProcess:
    """``python -m policyd serve --listen 127.0.0.1:0`` with a policy file; stopped with SIGTERM."""

    def __init__(
        self,
        policy: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        folder: Path | None = None,
        ready_timeout_s: float = 30.0,
    ) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="policyd-daemon-"))
        self.config_path: Path | None = None
        if policy is not None:
            self.config_path = self.folder / "policy.yaml"
            self.config_path.write_text(textwrap.dedent(policy), encoding="utf-8")
        self.env = daemon_env({"POLICYD_DATA_DIR": str(self.folder / "data"), **(env or {})})
        self.log_path = self.folder / "daemon.log"
        command = [sys.executable, "-m", "policyd", "serve", "--listen", "127.0.0.1:0", "--grace", "2", *args]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        self._log = self.log_path.open("w", encoding="utf-8")
        self._channel: grpc.Channel | None = None
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=self.env)
        self.address = self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].split()[0]
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"policyd did not start (exit {self.proc.returncode}):\n{self.log()}")

    def log(self) -> str:
        """What the daemon wrote to stderr so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stub(self) -> policyd_pb2_grpc.PolicyServiceStub:
        """A blocking stub on one channel, closed by :meth:`stop`."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        return policyd_pb2_grpc.PolicyServiceStub(self._channel)

    def cli(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``policyd <args>`` with the daemon's environment (e.g. ``cli("plugins")``)."""
        return run_cli(*args, env=self.env, timeout_s=timeout_s)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 15 s; returns the exit code."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode
