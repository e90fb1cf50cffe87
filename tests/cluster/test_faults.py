"""Faults: the API server and etcd restarted under a running operator; forced write conflicts.

The restarts run on a private control plane (tests/cluster/privatecluster.py), since the shared
one serves the other tests; the conflicts run on the shared one. Figures (recovery times,
conflicts seen) are printed in the test's output; the bounds are the deadlines of the polls,
never timing assertions.

Tests marked xfail(strict) pin a bug of the operator that docs/reliability.md describes: they
fail with `KnownBugError` today, and turn red (XPASS) once it is fixed, so the marker goes too.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Namespace, Secret
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType
from tests.cluster import opkit, privatecluster, support
from tests.cluster.privatecluster import PrivateCluster
from tests.cluster.support import BackgroundProcess, wait_for

pytestmark = pytest.mark.timeout(600)

SEED: dict[str, Any] = {
    "framework": "flask",
    "image": "shop:1",
    "replicas": 3,
    "processes": {
        "web": {"command": ["gunicorn", "app:app"]},
        "queue-worker": {"command": ["celery", "worker"], "replicas": 2},
        "beat-scheduler": {"command": ["celery", "beat"]},
    },
    "config": {"greeting": "hello"},
    "secrets": {"credentials": {"secretName": "credentials"}},
}
PROCESSES = {"shop", "shop-queue-worker", "shop-beat-scheduler"}
# One process, one pod: for the tests where the rollout itself is not the point.
SMALL: dict[str, Any] = {
    "framework": "flask",
    "image": "shop:1",
    "config": {"greeting": "hello"},
    "secrets": {"credentials": {"secretName": "credentials"}},
}
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
WEBAPPS_GROUP = "twelvefactor.dev"


class KnownBugError(AssertionError):
    """The failure an xfail(strict) test of this module expects: the bug it pins."""


def say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")  # noqa: T201 (the figures belong in the test's output)


# --------------------------------------------------------------------------------------------
# Fixtures: a private control plane per module, a Kit on it per test; a Kit on the shared one


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    yield from privatecluster.fixture(tmp_path_factory)


@pytest.fixture
def pkit(
    private: PrivateCluster,
    background: Callable[..., BackgroundProcess],
    request: pytest.FixtureRequest,
) -> Iterator[opkit.Kit]:
    """A Kit whose admin client and operator talk to the private control plane."""
    client = private.client()
    opkit.install_crd(client)
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    namespace = f"f-{base}-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    kit = opkit.Kit(
        kube=client,
        namespace=namespace,
        start_background=background,
        kubeconfig=str(private.kubeconfig),
        operator_kubeconfig=str(private.kubeconfig),
    )
    yield kit
    kit.stop_operator()
    kit.kube.close()


@pytest.fixture
def kit(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    background: Callable[..., BackgroundProcess],
) -> Iterator[opkit.Kit]:
    yield from opkit.kit_fixture(kube, namespace, background, kubeconfig)


def reconnect(kit: opkit.Kit, private: PrivateCluster) -> None:
    """A fresh admin client: the old one's pooled connections died with the API server."""
    kit.kube.close()
    kit.kube = private.client()


# --------------------------------------------------------------------------------------------
# What the operator made, and how often


def snapshot_with(kit: opkit.Kit, app: str, password: str) -> str | None:
    """The one snapshot every Deployment of `app` references, if it holds `password`."""
    names = kit.snapshot_names(app)
    if len(names) != 1:
        return None
    name = next(iter(names))
    return name if kit.env(name).get("FLASK_CREDENTIALS_PASSWORD") == password else None


def snapshots_per_deployment(kit: opkit.Kit, app: str) -> dict[str, list[str]]:
    """Each Deployment's ReplicaSets' snapshots, oldest first (one per template rolled)."""
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in kit.deployments(app)}
    for rs in kit.objects(ReplicaSet):
        meta = rs["metadata"]
        owner = next((o["name"] for o in meta.get("ownerReferences") or []), None)
        if owner in found:
            revision = int((meta.get("annotations") or {}).get(DEPLOYMENT_REVISION, 0))
            containers = rs["spec"]["template"]["spec"]["containers"]
            found[owner].append((revision, containers[0]["envFrom"][0]["secretRef"]["name"]))
    return {name: [s for _, s in sorted(items)] for name, items in found.items()}


