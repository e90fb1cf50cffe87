"""The chart on the real API server: `helm install`, then the operator as the chart's own identity.

The operator process runs here (there is no image on this machine), authenticated with a
TokenRequest token of the ServiceAccount the chart created, so every request it makes is
authorised by the chart's RBAC and nothing else. The scenarios are a subset of
tests/cluster/test_controller.py. Each one must pass, no request may be refused, and every
request the operator's log shows (lightkube logs each one, Kopf each watch) must be covered by a
rule of the installed release. The last test checks the converse: every rule the chart grants
was used by some scenario, so the RBAC holds nothing the operator does not use.

Namespaced mode: a release namespace (the operator's keys) and one apps namespace per scenario,
all in watchNamespaces. Cluster-wide mode: a second release, the operator with --all-namespaces.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    Pod,
    Secret,
    Service,
    ServiceAccount,
)
from lightkube.resources.networking_v1 import Ingress
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.rbac_authorization_v1 import ClusterRole, Role, RoleBinding
from lightkube.types import PatchType
from tests.chart import chartkit
from tests.cluster import opkit, support
from tests.cluster.support import BackgroundProcess, wait_for

pytestmark = pytest.mark.cluster

PASSWORD_1 = "canary-chart-pw-one-51d0"
PASSWORD_2 = "canary-chart-pw-two-9a7c"
SEED: dict[str, Any] = {
    "framework": "flask",
    "image": "localhost:32000/juju-secret-app:0.1",
    "replicas": 2,
    "processes": {
        "web": {"command": ["gunicorn", "app:app"]},
        "celery-worker": {"command": ["celery", "worker"], "replicas": 2},
        "celery-beat-scheduler": {"command": ["celery", "beat"]},
    },
    "config": {"greeting": "hello"},
    "secrets": {"credentials": {"secretName": "credentials"}},
}
SCENARIOS = ("walk", "grant", "manual", "restart")
SIGNATURE = "twelvefactor.dev/signature"
TEST_LABEL = "twelvefactor.dev/test"
IMAGE = "localhost:32000/webapp-operator"
SEALING_CERT = "webapp-operator-sealing-cert"
Request = tuple[str | None, str, str, str, str]


@dataclass
class Release:
    """A helm release of the chart, the operator identity it created, what that identity did."""

    name: str
    namespace: str
    apps: dict[str, str]  # scenario -> apps namespace
    kubeconfig: Path  # the chart's ServiceAccount, by TokenRequest
    granted: set[chartkit.Grant]  # from `helm get manifest`
    requests: set[Request] = field(default_factory=set)
    scenarios_run: set[str] = field(default_factory=set)

    def where(self, namespace: str | None) -> str:
        if namespace is None:
            return "cluster"
        return "release" if namespace == self.namespace else "watched"

    def allowed(self, request: Request) -> bool:
        namespace, group, resource, verb, name = request
        if ("cluster", group, resource, verb, "") in self.granted:
            return True
        where = self.where(namespace)
        if where == "watched" and namespace not in self.apps.values():
            return False
        return (where, group, resource, verb, "") in self.granted or (
            name != "" and (where, group, resource, verb, name) in self.granted
        )


# ------------------------------------------------------------------------------ fixtures


def _create_namespace(kube: Client, name: str) -> None:
    kube.create(Namespace(metadata=ObjectMeta(name=name, labels={TEST_LABEL: "true"})))


def _operator_kubeconfig(
    kube: Client, kubeconfig: Path, namespace: str, account: str, directory: Path
) -> Path:
    """A kubeconfig holding a TokenRequest token of the chart's ServiceAccount."""
    kube.get(ServiceAccount, account, namespace=namespace)  # the chart made it, or fail here
    identity = support.service_account_identity(kube, kubeconfig, namespace, account, directory)
    identity.client.close()
    return identity.kubeconfig


