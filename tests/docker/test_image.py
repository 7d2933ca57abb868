"""The container image itself: built with podman (scripts/image.py) and run the way the chart runs it.

The module's first use builds the image (cached under ~/.cache/policyd-image: ~30 s warm,
a few minutes cold). Where podman cannot run containers the tests skip saying why, and fail
instead under ``CI=true`` or ``POLICYD_REQUIRE_IMAGE=1``: CI must not pass without them.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc
from scripts import image
from tests.helm.conftest import CHART, Helm, helm_binary

pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
REQUIRED = os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("POLICYD_REQUIRE_IMAGE") == "1"
DEAD_COLLECTOR = "http://127.0.0.1:4317"
"""An OTLP endpoint inside the container where no collector listens: telemetry is 'down'."""


def unavailable(why: str) -> None:
    message = f"cannot build or run the container image here: {why}"
    if REQUIRED:
        pytest.fail(f"{message} (required: CI=true or POLICYD_REQUIRE_IMAGE=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def ref() -> str:
    problem = image.host_problem()
    if problem:
        unavailable(problem)
    started = time.monotonic()
    built = image.build()
    print(f"\nimage {built}: built in {time.monotonic() - started:.0f} s, {image.image_size(built) / 1e6:.0f} MB")
    return built


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- podman run


def chart_run_options(data: Path) -> list[str]:
    """`podman run` options equivalent to the chart's container: user, read-only root, capabilities, volumes.

    The cache volume is an emptyDir the kubelet makes writable for the pod's fsGroup: here a
    host directory that podman chowns to the container's user (``:U``); /tmp is a tmpfs.
    """
    sc, cache = VALUES["securityContext"], VALUES["cache"]
    assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False and not sc["capabilities"]["add"]
    data.mkdir(exist_ok=True)
    return [
        f"--user={sc['runAsUser']}:{sc['runAsGroup']}",
        "--read-only",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        f"--volume={data}:{cache['mountPath']}:U",
        f"--tmpfs=/tmp:rw,size={VALUES['tmpSizeLimit'].rstrip('i')}",
        "--env=POLICYD_GRACE_S=" + str(VALUES["daemon"]["grace"]),
    ]


@contextmanager
def running(ref: str, *options: str) -> Iterator[str]:
    """A detached container of the image (removed afterwards, whatever happens); yields its name."""
    name = f"policyd-test-{secrets.token_hex(4)}"
    try:
        image.podman("run", "--detach", f"--name={name}", *options, ref)
        yield name
    finally:
        image.podman("rm", "--force", "--time=0", name, check=False)


def wait_serving(name: str, deadline_s: float = 90) -> None:
    """Runs the image's own HEALTHCHECK command until it reports SERVING."""
    end = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(
            ["podman", "healthcheck", "run", name], env=image.podman_env(), capture_output=True, text=True, check=False
        )
        if proc.returncode == 0:
            return
        state = image.podman("inspect", "--format", "{{.State.Status}}", name, check=False).strip()
        if state not in ("running", "created", "configured") or time.monotonic() > end:
            detail = f"{proc.stdout}{proc.stderr}\n{logs(name)[-3000:]}"
            raise AssertionError(f"{name} never reported SERVING (state {state}): {detail}")
        time.sleep(1)


