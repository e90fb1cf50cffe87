"""A Deployment's environment changed outside the operator is put back.

Every container of every process sees exactly the same environment (invariant 1): the snapshot
its Deployment names through `envFrom`. Someone who runs `kubectl set env`, or edits `envFrom`,
breaks that, and a variable set beside the snapshot shadows the snapshot's (a refreshed secret
would never reach the app). The operator compares its `applied` digest, which such an edit
leaves alone, so the Deployment informer flags a template whose containers read anything else
(`WorkloadEntry.env_foreign`), and the reconcile patches it back with a Warning that names the
Deployment and its containers, never a variable or a value.

The reconcilers run against the fake API server of test_reconcile_crash.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import (
    NS,
    FakeCluster,
    FakeIndexes,
    crashed_at_each_write,
    credentials,
    new_context,
    outcome,
    reconcile_rounds,
    settle,
    webapp,
)

from webapp_operator.controller import reconcile, state

CANARY = "drift-canary-61f0"


def running() -> FakeCluster:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "queue-worker")))
    asyncio.run(settle(cluster))
    return cluster


def containers(cluster: FakeCluster, name: str) -> list[dict[str, Any]]:
    body = cluster.objects[("Deployment", NS, name)]
    return list(body["spec"]["template"]["spec"]["containers"])


def by_hand(
    cluster: FakeCluster,
    kind: str,
    name: str,
    change: Callable[[dict[str, Any]], None],
    manager: str | None = "kubectl-edit",
) -> dict[str, Any]:
    """Change an object's spec as `kubectl` writes it (the applied digest left alone, the
    field manager `manager` recorded); the object as it was."""
    before = copy.deepcopy(cluster.objects[(kind, NS, name)])
    changed = copy.deepcopy(before)
    change(changed["spec"])
    if manager is not None:
        managed = changed["metadata"].setdefault("managedFields", [])
        fields: dict[str, Any] = {"f:spec": {"f:template": {"f:spec": {}}}}
        managed.append({"manager": manager, "operation": "Update", "fieldsV1": fields})
    cluster.put(changed)
    return before


def nothing_more_to_do(cluster: FakeCluster) -> None:
    """Another operator start (a restart) finds nothing to write."""
    writes = len(cluster.writes)
    asyncio.run(settle(cluster))
    assert len(cluster.writes) == writes


def told_once_whatever_dies(start: FakeCluster, reason: str) -> None:
    """From `start` (a change by hand to put back), a process stopped before each write and
    started again ends as one that never stopped, having told `reason` once."""
    start.writes.clear()
    reference = copy.deepcopy(start)
    asyncio.run(settle(reference))
    assert reference.writes, "nothing put back"
    for _, cluster, where in crashed_at_each_write(start, reference):
        assert outcome(cluster) == outcome(reference), where
        assert len([e for e in cluster.events if e[0] == reason]) == 1, where


def reverted(cluster: FakeCluster) -> str:
    """The message of the one ChangeReverted told."""
    (told,) = [e for e in cluster.events if e[0] == "ChangeReverted"]
    return told[2]


EDITS = {
    "set-env": lambda c: c.__setitem__(
        "env", [{"name": "GO_CREDENTIALS_PASSWORD", "value": CANARY}]
    ),
    "other-secret": lambda c: c["envFrom"].__setitem__(0, {"secretRef": {"name": "elsewhere"}}),
    "second-source": lambda c: c["envFrom"].append({"configMapRef": {"name": "extra"}}),
    "prefix": lambda c: c["envFrom"][0].__setitem__("prefix", "X_"),
    "no-env-from": lambda c: c.pop("envFrom"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_environment_changed_outside_the_operator_is_put_back(edit: str) -> None:
    cluster = running()
    intact = copy.deepcopy(containers(cluster, "shop-queue-worker"))
    deployment = cluster.objects[("Deployment", NS, "shop-queue-worker")]
    generation = deployment["metadata"]["generation"]
    changed = copy.deepcopy(deployment)
    EDITS[edit](changed["spec"]["template"]["spec"]["containers"][0])
    flagged = () if edit == "other-secret" else ("queue-worker",)  # (the reconcile sees that)
    assert state.workload_entry("Deployment", changed).env_foreign == flagged  # type: ignore[union-attr]
    cluster.put(changed)  # as `kubectl` writes it: the applied digest unchanged

    asyncio.run(settle(cluster))
    assert containers(cluster, "shop-queue-worker") == intact
    assert cluster.objects[("Deployment", NS, "shop-queue-worker")]["metadata"]["generation"] > (
        generation
    )
    told = [e for e in cluster.events if e[0] == "EnvironmentRestored"]
    assert len(told) == 1
    assert told[0][2].startswith(
        "Deployment shop-queue-worker: the environment of its containers (queue-worker) was "
        "changed outside the operator"
    )
    assert "EnvironmentRestored" in cluster.warnings
    assert CANARY not in repr(cluster.events)
    # Put back once: a restart finds nothing to do.
    nothing_more_to_do(cluster)


def test_an_intact_environment_is_not_flagged() -> None:
    cluster = running()
    for name in ("shop", "shop-queue-worker"):
        entry = state.workload_entry("Deployment", cluster.objects[("Deployment", NS, name)])
        assert entry is not None
        assert entry.env_foreign == ()
    assert not any(e[0] == "EnvironmentRestored" for e in cluster.events)


def test_a_container_added_by_hand_reads_the_same_environment_too() -> None:
    """Every container of the process: one added beside the operator's reads the snapshot,
    and only it, once put back."""
    cluster = running()
    changed = copy.deepcopy(cluster.objects[("Deployment", NS, "shop")])
    spec = changed["spec"]["template"]["spec"]
    spec["containers"].append(
        {"name": "sidecar", "image": "proxy:1", "env": [{"name": "A", "value": "b"}]}
    )
    cluster.put(changed)
    asyncio.run(settle(cluster))
    (snapshot,) = {c["envFrom"][0]["secretRef"]["name"] for c in containers(cluster, "shop")}
    for container in containers(cluster, "shop"):
        assert container["envFrom"] == [{"secretRef": {"name": snapshot}}]
        assert "env" not in container
    # Its image is its own (not the operator's to take back): once put back, nothing more.
    assert not any(e[0] == "ChangeReverted" for e in cluster.events)
    nothing_more_to_do(cluster)


def test_a_crash_at_any_write_of_the_repair_tells_it_once_and_puts_it_back() -> None:
    start = running()
    changed = copy.deepcopy(start.objects[("Deployment", NS, "shop")])
    EDITS["set-env"](changed["spec"]["template"]["spec"]["containers"][0])
    start.put(changed)
    told_once_whatever_dies(start, "EnvironmentRestored")


def history(cluster: FakeCluster, deployment: str, env: list[dict[str, str]] | None) -> str:
    """A ReplicaSet of `deployment` scaled down, its template as the Deployment's with `env`
    (what the Deployment controller keeps as rollout history)."""
    body = copy.deepcopy(cluster.objects[("Deployment", NS, deployment)])
    name = f"{deployment}-{len(cluster.objects)}"
    template = body["spec"]["template"]
    if env is not None:
        template["spec"]["containers"][0]["env"] = env
    cluster.put(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": dict(body["metadata"]["labels"]),
                "ownerReferences": [
                    {"kind": "Deployment", "name": deployment, "controller": True, "uid": "u"}
                ],
            },
            "spec": {"replicas": 0, "template": template},
        }
    )
    return name


def test_the_history_a_changed_environment_left_is_dropped_once_scaled_down() -> None:
    """The ReplicaSet `kubectl set env` made holds the value it was given (outside any
    Secret): deleted once scaled down and its Deployment put back; other history stays."""
    cluster = running()
    foreign = history(cluster, "shop", [{"name": "PASSWORD", "value": CANARY}])
    kept = history(cluster, "shop", None)
    asyncio.run(settle(cluster))
    assert ("ReplicaSet", NS, foreign) not in cluster.objects
    assert ("ReplicaSet", NS, kept) in cluster.objects
    assert cluster.writes.count(f"delete ReplicaSet/{foreign}") == 1


def test_history_still_running_or_of_a_changed_deployment_is_kept() -> None:
    """One reconcile: a ReplicaSet with pods stays, and so does one of a Deployment whose
    repair the watch does not show yet (its template may still be that ReplicaSet's)."""
    cluster = running()
    live = history(cluster, "shop", [{"name": "PASSWORD", "value": CANARY}])
    cluster.objects[("ReplicaSet", NS, live)]["spec"]["replicas"] = 1
    changed = copy.deepcopy(cluster.objects[("Deployment", NS, "shop-queue-worker")])
    EDITS["set-env"](changed["spec"]["template"]["spec"]["containers"][0])
    cluster.put(changed)
    waiting = history(cluster, "shop-queue-worker", [{"name": "A", "value": CANARY}])
    indexes = FakeIndexes()
    asyncio.run(reconcile_rounds(cluster, indexes, new_context(cluster, indexes), 1))
    assert "patch Deployment/shop-queue-worker" in cluster.writes  # put back
    assert ("ReplicaSet", NS, live) in cluster.objects
    assert ("ReplicaSet", NS, waiting) in cluster.objects
    assert not any(w.startswith("delete ReplicaSet") for w in cluster.writes)


def test_without_delete_on_replicasets_the_history_stays_and_the_app_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = running()
    foreign = history(cluster, "shop", [{"name": "PASSWORD", "value": CANARY}])
    cluster.denied.add("ReplicaSet")
    asyncio.run(settle(cluster))
    assert ("ReplicaSet", NS, foreign) in cluster.objects
    assert f"kubectl delete replicaset {foreign} -n {NS}" in caplog.text
    assert CANARY not in caplog.text


# ----------------------------------------------------------------------------- other fields


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = spec["template"]["spec"]["containers"][0]
    return container


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def _imaged(spec: dict[str, Any], image: str) -> dict[str, Any]:
    """The template with its first container's image changed."""
    _container(spec)["image"] = image
    template: dict[str, Any] = spec["template"]
    return template


# Each a change by hand of a field the WebApp decides, and what the Warning names.
HAND_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "set-image": (lambda spec: _container(spec).__setitem__("image", "attacker/miner:1"),
                  "container queue-worker (image)"),
    "command": (lambda spec: _container(spec).__setitem__("command", ["sh", "-c", "sleep 1d"]),
                "container queue-worker (command)"),
    "set-resources": (lambda spec: _container(spec).__setitem__(
        "resources", {"limits": {"memory": "64Gi"}, "requests": {"memory": "64Gi"}}),
        "container queue-worker (resources)"),
    "probe": (lambda spec: _container(spec).__setitem__(
        "readinessProbe", {"exec": {"command": ["true"]}}),
        "container queue-worker (readinessProbe)"),
    "privileged": (lambda spec: _container(spec).__setitem__(
        "securityContext", {"privileged": True}), "container queue-worker (securityContext)"),
    "image-and-port": (lambda spec: _container(spec).update(
        image="attacker/miner:1", ports=[{"containerPort": 22, "protocol": "TCP"}]),
        "container queue-worker (image, ports)"),
    "root": (lambda spec: _pod(spec).__setitem__("securityContext", {"runAsUser": 0}),
             "the pod's securityContext"),
    "service-account": (lambda spec: _pod(spec).update(
        serviceAccountName="mallory", serviceAccount="mallory"),
        "the pod's serviceAccountName"),
    "node-selector": (lambda spec: _pod(spec).__setitem__("nodeSelector", {"gpu": "yes"}),
                      "the pod's nodeSelector"),
    "grace": (lambda spec: _pod(spec).__setitem__("terminationGracePeriodSeconds", 1),
              "the pod's terminationGracePeriodSeconds"),
    "tolerations": (lambda spec: _pod(spec).__setitem__(
        "tolerations", [{"operator": "Exists"}]), "the pod's tolerations"),
    "label": (lambda spec: spec["template"]["metadata"]["labels"].__setitem__(
        "app.kubernetes.io/part-of", "other"), "the pod's labels"),
    "scale": (lambda spec: spec.__setitem__("replicas", 5), "replicas"),
    "image-and-scale": (lambda spec: spec.update(replicas=5, template=_imaged(spec, "other:2")),
                        "container queue-worker (image) and replicas"),
}  # fmt: skip