@contextlib.contextmanager
def _release(
    kube: Client,
    kubeconfig: Path,
    directory: Path,
    release: str,
    namespace: str,
    apps: dict[str, str],
    values: Sequence[str],
) -> Iterator[Release]:
    """Install the chart (real install, no dry run) and yield it; uninstall and clean up."""
    env = support.tool_env(kubeconfig)
    opkit.install_crd(kube)
    created = [namespace, *apps.values()]
    try:
        for name in created:
            _create_namespace(kube, name)
        chartkit.helm(
            "install",
            release,
            str(chartkit.CHART_DIR),
            "--namespace",
            namespace,
            "--set",
            f"image.repository={IMAGE}",
            *values,
            env=env,
        )
        manifest = chartkit.helm("get", "manifest", release, "--namespace", namespace, env=env)
        granted = chartkit.grants(chartkit.parse(manifest), namespace)
        account = chartkit.deployment(chartkit.parse(manifest))["spec"]["template"]["spec"][
            "serviceAccountName"
        ]
        path = _operator_kubeconfig(kube, kubeconfig, namespace, account, directory)
        yield Release(release, namespace, apps, path, granted)
    finally:
        with contextlib.suppress(AssertionError):
            chartkit.helm("uninstall", release, "--namespace", namespace, env=env)
        for name in created:
            with contextlib.suppress(ApiError):
                kube.delete(Namespace, name)


