"""The rendered container, run for real: its command, environment, policy file and probes.

A pod cannot run here, so the test does what the kubelet would with the rendered spec: it
writes the ConfigMap's file where the volume would be (under a temporary root), starts the
container's command with the container's environment, and runs its probes against it.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc
from tests import daemon_process
from tests.helm.conftest import Helm, Rendered, container

POLICY = (
    'version: "rendered-2026"\n'
    "providers:\n  simulated: {kind: simulated, latency_scale: 0.0}\n"
    "policies:\n  default:\n    rules:\n      - name: all\n"
    "        plan: {strategy: single, params: {model: glm-4.5}}\n"
)


class Pod:
    """One container of a rendered pod, with its paths moved under ``root``."""

    def __init__(self, rendered: Rendered, spec: dict[str, Any], name: str, root: Path) -> None:
        self.c = container(spec, name)
        self.root = root
        self.env = dict(daemon_process.ENV)
        for e in self.c["env"]:
            if "value" in e:
                self.env[e["name"]] = self.local(e["value"])
        volumes = {v["name"]: v for v in spec["volumes"]}
        for mount in self.c["volumeMounts"]:
            target = self.root / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            source = volumes[mount["name"]]
            if "configMap" in source:
                cm = rendered.one("ConfigMap", source["configMap"]["name"])
                for key, text in cm["data"].items():
                    (target / key).write_text(text, encoding="utf-8")

    def local(self, value: str) -> str:
        """A value naming a container path (or a ``unix://`` path), rewritten under the temporary root."""
        scheme = "unix://" if value.startswith("unix://") else ""
        path = value.removeprefix(scheme)
        mounts = [m["mountPath"] for m in self.c["volumeMounts"] if path.startswith(m["mountPath"])]
        return f"{scheme}{self.root}{path}" if mounts else value


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def start(pod: Pod, procs: list[subprocess.Popen]) -> tuple[subprocess.Popen, str]:
    proc, line = daemon_process.start([*pod.c["command"], *pod.c["args"]], pod.env)
    procs.append(proc)
    return proc, line


def test_sidecar_on_a_unix_socket_loads_the_configmap_policy_and_passes_its_probes(
    helm: Helm, sidecar_app: Any, tmp_path: Path, started: list[subprocess.Popen]
) -> None:
    chart = sidecar_app(
        {"policyd": {"mode": "sidecar", "sidecar": {"unixSocket": {"enabled": True}}, "policy": {"inline": POLICY}}}
    )
    rendered = helm.template(chart=chart)
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    pod = Pod(rendered, spec, "policyd", tmp_path)
    proc, line = start(pod, started)
    assert f"{tmp_path}/etc/policyd/policy.yaml" in line and "version rendered-2026" in line
    assert (tmp_path / "var/run/policyd/policyd.sock").is_socket()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        result = daemon_process.run(pod.c[probe]["exec"]["command"], pod.env)
        assert result.returncode == 0, f"{probe}: {result.stderr}"
    # The application container dials what policyd.address rendered for it.
    app_address = next(e["value"] for e in container(spec, "app")["env"] if e["name"] == "POLICYD_ADDRESS")
    assert pod.local(app_address) == pod.env["POLICYD_LISTEN"]
    assert daemon_process.stop(proc, float(pod.env["POLICYD_GRACE_S"]) + 10) == 0


def test_standalone_container_answers_the_services_its_grpc_probes_name(
    helm: Helm, tmp_path: Path, started: list[subprocess.Popen]
) -> None:
    rendered = helm.template({"policy": {"inline": POLICY}, "daemon": {"grace": 2}})
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    pod = Pod(rendered, spec, "policyd", tmp_path)
    assert pod.env["POLICYD_LISTEN"] == "0.0.0.0:50051"
    pod.env["POLICYD_LISTEN"] = "127.0.0.1:0"  # the pod's port may be taken on this machine
    proc, line = start(pod, started)
    port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)  # type: ignore[union-attr]
    assert "version rendered-2026" in line
    assert Path(pod.env["POLICYD_DATA_DIR"]).is_dir()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        grpc_probe = pod.c[probe]["grpc"]
        assert grpc_probe["port"] == 50051
        address = f"127.0.0.1:{port}"
        result = daemon_process.run(
            ["policyd", "health", "--address", address, "--service", grpc_probe["service"]], pod.env
        )
        assert result.returncode == 0, f"{probe}: {result.stderr}"
    assert daemon_process.stop(proc, float(pod.env["POLICYD_GRACE_S"]) + 10) == 0


def test_standalone_container_with_metrics_serves_the_service_monitor_path(
    helm: Helm, tmp_path: Path, started: list[subprocess.Popen]
) -> None:
    rendered = helm.template(
        {
            "policy": {"inline": POLICY},
            "daemon": {"grace": 2},
            "metrics": {"enabled": True},
            "serviceMonitor": {"enabled": True},
        }
    )
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    pod = Pod(rendered, spec, "policyd", tmp_path)
    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    metrics_port = next(p["containerPort"] for p in pod.c["ports"] if p["name"] == endpoint["port"])
    assert (pod.env["OTEL_EXPORTER_PROMETHEUS_HOST"], pod.env["OTEL_EXPORTER_PROMETHEUS_PORT"]) == (
        "0.0.0.0",
        str(metrics_port),
    )
    # This machine is not a pod: loopback, and a free port instead of the pod's.
    port = daemon_process.free_port()
    pod.env.update(
        POLICYD_LISTEN="127.0.0.1:0", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port)
    )
    proc, line = start(pod, started)
    grpc_port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)  # type: ignore[union-attr]
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        message = pb.Message(role=pb.ROLE_USER, content="hello")
        answer = policyd_pb2_grpc.PolicyServiceStub(channel).Complete(
            pb.CompleteRequest(messages=[message]), timeout=30
        )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{endpoint['path']}", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    got = {
        (s.name, s.labels.get("gen_ai_token_type", "")): s
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert got["gen_ai_client_token_usage_sum", "output"].value == answer.attempts[0].output_tokens
    assert got["gen_ai_client_operation_duration_seconds_count", ""].labels["gen_ai_provider_name"] == "simulated"
    assert got["policyd_cost_USD_total", ""].value == pytest.approx(answer.total_cost_usd)
    assert got["policyd_outcomes_total", ""].labels["policyd_rule"] == "all"
    assert got["target_info", ""].labels["service_name"] == "release-policyd"
    assert daemon_process.stop(proc, float(pod.env["POLICYD_GRACE_S"]) + 10) == 0
