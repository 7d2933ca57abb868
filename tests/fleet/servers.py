"""Real Redis/Valkey and PostgreSQL servers for the fleet tests, each on a free loopback port in a temp dir.

``scripts/ci_services.sh`` installs Debian's packages; these helpers start private instances
(never the system services) and stop them after. PostgreSQL refuses to run as root, so under
root it runs as ``nobody`` (through ``runuser``) in a directory handed to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def redis_binary() -> str | None:
    return shutil.which("valkey-server") or shutil.which("redis-server")


def pg_bindir() -> Path | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for d in reversed(dirs):
        if Path(d, "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class RedisServer:
    """``redis-server`` (or ``valkey-server``) without persistence; :meth:`stop` and :meth:`start` keep the port."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_binary()
        assert binary, "redis-server is not installed (scripts/ci_services.sh installs it)"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"]
        with open(self.directory / "server.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, 10, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@dataclass
class PostgresServer:
    """A private cluster (initdb, trust auth on loopback), database ``policyd`` owned by role ``policyd``."""

    directory: Path
    port: int = field(default_factory=free_port)
    running: bool = False

    @property
    def dsn(self) -> str:
        return f"postgresql://policyd@127.0.0.1:{self.port}/policyd"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _run(self, *args: str, timeout: float = 60) -> None:
        bindir = pg_bindir()
        assert bindir, "postgresql is not installed (scripts/ci_services.sh installs it)"
        cmd = [str(bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses root
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.directory, check=False)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the directory must be reachable by nobody: give it one under /tmp
            shutil.chown(self.directory, "nobody")
        self._run("initdb", "-D", str(self.data), "-U", "policyd", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
        opts += " -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.directory / "server.log"), "-w", "start")
        self.running = True

    def create_db(self) -> None:
        bindir = pg_bindir()
        assert bindir
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "policyd", "policyd")

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False