@pytest.fixture(scope="module")
def namespaced(
    kube: Client, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    apps = {scenario: f"t-chart-{scenario}-{suffix}" for scenario in SCENARIOS}
    watch = ",".join(apps.values())
    with _release(
        kube,
        kubeconfig,
        tmp_path_factory.mktemp("namespaced"),
        "webapp-operator",
        f"t-chart-ns-{suffix}",
        apps,
        ["--set", f"watchNamespaces={{{watch}}}"],
    ) as release:
        yield release


def _run_kit(
    kube: Client,
    release: Release,
    scenario: str,
    background: Callable[..., BackgroundProcess],
) -> Iterator[opkit.Kit]:
    kit = opkit.Kit(
        kube=kube,
        namespace=release.apps[scenario],
        start_background=background,
        operator_kubeconfig=str(release.kubeconfig),
        operator_namespace=release.namespace,
    )
    yield kit
    kit.stop_operator()
    _check_requests(release, kit.operator_log())
    release.scenarios_run.add(scenario)


@pytest.fixture
def walk(
    kube: Client, namespaced: Release, background: Callable[..., BackgroundProcess]
) -> Iterator[opkit.Kit]:
    yield from _run_kit(kube, namespaced, "walk", background)


@pytest.fixture
def grant(
    kube: Client, namespaced: Release, background: Callable[..., BackgroundProcess]
) -> Iterator[opkit.Kit]:
    yield from _run_kit(kube, namespaced, "grant", background)


@pytest.fixture
def manual(
    kube: Client, namespaced: Release, background: Callable[..., BackgroundProcess]
) -> Iterator[opkit.Kit]:
    yield from _run_kit(kube, namespaced, "manual", background)


@pytest.fixture
def restart(
    kube: Client, namespaced: Release, background: Callable[..., BackgroundProcess]
) -> Iterator[opkit.Kit]:
    yield from _run_kit(kube, namespaced, "restart", background)


# ------------------------------------------------------------------------------ evidence


_DENIED = re.compile(r"HTTP/1\.1 403|status=403|[Ff]orbidden")
_NAMESPACE_OF_LINE = re.compile(r"/namespaces/([a-z0-9-]+)/|reconcile of \w+ ([a-z0-9-]+)/")


def _refused(log: str, mine: set[str]) -> list[str]:
    """Log lines of refused requests, in the release's namespaces or cluster-scoped (a
    cluster-wide operator also meets other tests' namespaces, some being deleted)."""
    refused = []
    for line in log.splitlines():
        if "httpcore" in line or not _DENIED.search(line):
            continue  # httpcore's lines repeat httpx's, which name the URL
        where = _NAMESPACE_OF_LINE.search(line)
        namespace = where and (where.group(1) or where.group(2))
        if namespace is None or namespace in mine:
            refused.append(line)
    return refused


def _check_requests(release: Release, log: str) -> None:
    """No request in the release's namespaces (or cluster-scoped) was refused, and every one
    is covered by a rule of the release; the requests join the release's evidence."""
    mine = {release.namespace, *release.apps.values()}
    requests = {r for r in chartkit.observed_requests(log) if r[0] is None or r[0] in mine}
    refused = _refused(log, mine)
    assert refused == [], "the operator was refused:\n" + "\n".join(refused[:10])
    uncovered = sorted((r for r in requests if not release.allowed(r)), key=str)
    assert uncovered == [], f"requests no rule of the chart covers: {uncovered}"
    release.requests |= requests


def one_snapshot(kit: opkit.Kit, app: str) -> str:
    def single() -> str | None:
        names = kit.snapshot_names(app)
        return next(iter(names)) if len(names) == 1 else None

    return wait_for(single, 60, message=f"{app}'s Deployments to share one snapshot")


def _secret_annotations(kit: opkit.Kit, name: str) -> dict[str, str]:
    secret = kit.kube.get(Secret, name, namespace=kit.namespace).to_dict()
    return dict(secret["metadata"].get("annotations") or {})


# ------------------------------------------------------------------------------ the install


def test_helm_install_creates_valid_objects(
    kube: Client, kubeconfig: Path, namespaced: Release
) -> None:
    ns = namespaced.namespace
    env = support.tool_env(kubeconfig)
    status = chartkit.helm("status", namespaced.name, "--namespace", ns, "-o", "json", env=env)
    assert json.loads(status)["info"]["status"] == "deployed"
    deployment = kube.get(Deployment, "webapp-operator", namespace=ns).to_dict()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "webapp-operator"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert f"--namespace={namespaced.apps['walk']}" in pod["containers"][0]["args"]
    kube.get(Service, "webapp-operator-metrics", namespace=ns)
    kube.get(Role, "webapp-operator-self", namespace=ns)
    kube.get(RoleBinding, "webapp-operator-self", namespace=ns)
    for apps in namespaced.apps.values():
        kube.get(Role, "webapp-operator", namespace=apps)
        kube.get(RoleBinding, "webapp-operator", namespace=apps)
    # Nothing cluster-wide: the operator turns Kopf's scanning off in namespaced mode.
    names = [str(opkit.as_dict(role)["metadata"]["name"]) for role in kube.list(ClusterRole)]
    assert not [name for name in names if name.startswith(f"{ns}-")]
    # The Deployment controller accepted the Deployment (kwok then plays the kubelet).
    wait_for(lambda: list(kube.list(ReplicaSet, namespace=ns)), 60, message="a ReplicaSet")


# ------------------------------------------------------------------------------ scenarios


def test_seed_update_prune_and_owned_secrets_as_the_chart(walk: opkit.Kit) -> None:
    kit = walk
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    assert set(kit.deployments("shop")) == {
        "shop",
        "shop-celery-worker",
        "shop-celery-beat-scheduler",
    }
    first = one_snapshot(kit, "shop")
    assert kit.env(first)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1

    # An update whose revision name someone took first: the squatter is read (`get`), named
    # by a Warning, never adopted; once it is removed, revision 2, one rollout, revision 1
    # pruned once no ReplicaSet uses it.
    kit.foreign_secret("credentials.rev-2", {"password": "chart-squatter"})
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.events("SnapshotNameTaken"), 60, message="SnapshotNameTaken")
    assert kit.tracked("shop", "credentials") == 1
    kit.kube.delete(Secret, "credentials.rev-2", namespace=kit.namespace)
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="tracking revision 2")
    kit.wait_ready("shop")
    assert one_snapshot(kit, "shop") != first
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")
    assert kit.events("RevisionCreated")
    assert kit.events("RevisionRemoved")

    # A process removed: its Deployment is deleted. A Secret the app owns: created, then its
    # rotation policy changed (an annotation patch), then dropped (deleted).
    processes = {k: v for k, v in SEED["processes"].items() if k != "celery-worker"}
    owned: dict[str, Any] = {"api-token": {"keys": ["token"]}}
    kit.webapp("shop", {**SEED, "processes": processes, "ownedSecrets": owned})
    wait_for(
        lambda: "shop-celery-worker" not in kit.deployments("shop"), 60, message="worker deleted"
    )
    wait_for(lambda: kit.revisions("shop.api-token") == [1], 60, message="owned secret made")
    owned = {"api-token": {"keys": ["token"], "rotate": "daily"}}
    kit.webapp("shop", {**SEED, "processes": processes, "ownedSecrets": owned})
    wait_for(
        lambda: (
            _secret_annotations(kit, "shop.api-token").get("twelvefactor.dev/rotate") == "daily"
        ),
        60,
        message="rotation policy patched",
    )
    kit.webapp("shop", {**SEED, "processes": processes})
    wait_for(
        lambda: "shop.api-token" not in {s["metadata"]["name"] for s in kit.objects(Secret)},
        60,
        message="owned secret deleted",
    )

    # An Ingress at the base URL: created, changed (another class), taken out (deleted).
    def ingress_class() -> str | None:
        found = kit.objects(Ingress, **{"twelvefactor.dev/webapp": "shop"})
        return str(found[0]["spec"].get("ingressClassName")) if found else None

    exposed = {**SEED, "processes": processes, "baseUrl": "https://shop.example.com/"}

    def classed(name: str) -> dict[str, Any]:
        return {**exposed, "ingress": {"className": name}}

    _made_changed_deleted(kit, exposed, "Ingress", ingress_class, classed, "one", "two")

    # An autoscaled web process: its HorizontalPodAutoscaler created, changed, deleted.
    def most() -> int | None:
        found = kit.objects(HorizontalPodAutoscaler, **{"twelvefactor.dev/webapp": "shop"})
        return int(found[0]["spec"]["maxReplicas"]) if found else None

    def scaled(top: int) -> dict[str, Any]:
        web = {**processes["web"], "autoscale": {"maxReplicas": top}}
        return {
            **exposed,
            "processes": {**processes, "web": web},
            "resources": {"requests": {"cpu": "100m"}},
        }

    _made_changed_deleted(kit, exposed, "HorizontalPodAutoscaler", most, scaled, 3, 4)

    # A migration: its Job made (kwok completes its pod) and kept; another release's Job made
    # and the first deleted; taken out, its Job deleted.
    def jobs() -> list[str]:
        found = kit.objects(Job, **{"twelvefactor.dev/webapp": "shop"})
        return sorted(j["metadata"]["name"] for j in found)

    kit.webapp("shop", {**exposed, "migration": {"command": ["migrate"]}})
    wait_for(lambda: len(jobs()) == 1, 60, message="migration Job created")
    made = jobs()
    kit.webapp("shop", {**exposed, "migration": {"command": ["migrate", "--again"]}})
    wait_for(lambda: len(jobs()) == 1 and jobs() != made, 60, message="the first Job deleted")
    kit.webapp("shop", exposed)
    wait_for(lambda: jobs() == [], 60, message="migration Job deleted")

    # A disruption budget for the web process: created, changed, deleted.
    def budget() -> Any:
        found = kit.objects(PodDisruptionBudget, **{"twelvefactor.dev/webapp": "shop"})
        return found[0]["spec"].get("maxUnavailable") if found else None

    def budgeted(most: int) -> dict[str, Any]:
        web = {**processes["web"], "disruptionBudget": {"maxUnavailable": most}}
        return {**exposed, "processes": {**processes, "web": web}}

    _made_changed_deleted(kit, exposed, "PodDisruptionBudget", budget, budgeted, 1, 2)
    kit.wait_ready("shop")

    # An environment and an image changed by hand (as `kubectl set env` and `set image` do):
    # put back by one patch (the Deployment read first, to name the fields), and the
    # ReplicaSet the change made, which holds the value, deleted once scaled down.
    shadow = "chart-shadow-value-77ad"
    edit = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "localhost:32000/other:9",
         "env": [{"name": "FLASK_CREDENTIALS_PASSWORD", "value": shadow}]}
    ]}}}}  # fmt: skip
    kit.kube.patch(Deployment, "shop", edit, namespace=kit.namespace)

    def shadowed() -> list[str]:
        found = kit.objects(ReplicaSet, **{"twelvefactor.dev/webapp": "shop"})
        return [rs["metadata"]["name"] for rs in found if shadow in json.dumps(rs["spec"])]

    wait_for(lambda: kit.events("EnvironmentRestored"), 60, message="EnvironmentRestored")
    wait_for(lambda: kit.events("ChangeReverted"), 60, message="ChangeReverted")
    wait_for(lambda: shadowed() == [], 60, message="the edit's ReplicaSet deleted")
    kit.wait_ready("shop")
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2, shadow]) == []


