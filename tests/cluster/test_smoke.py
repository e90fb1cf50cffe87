"""The control plane under test behaves like a real cluster in the ways the operator relies on:
Deployments roll out to Running pods, owner references garbage-collect, CRDs serve, RBAC is
enforced for ServiceAccounts, and kubectl/helm talk to it."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apiextensions_v1 import (
    CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion,
    CustomResourceValidation,
    JSONSchemaProps,
)
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta, OwnerReference
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from tests.cluster.conftest import ServiceAccountFactory
from tests.cluster.support import DEVCLUSTER_BIN, api_status, is_not_found, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def _deployment(name: str, replicas: int) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="web", image="example.invalid/web:1")]),
            ),
        ),
    )


def _running_pods(kube: Client, namespace: str, app: str, count: int) -> list[Pod] | None:
    """The Running pods of an app if there are `count` of them, else None (not yet)."""
    pods = kube.list(Pod, namespace=namespace, labels={"app": app})
    running = [p for p in pods if p.status is not None and p.status.phase == "Running"]
    return running if len(running) == count else None


def test_deployment_gets_its_pods_running(kube: Client, namespace: str) -> None:
    kube.create(_deployment("web", 2), namespace=namespace)

    pods = wait_for(
        lambda: _running_pods(kube, namespace, "web", 2),
        timeout=90,
        message="2 Running pods of Deployment web",
    )

    assert all(p.spec is not None and p.spec.nodeName for p in pods), "pods were not scheduled"

    def available() -> Deployment | None:
        got = kube.get(Deployment, "web", namespace=namespace)
        return got if got.status and got.status.availableReplicas == 2 else None

    deployment = wait_for(available, timeout=60, message="Deployment web available")
    assert deployment.status is not None
    assert deployment.status.readyReplicas == 2


def test_deleting_an_owner_collects_its_dependents(kube: Client, namespace: str) -> None:
    owner = kube.create(ConfigMap(metadata=ObjectMeta(name="owner")), namespace=namespace)
    assert owner.metadata is not None
    assert owner.metadata.uid is not None
    kube.create(
        ConfigMap(
            metadata=ObjectMeta(
                name="dependent",
                ownerReferences=[
                    OwnerReference(
                        apiVersion="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            ),
            data={"k": "v"},
        ),
        namespace=namespace,
    )
    kube.create(_deployment("gc", 1), namespace=namespace)
    wait_for(
        lambda: list(kube.list(ReplicaSet, namespace=namespace, labels={"app": "gc"})),
        timeout=60,
        message="the ReplicaSet of Deployment gc",
    )

    kube.delete(ConfigMap, "owner", namespace=namespace)
    kube.delete(Deployment, "gc", namespace=namespace)

    def gone() -> bool:
        try:
            kube.get(ConfigMap, "dependent", namespace=namespace)
        except ApiError as err:
            return is_not_found(err)
        return False

    wait_for(gone, timeout=60, message="the garbage collector to delete ConfigMap dependent")
    wait_for(
        lambda: not list(kube.list(ReplicaSet, namespace=namespace, labels={"app": "gc"})),
        timeout=60,
        message="the garbage collector to delete the ReplicaSets of Deployment gc",
    )


@pytest.fixture
def widget_crd(kube: Client) -> Any:
    """A throwaway namespaced CRD (unique group, so parallel runs do not collide)."""
    group = f"smoke{uuid.uuid4().hex[:8]}.test.twelvefactor.dev"
    crd = CustomResourceDefinition(
        metadata=ObjectMeta(name=f"widgets.{group}"),
        spec=CustomResourceDefinitionSpec(
            group=group,
            names=CustomResourceDefinitionNames(kind="Widget", plural="widgets", singular="widget"),
            scope="Namespaced",
            versions=[
                CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=CustomResourceValidation(
                        openAPIV3Schema=JSONSchemaProps(
                            type="object",
                            properties={
                                "spec": JSONSchemaProps(
                                    type="object",
                                    properties={"size": JSONSchemaProps(type="integer")},
                                    required=["size"],
                                )
                            },
                        )
                    ),
                )
            ],
        ),
    )
    kube.create(crd)

    def established() -> bool:
        got = kube.get(CustomResourceDefinition, f"widgets.{group}")
        conditions = (got.status.conditions if got.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, timeout=60, message="the Widget CRD to be Established")
    yield create_namespaced_resource(group, "v1", "Widget", "widgets")
    kube.delete(CustomResourceDefinition, f"widgets.{group}")


def test_a_crd_installs_and_serves(kube: Client, namespace: str, widget_crd: Any) -> None:
    widget = widget_crd(metadata=ObjectMeta(name="w1"), spec={"size": 3})

    # The discovery of a new CRD can lag its Established condition by a moment.
    wait_for(
        lambda: kube.create(widget, namespace=namespace),
        timeout=30,
        message="creating a Widget",
        ignore=(ApiError,),
    )

    got = kube.get(widget_crd, "w1", namespace=namespace)
    assert got["spec"] == {"size": 3}
    with pytest.raises(ApiError) as refused:
        kube.create(widget_crd(metadata=ObjectMeta(name="w2"), spec={}), namespace=namespace)
    assert api_status(refused.value) == 422, "the CRD's schema is not enforced"


def test_rbac_refuses_then_grants_a_service_account(
    kube: Client, namespace: str, service_account: ServiceAccountFactory
) -> None:
    reader = service_account("reader")

    with pytest.raises(ApiError) as refused:
        list(reader.client.list(ConfigMap, namespace=namespace))
    assert api_status(refused.value) == 403
    assert reader.username in str(refused.value)

    kube.create(
        Role(
            metadata=ObjectMeta(name="read-configmaps"),
            rules=[PolicyRule(apiGroups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
        namespace=namespace,
    )
    kube.create(
        RoleBinding(
            metadata=ObjectMeta(name="reader-reads-configmaps"),
            roleRef=RoleRef(
                apiGroup="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"
            ),
            subjects=[Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
        namespace=namespace,
    )

    names = wait_for(
        lambda: [
            c.metadata.name
            for c in reader.client.list(ConfigMap, namespace=namespace)
            if c.metadata
        ],
        timeout=30,
        message="the RoleBinding to take effect",
        ignore=(ApiError,),
    )
    assert "kube-root-ca.crt" in names
    with pytest.raises(ApiError) as still_refused:
        reader.client.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace=namespace)
    assert api_status(still_refused.value) == 403


def _tool(name: str) -> Path:
    path = DEVCLUSTER_BIN / name
    if not path.exists():
        pytest.skip(f"{path} not built (make cluster-build)")
    return path


def _run(argv: list[str | Path], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_kubectl_answers(
    tool_env: dict[str, str], namespace: str, uses_local_cluster: bool
) -> None:
    kubectl = _tool("kubectl")

    version = json.loads(_run([kubectl, "version", "-o", "json"], tool_env))
    nodes = json.loads(_run([kubectl, "get", "nodes", "-o", "json"], tool_env))
    _run(
        [kubectl, "-n", namespace, "create", "configmap", "from-kubectl", "--from-literal=a=b"],
        tool_env,
    )
    got = json.loads(
        _run([kubectl, "-n", namespace, "get", "configmap", "from-kubectl", "-o", "json"], tool_env)
    )

    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert nodes["items"], "no nodes"
    assert got["data"] == {"a": "b"}
    if uses_local_cluster:
        assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]
        assert any(n["metadata"]["name"] == "kwok-node-0" for n in nodes["items"])


def test_helm_answers(tool_env: dict[str, str], namespace: str, tmp_path: Path) -> None:
    helm = _tool("helm")
    env = dict(tool_env)
    for var, sub in (
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[var] = str(tmp_path / "helm" / sub)
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )

    version = _run([helm, "version", "--short"], env)
    _run([helm, "install", "smoke", chart, "-n", namespace, "--wait", "--timeout", "60s"], env)
    releases = json.loads(_run([helm, "list", "-n", namespace, "-o", "json"], env))

    assert version.startswith("v3."), version
    assert [(r["name"], r["status"]) for r in releases] == [("smoke", "deployed")]