@pytest.mark.parametrize("edit", sorted(HAND_EDITS))
def test_a_field_changed_outside_the_operator_is_applied_again(edit: str) -> None:
    """`kubectl set image`, an edited command, `kubectl scale`: the WebApp says what runs and
    how many; the Deployment is applied again, with a Warning naming the field, not its value."""
    cluster = running()
    change, field = HAND_EDITS[edit]
    intact = by_hand(cluster, "Deployment", "shop-queue-worker", change)["spec"]
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop-queue-worker")]["spec"] == intact
    told = reverted(cluster)
    assert told == (
        f"Deployment shop-queue-worker: {field} changed outside the operator; put back as "
        "WebApp shop says (change the WebApp instead)"
    )
    assert "attacker" not in told
    assert "sleep" not in told
    nothing_more_to_do(cluster)  # told and put back once


def test_a_scheduler_scaled_by_hand_runs_one_pod_again() -> None:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "beat-scheduler")))
    asyncio.run(settle(cluster))
    by_hand(cluster, "Deployment", "shop-beat-scheduler", HAND_EDITS["scale"][0])
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop-beat-scheduler")]["spec"]["replicas"] == 1


def test_replicas_an_autoscaler_holds_are_not_taken_back() -> None:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    body = webapp("shop", "auto", ("web",))
    body["spec"]["processes"]["web"]["autoscale"] = {"maxReplicas": 5, "cpuUtilization": 70}
    body["spec"]["processes"]["web"]["resources"] = {"requests": {"cpu": "100m"}}
    cluster.put(body)
    asyncio.run(settle(cluster))
    assert ("HorizontalPodAutoscaler", NS, "shop") in cluster.objects
    scaled = copy.deepcopy(cluster.objects[("Deployment", NS, "shop")])
    scaled["spec"]["replicas"] = 4  # the autoscaler's doing
    cluster.put(scaled)
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop")]["spec"]["replicas"] == 4
    assert not any(e[0] == "ChangeReverted" for e in cluster.events)


