"""SIGTERM with the OpenTelemetry Collector down: the telemetry flush has one total limit.

The OTLP exporters retry a refused export with backoff for tens of seconds (each signal
separately), past a pod's termination grace; ``POLICYD_TELEMETRY_FLUSH_S`` bounds all of
it together, after the ledger and the cache are flushed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc
from tests import daemon_process


def collector_down_env(tmp_path: Path, protocol: str, limit_s: str) -> dict[str, str]:
    return {
        **daemon_process.ENV,
        "POLICYD_DATA_DIR": str(tmp_path / "data"),
        "POLICYD_TELEMETRY_FLUSH_S": limit_s,
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        # nothing listens there: every export is refused and retried
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{daemon_process.free_port()}",
    }


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_sigterm_with_the_collector_down_exits_within_the_flush_limit(tmp_path: Path, protocol: str) -> None:
    limit_s = 2.0
    env = collector_down_env(tmp_path, protocol, str(limit_s))
    proc, line = daemon_process.start(["policyd", "serve", "--listen", "127.0.0.1:0", "--grace", "1"], env)
    try:
        port = line.rsplit(":", 1)[1].split()[0]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = policyd_pb2_grpc.PolicyServiceStub(channel).Complete(
                pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]), timeout=10
            )
        assert answer.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED  # a span, metric points, a decision event
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - started
    assert proc.returncode == 0, stderr[-3000:]
    assert f"telemetry flush did not finish within {limit_s:.1f} s" in stderr, stderr[-3000:]
    # Unbounded, the exporters' retries kept it alive 27-37 s; the slack covers a loaded 2-core CI machine.
    assert took < limit_s + 10, f"SIGTERM took {took:.1f} s with a {limit_s} s flush limit"


def test_a_bad_flush_limit_stops_the_daemon_at_start(tmp_path: Path) -> None:
    env = {**daemon_process.ENV, "POLICYD_DATA_DIR": str(tmp_path / "data"), "POLICYD_TELEMETRY_FLUSH_S": "2000ms"}
    proc = subprocess.run(
        daemon_process.argv(["policyd", "serve", "--listen", "127.0.0.1:0"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "POLICYD_TELEMETRY_FLUSH_S: expected seconds >= 0, got '2000ms'" in proc.stderr