def _made_changed_deleted(
    kit: opkit.Kit,
    plain: dict[str, Any],
    kind: str,
    read: Callable[[], Any],
    asking: Callable[[Any], dict[str, Any]],
    first: Any,
    second: Any,
) -> None:
    """The walk's steps for an optional kind: a spec `asking` for it with `first`, then with
    `second`, then the `plain` spec; `read` gives what the live object holds (None: none)."""
    for value, done in ((first, "created"), (second, "changed")):
        kit.webapp("shop", asking(value))

        def holds(value: Any = value) -> bool:
            return bool(read() == value)

        wait_for(holds, 60, message=f"{kind} {done}")
    kit.webapp("shop", plain)
    wait_for(lambda: read() is None, 60, message=f"{kind} deleted")


def _service_account(kit: opkit.Kit, name: str, grant: str | None) -> None:
    annotations = {"twelvefactor.dev/grant": grant} if grant else {}
    body = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": kit.namespace, "annotations": annotations},
    }
    opkit.apply(kit.kube, ServiceAccount, body)


def test_missing_grant_and_key_renewal_as_the_chart(
    grant: opkit.Kit, namespaced: Release, tmp_path: Path
) -> None:
    kit = grant
    clock = tmp_path / "clock-offset"
    clock.write_text("0")
    kit.extra_args = ["--clock-offset-file", str(clock), "--sealing-key-renewal", "1m"]
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="other")
    kit.webapp("shop", SEED)
    cond = wait_for(
        lambda: (c := kit.condition("shop")).get("reason") == "SecretNotGranted" and c,
        60,
        message="SecretNotGranted",
        ignore=(ApiError,),
    )
    assert "kubectl webapp grant-secret credentials shop" in cond["message"]
    assert kit.deployments("shop") == {}
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.wait_ready("shop")

    # Pods as a named ServiceAccount (a GET of it): refused until the account grants the app.
    _service_account(kit, "shop-runner", grant=None)
    kit.webapp("shop", {**SEED, "serviceAccountName": "shop-runner"})
    cond = wait_for(
        lambda: (c := kit.condition("shop")).get("reason") == "ServiceAccountNotGranted" and c,
        60,
        message="ServiceAccountNotGranted",
        ignore=(ApiError,),
    )
    assert "kubectl annotate serviceaccount shop-runner" in cond["message"]
    _service_account(kit, "shop-runner", grant="shop")
    wait_for(
        lambda: all(
            d["spec"]["template"]["spec"].get("serviceAccountName") == "shop-runner"
            for d in kit.deployments("shop").values()
        ),
        60,
        message="the Deployments run as the granted account",
    )
    kit.wait_ready("shop")

    # Sealing key renewal, two minutes later: a key added to the keys Secret (a patch) and the
    # public key republished (a ConfigMap patch), both in the release namespace.
    def key_id() -> str:
        cert = kit.kube.get(ConfigMap, SEALING_CERT, namespace=namespaced.namespace)
        return str((cert.data or {}).get("key-id"))

    before = wait_for(key_id, 30, message="the sealing cert", ignore=(ApiError,))
    clock.write_text("120")
    wait_for(lambda: key_id() != before, 60, message="a renewed sealing key published")