def test_a_crash_at_any_write_of_a_revert_tells_it_once_and_applies_it() -> None:
    start = running()
    by_hand(start, "Deployment", "shop", HAND_EDITS["image-and-port"][0])
    told_once_whatever_dies(start, "ChangeReverted")


def test_a_rollout_restart_is_left_alone() -> None:
    """`kubectl rollout restart` (a pod template annotation) restarts the pods on the same
    release: nothing the operator renders changed, nothing is put back."""
    cluster = running()
    restarted = copy.deepcopy(cluster.objects[("Deployment", NS, "shop")])
    template = restarted["spec"]["template"]["metadata"]
    template.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = "2026-01-01"
    cluster.put(restarted)
    nothing_more_to_do(cluster)
    assert cluster.objects[("Deployment", NS, "shop")]["spec"] == restarted["spec"]


SERVICE_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "selector": (lambda spec: spec.__setitem__("selector", {"app": "mallory"}), "selector"),
    "type": (lambda spec: spec.__setitem__("type", "NodePort"), "type"),
    "target": (lambda spec: spec["ports"][0].__setitem__("targetPort", 9999), "port 8080/TCP"),
}


@pytest.mark.parametrize("edit", sorted(SERVICE_EDITS))
def test_a_service_changed_outside_the_operator_is_applied_again(edit: str) -> None:
    """A selector pointed at someone else's pods takes the app's traffic (its DNS name), a
    type NodePort exposes it on every node: the Service is applied again, told once."""
    cluster = running()
    change, field = SERVICE_EDITS[edit]
    intact = by_hand(cluster, "Service", "shop", change)["spec"]
    asyncio.run(settle(cluster))
    assert cluster.objects[("Service", NS, "shop")]["spec"] == intact
    assert reverted(cluster) == (
        f"Service shop: {field} changed outside the operator; put back as WebApp shop says "
        "(change the WebApp instead)"
    )
    nothing_more_to_do(cluster)


