"""Sidecar mode: the example application chart includes the policyd.* templates in its own pod."""

from __future__ import annotations

from typing import Any

import yaml

from tests.helm.conftest import CHART, EXAMPLE, Helm, container, env_of

SIDECAR_VALUES = CHART / "ci" / "sidecar-values.yaml"


def app_pod(helm: Helm, sidecar_app: Any, policyd: dict[str, Any] | None = None) -> tuple[list[str], dict[str, Any]]:
    """(kinds rendered, the application's pod spec) for the example chart with ``policyd`` values merged in."""
    values = None
    if policyd is not None:
        base = yaml.safe_load((EXAMPLE / "values.yaml").read_text(encoding="utf-8"))["policyd"]
        values = {"policyd": _merge(base, policyd)}
    rendered = helm.template(chart=sidecar_app(values))
    deployment = rendered.one("Deployment", "release-app")
    return rendered.kinds(), deployment["spec"]["template"]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def test_sidecar_mode_alone_renders_only_the_policy_configmap(helm: Helm) -> None:
    rendered = helm.template({"mode": "sidecar", "policy": {"inline": "policies: {}\n"}})
    assert rendered.kinds() == ["ConfigMap"]


def test_sidecar_ci_values_render_the_configmap_and_the_cache_claim(helm: Helm) -> None:
    rendered = helm.template(files=(SIDECAR_VALUES,))
    assert rendered.kinds() == ["ConfigMap", "PersistentVolumeClaim"]


def test_application_pod_gets_the_policyd_container_on_loopback(helm: Helm, sidecar_app: Any) -> None:
    kinds, template = app_pod(helm, sidecar_app)
    assert kinds == ["ConfigMap", "Deployment"], "the dependency adds no Deployment or Service of its own"
    spec = template["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "policyd"]
    assert "initContainers" not in spec
    app, policyd = container(spec, "app"), container(spec, "policyd")
    assert env_of(app)["POLICYD_ADDRESS"] == "127.0.0.1:50051"
    env = env_of(policyd)
    assert env["POLICYD_LISTEN"] == "127.0.0.1:50051"
    assert env["POLICYD_CONFIG"] == "/etc/policyd/policy.yaml"
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "llm-keys", "key": "openai"}}
    assert "ports" not in policyd, "a loopback listener is not a pod port"
    assert policyd["resources"]["limits"] == {"memory": "256Mi"}


def test_sidecar_is_probed_with_policyd_health_because_the_kubelet_cannot_reach_loopback(
    helm: Helm, sidecar_app: Any
) -> None:
    policyd = container(app_pod(helm, sidecar_app)[1]["spec"], "policyd")
    assert policyd["livenessProbe"]["exec"]["command"] == ["policyd-health", "--service", "", "--timeout", "4"]
    assert policyd["readinessProbe"]["exec"]["command"][:3] == [
        "policyd-health",
        "--service",
        "policyd.v1.PolicyService",
    ]
    assert "grpc" not in policyd["livenessProbe"]


def test_sidecar_container_meets_the_restricted_standard_on_its_own(helm: Helm, sidecar_app: Any) -> None:
    """The application owns the pod's securityContext, so the container carries every setting itself."""
    sc = container(app_pod(helm, sidecar_app)[1]["spec"], "policyd")["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_sidecar_volumes_are_prefixed_and_match_the_mounts(helm: Helm, sidecar_app: Any) -> None:
    spec = app_pod(helm, sidecar_app)[1]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all(name.startswith("policyd-") for name in volumes)
    for mount in container(spec, "policyd")["volumeMounts"]:
        assert mount["name"] in volumes
    assert volumes["policyd-policy"]["configMap"]["name"] == "release-policyd-policy"
    assert volumes["policyd-tmp"]["emptyDir"] == {"sizeLimit": "64Mi"}


def test_application_pod_rolls_with_the_policy_and_waits_for_the_drain(helm: Helm, sidecar_app: Any) -> None:
    template = app_pod(helm, sidecar_app)[1]
    assert len(template["metadata"]["annotations"]["checksum/policyd-policy"]) == 64
    assert template["spec"]["terminationGracePeriodSeconds"] == 30
    other = app_pod(helm, sidecar_app, {"policy": {"inline": "policies: {}\n"}})[1]
    assert other["metadata"]["annotations"] != template["metadata"]["annotations"]


def test_unix_socket_is_shared_between_policyd_and_the_application(helm: Helm, sidecar_app: Any) -> None:
    spec = app_pod(helm, sidecar_app, {"sidecar": {"unixSocket": {"enabled": True, "dir": "/run/llm"}}})[1]["spec"]
    app, policyd = container(spec, "app"), container(spec, "policyd")
    assert env_of(policyd)["POLICYD_LISTEN"] == "unix:///run/llm/policyd.sock"
    assert env_of(app)["POLICYD_ADDRESS"] == "unix:///run/llm/policyd.sock"
    assert {"name": "policyd-socket", "mountPath": "/run/llm"} in app["volumeMounts"]
    assert {"name": "policyd-socket", "mountPath": "/run/llm"} in policyd["volumeMounts"]
    assert {"name": "policyd-socket", "emptyDir": {}} in spec["volumes"]


def test_several_workers_are_refused_on_a_unix_socket(helm: Helm, sidecar_app: Any) -> None:
    values = {"policyd": {"sidecar": {"unixSocket": {"enabled": True}}, "daemon": {"workers": 2}}}
    error = helm.template_error(values, chart=sidecar_app(None))
    assert "daemon.workers (2)" in error and "Unix socket" in error


def test_native_sidecar_is_an_init_container_that_keeps_running(helm: Helm, sidecar_app: Any) -> None:
    spec = app_pod(helm, sidecar_app, {"sidecar": {"native": True}})[1]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    (init,) = spec["initContainers"]
    assert init["name"] == "policyd" and init["restartPolicy"] == "Always"


def test_sidecar_templates_refuse_a_standalone_dependency(helm: Helm, sidecar_app: Any) -> None:
    chart = sidecar_app({"policyd": {"mode": "standalone"}})
    assert "set policyd's mode to sidecar" in helm.template_error({}, chart=chart)


def test_sidecar_templates_enforce_the_grace_ordering(helm: Helm, sidecar_app: Any) -> None:
    chart = sidecar_app({"policyd": {"mode": "sidecar", "terminationGracePeriodSeconds": 10}})
    assert "terminationGracePeriodSeconds (10) must be greater than" in helm.template_error({}, chart=chart)