def test_manual_refresh_as_the_chart(manual: opkit.Kit) -> None:
    kit = manual
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    spec = {**SEED, "secrets": {"credentials": {"secretName": "credentials", "refresh": "manual"}}}
    kit.webapp("shop", spec)
    kit.wait_ready("shop")
    before = one_snapshot(kit, "shop")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop")
    wait_for(
        lambda: kit.condition("shop", "SecretUpdateAvailable").get("status") == "True",
        60,
        message="SecretUpdateAvailable",
    )
    assert kit.tracked("shop", "credentials") == 1
    assert kit.snapshot_names("shop") == {before}
    kit.annotate_webapp("shop", {"twelvefactor.dev/refresh": "credentials@1"})
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="refreshed")
    kit.wait_ready("shop")
    assert kit.env(one_snapshot(kit, "shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_2
    assert kit.events("SecretRefreshed")
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")


def _settled(kit: opkit.Kit) -> dict[str, str]:
    """The operator's writes once they have not changed for four seconds."""
    seen: list[dict[str, str]] = []

    def stable() -> dict[str, str] | None:
        seen.append(kit.operator_writes())
        return seen[-1] if len(seen) >= 8 and all(v == seen[-1] for v in seen[-8:]) else None

    return wait_for(stable, 60, interval=0.5, message="the operator's writes to settle")


def _rollout_report(kit: opkit.Kit, app: str) -> str:
    """The app's Deployments and pods as the API server sees them, for a failure message: a
    status write after a restart is right when pods stopped being Ready in the meantime."""
    lines = [f"status: {kit.status(app).get('conditions')}"]
    for name, deployment in sorted(kit.deployments(app).items()):
        status = deployment.get("status") or {}
        lines.append(f"Deployment {name}: {status}")
    for pod in kit.objects(Pod):
        ready = [c["status"] for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"]
        writers = [
            (f.get("manager"), f.get("subresource"), f.get("time"))
            for f in pod["metadata"].get("managedFields") or []
        ]
        lines.append(f"Pod {pod['metadata']['name']}: Ready={ready} written by {writers}")
    return "\n".join(lines)


def _as_before_signatures(kit: opkit.Kit, release: Release) -> None:
    """What an operator that did not sign revisions left: no record on its keys Secret, and
    revision 1 of `credentials` unsigned (as admin)."""
    strip: Any = {"metadata": {"annotations": {"twelvefactor.dev/signatures-since": None}}}
    kit.kube.patch(
        Secret, "webapp-operator-keys", strip, namespace=release.namespace,
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    strip = {"metadata": {"annotations": {SIGNATURE: None}}}
    kit.kube.patch(
        Secret, "credentials.rev-1", strip, namespace=kit.namespace, patch_type=PatchType.MERGE
    )


def test_restart_writes_nothing_as_the_chart(restart: opkit.Kit, namespaced: Release) -> None:
    kit = restart
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    # First, the first start after an upgrade from an operator that did not sign revisions:
    # as the chart's ServiceAccount, it records the time on its keys and signs revision 1.
    kit.stop_operator()
    _check_requests(namespaced, kit.operator_log())
    _as_before_signatures(kit, namespaced)
    kit.start_operator()
    wait_for(
        lambda: SIGNATURE in _secret_annotations(kit, "credentials.rev-1"),
        60,
        message="revision 1 signed by the upgraded operator",
    )
    kit.operator_log_wait_idle()
    kit.wait_ready("shop")
    settled = _settled(kit)
    status = kit.status("shop")
    events = len(kit.events())
    kit.stop_operator()
    _check_requests(namespaced, kit.operator_log())
    kit.start_operator()
    kit.operator_log_wait_idle()
    after = _settled(kit)
    assert after == settled, _rollout_report(kit, "shop")
    assert kit.status("shop") == status
    assert len(kit.events()) == events


def test_every_rule_of_the_namespaced_release_was_used(namespaced: Release) -> None:
    """The converse of the per-scenario check: no rule the scenarios did not need."""
    if namespaced.scenarios_run != set(SCENARIOS):
        pytest.skip(f"needs every scenario of this module; ran {sorted(namespaced.scenarios_run)}")
    used = {(namespaced.where(ns), *rest) for ns, *rest in namespaced.requests}

    def was_used(grant: chartkit.Grant) -> bool:
        where, group, resource, verb, name = grant
        return any(u[:4] == (where, group, resource, verb) and name in ("", u[4]) for u in used)

    unused = sorted(g for g in namespaced.granted if not was_used(g))
    assert unused == [], f"granted but never used: {unused}"


# ------------------------------------------------------------------------------ cluster-wide


def _ingress_hosts_as_the_policy_says(kube: Client, kit: opkit.Kit) -> None:
    """ingressPolicy: the API server refuses a WebApp whose Ingress would serve a host its
    namespace may not serve; the namespace's annotation says which it may."""

    def answer(host: str) -> str | None:
        body = {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": "exposed", "namespace": kit.namespace},
            "spec": {**SEED, "baseUrl": f"https://{host}/", "ingress": {}},
        }
        try:
            kube.apply(opkit.WebApp.from_dict(body), field_manager="tests", dry_run=True)
        except ApiError as error:
            return str(error.status.message)
        return "accepted"

    def refusal(host: str) -> str | None:
        said = answer(host)
        return None if said == "accepted" else said

    refused = wait_for(lambda: refusal("bank.example.org"), 30, message="a foreign host refused")
    assert "an Ingress for host bank.example.org is not allowed" in refused
    assert "(allowed: .example.com;" in refused
    assert answer("shop.example.com") == "accepted"
    annotation = {
        "metadata": {"annotations": {"twelvefactor.dev/allowed-hosts": "bank.example.org"}}
    }
    kube.patch(Namespace, kit.namespace, annotation, patch_type=PatchType.MERGE)
    wait_for(lambda: answer("bank.example.org") == "accepted", 30, message="the namespace's host")
    assert "not allowed" in str(answer("shop.example.com"))
    # Without spec.ingress, the base URL is only a variable: no host to guard.
    plain = {"apiVersion": "twelvefactor.dev/v1alpha1", "kind": "WebApp"}
    body = {**plain, "metadata": {"name": "plain", "namespace": kit.namespace}}
    body["spec"] = {**SEED, "baseUrl": "https://anything.example.net/"}
    kube.apply(opkit.WebApp.from_dict(body), field_manager="tests", dry_run=True)


def test_cluster_wide_release_as_the_chart(
    kube: Client,
    kubeconfig: Path,
    background: Callable[..., BackgroundProcess],
    tmp_path: Path,
) -> None:
    """The default (cluster-wide) values: ClusterRole, the operator with --all-namespaces."""
    suffix = uuid.uuid4().hex[:6]
    apps = {"walk": f"t-chart-cw-apps-{suffix}"}
    fullname = f"t-chart-cw-{suffix}"
    with _release(
        kube,
        kubeconfig,
        tmp_path,
        "webapp-operator",
        f"t-chart-cw-{suffix}",
        apps,
        [
            "--set",
            f"fullnameOverride={fullname}",
            "--set",
            "ingressPolicy.enabled=true",
            "--set",
            "ingressPolicy.defaultHosts={.example.com}",
        ],
    ) as release:
        assert any(g[0] == "cluster" and g[2] == "secrets" for g in release.granted)
        kit = opkit.Kit(kube=kube, namespace=apps["walk"], start_background=background)
        argv = [
            opkit.WEBAPP_CLI,
            "run",
            "--debug",
            "--all-namespaces",
            "--operator-namespace",
            release.namespace,
            "--metrics-port",
            str(opkit.free_port()),
        ]
        kit.operator = background(
            argv, name="operator", env={"KUBECONFIG": str(release.kubeconfig)}
        )
        kit.operator.wait_for_log(r"webapp-operator started", timeout=60)
        try:
            kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
            kit.webapp("shop", SEED)
            kit.wait_ready("shop")
            kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop")
            wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 2 only")
            kit.wait_ready("shop")
            _ingress_hosts_as_the_policy_says(kube, kit)
            assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []
        finally:
            kit.stop_operator()
        _check_requests(release, kit.operator_log())
        # Kopf watched cluster-wide: the ClusterRole, not a Role, allowed it.
        assert (None, "twelvefactor.dev", "webapps", "watch", "") in release.requests