def test_a_port_added_to_the_service_by_hand_is_left_alone() -> None:
    cluster = running()
    port = {"name": "debug", "port": 9000, "protocol": "TCP"}
    by_hand(cluster, "Service", "shop", lambda spec: spec["ports"].append(port))
    nothing_more_to_do(cluster)


def test_a_change_by_hand_wakes_the_app() -> None:
    """The informers queue an app only when something its reconcile reads changed: a
    Service's selector or type, a Deployment's image or replica count are such things."""
    from webapp_operator.controller import handlers

    cluster = running()
    for kind, name, change in (
        ("Service", "shop", SERVICE_EDITS["selector"][0]),
        ("Service", "shop", SERVICE_EDITS["type"][0]),
        ("Deployment", "shop", HAND_EDITS["set-image"][0]),
        ("Deployment", "shop", HAND_EDITS["scale"][0]),
    ):
        body = cluster.objects[(kind, NS, name)]
        changed = copy.deepcopy(body)
        change(changed["spec"])
        before, after = (state.workload_entry(kind, b) for b in (body, changed))
        assert before is not None
        assert after is not None
        assert handlers._workload_signature(before) != handlers._workload_signature(after)


def as_the_api_server_keeps_it(spec: dict[str, Any]) -> None:
    """What the API server makes of a rendered template: quantities in its own form, a
    request for each limit, a probe's defaults (and no zero delay), the pod's defaults."""
    pod = _pod(spec)
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for container in pod["containers"]:
        resources = container.get("resources") or {}
        if "cpu" in resources.get("limits", {}):
            resources["limits"]["cpu"] = "500m"  # was "0.5"
            resources.setdefault("requests", {}).setdefault("cpu", "500m")
        probe = container.get("readinessProbe")
        if probe is not None:
            probe.pop("initialDelaySeconds", None)
            probe["httpGet"].setdefault("scheme", "HTTP")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")


