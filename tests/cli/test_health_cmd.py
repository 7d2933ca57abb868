"""``policyd health`` against a real daemon: over TCP, over a Unix socket, and when nothing answers."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policyd.cli.health_cmd import probe_target
from tests import daemon_process


def policyd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return daemon_process.run(["policyd", *args], env)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    procs: list[subprocess.Popen] = []

    def start(listen: str) -> str:
        proc, line = daemon_process.start(
            ["policyd", "serve", "--listen", listen, "--data-dir", str(tmp_path / "data")]
        )
        procs.append(proc)
        return line

    yield start
    for proc in procs:
        daemon_process.stop(proc)


def test_serving_daemon_on_tcp_reports_serving_for_server_and_service(serve) -> None:
    port = re.search(r":(\d+) ", serve("127.0.0.1:0")).group(1)
    whole = policyd("health", "--address", f"127.0.0.1:{port}")
    assert whole.returncode == 0, whole.stderr
    assert "SERVING" in whole.stdout
    service = policyd("health", "--address", f"127.0.0.1:{port}", "--service", "policyd.v1.PolicyService")
    assert service.returncode == 0, service.stderr


def test_address_defaults_to_policyd_listen_with_wildcard_as_loopback(serve) -> None:
    port = re.search(r":(\d+) ", serve("0.0.0.0:0")).group(1)
    probe = policyd("health", env={**daemon_process.ENV, "POLICYD_LISTEN": f"0.0.0.0:{port}"})
    assert probe.returncode == 0, probe.stderr


def test_daemon_on_a_unix_socket_answers_health_there(serve, tmp_path: Path) -> None:
    socket = tmp_path / "run" / "policyd.sock"
    socket.parent.mkdir()
    serve(f"unix://{socket}")
    assert socket.is_socket()
    probe = policyd("health", env={**daemon_process.ENV, "POLICYD_LISTEN": f"unix://{socket}"})
    assert probe.returncode == 0, probe.stderr
    assert f"unix://{socket}" in probe.stdout


def test_unknown_service_fails_with_not_found(serve) -> None:
    port = re.search(r":(\d+) ", serve("127.0.0.1:0")).group(1)
    probe = policyd("health", "--address", f"127.0.0.1:{port}", "--service", "no.such.Service")
    assert probe.returncode == 1
    assert "NOT_FOUND" in probe.stderr


def test_nothing_listening_fails_with_unavailable_within_the_timeout(tmp_path: Path) -> None:
    probe = policyd("health", "--address", f"unix://{tmp_path}/absent.sock", "--timeout", "1")
    assert probe.returncode == 1
    assert "UNAVAILABLE" in probe.stderr or "DEADLINE_EXCEEDED" in probe.stderr


@pytest.mark.parametrize(
    ("listen", "target"),
    [
        ("0.0.0.0:50051", "127.0.0.1:50051"),
        ("[::]:7000", "127.0.0.1:7000"),
        ("10.1.2.3:50051", "10.1.2.3:50051"),
        ("unix:///var/run/policyd/policyd.sock", "unix:///var/run/policyd/policyd.sock"),
    ],
)
def test_probe_target_dials_loopback_for_wildcard_listeners(listen: str, target: str) -> None:
    assert probe_target(listen) == target


def test_policyd_health_console_script_probes_without_the_rest_of_the_cli(serve) -> None:
    import tomllib

    scripts = tomllib.loads((daemon_process.ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["policyd-health"] == "policyd.cli.health_cmd:main"
    port = re.search(r":(\d+) ", serve("127.0.0.1:0")).group(1)
    probe = daemon_process.run(
        ["policyd-health", "--address", f"127.0.0.1:{port}", "--service", "policyd.v1.PolicyService"]
    )
    assert probe.returncode == 0, probe.stderr
    assert "SERVING" in probe.stdout
