"""Helpers for tests that run the operator against the real API server.

`Kit` bundles an admin client, a namespace and the operator process: apply Secrets and WebApps,
read what the operator made, restart it, and scan everything for canary values.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, Pod, Secret, Service
from lightkube.resources.networking_v1 import Ingress
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType
from tests.cluster import support
from tests.cluster.support import BackgroundProcess, wait_for

REPO_ROOT = support.REPO_ROOT
CRD_FILE = REPO_ROOT / "crds" / "webapps.twelvefactor.dev.yaml"
WEBAPP_CLI = str(Path(sys.executable).parent / "webapp-operator")
WebApp = create_namespaced_resource("twelvefactor.dev", "v1alpha1", "WebApp", "webapps")


# Every kind the operator writes in an app's namespace.
WRITTEN_KINDS: tuple[Any, ...] = (
    WebApp,
    Secret,
    Deployment,
    Service,
    Ingress,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    Job,
    ConfigMap,
)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as a plain dict."""
    result: dict[str, Any] = obj.to_dict()
    return result


def apply(kube: Client, resource: Any, body: Mapping[str, Any]) -> None:
    """Server-side apply of a plain dict with the tests' field manager."""
    obj: Any = resource.from_dict(dict(body))
    kube.apply(obj, field_manager="tests", force=True)