def test_what_the_api_server_makes_of_a_template_is_no_change() -> None:
    """Its defaults and its forms of quantities are not changes by hand: nothing is put back,
    nothing told (else every reconcile would fight the API server)."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    body = webapp("shop", "auto", ("web",))
    body["spec"]["resources"] = {"limits": {"cpu": "0.5"}}
    body["spec"]["healthCheck"] = {"path": "/ready", "initialDelaySeconds": 0}
    cluster.put(body)
    asyncio.run(settle(cluster))
    rendered = containers(cluster, "shop")[0]
    assert rendered["resources"] == {"limits": {"cpu": "0.5"}}
    assert rendered["readinessProbe"]["initialDelaySeconds"] == 0
    by_hand(cluster, "Deployment", "shop", as_the_api_server_keeps_it)
    nothing_more_to_do(cluster)
    assert not any(e[0] == "ChangeReverted" for e in cluster.events)


def test_an_environment_and_an_image_changed_together_are_put_back_in_one_patch() -> None:
    """No template between the hand change and the rendering rolls out: one patch, and each
    change told."""
    cluster = running()
    intact = by_hand(
        cluster,
        "Deployment",
        "shop-queue-worker",
        lambda spec: EDITS["set-env"](_imaged(spec, "attacker/miner:1")["spec"]["containers"][0]),
    )
    writes = len(cluster.writes)
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop-queue-worker")]["spec"] == intact["spec"]
    assert cluster.writes[writes:].count("patch Deployment/shop-queue-worker") == 1
    assert "apply Deployment/shop-queue-worker" not in cluster.writes[writes:]
    told = sorted(e[0] for e in cluster.events if e[0] in ("ChangeReverted", "EnvironmentRestored"))
    assert told == ["ChangeReverted", "EnvironmentRestored"]
    assert CANARY not in repr(cluster.events)
    nothing_more_to_do(cluster)


def test_a_field_the_webapp_stopped_setting_is_taken_out_untold() -> None:
    """What no other manager holds is no change by hand: a field an earlier repair of the
    operator's wrote (it owns it then, so an apply without it keeps it) is taken out without
    a Warning."""
    cluster = running()
    intact = by_hand(cluster, "Deployment", "shop", HAND_EDITS["set-resources"][0], manager=None)
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop")]["spec"] == intact["spec"]
    assert not any(e[0] == "ChangeReverted" for e in cluster.events)
    nothing_more_to_do(cluster)


def test_a_template_changed_again_at_every_repair_is_left_after_three() -> None:
    """A mutating admission webhook that sets a field the WebApp does not (here a container's
    security context) changes every repair again, in the same write (so no watch event wakes
    the app; any later reconcile would repair again): the operator stops after REPAIR_TRIES
    of the same repair, tells it once, and writes nothing more."""
    cluster = running()

    def webhook(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "shop":
            _container(obj["spec"])["securityContext"] = {"runAsUser": 1000}

    cluster.admission = webhook
    by_hand(cluster, "Deployment", "shop", HAND_EDITS["set-image"][0])
    writes = len(cluster.writes)
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)
    ctx.memory_seconds = 0  # each reconcile later than the memory of the last repair
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    patches = cluster.writes[writes:].count("patch Deployment/shop")
    assert patches == 1 + reconcile.REPAIR_TRIES  # the image, then the webhook's field thrice
    (kept,) = [e for e in cluster.events if e[0] == "ChangeNotReverted"]
    assert kept[2].startswith(
        "Deployment shop: container web (securityContext) changed again at each of 3 repairs"
    )
    assert "ChangeNotReverted" in cluster.warnings
    # Later reconciles of this process write nothing more; a restart (no memory) tries anew.
    writes = len(cluster.writes)
    asyncio.run(reconcile_rounds(cluster, indexes, ctx, 3))
    assert len(cluster.writes) == writes


def test_without_get_on_deployments_a_template_is_applied_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An RBAC older than the code (no `get` on deployments): the changed template is applied
    again (what the WebApp sets is taken back) and the missing grant named, once."""
    cluster = running()
    cluster.denied.add("get Deployment")
    intact = by_hand(cluster, "Deployment", "shop", HAND_EDITS["set-image"][0])
    asyncio.run(settle(cluster))
    assert cluster.objects[("Deployment", NS, "shop")]["spec"] == intact["spec"]
    assert reverted(cluster) == (
        "Deployment shop: containers or pod changed outside the operator; put back as WebApp "
        "shop says (change the WebApp instead)"
    )
    assert caplog.text.count("grant get on deployments") == 1