def logs(name: str) -> str:
    proc = subprocess.run(["podman", "logs", name], env=image.podman_env(), capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


def test_image_has_no_pip_no_build_tools_and_not_the_build_hosts_ca(ref: str) -> None:
    check = (
        "import importlib.util as u, pathlib, sys; "
        "print(sys.executable, [m for m in ('pip', 'setuptools', 'wheel', 'ensurepip') if u.find_spec(m)], "
        "pathlib.Path('/usr/share/python-wheels').exists())"
    )
    for python in ("/opt/policyd/bin/python", "python3"):  # the daemon's and the base's interpreter
        out = image.podman("run", "--rm", "--entrypoint", python, ref, "-c", check).strip()
        assert out.endswith("[] False"), f"pip, setuptools, wheel or their wheels in the image: {out}"
    bundle = image.podman("run", "--rm", "--entrypoint", "cat", ref, "/etc/ssl/certs/ca-certificates.crt")
    local_cas = list(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
    for ca in local_cas:  # the build mounted the host's bundle (a TLS-intercepting proxy's CA): it stays out
        body = "".join(ca.read_text(errors="replace").split("-----")[2].split())
        assert body[:200] not in "".join(bundle.split()), f"{ca} ended up in the image"
    config = image.podman("image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}}", ref).strip()
    assert config == '10001:10001 ["policyd","serve"]', config


def test_runs_as_the_chart_does_answers_and_stops_within_the_grace_with_telemetry_down(
    ref: str, tmp_path: Path
) -> None:
    port = free_port()
    grace_budget = VALUES["terminationGracePeriodSeconds"] - VALUES["daemon"]["preStopSleepSeconds"]
    otel = [f"--env=OTEL_EXPORTER_OTLP_ENDPOINT={DEAD_COLLECTOR}", "--env=OTEL_TRACES_EXPORTER=otlp"]
    otel += ["--env=OTEL_METRICS_EXPORTER=otlp", "--env=OTEL_LOGS_EXPORTER=otlp"]
    with running(ref, *chart_run_options(tmp_path / "data"), *otel, f"--publish=127.0.0.1:{port}:50051") as name:
        wait_serving(name)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = policyd_pb2_grpc.PolicyServiceStub(channel)
            answer = stub.Complete(
                pb.CompleteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")]), timeout=30
            )
        assert answer.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
        assert answer.output and answer.attempts
        started = time.monotonic()
        image.podman("stop", f"--time={grace_budget}", name, timeout=grace_budget + 30)  # SIGTERM, SIGKILL after
        took = time.monotonic() - started
        code = image.podman("inspect", "--format", "{{.State.ExitCode}}", name).strip()
        output = logs(name)
    assert code == "0", f"exit {code} after {took:.1f} s (137: SIGKILLed past the grace)\n{output[-3000:]}"
    assert took < grace_budget, f"SIGTERM took {took:.1f} s, the pod allows {grace_budget} s"
    assert "telemetry flush did not finish" in output, "the collector is down: the flush must have been cut"
    print(f"\nSIGTERM to exit with the collector down: {took:.1f} s (allowed {grace_budget} s)")


def test_root_owned_data_volume_stops_the_container_at_start_naming_it(ref: str, tmp_path: Path) -> None:
    mount = VALUES["cache"]["mountPath"]
    options = [o for o in chart_run_options(tmp_path / "data") if not o.startswith("--volume=")]
    options.append(f"--tmpfs={mount}")  # root's (mode 0700), as a tmpfs is unless told otherwise
    with running(ref, *options) as name:
        code = image.podman("wait", name, timeout=60).strip()
        output = logs(name)
    assert code == "2", output
    assert f"data directory {mount} is not writable by uid 10001" in output
    assert "Fix:" in output and "listening" not in output


# ---------------------------------------------------------------------------- podman kube play


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = helm_binary()
    if binary is None:
        message = "helm not found: run `make helm-tools` or set POLICYD_HELM"
        if REQUIRED or os.environ.get("POLICYD_REQUIRE_HELM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return Helm(binary, tmp_path_factory.mktemp("helm"))


@contextmanager
def kube_play(docs: list[dict[str, Any]], tmp: Path) -> Iterator[list[str]]:
    """``podman kube play`` of the manifests; yields the containers' names; ``kube down`` afterwards."""
    manifest = tmp / f"kube-{secrets.token_hex(4)}.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    try:
        out = image.podman("kube", "play", str(manifest), timeout=300)
        pods = re.findall(r"^Pod:\n([0-9a-f]{64})", out, re.M)
        assert pods, out
        names = []
        for pod in pods:
            fmt = "{{range .Containers}}{{.Name}} {{end}}"
            names += image.podman("pod", "inspect", "--format", fmt, pod).split()
        yield names
    finally:
        image.podman("kube", "down", str(manifest), check=False, timeout=120)


def playable(rendered: list[dict[str, Any]], kinds: tuple[str, ...] = ("ConfigMap", "Deployment")) -> list[dict]:
    """The documents ``podman kube play`` acts on, one replica each."""
    docs = [d for d in rendered if d["kind"] in kinds]
    for d in docs:
        if d["kind"] == "Deployment":
            d["spec"]["replicas"] = 1
    return docs


def policyd_serving(container: str, address: str, deadline_s: float = 90) -> str:
    end = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(
            [
                "podman",
                "exec",
                container,
                "policyd-health",
                "--address",
                address,
                "--service",
                "policyd.v1.PolicyService",
            ],
            env=image.podman_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0 or time.monotonic() > end:
            return proc.stdout + proc.stderr
        time.sleep(1)


def test_kube_play_of_the_charts_standalone_deployment_reaches_serving(ref: str, helm: Helm, tmp_path: Path) -> None:
    rendered = helm.template({"replicaCount": 1, "image": {"tag": ref.rsplit(":", 1)[1]}}).docs
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ref, "the chart's default image"
    with kube_play(playable(rendered), tmp_path) as containers:
        policyd = next(c for c in containers if c.endswith("-policyd"))
        answer = policyd_serving(policyd, "127.0.0.1:50051")
    assert "SERVING" in answer and "NOT_SERVING" not in answer, answer


def test_kube_play_of_the_sidecar_example_reaches_serving(ref: str, helm: Helm, tmp_path: Path) -> None:
    from tests.helm.conftest import EXAMPLE

    app = tmp_path / "sidecar-app"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(app)], check=True)
    (app / "charts").mkdir()
    subprocess.run(["cp", "-r", str(CHART), str(app / "charts" / "policyd")], check=True)
    # The example's policy runs on the simulated provider: its key reference (a Secret) is left out.
    values = {"app": {"image": image.BASE, "replicas": 1}, "policyd": {"providerKeys": {"env": []}}}
    rendered = helm.template(values, chart=app).docs
    for d in rendered:
        if d["kind"] == "Deployment":  # the example's app container: a placeholder that idles
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "app":
                    c["command"] = ["/bin/sleep", "infinity"]
    with kube_play(playable(rendered), tmp_path) as containers:
        policyd = next(c for c in containers if c.endswith("-policyd"))
        answer = policyd_serving(policyd, "127.0.0.1:50051")
    assert "SERVING" in answer and "NOT_SERVING" not in answer, answer