def rolled_out(kit: opkit.Kit, app: str) -> bool:
    """Every Deployment of `app` runs its newest template on every wanted pod."""
    for deployment in kit.deployments(app).values():
        status, wanted = deployment.get("status") or {}, deployment["spec"]["replicas"]
        if status.get("observedGeneration") != deployment["metadata"]["generation"]:
            return False
        if status.get("updatedReplicas") != wanted or status.get("availableReplicas") != wanted:
            return False
        if status.get("replicas") != wanted:
            return False
    return True


def events_about(kit: opkit.Kit, reason: str) -> list[str]:
    return [str(e.get("message", "")) for e in kit.events(reason)]


def revision_created_numbers(kit: opkit.Kit, source: str) -> list[int]:
    """Revision numbers of `source` as told by RevisionCreated Events (one per create)."""
    numbers = []
    for message in events_about(kit, "RevisionCreated"):
        found = re.match(rf"Created revision (\d+) of Secret [^/]+/{re.escape(source)}$", message)
        if found:
            numbers.append(int(found.group(1)))
    return sorted(numbers)


def assert_operator_survived(kit: opkit.Kit) -> None:
    assert kit.operator is not None
    assert kit.operator.running(), "the operator exited:\n" + kit.operator_log()[-4000:]
    log = kit.operator_log()
    assert "has failed" not in log, "a Kopf watcher or handler died:\n" + log[-4000:]


def operator_conflicts(kit: opkit.Kit) -> int:
    """Reconciles that failed on a 409 (the operator logs each failure with its status)."""
    return len(re.findall(r"reconcile of \S+ \S+ failed: 409", kit.operator_log()))


# --------------------------------------------------------------------------------------------
# API server and etcd restarts