def test_an_annotation_the_webapp_sets_is_put_back_and_one_added_is_left() -> None:
    """`spec.podAnnotations` (a mesh's injection, a scrape): one taken out by hand is put back;
    one someone added (a tool's) is theirs."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    body = webapp("shop", "auto", ("web",))
    body["spec"]["podAnnotations"] = {"linkerd.io/inject": "enabled"}
    cluster.put(body)
    asyncio.run(settle(cluster))

    def edit(spec: dict[str, Any]) -> None:
        spec["template"]["metadata"]["annotations"] = {"tool.example/seen": "yes"}

    by_hand(cluster, "Deployment", "shop", edit)
    asyncio.run(settle(cluster))
    annotations = cluster.objects[("Deployment", NS, "shop")]["spec"]["template"]["metadata"]
    assert annotations["annotations"]["linkerd.io/inject"] == "enabled"
    assert reverted(cluster) == (
        "Deployment shop: the pod's annotations (linkerd.io/inject) changed outside the "
        "operator; put back as WebApp shop says (change the WebApp instead)"
    )
    # One only someone else's is no change.
    by_hand(cluster, "Deployment", "shop", lambda spec: spec["template"]["metadata"][
        "annotations"].__setitem__("tool.example/seen", "again"))  # fmt: skip
    nothing_more_to_do(cluster)


OTHER_EDITS: dict[str, tuple[str, Callable[[dict[str, Any]], None] | None, str]] = {
    "ingress-host": ("Ingress", lambda spec: spec["rules"][0].__setitem__("host", "evil.example"),
                     "rules"),
    "ingress-tls": ("Ingress", lambda spec: spec.pop("tls"), "tls"),
    "autoscaler-max": ("HorizontalPodAutoscaler",
                       lambda spec: spec.__setitem__("maxReplicas", 50), "maxReplicas"),
    "budget": ("PodDisruptionBudget",
               lambda spec: spec.__setitem__("maxUnavailable", 0), "maxUnavailable"),
    "ingress-auth": ("Ingress", None, "annotations (nginx.ingress.kubernetes.io/auth-url)"),
}  # fmt: skip


@pytest.mark.parametrize("edit", sorted(OTHER_EDITS))
def test_an_ingress_autoscaler_or_budget_changed_outside_the_operator_is_applied_again(
    edit: str,
) -> None:
    """A host pointed elsewhere, TLS taken off, an autoscaler's bound raised, a budget that
    blocks every drain: applied back as the WebApp says, told once; a key someone added to the
    spec (an autoscaler's `behavior`) is theirs."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    body = webapp("shop", "auto", ("web",))
    body["spec"]["baseUrl"] = "https://shop.example.com/"
    auth = {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example/check"}
    body["spec"]["ingress"] = {"tlsSecretName": "shop-tls", "annotations": auth}
    web = body["spec"]["processes"]["web"]
    web["autoscale"] = {"maxReplicas": 5, "cpuUtilization": 70}
    web["resources"] = {"requests": {"cpu": "100m"}}
    web["disruptionBudget"] = {"maxUnavailable": 1}
    cluster.put(body)
    asyncio.run(settle(cluster))
    kind, change, field = OTHER_EDITS[edit]
    if change is None:  # the authentication annotation taken off
        before = copy.deepcopy(cluster.objects[(kind, NS, "shop")])
        unguarded = copy.deepcopy(before)
        del unguarded["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"]
        cluster.put(unguarded)
        intact = before["spec"]
    else:
        intact = by_hand(cluster, kind, "shop", change)["spec"]
    asyncio.run(settle(cluster))
    assert cluster.objects[(kind, NS, "shop")]["spec"] == intact
    assert cluster.objects[("Ingress", NS, "shop")]["metadata"]["annotations"] == {
        **auth,
        "twelvefactor.dev/applied": cluster.objects[("Ingress", NS, "shop")]["metadata"][
            "annotations"]["twelvefactor.dev/applied"],
    }  # fmt: skip
    assert reverted(cluster) == (
        f"{kind} shop: {field} changed outside the operator; put back as WebApp shop says "
        "(change the WebApp instead)"
    )
    nothing_more_to_do(cluster)
    behaved = by_hand(
        cluster,
        "HorizontalPodAutoscaler",
        "shop",
        lambda spec: spec.__setitem__("behavior", {"scaleDown": {"selectPolicy": "Disabled"}}),
    )
    assert behaved["spec"]["maxReplicas"] == 5
    nothing_more_to_do(cluster)
