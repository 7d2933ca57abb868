"""Fixtures for the chart's tests: a real helm binary, rendering, and the sidecar example chart.

helm comes from ``$POLICYD_HELM`` (the Makefile builds it into a cache and sets it) or PATH.
Without one the tests skip, unless ``POLICYD_REQUIRE_HELM=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "policyd"
EXAMPLE = ROOT / "helm" / "examples" / "sidecar-app"
KUBE_VERSION = "1.37.0"
"""The Kubernetes version helm renders for (matches the newest schemas of kubernetes-validate)."""
NAMESPACE = "llm"


def helm_binary() -> str | None:
    return os.environ.get("POLICYD_HELM") or shutil.which("helm")


@dataclass
class Rendered:
    """The documents ``helm template`` printed, with lookups by kind and name."""

    docs: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
        return found[0]


class Helm:
    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self._n = 0

    def run(self, *args: str, chart: Path = CHART, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess:
        cmd = [self.binary, *args]
        if args[0] == "template":
            cmd += ["release", str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        else:
            cmd += [str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        if values is not None:
            self._n += 1
            path = self.tmp / f"values-{self._n}.yaml"
            path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
            cmd += ["--values", str(path)]
        env = {**os.environ, "HELM_CACHE_HOME": str(self.tmp / "cache"), "HELM_CONFIG_HOME": str(self.tmp / "config")}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=False)

    def template(
        self, values: dict[str, Any] | None = None, *, chart: Path = CHART, files: tuple[Path, ...] = ()
    ) -> Rendered:
        extra = [a for f in files for a in ("--values", str(f))]
        proc = self.run("template", *extra, chart=chart, values=values)
        assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
        return Rendered([d for d in yaml.safe_load_all(proc.stdout) if d])

    def template_error(self, values: dict[str, Any], *, chart: Path = CHART) -> str:
        """helm template must fail; returns its error output."""
        proc = self.run("template", chart=chart, values=values)
        assert proc.returncode != 0, f"helm template accepted {values}:\n{proc.stdout[:2000]}"
        return proc.stderr


@pytest.fixture(scope="session")
def helm_path() -> str:
    binary = helm_binary()
    if binary is None or (not Path(binary).exists() and shutil.which(binary) is None):
        message = "helm not found: run `make helm-tools` or set POLICYD_HELM"
        if os.environ.get("POLICYD_REQUIRE_HELM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def helm(helm_path: str, tmp_path: Path) -> Helm:
    return Helm(helm_path, tmp_path)


@pytest.fixture
def sidecar_app(tmp_path: Path) -> Callable[[dict[str, Any] | None], Path]:
    """The example application chart with this policyd chart vendored in its charts/ folder.

    Copying the chart in is what ``helm dependency build`` does for the ``file://`` dependency;
    ``values`` (optional) replace the example's values.yaml entries at the top level.
    """

    def build(values: dict[str, Any] | None = None) -> Path:
        app = tmp_path / "sidecar-app"
        if app.exists():
            shutil.rmtree(app)
        shutil.copytree(EXAMPLE, app)
        shutil.copytree(CHART, app / "charts" / "policyd")
        if values:
            merged = {**yaml.safe_load((app / "values.yaml").read_text(encoding="utf-8")), **values}
            (app / "values.yaml").write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        return app

    return build


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name!r} in {[c['name'] for c in pod_spec['containers']]}")


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    """name → value, or the ``valueFrom`` mapping for variables taken from elsewhere."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}