def test_api_server_and_etcd_restarts_mid_rollout(
    pkit: opkit.Kit, private: PrivateCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = pkit
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": "canary-f-one"}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    assert set(kit.deployments("shop")) == PROCESSES
    first = kit.one_snapshot("shop")

    # Stall the next rollout for sure: without a scheduler, new pods stay Pending.
    private.stop("kube-scheduler")
    kit.secret("credentials", {"username": "a", "password": "canary-f-two"}, grant="shop")
    second = wait_for(
        lambda: snapshot_with(kit, "shop", "canary-f-two"), 60, message="the rev-2 rollout"
    )
    wait_for(
        lambda: kit.condition("shop").get("reason") == "RolloutInProgress",
        30,
        message="Ready=False RolloutInProgress",
    )

    # The API server dies mid-rollout (a crash: SIGKILL) and comes back on the same port.
    killed = private.stop("kube-apiserver", signal.SIGKILL)
    back = private.start("kube-apiserver")
    reconnect(kit, private)
    # A change made at once: the operator's watches must resume and pick it up.
    kit.secret("credentials", {"username": "a", "password": "canary-f-three"}, grant="shop")
    changed = time.monotonic()
    third = wait_for(
        lambda: snapshot_with(kit, "shop", "canary-f-three"),
        120,
        interval=0.1,
        message="the change made after the restart applied",
        ignore=(ApiError,),
    )
    applied = time.monotonic()
    private.start("kube-scheduler")
    kit.wait_ready("shop", timeout=120)
    ready = time.monotonic()
    refreshed_3 = [m for m in events_about(kit, "SecretRefreshed") if "revision 3" in m]
    say(
        capsys,
        f"API server down {back - killed:.1f} s (SIGKILL to /readyz); change made after the "
        f"restart applied {applied - back:.1f} s after /readyz ({applied - changed:.1f} s after "
        f"the write); Ready {ready - back:.1f} s after /readyz (scheduler restarted in between); "
        f"SecretRefreshed for revision 3 posted {len(refreshed_3)} time(s)",
    )

    assert kit.tracked("shop", "credentials") == 3
    assert_operator_survived(kit)
    # Each revision made once, each environment rolled once: one ReplicaSet per template.
    assert revision_created_numbers(kit, "credentials") == [1, 2, 3]
    rollouts = events_about(kit, "RolloutStarted")
    assert len(rollouts) == 2, rollouts
    assert sum(second in m for m in rollouts) == 1
    assert sum(third in m for m in rollouts) == 1
    for name, snapshots in snapshots_per_deployment(kit, "shop").items():
        # (A Recreate Deployment may skip revision 2: its old pod was still terminating.)
        assert len(snapshots) == len(set(snapshots)), f"{name}: a template rolled twice"
        assert snapshots[-1] == third, name
        assert set(snapshots) <= {first, second, third}, name
    wait_for(lambda: kit.revisions("credentials") == [3], 60, message="revisions 1, 2 pruned")

    # Then etcd: killed and started again under the running API server.
    killed = private.stop("etcd", signal.SIGKILL)
    back = private.start("etcd")
    wait_for(
        lambda: kit.kube.get(Secret, "credentials", namespace=kit.namespace),
        60,
        message="the API server to serve again",
        ignore=(ApiError, OSError),
    )
    serving = time.monotonic()
    kit.secret("credentials", {"username": "a", "password": "canary-f-four"}, grant="shop")
    fourth = wait_for(
        lambda: snapshot_with(kit, "shop", "canary-f-four"),
        120,
        interval=0.1,
        message="the change made after the etcd restart applied",
        ignore=(ApiError,),
    )
    applied = time.monotonic()
    kit.wait_ready("shop")
    say(
        capsys,
        f"etcd down {back - killed:.1f} s; API server serving {serving - back:.1f} s after etcd "
        f"was back; change applied {applied - serving:.1f} s after that",
    )
    assert_operator_survived(kit)
    assert revision_created_numbers(kit, "credentials") == [1, 2, 3, 4]
    assert sum(fourth in m for m in events_about(kit, "RolloutStarted")) == 1
    canaries = ["canary-f-one", "canary-f-two", "canary-f-three", "canary-f-four"]
    assert kit.canary_hits(canaries) == []


def test_a_lagging_webapp_watch_repeats_no_event(
    pkit: opkit.Kit,
    private: PrivateCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After an API server restart the built-in kinds' watches resume at once and the WebApp
    (CRD) watch seconds later (503 "not all HTTP paths installed", 429 "storage is
    (re)initializing"). Here the operator runs as a ServiceAccount that is denied `watch` on
    WebApps across the restart, which stretches that window to a deterministic one."""
    kit = pkit
    ns = kit.namespace
    # No grant on Ingresses (networking.k8s.io), as after an upgrade that kept an older RBAC:
    # the operator takes them as none and every app without spec.ingress works.
    rules = [
        {"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["*"]},
        {
            "apiGroups": [WEBAPPS_GROUP],
            "resources": ["webapps", "webapps/status"],
            "verbs": ["get", "list", "patch", "update"],
        },
    ]
    watch = [{"apiGroups": [WEBAPPS_GROUP], "resources": ["webapps"], "verbs": ["watch"]}]
    opkit.apply(kit.kube, Role, opkit.role(ns, "operator", rules))
    opkit.apply(kit.kube, Role, opkit.role(ns, "watch-webapps", watch))
    for name in ("operator", "watch-webapps"):
        opkit.apply(kit.kube, RoleBinding, opkit.role_binding(ns, name, "operator"))
    identity = support.service_account_identity(
        kit.kube, private.kubeconfig, ns, "operator", tmp_path
    )
    identity.client.close()
    kit.operator_kubeconfig = str(identity.kubeconfig)
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": "canary-l-one"}, grant="shop")
    kit.webapp("shop", {**SMALL, "replicas": 3})
    kit.wait_ready("shop")

    kit.kube.delete(RoleBinding, "watch-webapps", namespace=ns)
    private.stop("kube-apiserver")
    private.start("kube-apiserver")
    reconnect(kit, private)
    kit.secret("credentials", {"username": "a", "password": "canary-l-two"}, grant="shop")
    wait_for(
        lambda: snapshot_with(kit, "shop", "canary-l-two"),
        60,
        message="the rollout to revision 2 while the WebApp watch is away",
        ignore=(ApiError,),
    )
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 30, message="status: revision 2")
    # The rollout's ReplicaSet and Deployment updates reach the operator meanwhile.
    wait_for(lambda: rolled_out(kit, "shop"), 60, message="the rollout to finish")
    opkit.apply(kit.kube, RoleBinding, opkit.role_binding(ns, "watch-webapps", "operator"))
    kit.wait_ready("shop", timeout=120)
    assert kit.tracked("shop", "credentials") == 2
    assert_operator_survived(kit)
    refreshed = events_about(kit, "SecretRefreshed")
    rollouts = events_about(kit, "RolloutStarted")
    say(
        capsys,
        f"one refresh while the WebApp watch lagged: {len(refreshed)} SecretRefreshed Events, "
        f"{len(rollouts)} RolloutStarted",
    )
    # Both are told after the status write that records them, and remembered against the
    # WebApp resourceVersion they were decided from (reconcile._post_once): a reconcile that
    # runs on the lagging index decides them again and tells neither twice.
    assert len(rollouts) == 1, rollouts
    assert len(refreshed) == 1, refreshed


# --------------------------------------------------------------------------------------------
# Write conflicts (on the shared control plane)


def apiserver_conflicts(kubeconfig: Path) -> dict[str, float]:
    """409 answers the API server has sent, by verb and resource (all clients)."""
    result = subprocess.run(
        ["kubectl", "get", "--raw", "/metrics"],
        env=support.tool_env(kubeconfig),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    counts: dict[str, float] = {}
    pattern = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$")
    for line in result.stdout.splitlines():
        found = pattern.match(line)
        if not found or 'code="409"' not in found.group(1):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        key = f"{labels.get('verb')} {labels.get('resource')}"
        counts[key] = counts.get(key, 0.0) + float(found.group(2))
    return counts


class Writer(threading.Thread):
    """A second writer, running until stopped; counts its writes and the 409s it met.

    `step(client, i)` writes once; it returns True when it met a conflict it resolved (a
    forced apply), and raises ApiError 409 for one it gave up on (a stale resourceVersion)."""

    def __init__(self, kubeconfig: Path, step: Callable[[Client, int], bool]) -> None:
        super().__init__(daemon=True)
        self.client = Client(KubeConfig.from_file(kubeconfig), field_manager="intruder")
        self.step = step
        self.stopping = threading.Event()
        self.writes = 0
        self.conflicts = 0
        self.last = 0  # the round of the last successful write
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            i += 1
            try:
                if self.step(self.client, i):
                    self.conflicts += 1
                self.writes += 1
                self.last = i
            except ApiError as error:
                if support.api_status(error) == 409:
                    self.conflicts += 1
                else:
                    self.errors.append(f"{support.api_status(error)} {error.status.reason}")
            except Exception as error:  # noqa: BLE001 (reported by the test, not the thread)
                self.errors.append(repr(error))
            time.sleep(random.uniform(0.0, 0.05))  # noqa: S311 (jitter, not cryptography)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.client.close()


def test_concurrent_writers_conflict_and_the_operator_converges(
    kit: opkit.Kit, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = kit.namespace
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": "canary-c-0"}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    before = apiserver_conflicts(kubeconfig)

    def hammer_webapp(client: Client, i: int) -> bool:
        """Read-modify-write of the WebApp with its resourceVersion (a PUT), as a controller or
        `kubectl edit` does: labels and annotations always, the spec every third round."""
        obj = client.get(opkit.WebApp, "shop", namespace=ns)
        body = opkit.as_dict(obj)
        body["metadata"].setdefault("labels", {})["hammer"] = str(i)
        body["metadata"].setdefault("annotations", {})["hammer"] = str(i)
        if i % 3 == 0:
            body["spec"]["config"]["round"] = str(i)
        time.sleep(random.uniform(0.0, 0.1))  # noqa: S311 (widen the race)
        client.replace(opkit.WebApp.from_dict(body))
        return False

    def take_fields(client: Client, i: int) -> bool:
        """Server-side apply of the operator's Deployments by another field manager: first
        without force (a conflict on spec.replicas), then forcing it (taking ownership)."""
        name = sorted(PROCESSES)[i % len(PROCESSES)]
        patch = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1 + i % 2},
        }

        def apply(force: bool) -> None:
            client.patch(
                Deployment,
                name,
                patch,
                namespace=ns,
                patch_type=PatchType.APPLY,
                field_manager="intruder",
                force=force,
            )

        try:
            apply(force=False)
        except ApiError as error:
            if support.api_status(error) != 409:
                raise
            apply(force=True)
            return True
        return False

    # Two writers of the WebApp (they also conflict with each other) and one of the Deployments.
    writers = [
        Writer(kubeconfig, hammer_webapp),
        Writer(kubeconfig, hammer_webapp),
        Writer(kubeconfig, take_fields),
    ]
    for writer in writers:
        writer.start()
    try:
        # The source Secret changes many times in quick succession meanwhile.
        for i in range(1, 16):
            kit.secret("credentials", {"username": "a", "password": f"canary-c-{i}"}, grant="shop")
            time.sleep(0.1)
        wait_for(lambda: all(w.writes >= 15 for w in writers), 90, message="15 writes each")
    finally:
        for writer in writers:
            writer.stop()
    hammered = writers[:2]
    intruder = writers[2]
    final_round = opkit.as_dict(kit.kube.get(opkit.WebApp, "shop", namespace=ns))["spec"][
        "config"
    ].get("round")
    # One last change after the intruder stopped: the operator's next apply takes its
    # fields back.
    kit.secret("credentials", {"username": "a", "password": "canary-c-final"}, grant="shop")

    def converged() -> bool:
        name = snapshot_with(kit, "shop", "canary-c-final")
        return bool(name) and kit.env(str(name)).get("FLASK_ROUND") == final_round

    wait_for(converged, 120, message="the final Secret and spec in every Deployment")
    kit.wait_ready("shop", timeout=120)
    after = apiserver_conflicts(kubeconfig)
    delta = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}
    say(
        capsys,
        f"WebApp writers: {sum(w.writes for w in hammered)} updates, "
        f"{sum(w.conflicts for w in hammered)} 409s; Deployment field manager: "
        f"{intruder.writes} applies, {intruder.conflicts} SSA conflicts (then forced); "
        f"operator reconciles failed on 409: {operator_conflicts(kit)}; API server 409s by "
        f"verb/resource: {delta}",
    )

    assert sum(w.conflicts for w in hammered) > 0, "no 409 on the WebApp"
    assert intruder.conflicts > 0, "no server-side apply conflict"
    assert not [e for w in writers for e in w.errors], [w.errors for w in writers]
    assert_operator_survived(kit)
    # Every revision made exactly once, numbered without gaps; the last one is the final value.
    created = revision_created_numbers(kit, "credentials")
    assert created == list(range(1, len(created) + 1)), created
    latest = kit.tracked("shop", "credentials")
    assert latest == created[-1]
    # Each environment rolled out at most once.
    rollouts = events_about(kit, "RolloutStarted")
    envs = [m.split(" to environment ")[1].split(" ")[0] for m in rollouts]
    assert len(envs) == len(set(envs)), rollouts
    # The operator owns its fields again, with its values.
    for name, deployment in kit.deployments("shop").items():
        expected = {"shop": 3, "shop-queue-worker": 2, "shop-beat-scheduler": 1}[name]
        assert deployment["spec"]["replicas"] == expected, name
        owners = [
            m["manager"]
            for m in deployment["metadata"]["managedFields"]
            if "f:replicas" in str(m.get("fieldsV1", {}).get("f:spec", {}))
        ]
        # (Another manager applying the same value shares the field: no conflict, no change.)
        assert "webapp-operator" in owners, (name, owners)
    # The operator wrote only status: the other writer's last labels and annotations stand.
    meta = kit.get_webapp("shop")["metadata"]
    assert meta["labels"]["hammer"] == meta["annotations"]["hammer"], meta
    assert meta["labels"]["hammer"] in {str(w.last) for w in hammered}, meta
    wait_for(lambda: kit.revisions("credentials") == [latest], 60, message="old revisions pruned")
    assert kit.canary_hits([f"canary-c-{i}" for i in range(16)] + ["canary-c-final"]) == []


def reported(kit: opkit.Kit, app: str, name: str) -> bool:
    """A clear report naming `name`: in the app's Ready condition or in a Warning Event."""
    cond = kit.condition(app)
    stuck = cond.get("status") == "False" and cond.get("reason") != "RolloutInProgress"
    if stuck and name in str(cond.get("message")):
        return True
    return any(e.get("type") == "Warning" and name in str(e.get("message")) for e in kit.events())


def name_taken(kit: opkit.Kit, app: str) -> None:
    """Wait for the app's condition to say a name it needs is taken (the Warning Event on the
    source and the condition are separate writes, and the Event can come first)."""
    wait_for(
        lambda: kit.condition(app).get("reason") == "SnapshotNameTaken",
        30,
        message=lambda: f"the app's condition, now {kit.condition(app)}",
    )


def test_squatted_names_are_neither_overwritten_nor_adopted(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone allowed to create Secrets in the namespace takes the name of the next revision
    snapshot, and the name of an environment snapshot the app will need again."""
    kit.start_operator("--revision-history-limit", "0")  # old snapshots go with the rollout
    kit.secret("credentials", {"username": "a", "password": "canary-q-one"}, grant="shop")
    kit.webapp("shop", SMALL)
    kit.wait_ready("shop")

    # 1. The next revision's name is squatted before the Secret changes: reported by name (the
    #    app's condition and a Warning Event on the source), neither overwritten nor read.
    kit.foreign_secret("credentials.rev-2", {"password": "canary-q-squatter"})
    kit.secret("credentials", {"username": "a", "password": "canary-q-two"}, grant="shop")
    name_taken(kit, "shop")
    assert reported(kit, "shop", "credentials.rev-2")
    assert any(
        e.get("type") == "Warning"
        and e.get("reason") == "SnapshotNameTaken"
        and e["involvedObject"]["name"] == "credentials"
        and "credentials.rev-2" in str(e.get("message"))
        for e in kit.events()
    ), "a Warning Event on the source Secret names the squatter"
    squatter = opkit.as_dict(kit.kube.get(Secret, "credentials.rev-2", namespace=kit.namespace))
    assert squatter["data"] == {"password": opkit.b64("canary-q-squatter")}, "overwritten"
    assert "canary-q-squatter" not in str(kit.env(kit.one_snapshot("shop"))), "adopted"
    assert kit.tracked("shop", "credentials") == 1, "the app stays on revision 1"
    # The owner removes the squatter: the operator's retry makes revision 2, the app rolls to it.
    kit.kube.delete(Secret, "credentials.rev-2", namespace=kit.namespace)
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    kit.wait_ready("shop")
    assert "canary-q-two" in str(kit.env(kit.one_snapshot("shop")))
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")

    # 2. The environment snapshot of `greeting: hello`, pruned after a change to `bye`, is
    #    squatted; then the app goes back to `hello` (a rollback, say).
    hello = kit.one_snapshot("shop")
    kit.webapp("shop", {**SMALL, "config": {"greeting": "bye"}})
    wait_for(lambda: kit.one_snapshot("shop") != hello, 60, message="the `bye` environment")
    kit.wait_ready("shop")
    bye = kit.one_snapshot("shop")
    wait_for(
        lambda: hello not in {s["metadata"]["name"] for s in kit.objects(Secret)},
        60,
        message=f"{hello} pruned",
    )
    planted = {"FLASK_GREETING": "squatter", "FLASK_SECRET_KEY": "known-to-the-squatter"}
    kit.foreign_secret(hello, planted)
    kit.webapp("shop", SMALL)
    name_taken(kit, "shop")
    assert reported(kit, "shop", hello)
    assert kit.env(hello) == planted, "overwritten"
    assert kit.snapshot_names("shop") == {bye}, "the last good Deployments keep running"
    # The squatter goes: the app rolls back to its own `hello` environment.
    kit.kube.delete(Secret, hello, namespace=kit.namespace)
    wait_for(lambda: kit.snapshot_names("shop") == {hello}, 60, message=f"{hello} recreated")
    kit.wait_ready("shop")
    assert kit.env(hello)["FLASK_GREETING"] == "hello"
    assert "known-to-the-squatter" not in str(kit.env(hello))
    say(capsys, "squatted names: reported, neither adopted nor overwritten; recovered")
