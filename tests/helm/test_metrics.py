"""The chart's metrics options against the daemon: the env it renders is one policyd accepts.

``metrics.enabled`` sets ``OTEL_METRICS_EXPORTER`` (``prometheus``, or ``otlp,prometheus``
with ``otel.enabled``) and ``OTEL_EXPORTER_PROMETHEUS_HOST/PORT``; the tests read them with
the daemon's own parser, so a value the daemon would refuse at start-up fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from policyd.telemetry.prometheus import DEFAULT_PORT
from policyd.telemetry.setup import Exporters, exporters_from_env
from tests.helm.conftest import Helm, container, env_of
from tests.helm.test_sidecar import app_pod


def parsed(c: dict[str, Any]) -> Exporters:
    """The container's literal env values, as ``policyd serve`` reads them (raises ConfigError if refused)."""
    env = {name: value for name, value in env_of(c).items() if isinstance(value, str)}
    return exporters_from_env(env)


def ports(c: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}


@pytest.mark.parametrize(
    ("otel", "metrics", "expected"),
    [
        (False, False, ()),
        (False, True, ("prometheus",)),
        (True, False, ("otlp",)),
        (True, True, ("otlp", "prometheus")),
    ],
)
def test_rendered_metrics_exporters_are_ones_the_daemon_accepts(
    helm: Helm, otel: bool, metrics: bool, expected: tuple[str, ...]
) -> None:
    values = {"otel": {"enabled": otel}, "metrics": {"enabled": metrics, "port": 9100}}
    c = container(helm.template(values).one("Deployment")["spec"]["template"]["spec"], "policyd")
    choice = parsed(c)
    assert choice.metrics == expected
    if metrics:
        assert choice.prometheus is not None
        assert choice.prometheus.host == "0.0.0.0", "the kubelet and Prometheus reach the pod IP"
        assert choice.prometheus.port == ports(c)["metrics"] == 9100
    else:
        assert choice.prometheus is None and "metrics" not in ports(c)


def test_default_metrics_port_is_the_daemons_default(helm: Helm) -> None:
    c = container(
        helm.template({"metrics": {"enabled": True}}).one("Deployment")["spec"]["template"]["spec"], "policyd"
    )
    assert ports(c)["metrics"] == DEFAULT_PORT
    assert parsed(c).prometheus.port == DEFAULT_PORT  # type: ignore[union-attr]


def test_service_monitor_scrapes_the_port_the_daemon_serves_on(helm: Helm) -> None:
    rendered = helm.template({"metrics": {"enabled": True, "port": 9100}, "serviceMonitor": {"enabled": True}})
    c = container(rendered.one("Deployment")["spec"]["template"]["spec"], "policyd")
    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    service_port = {p["name"]: p for p in rendered.one("Service")["spec"]["ports"]}[endpoint["port"]]
    assert service_port["targetPort"] in ports(c)
    assert ports(c)[service_port["targetPort"]] == parsed(c).prometheus.port  # type: ignore[union-attr]
    assert endpoint["path"] == "/metrics"


def test_sidecar_with_metrics_exposes_the_port_the_daemon_serves_on(helm: Helm, sidecar_app: Any) -> None:
    _, template = app_pod(helm, sidecar_app, {"metrics": {"enabled": True, "port": 9100}})
    c = container(template["spec"], "policyd")
    choice = parsed(c)
    assert choice.metrics == ("prometheus",)
    assert choice.prometheus is not None and choice.prometheus.port == ports(c)["metrics"] == 9100