def install_crd(kube: Client) -> None:
    """Apply the committed CRD and wait until the API server serves it."""
    body = yaml.safe_load(CRD_FILE.read_text())
    apply(kube, CustomResourceDefinition, body)

    def established() -> bool:
        crd = as_dict(kube.get(CustomResourceDefinition, body["metadata"]["name"]))
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, 60, message="the WebApp CRD to be established")


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class Kit:
    """One test's view: admin client, namespace(s), the operator in the background."""

    kube: Client
    namespace: str
    start_background: Callable[..., BackgroundProcess]
    kubeconfig: str = ""
    watch: Sequence[str] = ()
    operator: BackgroundProcess | None = None
    extra_args: list[str] = field(default_factory=list)
    # Run the operator as another identity (e.g. the Helm chart's ServiceAccount): a kubeconfig
    # path for the operator process only; the test itself stays admin.
    operator_kubeconfig: str | None = None
    operator_namespace: str | None = None
    metrics_port: int = 0

    # ------------------------------------------------------------------ the operator

    def start_operator(self, *extra: str) -> BackgroundProcess:
        namespaces = list(self.watch) or [self.namespace]
        argv = [
            WEBAPP_CLI,
            "run",
            "--debug",
            "--operator-namespace",
            self.operator_namespace or self.namespace,
        ]
        for ns in namespaces:
            argv += ["--namespace", ns]
        self.metrics_port = free_port()
        argv += ["--metrics-port", str(self.metrics_port)]
        argv += [*self.extra_args, *extra]
        env = {"KUBECONFIG": self.operator_kubeconfig} if self.operator_kubeconfig else None
        self.operator = self.start_background(argv, name="operator", env=env)
        self.operator.wait_for_log(r"webapp-operator started", timeout=60)
        return self.operator

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()

    def operator_log_wait_idle(self, timeout: float = 60) -> None:
        """Wait until the operator (re)started last has drained its work queue once."""
        assert self.operator is not None
        self.operator.wait_for_log(r"work queue idle", timeout=timeout)

    def metrics_text(self) -> str:
        """The operator's /metrics page ('' when it is not running)."""
        return self.fetch("/metrics")

    def fetch(self, path: str) -> str:
        import urllib.error
        import urllib.request

        if not self.metrics_port:
            return ""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, OSError):
            return ""

    def operator_log(self) -> str:
        return self.operator.log_text() if self.operator else ""

    # ------------------------------------------------------------------ writing

    def foreign_secret(self, name: str, data: Mapping[str, str]) -> None:
        """A Secret the operator did not make (by someone allowed to create Secrets)."""
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {"squatter": "yes"}},
            "type": "Opaque",
            "data": {k: b64(v) for k, v in data.items()},
        }
        obj: Any = Secret.from_dict(body)
        self.kube.create(obj)

    def secret(
        self,
        name: str,
        data: Mapping[str, str],
        grant: str | None = None,
        namespace: str | None = None,
        annotations: Mapping[str, str] | None = None,
        opted_in: bool = True,
    ) -> None:
        """Create or replace a source Secret's content (as `kubectl apply` would)."""
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace or self.namespace,
            "labels": {"twelvefactor.dev/secret": "true"} if opted_in else {},
            "annotations": dict(annotations or {}),
        }
        if grant is not None:
            meta["annotations"]["twelvefactor.dev/grant"] = grant
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "data": {k: b64(v) for k, v in data.items()},
        }
        apply(self.kube, Secret, body)

    def webapp(self, name: str, spec: Mapping[str, Any], namespace: str | None = None) -> None:
        body = {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": name, "namespace": namespace or self.namespace},
            "spec": dict(spec),
        }
        apply(self.kube, WebApp, body)

    def enforce_pod_security(self, level: str | None) -> None:
        """Make the namespace enforce a Pod Security level (None: none)."""
        label = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}}
        self.kube.patch(Namespace, self.namespace, label, patch_type=PatchType.MERGE)

    def annotate_webapp(self, name: str, annotations: Mapping[str, str | None]) -> None:
        self.kube.patch(
            WebApp,
            name,
            {"metadata": {"annotations": dict(annotations)}},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    # ------------------------------------------------------------------ reading

    def get_webapp(self, name: str) -> dict[str, Any]:
        return as_dict(self.kube.get(WebApp, name, namespace=self.namespace))

    def objects(self, resource: Any, **labels: str) -> list[dict[str, Any]]:
        """Plain dicts of every object of a kind in the namespace (optionally by labels)."""
        selector: Any = labels or None
        listing = self.kube.list(resource, namespace=self.namespace, labels=selector)
        return [as_dict(obj) for obj in listing]

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get_webapp(name).get("status") or {})

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return {}

    def deployments(self, app: str) -> dict[str, dict[str, Any]]:
        items = self.objects(Deployment, **{"twelvefactor.dev/webapp": app})
        return {d["metadata"]["name"]: d for d in items}

    def snapshot_names(self, app: str) -> set[str]:
        """Names of the environment snapshots every Deployment of `app` references."""
        names = set()
        for deployment in self.deployments(app).values():
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                for source in container.get("envFrom") or []:
                    if source.get("secretRef"):
                        names.add(str(source["secretRef"]["name"]))
        return names

    def one_snapshot(self, app: str, timeout: float = 60) -> str:
        """The one environment snapshot all of `app`'s Deployments reference (waits for it)."""

        def single() -> str | None:
            names = self.snapshot_names(app)
            return next(iter(names)) if len(names) == 1 else None

        return wait_for(single, timeout, message=f"{app}'s Deployments to share one snapshot")

    def env(self, snapshot: str) -> dict[str, str]:
        secret = as_dict(self.kube.get(Secret, snapshot, namespace=self.namespace))
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def revisions(self, source: str, namespace: str | None = None) -> list[int]:
        listing = self.kube.list(
            Secret,
            namespace=namespace or self.namespace,
            labels={"twelvefactor.dev/secret": "revision", "twelvefactor.dev/revision-of": source},
        )
        items = [as_dict(s) for s in listing]
        return sorted(int(s["metadata"]["labels"]["twelvefactor.dev/revision"]) for s in items)

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        items = self.objects(Event)
        return [e for e in items if reason is None or e.get("reason") == reason]

    def tracked(self, app: str, option: str) -> int | None:
        for item in self.status(app).get("secrets") or []:
            if item.get("option") == option:
                found = item.get("trackedRevision")
                return int(found) if found is not None else None
        return None

    def ready(self, app: str) -> bool:
        cond = self.condition(app)
        return cond.get("status") == "True"

    def wait_ready(self, app: str, timeout: float = 90) -> None:
        wait_for(
            lambda: self.ready(app),
            timeout,
            message=f"WebApp {app} Ready (now {self.condition(app)})",
            ignore=(ApiError,),
        )

    def operator_writes(self) -> dict[str, str]:
        """What the operator has written, as the API server records it.

        Every object with its managedFields entries of the operator's field manager (their
        `time` moves on every write it makes); a create or delete changes the key set. Other
        writers (the Deployment controller updating status) do not show here.
        """
        writes: dict[str, str] = {}
        for res in WRITTEN_KINDS:
            for obj in self.objects(res):
                meta = obj["metadata"]
                for entry in meta.get("managedFields") or []:
                    if entry.get("manager") == "webapp-operator":
                        key = f"{res.__name__}/{meta['name']}/{entry.get('subresource', '')}"
                        writes[key] = f"{entry.get('operation')}@{entry.get('time')}"
        return writes

    def resource_versions(self) -> dict[str, str]:
        """Every object the operator could write in the namespace, by kind/name."""
        versions: dict[str, str] = {}
        for res in WRITTEN_KINDS:
            for obj in self.objects(res):
                meta = obj["metadata"]
                versions[f"{res.__name__}/{meta['name']}"] = str(meta["resourceVersion"])
        return versions

    # ------------------------------------------------------------------ leak scan

    def canary_hits(self, canaries: Sequence[str]) -> list[str]:
        """Where any canary (plain or base64) appears outside Secret data.

        Scans every non-Secret object of the namespace (with annotations and managedFields),
        every Secret's metadata, every Event, WebApp status, and the operator's log.
        """
        needles = set(canaries) | {b64(c) for c in canaries}
        hits: list[str] = []

        def scan(where: str, text: str) -> None:
            hits.extend(f"{where}: {needle[:6]}..." for needle in needles if needle in text)

        # Every kind the operator writes but Secrets (their metadata only, below), and what
        # others make of its writes.
        scanned = [res for res in WRITTEN_KINDS if res is not Secret]
        for res in (*scanned, ReplicaSet, Pod, Event):
            for obj in self.objects(res):
                scan(f"{res.__name__}/{obj['metadata']['name']}", json.dumps(obj, default=str))
        for secret in self.objects(Secret):
            meta = secret["metadata"]
            scan(f"Secret/{meta['name']} metadata", json.dumps(meta, default=str))
        scan("operator log", self.operator_log())
        scan("metrics", self.metrics_text())
        return hits


def role(namespace: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """An RBAC Role (a plain dict, for `apply`)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    }


def role_binding(namespace: str, name: str, account: str) -> dict[str, Any]:
    """A RoleBinding of the Role `name` to the ServiceAccount `account` of `namespace`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kit_fixture(
    kube: Client,
    namespace: str,
    background: Callable[..., BackgroundProcess],
    kubeconfig: Path | None = None,
) -> Iterator[Kit]:
    install_crd(kube)
    kit = Kit(
        kube=kube,
        namespace=namespace,
        start_background=background,
        kubeconfig=str(kubeconfig or ""),
    )
    yield kit
    kit.stop_operator()
