"""Standalone mode: what `helm template` renders for the Deployment and its companions."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml

from tests.helm.conftest import CHART, NAMESPACE, Helm, Rendered, container, env_of

CI_VALUES = CHART / "ci" / "standalone-values.yaml"
POLICY = (
    "policies:\n  default:\n    rules:\n      - name: all\n        plan: {strategy: single, params: {model: glm-4.5}}\n"
)


def pod_spec(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("Deployment")["spec"]["template"]["spec"]


def test_defaults_render_deployment_service_account_and_pdb_only(helm: Helm) -> None:
    rendered = helm.template()
    assert rendered.kinds() == ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    deployment = rendered.one("Deployment", "release-policyd")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "policyd"
    assert labels["app.kubernetes.io/instance"] == "release"
    assert labels["helm.sh/chart"] == "policyd-0.1.0"
    assert deployment["spec"]["selector"]["matchLabels"] == rendered.one("Service")["spec"]["selector"]


def test_default_container_serves_the_bundled_policy_on_all_interfaces(helm: Helm) -> None:
    spec = pod_spec(helm.template())
    c = container(spec, "policyd")
    assert c["image"] == "localhost/policyd:0.1.0", "what `make image` tags"
    assert c["command"] == ["policyd"] and c["args"] == ["--log-level", "INFO", "serve"]
    env = env_of(c)
    assert env["POLICYD_LISTEN"] == "0.0.0.0:50051"
    assert env["POLICYD_GRACE_S"] == "10"
    assert env["POLICYD_DATA_DIR"] == "/var/lib/policyd"
    assert "POLICYD_CONFIG" not in env, "no policy given: the bundled default applies"
    assert env["OTEL_SDK_DISABLED"] == "true"
    assert c["ports"] == [{"name": "grpc", "containerPort": 50051, "protocol": "TCP"}]
    assert "annotations" not in spec.get("metadata", {})


def test_probes_are_native_grpc_on_the_daemon_port(helm: Helm) -> None:
    c = container(pod_spec(helm.template({"daemon": {"port": 6000}})), "policyd")
    assert c["livenessProbe"]["grpc"] == {"port": 6000, "service": ""}
    assert c["startupProbe"]["grpc"] == {"port": 6000, "service": ""}
    assert c["readinessProbe"]["grpc"] == {"port": 6000, "service": "policyd.v1.PolicyService"}
    assert c["readinessProbe"]["periodSeconds"] == 5 and c["readinessProbe"]["failureThreshold"] == 2
    assert c["startupProbe"]["failureThreshold"] == 30
    off = container(pod_spec(helm.template({"probes": {"startup": {"enabled": False}}})), "policyd")
    assert "startupProbe" not in off and "livenessProbe" in off


def test_pod_meets_the_restricted_pod_security_standard(helm: Helm) -> None:
    spec = pod_spec(helm.template())
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert "hostNetwork" not in spec and "hostPID" not in spec
    sc = container(spec, "policyd")["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": []}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(spec, "policyd")["volumeMounts"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {"sizeLimit": "64Mi"}, "a read-only root needs a writable /tmp"
    assert volumes[mounts["/var/lib/policyd"]]["emptyDir"] == {"sizeLimit": "1Gi"}


def test_inline_policy_is_a_configmap_mounted_where_policyd_config_points(helm: Helm) -> None:
    rendered = helm.template({"policy": {"inline": POLICY, "key": "routing.yaml", "mountPath": "/etc/pd"}})
    cm = rendered.one("ConfigMap", "release-policyd-policy")
    assert yaml.safe_load(cm["data"]["routing.yaml"]) == yaml.safe_load(POLICY)
    spec = pod_spec(rendered)
    c = container(spec, "policyd")
    assert env_of(c)["POLICYD_CONFIG"] == "/etc/pd/routing.yaml"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/pd")
    assert mount["readOnly"] is True and "subPath" not in mount, "a subPath mount would never see ConfigMap updates"
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "release-policyd-policy"


def test_policy_checksum_rolls_pods_only_when_the_policy_changes(helm: Helm) -> None:
    def checksum(policy: str) -> str:
        rendered = helm.template({"policy": {"inline": policy}})
        return rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/policyd-policy"]

    first = checksum(POLICY)
    assert first == hashlib.sha256(f"policy.yaml\n{POLICY}".encode()).hexdigest()
    assert checksum(POLICY) == first
    assert checksum(POLICY.replace("glm-4.5", "gpt-oss-120b")) != first


def test_existing_configmap_is_mounted_without_rendering_one(helm: Helm) -> None:
    rendered = helm.template({"policy": {"existingConfigMap": "team-policy", "inline": POLICY}})
    assert "ConfigMap" not in rendered.kinds()
    spec = pod_spec(rendered)
    assert env_of(container(spec, "policyd"))["POLICYD_CONFIG"] == "/etc/policyd/policy.yaml"
    assert {"name": "policyd-policy", "configMap": {"name": "team-policy"}} in spec["volumes"]
    assert "checksum/policyd-policy" not in rendered.one("Deployment")["spec"]["template"]["metadata"].get(
        "annotations", {}
    )


def test_provider_keys_come_from_secret_refs_and_mounted_secrets(helm: Helm) -> None:
    spec = pod_spec(helm.template(files=(CI_VALUES,)))
    c = container(spec, "policyd")
    env = env_of(c)
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "llm-keys", "key": "openai"}}
    assert env["ANTHROPIC_API_KEY"] == {"secretKeyRef": {"name": "llm-keys", "key": "anthropic", "optional": True}}
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/run/secrets/policyd/gemini")
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"] == {"secretName": "gemini-key", "defaultMode": 0o444}
    text = yaml.safe_dump(spec)
    assert "apiKey" not in text and "sk-" not in text


def test_otel_variables_point_at_the_collector_with_pod_attributes(helm: Helm) -> None:
    env = env_of(container(pod_spec(helm.template(files=(CI_VALUES,))), "policyd"))
    names = list(env)
    assert names.index("HOST_IP") < names.index("OTEL_EXPORTER_OTLP_ENDPOINT"), "$(HOST_IP) must be defined first"
    assert env["HOST_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://$(HOST_IP):4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["OTEL_SERVICE_NAME"] == "release-policyd"
    assert env["OTEL_METRICS_EXPORTER"] == "otlp,prometheus"
    assert env["OTEL_EXPORTER_PROMETHEUS_PORT"] == "9464"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == {"secretKeyRef": {"name": "otlp-auth", "key": "headers"}}
    attrs = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attrs["k8s.pod.name"] == "$(POD_NAME)" and attrs["deployment.environment"] == "ci"
    assert "OTEL_SDK_DISABLED" not in env


def test_grace_period_exceeds_the_prestop_sleep_plus_the_drain_grace(helm: Helm) -> None:
    spec = pod_spec(
        helm.template({"daemon": {"grace": 25, "preStopSleepSeconds": 3}, "terminationGracePeriodSeconds": 29})
    )
    c = container(spec, "policyd")
    assert env_of(c)["POLICYD_GRACE_S"] == "25"
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "3"]
    assert spec["terminationGracePeriodSeconds"] == 29 > 25 + 3
    no_hook = container(pod_spec(helm.template({"daemon": {"preStopSleepSeconds": 0}})), "policyd")
    assert "lifecycle" not in no_hook


def test_every_optional_resource_renders_from_the_ci_values(helm: Helm) -> None:
    rendered = helm.template(files=(CI_VALUES,))
    assert rendered.kinds() == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    assert "replicas" not in rendered.one("Deployment")["spec"], "the HPA owns the replica count"
    hpa = rendered.one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "release-policyd"}
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu", "memory"]
    assert rendered.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1
    selector = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
    net = rendered.one("NetworkPolicy")["spec"]
    assert net["podSelector"]["matchLabels"] == selector
    assert net["policyTypes"] == ["Ingress", "Egress"]
    assert net["ingress"][0]["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert net["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "checkout"}}}]
    assert {"port": 443, "protocol": "TCP"} in net["egress"][0]["ports"]
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == selector
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    ports = {p["name"]: p for p in rendered.one("Service")["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc" and ports["metrics"]["targetPort"] == "metrics"


def test_network_policy_without_peers_admits_the_namespace_and_leaves_egress_open(helm: Helm) -> None:
    net = helm.template({"networkPolicy": {"enabled": True}}).one("NetworkPolicy")["spec"]
    assert net["policyTypes"] == ["Ingress"]
    assert net["ingress"] == [{"ports": [{"port": "grpc", "protocol": "TCP"}], "from": [{"podSelector": {}}]}]


@pytest.mark.parametrize("existing", ["", "policyd-cache-old"])
def test_cache_on_a_persistent_volume_claim(helm: Helm, existing: str) -> None:
    values = {
        "replicaCount": 1,
        "cache": {"type": "persistentVolumeClaim", "persistentVolumeClaim": {"existingClaim": existing, "size": "3Gi"}},
    }
    rendered = helm.template(values)
    claim = existing or "release-policyd-cache"
    assert {"name": "policyd-cache", "persistentVolumeClaim": {"claimName": claim}} in pod_spec(rendered)["volumes"]
    if existing:
        assert "PersistentVolumeClaim" not in rendered.kinds()
    else:
        pvc = rendered.one("PersistentVolumeClaim", claim)
        assert pvc["spec"]["resources"]["requests"]["storage"] == "3Gi"
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_image_digest_pins_the_image(helm: Helm) -> None:
    digest = "sha256:" + "a" * 64
    c = container(pod_spec(helm.template({"image": {"digest": digest, "tag": "ignored"}})), "policyd")
    assert c["image"] == f"localhost/policyd@{digest}"


def test_fullname_override_renames_every_resource(helm: Helm) -> None:
    rendered = helm.template({"fullnameOverride": "router", "policy": {"inline": POLICY}})
    assert {d["metadata"]["name"] for d in rendered.docs} == {"router", "router-policy"}


def test_workers_default_to_the_daemons_choice_and_a_set_count_reaches_policyd_workers(helm: Helm) -> None:
    assert "POLICYD_WORKERS" not in env_of(container(pod_spec(helm.template()), "policyd"))
    c = container(pod_spec(helm.template({"daemon": {"workers": 3}})), "policyd")
    assert env_of(c)["POLICYD_WORKERS"] == "3"
    for bad in (0, -1, "two"):
        assert "workers" in helm.template_error({"daemon": {"workers": bad}})
