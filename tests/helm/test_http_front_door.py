"""The chart's ``http`` values: off by default; on, the daemon gets POLICYD_HTTP_LISTEN and a port."""

from __future__ import annotations

from typing import Any

from policyd.server.listen import check_address
from tests.helm.conftest import Helm, container, env_of


def _policyd(helm: Helm, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    rendered = helm.template(values)
    c = container(rendered.one("Deployment")["spec"]["template"]["spec"], "policyd")
    return c, rendered.one("Service")


def test_http_front_door_is_off_by_default(helm: Helm) -> None:
    c, service = _policyd(helm, {})
    assert "POLICYD_HTTP_LISTEN" not in env_of(c)
    assert "http" not in {p["name"] for p in c.get("ports", [])}
    assert "http" not in {p["name"] for p in service["spec"]["ports"]}


def test_enabled_http_listens_on_the_pod_and_the_service_exposes_it(helm: Helm) -> None:
    c, service = _policyd(helm, {"http": {"enabled": True, "port": 8081}})
    listen = env_of(c)["POLICYD_HTTP_LISTEN"]
    assert listen == "0.0.0.0:8081"
    check_address(listen)  # what `policyd serve` checks before it starts
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["http"] == 8081
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["http"] == 8081


def test_bad_http_port_is_rejected(helm: Helm) -> None:
    assert "http.port" in helm.template_error({"http": {"enabled": True, "port": 70000}}).replace("/", ".")
