"""The Helm chart, offline: lint, snapshots of `helm template`, the CRD copy, the Deployment.

Snapshots live in tests/chart/snapshots/; regenerate them with
`UPDATE_SNAPSHOTS=1 pytest tests/chart` (or `make manifests`) and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.chart import chartkit

SNAPSHOTS = Path(__file__).parent / "snapshots"
SNAPSHOT_CASES = {
    "default": [],
    "namespaced": [chartkit.NAMESPACED_VALUES],
}


def _render(*values: Path, **sets: str) -> list[dict[str, Any]]:
    return chartkit.parse(chartkit.template(values=values, sets=sets))


@pytest.mark.parametrize(
    "values",
    [[], [chartkit.NAMESPACED_VALUES], [chartkit.ALL_VALUES]],
    ids=["default", "namespaced", "all-values"],
)
def test_helm_lint_strict(values: list[Path]) -> None:
    args = ["lint", str(chartkit.CHART_DIR), "--strict"]
    for path in values:
        args += ["--values", str(path)]
    out = chartkit.helm(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("case", sorted(SNAPSHOT_CASES))
def test_template_matches_snapshot(case: str) -> None:
    rendered = chartkit.template(values=SNAPSHOT_CASES[case])
    path = SNAPSHOTS / f"{case}.yaml"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"{path} missing: run UPDATE_SNAPSHOTS=1 pytest tests/chart"
    assert rendered == path.read_text(), f"{path} is stale: UPDATE_SNAPSHOTS=1 and review"


def test_chart_crd_is_the_repository_crd() -> None:
    assert chartkit.CHART_CRD.read_text() == chartkit.REPO_CRD.read_text(), (
        "the chart's crds/ differs from crds/: cp crds/webapps.twelvefactor.dev.yaml "
        "manifests/charts/webapp-operator/crds/ (make manifests)"
    )
    rendered = chartkit.parse(chartkit.template(include_crds=True))
    crds = chartkit.of_kind(rendered, "CustomResourceDefinition")
    assert crds == [yaml.safe_load(chartkit.REPO_CRD.read_text())]


def test_every_object_carries_the_recommended_labels() -> None:
    for obj in _render(chartkit.ALL_VALUES):
        labels = obj["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "webapp-operator-0.1.0", chartkit.key(obj)
        assert labels["app.kubernetes.io/name"] == "webapp-operator"
        assert labels["app.kubernetes.io/instance"] == chartkit.RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        # Never the operator's own marker: it watches objects labelled managed-by=webapp-operator.
        assert "webapp-operator" not in labels["app.kubernetes.io/managed-by"]


@pytest.mark.parametrize(
    "values",
    [[], [chartkit.NAMESPACED_VALUES], [chartkit.ALL_VALUES]],
    ids=["default", "namespaced", "all-values"],
)
def test_operator_runs_non_root_read_only_with_no_privileges(values: list[Path]) -> None:
    objects = _render(*values)
    pod = chartkit.deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert isinstance(ctx["runAsUser"], int)
        assert ctx["runAsUser"] > 0
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["privileged"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
        assert mounts == {"/tmp"}  # the one writable path: an emptyDir


def test_security_context_is_overridable() -> None:
    objects = _render(**{"securityContext.runAsUser": "20000", "podSecurityContext.fsGroup": "3"})
    pod = chartkit.deployment(objects)["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 20000
    assert pod["securityContext"]["fsGroup"] == 3


def test_cluster_wide_arguments_probes_and_ports() -> None:
    objects = _render()
    deployment = chartkit.deployment(objects)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = chartkit.operator_container(objects)
    assert container["image"] == "webapp-operator:0.1.0"
    assert container["args"] == [
        "run",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--operator-namespace=$(WEBAPP_OPERATOR_NAMESPACE)",
        "--all-namespaces",
        "--log-format=json",
        "--verbose",
        "--concurrency=16",
        "--coalesce-delay=0.2",
        "--revision-history-limit=3",
        "--metrics-port=9090",
        "--metrics-address=0.0.0.0",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["WEBAPP_OPERATOR_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert not {"WEBAPP_HTTP_PROXY", "WEBAPP_HTTPS_PROXY", "WEBAPP_NO_PROXY"} & set(env)
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "healthz": 8080,
        "metrics": 9090,
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    (service,) = chartkit.of_kind(objects, "Service")
    assert service["metadata"]["name"] == "webapp-operator-metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not chartkit.of_kind(objects, "ServiceMonitor")


def test_namespaced_arguments_name_each_namespace_in_order() -> None:
    objects = _render(watchNamespaces="{team-b,team-a}")
    args = chartkit.operator_container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-b",
        "--namespace=team-a",
    ]
    assert "--all-namespaces" not in args
    with pytest.raises(AssertionError, match="/watchNamespaces"):
        _render(watchNamespaces="{team-a,team-a}")


def test_every_option_reaches_the_deployment() -> None:
    objects = _render(chartkit.ALL_VALUES)
    container = chartkit.operator_container(objects)
    pod = chartkit.deployment(objects)["spec"]["template"]["spec"]
    assert container["image"] == (
        "registry.example.com/platform/webapp-operator:0.1.0@sha256:" + "0" * 64
    )
    assert container["imagePullPolicy"] == "Always"
    assert "--debug" in container["args"]
    assert "--log-format=plain" in container["args"]
    assert container["args"][-1] == "--coalesce-delay=0.5"  # extraArgs come last
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEBAPP_HTTP_PROXY"] == "http://proxy.example.com:3128"
    assert env["WEBAPP_HTTPS_PROXY"] == "http://proxy.example.com:3128"
    assert env["WEBAPP_NO_PROXY"] == ".svc,.cluster.local,10.0.0.0/8"
    assert env["TZ"] == "UTC"
    assert pod["serviceAccountName"] == "operator"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    (monitor,) = chartkit.of_kind(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    (service,) = chartkit.of_kind(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (account,) = chartkit.of_kind(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"example.com/role": "operator"}


def test_metrics_can_be_switched_off() -> None:
    objects = _render(**{"metrics.enabled": "false", "metrics.serviceMonitor.enabled": "true"})
    container = chartkit.operator_container(objects)
    assert "--metrics-port=0" in container["args"]
    assert [p["name"] for p in container["ports"]] == ["healthz"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert not chartkit.of_kind(objects, "Service")
    assert not chartkit.of_kind(objects, "ServiceMonitor")


def test_an_existing_service_account_can_be_used() -> None:
    objects = _render(**{"serviceAccount.create": "false", "serviceAccount.name": "ops"})
    assert not chartkit.of_kind(objects, "ServiceAccount")
    assert chartkit.deployment(objects)["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    with pytest.raises(AssertionError, match=r"serviceAccount\.name is required"):
        _render(**{"serviceAccount.create": "false"})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicas=9", "/replicas"),
        ("leaderElection.leaseDuration=1", "/leaderElection/leaseDuration"),
        ("logLevel=loud", "/logLevel"),
        ("logFormat=xml", "/logFormat"),
        ("image.digest=latest", "/image/digest"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("watchNamespaces={Team_A}", "/watchNamespaces/0"),
        ("metrics.port=0", "/metrics/port"),
        ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
        ("unknownKey=1", "additional properties 'unknownKey' not allowed"),
    ],
)
def test_values_schema_rejects(setting: str, message: str) -> None:
    key, value = setting.split("=", 1)
    with pytest.raises(AssertionError, match="schema") as failure:
        chartkit.template(sets={key: value})
    assert message in str(failure.value)


def test_values_schema_is_valid_json_and_covers_every_value() -> None:
    schema = json.loads((chartkit.CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((chartkit.CHART_DIR / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) <= set(schema["properties"])


def test_values_are_all_documented() -> None:
    """Every leaf of values.yaml has a comment just above it, or sits in a block that has one
    (e.g. `resources:` is documented as a whole)."""
    lines = (chartkit.CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    undocumented = []
    previous = ""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("-"):
            previous = stripped or previous
            continue
        if stripped.startswith("#"):
            previous = stripped
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = previous.startswith("#") or any(doc for _, doc in stack)
        key, _, value = stripped.partition(":")
        if value.strip() and not documented:
            undocumented.append(key)
        stack.append((indent, documented))
        previous = stripped
    assert undocumented == []


def test_the_ingress_policy_is_rendered_only_when_asked_for() -> None:
    assert not chartkit.of_kind(_render(), "ValidatingAdmissionPolicy")
    objects = _render(chartkit.ALL_VALUES)
    (policy,) = chartkit.of_kind(objects, "ValidatingAdmissionPolicy")
    (binding,) = chartkit.of_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": ["twelvefactor.dev"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["webapps"],  # not webapps/status: the operator's writes pass
        }
    ]
    hosts = next(v for v in policy["spec"]["variables"] if v["name"] == "hosts")
    assert hosts["expression"].endswith('[".apps.example.com", "shop.example.org"]')


@pytest.mark.parametrize("host", ['x"]+["*', "*.example.com", "a b", "-a.example.com"])
def test_a_default_host_that_is_no_dns_name_is_refused(host: str) -> None:
    with pytest.raises(AssertionError, match="schema"):
        chartkit.template(
            sets={"ingressPolicy.enabled": "true", "ingressPolicy.defaultHosts[0]": host}
        )
