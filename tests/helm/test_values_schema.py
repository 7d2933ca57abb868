"""values.schema.json: generated from values.yaml, and bad values are refused by helm itself."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.helm.conftest import CHART, ROOT, Helm


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("helm_schema", ROOT / "scripts" / "helm_schema.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["helm_schema"] = module
    spec.loader.exec_module(module)
    return module


helm_schema = load_generator()


def test_committed_schema_is_what_the_generator_makes_of_values_yaml() -> None:
    values = (CHART / "values.yaml").read_text(encoding="utf-8")
    assert (CHART / "values.schema.json").read_text(encoding="utf-8") == helm_schema.render(values)


def test_gen_py_lists_the_helm_schema_target() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen.py"), "--check", "helm-schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_every_key_of_values_yaml_is_described() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    undocumented: list[str] = []

    def walk(props: dict[str, Any], path: str, parent_described: bool) -> None:
        for key, sub in props.items():
            described = "description" in sub
            # Leaves under a described parent may be self-explanatory (e.g. probe timings).
            if not described and not parent_described:
                undocumented.append(path + key)
            walk(sub.get("properties", {}), f"{path}{key}.", described or parent_described)

    walk(schema["properties"], "", False)
    assert undocumented == []


def test_generator_types_descriptions_and_annotations() -> None:
    schema = helm_schema.values_schema(
        "# Intro.\n\n"
        "# How many.\n# More words.\n#\n# An example that is not the description.\n# @schema minimum: 1\ncount: 2\n"
        "# @schema\n# items:\n#   type: string\n# @schema end\nnames: []\n"
        "nested:\n  flag: true\n  ratio: 0.5\n"
        "# @schema type: [string, 'null']\nmaybe: null\n"
        "labels: {}\n"
    )
    props = schema["properties"]
    assert props["count"] == {"description": "How many. More words.", "type": "integer", "minimum": 1}
    assert props["names"] == {"type": "array", "items": {"type": "string"}}
    assert props["nested"] == {
        "type": "object",
        "properties": {"flag": {"type": "boolean"}, "ratio": {"type": "number"}},
        "additionalProperties": False,
    }
    assert props["maybe"]["type"] == ["string", "null"]
    assert props["labels"] == {"type": "object"}
    assert schema["additionalProperties"] is False and "global" in props


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("key: null\n", "values.yaml:1: key: default is null"),
        ("# @schema\n# type: string\nkey: x\n", "values.yaml:3: key: '# @schema' block without '# @schema end'"),
        ("# @schema [1, 2]\nkey: x\n", "values.yaml:2: key: an @schema annotation must be YAML"),
    ],
)
def test_generator_names_the_line_and_key_of_a_bad_source(text: str, message: str) -> None:
    with pytest.raises(helm_schema.SchemaSourceError, match=message.replace("[", r"\[")):
        helm_schema.values_schema(text)


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"mode": "daemonset"}, "mode"),
    ({"replicas": 3}, "replicas"),
    ({"daemon": {"port": 70000}}, "port"),
    ({"daemon": {"grace": -1}}, "grace"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
    ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"securityContext": {"privileged": True}}, "privileged"),
    ({"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}, "drop"),
    ({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}, "add"),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "seccompProfile"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"providerKeys": {"env": [{"name": "OPENAI_API_KEY", "secretName": "llm-keys"}]}}, "key"),
    ({"providerKeys": {"env": [{"name": "1BAD", "secretName": "s", "key": "k"}]}}, "name"),
    ({"providerKeys": {"files": [{"secretName": "s", "mountPath": "relative/dir"}]}}, "mountPath"),
    ({"cache": {"type": "hostPath"}}, "type"),
    ({"cache": {"emptyDir": {"sizeLimit": "lots"}}}, "sizeLimit"),
    ({"policy": {"mountPath": "etc/policyd"}}, "mountPath"),
    ({"otel": {"endpoint": "collector:4317"}}, "endpoint"),
    ({"otel": {"protocol": "thrift"}}, "protocol"),
    ({"podDisruptionBudget": {"maxUnavailable": "half"}}, "maxUnavailable"),
    ({"terminationGracePeriodSeconds": "30"}, "terminationGracePeriodSeconds"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[json.dumps(v) for v, _ in BAD_VALUES])
def test_schema_rejects_bad_values_in_lint_and_template(helm: Helm, values: dict[str, Any], key: str) -> None:
    err = helm.template_error(values)
    assert "values don't meet the specifications of the schema" in err, err
    assert key in err, err
    lint = helm.run("lint", values=values)
    assert lint.returncode != 0 and key in lint.stdout + lint.stderr


CROSS_CHECKS: list[tuple[dict[str, Any], str]] = [
    ({"terminationGracePeriodSeconds": 15}, "terminationGracePeriodSeconds (15) must be greater than"),
    ({"terminationGracePeriodSeconds": 20, "daemon": {"grace": 20, "preStopSleepSeconds": 0}}, "(0 + 20 = 20)"),
    ({"cache": {"type": "persistentVolumeClaim"}}, "one ReadWriteOnce claim cannot serve several replicas"),
    ({"serviceMonitor": {"enabled": True}}, "serviceMonitor.enabled needs metrics.enabled"),
    ({"podDisruptionBudget": {"minAvailable": 1}}, "set only one of minAvailable and maxUnavailable"),
    ({"podDisruptionBudget": {"maxUnavailable": None}}, "set one of minAvailable and maxUnavailable"),
    ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}, "must not exceed"),
    ({"sidecar": {"unixSocket": {"enabled": True}}}, "applies to mode=sidecar only"),
]


@pytest.mark.parametrize(("values", "message"), CROSS_CHECKS, ids=[json.dumps(v) for v, _ in CROSS_CHECKS])
def test_values_that_conflict_fail_the_render_with_a_message(helm: Helm, values: dict[str, Any], message: str) -> None:
    assert message in helm.template_error(values)


@pytest.mark.parametrize("name", ["standalone-values.yaml", "sidecar-values.yaml"])
def test_ci_values_pass_helm_lint_strict(helm: Helm, name: str) -> None:
    proc = helm.run("lint", "--strict", "--values", str(CHART / "ci" / name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


def test_default_values_pass_helm_lint_strict(helm: Helm) -> None:
    proc = helm.run("lint", "--strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_example_chart_passes_lint_as_a_parent(helm: Helm, sidecar_app: Any) -> None:
    proc = helm.run("lint", "--strict", chart=sidecar_app(None))
    assert proc.returncode == 0, proc.stdout + proc.stderr
