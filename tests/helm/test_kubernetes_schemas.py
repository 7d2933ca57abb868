"""Every rendered manifest, in both modes, validated offline against the Kubernetes API schemas.

kubernetes-validate ships the OpenAPI-derived schemas of each Kubernetes release; strict mode
also rejects unknown fields (a misspelt key would otherwise be dropped silently by the API
server). Manifests are checked against the chart's minimum version (1.27, native gRPC probes)
and the newest one shipped. The ServiceMonitor is a CRD with no schema there: it is checked
for the fields the Prometheus Operator needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from tests.helm.conftest import CHART, Helm, Rendered

MIN_KUBE = "1.27.0"
NEWEST_KUBE = kubernetes_validate.latest_version()

Scenario = Callable[[Helm, Any], Rendered]
SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...]]] = {
    "standalone-defaults": (lambda h, app: h.template(), (MIN_KUBE, NEWEST_KUBE)),
    "standalone-ci": (
        lambda h, app: h.template(files=(CHART / "ci" / "standalone-values.yaml",)),
        (MIN_KUBE, NEWEST_KUBE),
    ),
    "standalone-pvc": (
        lambda h, app: h.template({"replicaCount": 1, "cache": {"type": "persistentVolumeClaim"}}),
        (MIN_KUBE, NEWEST_KUBE),
    ),
    "sidecar-ci": (lambda h, app: h.template(files=(CHART / "ci" / "sidecar-values.yaml",)), (MIN_KUBE, NEWEST_KUBE)),
    "sidecar-app-loopback": (lambda h, app: h.template(chart=app(None)), (MIN_KUBE, NEWEST_KUBE)),
    "sidecar-app-unix-socket": (
        lambda h, app: h.template(
            chart=app({"policyd": {"mode": "sidecar", "sidecar": {"unixSocket": {"enabled": True}}}})
        ),
        (MIN_KUBE, NEWEST_KUBE),
    ),
    # restartPolicy on an init container (native sidecars) exists from Kubernetes 1.28.
    "sidecar-app-native": (
        lambda h, app: h.template(chart=app({"policyd": {"mode": "sidecar", "sidecar": {"native": True}}})),
        (NEWEST_KUBE,),
    ),
}


def check_service_monitor(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    spec = doc["spec"]
    assert spec["selector"]["matchLabels"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["port"] and endpoint["path"].startswith("/")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_rendered_manifests_match_the_kubernetes_schemas(helm: Helm, sidecar_app: Any, scenario: str) -> None:
    render, versions = SCENARIOS[scenario]
    rendered = render(helm, sidecar_app)
    assert rendered.docs
    checked = 0
    for doc in rendered.docs:
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc)
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{scenario}: {doc['kind']}/{doc['metadata']['name']} on {version}: {path}: {exc.message}")
            checked += 1
    assert checked >= len(versions)


def test_the_validator_catches_a_misplaced_field(helm: Helm) -> None:
    """The check is real: a field the API does not know fails strict validation."""
    deployment = helm.template().one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["path"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, NEWEST_KUBE, strict=True)
