"""The controller on the real API server: named scenarios of the Juju secret lifecycle.

Each test runs `webapp-operator run` in the background against its own namespace, with kwok
making pods Running, and checks the objects the API server holds. No sleeps: polls with
deadlines. Canary values are searched for everywhere they must never appear (invariant 2).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Secret, Service
from lightkube.resources.networking_v1 import Ingress
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType
from tests.cluster import opkit, support
from tests.cluster.support import BackgroundProcess, wait_for

from webapp_operator.controller import state

PASSWORD_1 = "canary-pw-one-4f1c"
PASSWORD_2 = "canary-pw-two-8b2e"
PASSWORD_3 = "canary-pw-three-c93a"

SEED = {
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


def test_seed_walkthrough_reaches_every_process(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")

    deployments = kit.deployments("shop")
    assert set(deployments) == {"shop", "shop-celery-worker", "shop-celery-beat-scheduler"}
    scheduler = deployments["shop-celery-beat-scheduler"]["spec"]
    assert scheduler["replicas"] == 1
    assert scheduler["strategy"]["type"] == "Recreate"
    snapshot = kit.one_snapshot("shop")
    env = kit.env(snapshot)
    assert env["FLASK_CREDENTIALS_USERNAME"] == "admin"
    assert env["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    assert env["FLASK_GREETING"] == "hello"
    assert len(env["FLASK_SECRET_KEY"]) >= 64
    assert kit.revisions("credentials") == [1]
    assert kit.tracked("shop", "credentials") == 1
    assert kit.canary_hits([PASSWORD_1, env["FLASK_SECRET_KEY"]]) == []


def test_update_creates_revision_rolls_once_and_prunes_after_rollout(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    first = kit.one_snapshot("shop")

    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="tracking revision 2")
    kit.wait_ready("shop")
    second = kit.one_snapshot("shop")
    assert second != first
    assert kit.env(second)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_2
    # Revision 1 goes only once no live ReplicaSet uses it any more.
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")
    # The Event follows the deletion: wait for it rather than race it.
    wait_for(lambda: kit.events("RevisionCreated"), 30, message="RevisionCreated Event")
    wait_for(lambda: kit.events("RevisionRemoved"), 30, message="RevisionRemoved Event")
    # One rollout per process: each Deployment has exactly two ReplicaSets (old and new).
    for name in kit.deployments("shop"):
        owned = [
            rs
            for rs in kit.objects(ReplicaSet)
            if any(o["name"] == name for o in rs["metadata"].get("ownerReferences") or [])
        ]
        assert len(owned) == 2, name
    # The same content again creates no revision.
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    kit.webapp("shop", {**SEED, "config": {"greeting": "hello"}})
    wait_for(lambda: kit.ready("shop"), 30, message="still ready")
    assert kit.revisions("credentials") == [2]
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []


def _operator_fields(deployment: dict[str, Any]) -> dict[str, str]:
    """The operator's managedFields entries of a Deployment: operation -> its field set."""
    return {
        str(m["operation"]): json.dumps(m.get("fieldsV1") or {})
        for m in deployment["metadata"].get("managedFields") or []
        if m.get("manager") == "webapp-operator"
    }


def test_a_new_environment_is_patched_and_a_spec_change_applies_every_field(
    kit: opkit.Kit,
) -> None:
    """A rollout onto a new environment patches `envFrom` alone (a strategic merge patch, half
    the API server's cost of applying the whole Deployment); the next change of anything else
    is a server-side apply that takes every field back under the operator's apply."""
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    applied = {n: d["metadata"]["annotations"] for n, d in kit.deployments("shop").items()}

    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="tracking revision 2")
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")
    assert kit.env(snapshot)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_2
    for name, deployment in kit.deployments("shop").items():
        fields = _operator_fields(deployment)
        # The patch: the new snapshot and the new digest, recorded as the operator's update;
        # everything else stays under its apply.
        assert set(fields) == {"Apply", "Update"}, (name, fields)
        assert '"f:envFrom"' in fields["Update"], fields
        assert '"f:image"' not in fields["Update"], fields
        assert '"f:image"' in fields["Apply"], fields
        assert deployment["metadata"]["annotations"] != applied[name]

    image = "localhost:32000/juju-secret-app:0.2"
    kit.webapp("shop", {**SEED, "image": image})

    def applied_image() -> bool:
        return all(
            {c["image"] for c in d["spec"]["template"]["spec"]["containers"]} == {image}
            for d in kit.deployments("shop").values()
        )

    wait_for(applied_image, 60, message="the new image in every Deployment")
    kit.wait_ready("shop")
    assert kit.one_snapshot("shop") == snapshot  # the same environment, a new image
    for deployment in kit.deployments("shop").values():
        fields = _operator_fields(deployment)
        # Applied again in full: the apply owns the snapshot reference again (shared with the
        # update that set it, as it holds the same value) and the new digest alone.
        assert '"f:envFrom"' in fields["Apply"], fields
        assert state.APPLIED_ANNOTATION in fields["Apply"], fields
        assert state.APPLIED_ANNOTATION not in fields.get("Update", ""), fields
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []


def test_identical_content_creates_no_revision(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("db", {"uri": "postgresql://u:p@h:5432/d"}, grant="shop")
    kit.webapp(
        "shop",
        {
            "framework": "django",
            "image": "shop:1",
            "integrations": {"postgresql": {"secretName": "db"}},
        },
    )
    kit.wait_ready("shop")
    kit.secret(
        "db",
        {"uri": "postgresql://u:p@h:5432/d"},
        grant="shop",
        annotations={"twelvefactor.dev/description": "touch"},
    )
    wait_for(lambda: kit.ready("shop"), 30, message="still ready")
    assert kit.revisions("db") == [1]
    env = kit.env(kit.one_snapshot("shop"))
    assert env["POSTGRESQL_DB_HOSTNAME"] == "h"


def test_missing_grant_is_a_condition_with_the_fix(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="someone-else")
    kit.webapp("shop", SEED)
    cond = wait_for(
        lambda: (c := kit.condition("shop")).get("reason") == "SecretNotGranted" and c,
        60,
        message="SecretNotGranted",
        ignore=(ApiError,),
    )
    assert "kubectl webapp grant-secret credentials shop" in cond["message"]
    assert kit.deployments("shop") == {}
    assert kit.events("SecretNotGranted")
    # Granting it lets the app start.
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.wait_ready("shop")
    assert kit.canary_hits([PASSWORD_1]) == []


def test_revocation_keeps_running_pods_and_blocks_new_revisions(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    before = kit.one_snapshot("shop")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="")
    wait_for(
        lambda: kit.condition("shop").get("reason") == "SecretNotGranted",
        60,
        message="SecretNotGranted after revocation",
    )
    # The last good Deployments keep running on the snapshot they had (invariant 6).
    assert kit.snapshot_names("shop") == {before}
    assert kit.env(before)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1


def test_manual_observer_stays_until_refresh(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop,api")
    manual = {
        **SEED,
        "secrets": {"credentials": {"secretName": "credentials", "refresh": "manual"}},
    }
    kit.webapp("shop", manual)
    kit.webapp(
        "api",
        {
            "framework": "fastapi",
            "image": "api:1",
            "secrets": {"credentials": {"secretName": "credentials"}},
        },
    )
    kit.wait_ready("shop")
    kit.wait_ready("api")
    shop_snapshot = kit.one_snapshot("shop")

    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop,api")
    wait_for(lambda: kit.tracked("api", "credentials") == 2, 60, message="api on revision 2")
    cond = wait_for(
        lambda: (c := kit.condition("shop", "SecretUpdateAvailable")).get("status") == "True" and c,
        60,
        message="shop told an update is available",
    )
    assert "revision 2" in cond["message"]
    assert kit.tracked("shop", "credentials") == 1
    assert kit.snapshot_names("shop") == {shop_snapshot}
    status = {s["option"]: s for s in kit.status("shop")["secrets"]}
    assert status["credentials"]["latestRevision"] == 2  # peek
    changed = wait_for(lambda: kit.events("SecretChanged"), 30, message="SecretChanged")
    assert len(changed) == 1
    # Revision 1 is still tracked by shop: never pruned.
    assert 1 in kit.revisions("credentials")

    kit.annotate_webapp("shop", {"twelvefactor.dev/refresh": "credentials@1"})
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="shop refreshed")
    kit.wait_ready("shop")
    assert kit.env(kit.one_snapshot("shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_2
    assert kit.events("SecretRefreshed")
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")
    assert len(kit.events("SecretChanged")) == 1


def test_pin_and_missing_revision(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp(
        "shop", {**SEED, "secrets": {"credentials": {"secretName": "credentials", "revision": 1}}}
    )
    kit.wait_ready("shop")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.revisions("credentials") == [1, 2], 60, message="revision 2")
    kit.wait_ready("shop")
    assert kit.tracked("shop", "credentials") == 1
    assert kit.env(kit.one_snapshot("shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    kit.webapp(
        "shop", {**SEED, "secrets": {"credentials": {"secretName": "credentials", "revision": 7}}}
    )
    cond = wait_for(
        lambda: (c := kit.condition("shop")).get("reason") == "RevisionNotFound" and c,
        60,
        message="RevisionNotFound",
    )
    assert "revision 7" in cond["message"]


def test_invalid_key_and_config_are_conditions(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"user.name": "a"}, grant="shop")
    kit.webapp("shop", SEED)
    cond = wait_for(
        lambda: (c := kit.condition("shop")).get("reason") == "InvalidSecretKey" and c,
        60,
        message="InvalidSecretKey",
        ignore=(ApiError,),
    )
    assert "user.name" in cond["message"]
    kit.webapp("bad", {"framework": "flask", "image": "x:1", "config": {"Bad_Option": 1}})
    cond = wait_for(
        lambda: (c := kit.condition("bad")).get("reason") == "InvalidConfig" and c,
        60,
        message="InvalidConfig",
        ignore=(ApiError,),
    )
    assert "Bad_Option" in cond["message"]


def test_cross_namespace_grant(
    kube: Client, namespace: str, background: Callable[..., BackgroundProcess]
) -> None:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    shared = f"{namespace}-shared"[:63]
    kube.create(
        Namespace(metadata=ObjectMeta(name=shared, labels={"twelvefactor.dev/test": "true"}))
    )
    try:
        opkit.install_crd(kube)
        kit = opkit.Kit(
            kube=kube, namespace=namespace, start_background=background, watch=[namespace, shared]
        )
        kit.start_operator()
        kit.secret(
            "db", {"uri": "redis://cache:6379/0"}, grant=f"{namespace}/shop", namespace=shared
        )
        kit.webapp(
            "shop",
            {
                "framework": "go",
                "image": "shop:1",
                "integrations": {"redis": {"secretName": f"{shared}/db"}},
            },
        )
        kit.wait_ready("shop")
        assert kit.env(kit.one_snapshot("shop"))["REDIS_DB_HOSTNAME"] == "cache"
        assert kit.revisions("db", namespace=shared) == [1]
        # The same grant written without the namespace grants an app in `shared` instead.
        kit.secret("db", {"uri": "redis://cache:6379/0"}, grant="shop", namespace=shared)
        wait_for(
            lambda: kit.condition("shop").get("reason") == "SecretNotGranted",
            60,
            message="SecretNotGranted across namespaces",
        )
        kit.stop_operator()
    finally:
        kube.delete(Namespace, shared)


def test_restart_with_nothing_changed_writes_nothing(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    wait_for(lambda: kit.revisions("credentials") == [1], 30, message="one revision")
    settled = _settled(kit)
    status = kit.status("shop")
    events = len(kit.events())
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    after = _settled(kit)
    now = kit.status("shop")
    assert now == status, f"status before: {status}\nstatus after: {now}"
    assert after == settled
    assert len(kit.events()) == events


def test_what_someone_deletes_moments_after_it_was_made_is_made_again(kit: opkit.Kit) -> None:
    """The operator's memory of its own recent writes (which keeps a reconcile racing the
    watch from writing twice) ends once the watch shows them: a Deployment, a Service and the
    environment snapshot deleted seconds after they were made come back at once, not when the
    memory expires (30 s) or the app next changes."""
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")
    gone: list[tuple[Any, str]] = [
        (Deployment, "shop-celery-worker"),
        (Service, "shop"),
        (Secret, snapshot),
    ]
    for resource, name in gone:
        uid = kit.kube.get(resource, name, namespace=kit.namespace).metadata.uid
        kit.kube.delete(resource, name, namespace=kit.namespace)

        def again(resource: Any = resource, name: str = name, uid: Any = uid) -> bool:
            try:
                obj = kit.kube.get(resource, name, namespace=kit.namespace)
            except ApiError as error:
                if error.status.code == 404:
                    return False
                raise
            return bool(obj.metadata.uid != uid)

        wait_for(again, 20, message=f"{resource.__name__} {name} made again")
    assert kit.one_snapshot("shop") == snapshot  # the same content, the same name: no rollout
    assert kit.env(snapshot)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    kit.wait_ready("shop")
    assert kit.canary_hits([PASSWORD_1]) == []


def restarted_tells_nothing_more(kit: opkit.Kit, reason: str, told: int) -> None:
    """Another operator start finds nothing more to put back: still `told` Events `reason`."""
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert len(kit.events(reason)) == told


SHADOW = "shadowing-value-0c4d"


def test_kubectl_set_env_is_put_back_and_told(kit: opkit.Kit) -> None:
    """`kubectl set env` on an app's Deployment gives one process a variable the others do not
    see, and one that shadows the snapshot's (a refreshed secret would never reach it): the
    operator puts the environment back (a rollout), says so by a Warning that names no
    variable and no value, and deletes the ReplicaSet the edit made, which holds the value."""
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")
    before = kit.deployments("shop")["shop-celery-worker"]["spec"]["template"]["spec"]
    subprocess.run(
        [
            "kubectl",
            "set",
            "env",
            "deployment/shop-celery-worker",
            f"FLASK_CREDENTIALS_PASSWORD={SHADOW}",
            "-n",
            kit.namespace,
        ],
        env=support.tool_env(Path(kit.kubeconfig)),
        check=True,
        capture_output=True,
    )

    def restored() -> bool:
        spec = kit.deployments("shop")["shop-celery-worker"]["spec"]["template"]["spec"]
        return bool(spec["containers"] == before["containers"])

    wait_for(restored, 30, message="the worker's environment put back")
    wait_for(lambda: kit.events("EnvironmentRestored"), 30, message="EnvironmentRestored")
    (told,) = kit.events("EnvironmentRestored")
    assert told["type"] == "Warning"
    assert told["message"] == (
        "Deployment shop-celery-worker: the environment of its containers (celery-worker) was "
        "changed outside the operator (env or envFrom); put back: every container reads only "
        f"environment snapshot {snapshot}"
    )
    kit.wait_ready("shop")
    assert kit.one_snapshot("shop") == snapshot
    # Once: the next restart finds nothing to put back.
    restarted_tells_nothing_more(kit, "EnvironmentRestored", 1)
    # The value kubectl wrote is in no Deployment any more, nor in any Event; the ReplicaSet
    # its edit made, which held it as rollout history, is deleted once scaled down.
    wait_for(lambda: kit.canary_hits([SHADOW]) == [], 30, message="the edit's ReplicaSet deleted")
    assert kit.canary_hits([PASSWORD_1]) == []


def kubectl(kit: opkit.Kit, *argv: str) -> None:
    """kubectl, as a user runs it, in the test's namespace."""
    subprocess.run(
        ["kubectl", *argv, "-n", kit.namespace],
        env=support.tool_env(Path(kit.kubeconfig)),
        check=True,
        capture_output=True,
    )


def test_kubectl_set_image_and_scale_are_put_back_and_told(kit: opkit.Kit) -> None:
    """The WebApp says what runs and how many: `kubectl set image` on the web Deployment,
    `kubectl scale` of the scheduler (exactly one pod, ever) and a `kubectl rollout undo` are
    applied back, each told once by a Warning naming the field."""
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    before = {name: d["spec"] for name, d in kit.deployments("shop").items()}
    kubectl(kit, "set", "image", "deployment/shop", "web=localhost:32000/other:9")
    kubectl(kit, "scale", "deployment/shop-celery-beat-scheduler", "--replicas=3")

    def put_back() -> bool:
        now = kit.deployments("shop")
        return all(
            now[name]["spec"]["template"] == spec["template"]
            and now[name]["spec"]["replicas"] == spec["replicas"]
            for name, spec in before.items()
        )

    wait_for(put_back, 30, message="image and replicas put back")
    wait_for(lambda: len(kit.events("ChangeReverted")) == 2, 30, message="two ChangeReverted")
    told = sorted(e["message"] for e in kit.events("ChangeReverted"))
    assert told == [
        "Deployment shop-celery-beat-scheduler: replicas changed outside the operator; put "
        "back as WebApp shop says (change the WebApp instead)",
        "Deployment shop: container web (image) changed outside the operator; put back as "
        "WebApp shop says (change the WebApp instead)",
    ]
    kit.wait_ready("shop")
    # `kubectl rollout undo` (onto the hand-set image's ReplicaSet) is a change by hand too.
    wait_for(lambda: kit.deployments("shop")["shop"]["status"].get("updatedReplicas") == 2, 30)
    kubectl(kit, "rollout", "undo", "deployment/shop")
    wait_for(lambda: len(kit.events("ChangeReverted")) == 3, 30, message="the undo put back")
    wait_for(put_back, 30, message="image put back after the undo")
    kit.wait_ready("shop")
    restarted_tells_nothing_more(kit, "ChangeReverted", 3)
    assert kit.canary_hits([PASSWORD_1]) == []


def test_a_pod_template_changed_by_hand_is_put_back_whole(kit: opkit.Kit) -> None:
    """Limits raised and a port opened by `kubectl patch`, `kubectl set serviceaccount`,
    arguments and a node selector given where the WebApp sets none: each Deployment is put
    back in one patch (what someone added taken out again, which a server-side apply could
    not do), the fields named. What the API server itself makes of the rendering (0.5 CPU
    kept as 500m, 1024Mi as 1Gi, a probe's defaults, no zero delay, the pod's defaults beside
    its security contexts, node selector and tolerations) is no change."""
    app = {
        **SEED,
        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
        "healthCheck": {"path": "/", "initialDelaySeconds": 0},
        "podSecurity": "restricted",
        "runAsUser": 584792,
        "nodeSelector": {"type": "kwok"},
        "tolerations": [{"key": "twelvefactor-test", "operator": "Exists"}],
        "podAnnotations": {"prometheus.io/scrape": "true"},
    }
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", app)
    kit.wait_ready("shop")
    kit.operator_log_wait_idle()
    before = kit.deployments("shop")
    resources = before["shop"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "500m", "memory": "1Gi"}}
    assert {d["metadata"]["generation"] for d in before.values()} == {1}
    assert kit.events("ChangeReverted") == []

    raised = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/resources",
         "value": {"limits": {"memory": "8Gi", "cpu": "2"}}},
        {"op": "add", "path": "/spec/template/spec/containers/0/ports/-",
         "value": {"containerPort": 22, "protocol": "TCP"}},
    ]  # fmt: skip
    kubectl(kit, "patch", "deployment", "shop", "--type=json", "-p", json.dumps(raised))
    kubectl(kit, "set", "serviceaccount", "deployment/shop-celery-worker", "mallory")
    added = [
        {"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["--debug"]},
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": {"gpu": "yes"}},
    ]
    patch = json.dumps(added)
    kubectl(kit, "patch", "deployment", "shop-celery-beat-scheduler", "--type=json", "-p", patch)

    def put_back() -> bool:
        now = kit.deployments("shop")
        return all(
            now[name]["spec"]["template"] == d["spec"]["template"] for name, d in before.items()
        )

    wait_for(put_back, 30, message="the pod templates put back")
    wait_for(lambda: len(kit.events("ChangeReverted")) == 3, 30, message="three ChangeReverted")
    assert sorted(e["message"] for e in kit.events("ChangeReverted")) == sorted(
        f"Deployment {name}: {fields} changed outside the operator; put back as WebApp shop "
        "says (change the WebApp instead)"
        for name, fields in (
            ("shop", "container web (ports, resources)"),
            ("shop-celery-beat-scheduler",
             "container celery-beat-scheduler (args) and the pod's nodeSelector"),
            ("shop-celery-worker", "the pod's serviceAccountName"),
        )
    )  # fmt: skip
    # One patch each: one rollout from the hand change to the rendering, none in between.
    assert {n: d["metadata"]["generation"] for n, d in kit.deployments("shop").items()} == {
        "shop": 3,
        "shop-celery-worker": 3,
        "shop-celery-beat-scheduler": 3,
    }
    kit.wait_ready("shop")
    # The template's labels and annotations the WebApp sets are applied back; an annotation
    # someone else added stays theirs.
    relabel = [
        {"op": "replace", "path": "/spec/template/metadata/labels/app.kubernetes.io~1part-of",
         "value": "other"},
        {"op": "remove", "path": "/spec/template/metadata/annotations/prometheus.io~1scrape"},
        {"op": "add", "path": "/spec/template/metadata/annotations/tool.example~1seen",
         "value": "yes"},
    ]  # fmt: skip
    kubectl(kit, "patch", "deployment", "shop", "--type=json", "-p", json.dumps(relabel))

    def template_metadata() -> dict[str, Any]:
        found: dict[str, Any] = kit.deployments("shop")["shop"]["spec"]["template"]["metadata"]
        return found

    wait_for(
        lambda: template_metadata()["labels"] == before["shop"]["spec"]["template"]["metadata"][
            "labels"] and template_metadata()["annotations"].get("prometheus.io/scrape") == "true",
        30,
        message="the labels and annotations put back",
    )  # fmt: skip
    assert template_metadata()["annotations"]["tool.example/seen"] == "yes"
    wait_for(lambda: len(kit.events("ChangeReverted")) == 4, 30, message="a fourth")
    assert (
        "Deployment shop: the pod's labels and the pod's annotations (prometheus.io/scrape) "
        "changed outside the operator; put back as WebApp shop says (change the WebApp instead)"
    ) in {e["message"] for e in kit.events("ChangeReverted")}
    kit.wait_ready("shop")
    restarted_tells_nothing_more(kit, "ChangeReverted", 4)
    # The WebApp sets no resources any more: gone, though the repair wrote them last.
    kit.webapp("shop", {k: v for k, v in app.items() if k != "resources"})

    def web() -> dict[str, Any]:
        found: dict[str, Any] = kit.deployments("shop")["shop"]["spec"]["template"]["spec"]
        return found

    wait_for(lambda: not web()["containers"][0].get("resources"), 30, message="resources gone")
    kit.wait_ready("shop")
    kit.operator_log_wait_idle()
    assert len(kit.events("ChangeReverted")) == 4  # the operator's own change, not one by hand
    assert kit.canary_hits([PASSWORD_1]) == []


AUTH = "nginx.ingress.kubernetes.io/auth-url"


def test_an_ingress_autoscaler_and_budget_edited_by_hand_are_put_back(kit: opkit.Kit) -> None:
    """The Ingress's host and its authentication annotation, the autoscaler's bound and the
    budget are the WebApp's: edited by hand, each is applied back and told once; a key
    someone added (the autoscaler's `behavior`) is theirs. What the API server makes of them
    (a default class, the autoscaler's status) is no change."""
    web = {
        "command": ["gunicorn", "app:app"],
        "autoscale": {"maxReplicas": 4, "cpuUtilization": 70},
        "resources": {"requests": {"cpu": "100m"}},
        "disruptionBudget": {"maxUnavailable": 1},
    }
    app = {
        **SEED,
        "baseUrl": "https://shop.example.com/",
        "ingress": {"tlsSecretName": "shop-tls", "annotations": {AUTH: "https://auth/check"}},
        "processes": {"web": web},
    }
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", app)
    kit.wait_ready("shop")
    kit.operator_log_wait_idle()
    kinds = (Ingress, HorizontalPodAutoscaler, PodDisruptionBudget)

    def specs() -> dict[str, Any]:
        return {k.__name__: opkit.as_dict(kit.kube.get(k, "shop", namespace=kit.namespace))["spec"]
                for k in kinds}  # fmt: skip

    before = specs()
    assert kit.events("ChangeReverted") == []
    rules = [{"host": "evil.example", "http": before["Ingress"]["rules"][0]["http"]}]
    behavior = {"scaleDown": {"selectPolicy": "Disabled"}}
    edits: list[tuple[Any, dict[str, Any]]] = [
        (Ingress, {"rules": rules}),
        (HorizontalPodAutoscaler, {"maxReplicas": 40, "behavior": behavior}),
        (PodDisruptionBudget, {"maxUnavailable": 0}),
    ]
    for kind, edit in edits:
        patch: Any = {"spec": edit}
        kit.kube.patch(kind, "shop", patch, namespace=kit.namespace, patch_type=PatchType.MERGE)

    def put_back() -> bool:
        now = specs()
        behavior = now["HorizontalPodAutoscaler"].pop("behavior", None)
        return now == before and behavior is not None

    wait_for(put_back, 30, message="the Ingress, autoscaler and budget put back")
    wait_for(lambda: len(kit.events("ChangeReverted")) == 3, 30, message="three ChangeReverted")
    assert {e["message"] for e in kit.events("ChangeReverted")} == {
        f"{kind} shop: {field} changed outside the operator; put back as WebApp shop says "
        "(change the WebApp instead)"
        for kind, field in (
            ("Ingress", "rules"),
            ("HorizontalPodAutoscaler", "maxReplicas"),
            ("PodDisruptionBudget", "maxUnavailable"),
        )
    }
    # The Ingress's authentication taken off (`kubectl annotate ingress shop <key>-`).
    kubectl(kit, "annotate", "ingress", "shop", f"{AUTH}-")

    def guarded() -> bool:
        found = opkit.as_dict(kit.kube.get(Ingress, "shop", namespace=kit.namespace))
        return bool(found["metadata"]["annotations"].get(AUTH) == "https://auth/check")

    wait_for(guarded, 30, message="the Ingress's authentication put back")
    wait_for(lambda: len(kit.events("ChangeReverted")) == 4, 30, message="a fourth")
    assert any(f"annotations ({AUTH})" in e["message"] for e in kit.events("ChangeReverted"))
    restarted_tells_nothing_more(kit, "ChangeReverted", 4)
    assert kit.canary_hits([PASSWORD_1]) == []


def test_a_service_edited_by_hand_is_put_back(kit: opkit.Kit) -> None:
    """`kubectl edit svc`: a selector pointed at other pods would take the app's traffic, a
    NodePort would expose it on every node; both are applied back (the node port the API
    server allocated is dropped with the type), each told once."""
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    rendered = opkit.as_dict(kit.kube.get(Service, "shop", namespace=kit.namespace))["spec"]

    def spec() -> dict[str, Any]:
        return dict(opkit.as_dict(kit.kube.get(Service, "shop", namespace=kit.namespace))["spec"])

    hijack: Any = {"spec": {"selector": {"app": "mallory"}}}
    kit.kube.patch(Service, "shop", hijack, namespace=kit.namespace, patch_type=PatchType.MERGE)
    wait_for(lambda: spec()["selector"] == rendered["selector"], 30, message="selector back")
    exposed: Any = {"spec": {"type": "NodePort"}}
    kit.kube.patch(Service, "shop", exposed, namespace=kit.namespace, patch_type=PatchType.MERGE)
    wait_for(lambda: spec()["type"] == "ClusterIP", 30, message="type back")
    assert spec()["ports"] == rendered["ports"]  # no node port left
    wait_for(lambda: len(kit.events("ChangeReverted")) == 2, 30, message="two ChangeReverted")
    assert sorted(e["message"] for e in kit.events("ChangeReverted")) == [
        f"Service shop: {field} changed outside the operator; put back as WebApp shop says "
        "(change the WebApp instead)"
        for field in ("selector", "type")
    ]
    restarted_tells_nothing_more(kit, "ChangeReverted", 2)


def test_an_upgrade_signs_older_revisions_once_and_rolls_nothing(kit: opkit.Kit) -> None:
    """Revisions made before revisions were signed (here: signature and record stripped, as an
    older operator left them) are still read, and signed once by the first start that signs;
    no app rolls, and the next restart writes nothing."""
    signature, since = "twelvefactor.dev/signature", "twelvefactor.dev/signatures-since"
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    wait_for(lambda: kit.revisions("credentials") == [1], 30, message="one revision")
    kit.stop_operator()
    ns = kit.namespace
    keys = opkit.as_dict(kit.kube.get(Secret, "webapp-operator-keys", namespace=ns))
    assert since in keys["metadata"]["annotations"]
    strip: Any = {"metadata": {"annotations": {since: None}}}
    kit.kube.patch(Secret, "webapp-operator-keys", strip, namespace=ns, patch_type=PatchType.MERGE)
    strip = {"metadata": {"annotations": {signature: None}}}
    kit.kube.patch(Secret, "credentials.rev-1", strip, namespace=ns, patch_type=PatchType.MERGE)
    status = kit.status("shop")
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in kit.objects(Deployment)}

    kit.start_operator()

    def signed() -> bool:
        rev = opkit.as_dict(kit.kube.get(Secret, "credentials.rev-1", namespace=ns))
        return signature in (rev["metadata"].get("annotations") or {})

    wait_for(signed, 60, message="revision 1 signed")
    kit.operator_log_wait_idle()
    keys = opkit.as_dict(kit.kube.get(Secret, "webapp-operator-keys", namespace=ns))
    assert since in keys["metadata"]["annotations"]
    assert kit.status("shop") == status
    assert {d["metadata"]["name"]: d["spec"]["template"] for d in kit.objects(Deployment)} == (
        templates
    )
    assert kit.revisions("credentials") == [1]
    settled = _settled(kit)
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert _settled(kit) == settled


def test_a_lost_snapshot_key_renames_every_snapshot_once_and_prunes_the_old_ones(
    kit: opkit.Kit,
) -> None:
    """The keys Secret deleted (lost, then made anew by the next start with a new key): every
    snapshot name changes, so the app rolls once onto a new one, and the old snapshot, which
    fails the check under the new key but is the operator's own, is pruned once nothing reads
    it: no copy of the values is left behind. (No ReplicaSet history, which would keep it
    for a `kubectl rollout undo` as it keeps any old snapshot.)"""
    history = ("--revision-history-limit", "0")
    kit.start_operator(*history)
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    old = kit.one_snapshot("shop")
    kit.stop_operator()
    kit.kube.delete(Secret, "webapp-operator-keys", namespace=kit.namespace)

    kit.start_operator(*history)
    wait_for(lambda: kit.snapshot_names("shop") not in ({old}, set()), 60, message="renamed")
    new = kit.one_snapshot("shop")
    kit.wait_ready("shop")

    def environments() -> set[str]:
        labels = {"twelvefactor.dev/secret": "environment"}
        return {s["metadata"]["name"] for s in kit.objects(Secret, **labels)}

    wait_for(lambda: environments() == {new}, 60, message=f"{old} pruned")
    assert kit.env(new)["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    assert kit.revisions("credentials") == [1]  # signed again, not made again
    assert len(kit.events("RolloutStarted")) == 1  # this one (the first apply is no rollout)
    assert kit.canary_hits([PASSWORD_1]) == []


def _settled(kit: opkit.Kit) -> dict[str, str]:
    """The operator's writes once they stop changing for a few seconds."""
    seen: list[dict[str, str]] = []

    def stable() -> dict[str, str] | None:
        seen.append(kit.operator_writes())
        return seen[-1] if len(seen) >= 8 and all(v == seen[-1] for v in seen[-8:]) else None

    return wait_for(stable, 60, interval=0.5, message="the operator's writes to settle")


def test_secret_values_never_leak_at_debug(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret(
        "credentials", {"username": "canary-user-77aa", "password": PASSWORD_3}, grant="shop"
    )
    kit.secret("db", {"uri": f"postgresql://shop:{PASSWORD_1}@db:5432/shop"}, grant="shop")
    kit.webapp("shop", {**SEED, "integrations": {"postgresql": {"secretName": "db"}}})
    kit.wait_ready("shop")
    kit.secret(
        "credentials", {"username": "canary-user-77aa", "password": PASSWORD_2}, grant="shop"
    )
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    kit.wait_ready("shop")
    assert kit.canary_hits(["canary-user-77aa", PASSWORD_1, PASSWORD_2, PASSWORD_3]) == []
    # And the values did arrive where they belong.
    assert any(s["metadata"]["name"].startswith("shop-env-") for s in kit.objects(Secret))


def counted(text: str, series: str) -> float:
    """The value of one sample of a /metrics page."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert found is not None, f"{series} not exposed"
    return float(found.group(1))


def test_metrics_and_health_endpoints(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    assert kit.fetch("/readyz") == "ok\n"
    assert kit.fetch("/healthz") == "ok\n"

    def rollout_counted() -> str | None:
        text = kit.metrics_text()
        return text if 'reason="RolloutStarted"' in text else None

    text = wait_for(rollout_counted, 30, message="the rollout in the metrics")
    for series in (
        "webapp_operator_reconcile_duration_seconds_bucket",
        'webapp_operator_events_total{reason="RevisionCreated",type="Normal"}',
        'webapp_operator_api_requests_total{kind="write"}',
        "webapp_operator_queue_depth",
        "webapp_operator_ready 1.0",
    ):
        assert series in text, series
    # The lifecycle counters move with their Events: revision 1 and 2 of credentials (and the
    # app's own secret key), and at least the rollout to revision 2.
    assert counted(text, "webapp_operator_revisions_created_total") >= 2
    assert counted(text, "webapp_operator_rollouts_total") >= 1
    assert counted(text, 'webapp_operator_errors_total{reason="SecretNotFound"}') == 0
    assert "shop" not in text  # no object names in labels: bounded series
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []


def test_missing_operator_namespace_is_created(kit: opkit.Kit) -> None:
    from lightkube.resources.core_v1 import Namespace

    own = f"{kit.namespace}-op"[:63]
    kit.operator_namespace = own
    try:
        kit.start_operator()
        kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
        kit.webapp("shop", SEED)
        kit.wait_ready("shop")
        keys = opkit.as_dict(kit.kube.get(Secret, "webapp-operator-keys", namespace=own))
        assert keys["data"]
    finally:
        kit.stop_operator()
        kit.kube.delete(Namespace, own)


def test_secrets_changed_together_roll_the_app_once(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.secret("db", {"uri": f"postgresql://u:{PASSWORD_2}@db:5432/d"}, grant="shop")
    kit.secret("cache", {"uri": "redis://cache:6379/0"}, grant="shop")
    kit.webapp(
        "shop",
        {
            **SEED,
            "integrations": {"postgresql": {"secretName": "db"}, "redis": {"secretName": "cache"}},
        },
    )
    kit.wait_ready("shop")
    # Three Secrets change at once (as one `kubectl apply -f` of three files would).
    kit.secret("credentials", {"username": "b", "password": PASSWORD_3}, grant="shop")
    kit.secret("db", {"uri": f"postgresql://u:{PASSWORD_3}@db:5432/d"}, grant="shop")
    kit.secret("cache", {"uri": "redis://cache2:6379/0"}, grant="shop")
    wait_for(
        lambda: all(kit.tracked("shop", o) == 2 for o in ("credentials", "postgresql", "redis")),
        60,
        message="all three options on revision 2",
    )
    kit.wait_ready("shop")
    env = kit.env(kit.one_snapshot("shop"))
    assert env["REDIS_DB_HOSTNAME"] == "cache2"
    assert env["FLASK_CREDENTIALS_USERNAME"] == "b"
    # One pod-template change per Deployment: exactly two ReplicaSets each, one rollout Event.
    for name in kit.deployments("shop"):
        owned = [
            rs
            for rs in kit.objects(ReplicaSet)
            if any(o["name"] == name for o in rs["metadata"].get("ownerReferences") or [])
        ]
        assert len(owned) == 2, name
    assert len(kit.events("RolloutStarted")) == 1


def test_deleting_the_last_observer_of_a_revision_prunes_it(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="old,new")
    manual = {
        "framework": "go",
        "image": "old:1",
        "secrets": {"credentials": {"secretName": "credentials", "refresh": "manual"}},
    }
    kit.webapp("old", manual)
    kit.webapp(
        "new",
        {
            "framework": "go",
            "image": "new:1",
            "secrets": {"credentials": {"secretName": "credentials"}},
        },
    )
    kit.wait_ready("old")
    kit.wait_ready("new")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="old,new")
    wait_for(lambda: kit.tracked("new", "credentials") == 2, 60, message="new on revision 2")
    kit.wait_ready("new")
    assert kit.revisions("credentials") == [1, 2]  # old still tracks revision 1
    kit.kube.delete(opkit.WebApp, "old", namespace=kit.namespace)
    wait_for(lambda: kit.revisions("credentials") == [2], 90, message="revision 1 pruned")


def test_status_wait_follows_the_rollout_until_ready(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp_operator.cli import main

    monkeypatch.setenv("KUBECONFIG", kit.kubeconfig)
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="someone")
    kit.webapp("shop", SEED)
    # Not granted: the wait ends at once with the condition's message.
    wait_for(
        lambda: kit.condition("shop").get("reason") == "SecretNotGranted",
        60,
        message="SecretNotGranted",
        ignore=(ApiError,),
    )
    assert main.main(["status", "shop", "-n", kit.namespace, "--wait", "--timeout", "30"]) == 1
    assert "grant-secret credentials shop" in capsys.readouterr().err
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    assert main.main(["status", "shop", "-n", kit.namespace, "--wait", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "Ready=True (Available)" in out.splitlines()[-1]
    assert PASSWORD_1 not in out


def test_the_cli_shows_a_hand_made_revision_as_unsigned_then_as_disowned(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revisions the operator made carry its signature; a Secret someone named and labelled as
    a revision carries none (or one that is not the operator's): `show-secret` shows the first
    as unsigned at once, and both as not revisions once the operator checked them and told so
    by a Warning on each (the CLI holds no key to check a signature)."""
    from webapp_operator.cli import main
    from webapp_operator.domain import revisions

    monkeypatch.setenv("KUBECONFIG", kit.kubeconfig)
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    hand_made: dict[str, Any] = {
        "metadata": {
            "name": revisions.revision_name("credentials", 5),
            "labels": revisions.revision_labels("credentials", 5),
        },
        "stringData": {"username": "a", "password": PASSWORD_2},
    }
    kit.stop_operator()  # so that the CLI sees it before the operator told anything of it
    kit.kube.create(Secret.from_dict(hand_made), namespace=kit.namespace)  # type: ignore[call-overload]
    # One with a signature that is not the operator's: the CLI cannot tell it from a real one
    # until the operator told so (a Warning on it).
    forged = copy.deepcopy(hand_made)
    forged["metadata"]["name"] = revisions.revision_name("credentials", 6)
    forged["metadata"]["labels"] = revisions.revision_labels("credentials", 6)
    forged["metadata"]["annotations"] = {revisions.SIGNATURE_ANNOTATION: "0" * 32}
    kit.kube.create(Secret.from_dict(forged), namespace=kit.namespace)  # type: ignore[call-overload]

    def shown() -> dict[str, Any]:
        argv = ["show-secret", "credentials", "--revisions", "-o", "json", "-n", kit.namespace]
        assert main.main(argv) == 0
        out = capsys.readouterr().out
        assert PASSWORD_1 not in out
        assert PASSWORD_2 not in out
        return dict(json.loads(out)[f"{kit.namespace}/credentials"])

    document = shown()
    assert [(r["revision"], r.get("unsigned", False)) for r in document["revisions"]] == [
        (1, False),
        (5, True),
        (6, False),
    ]
    assert len(document["problems"]) == 1
    assert document["problems"][0].startswith("revision 5 carries no signature")
    # The operator checks both and leaves them alone, told by a Warning on each: shop still
    # runs revision 1, and neither is removed; the CLI lists neither as a revision any more.
    kit.start_operator()
    wait_for(
        lambda: len(kit.events("RevisionNotSigned")) == 2,
        60,
        message="the operator's Warnings about the hand-made revisions",
    )
    told = {e["involvedObject"]["name"]: e for e in kit.events("RevisionNotSigned")}
    assert set(told) == {"credentials.rev-5", "credentials.rev-6"}
    assert {e["type"] for e in told.values()} == {"Warning"}
    assert "credentials.rev-6 is labelled as revision 6" in kit.operator_log()
    document = shown()
    assert [r["revision"] for r in document["revisions"]] == [1]
    assert sorted(p.split(" ")[1] for p in document["problems"]) == [
        "credentials.rev-5",
        "credentials.rev-6",
    ]
    assert kit.tracked("shop", "credentials") == 1
    assert kit.revisions("credentials") == [1, 5, 6]
    # Told once: a restart does not tell them again.
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert len(kit.events("RevisionNotSigned")) == 2
    assert all(e.get("count", 1) == 1 for e in kit.events("RevisionNotSigned"))


def test_ready_on_a_namespace_with_no_webapp_yet(kit: opkit.Kit) -> None:
    """A fresh install before any app exists must pass its readiness probe, managed Secrets or
    not (Kopf, which watches only WebApps, runs no handler at all there, so the operator looks
    for itself)."""
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.start_operator()
    wait_for(lambda: kit.fetch("/readyz") == "ok\n", 60, message="/readyz 200 with nothing to do")
    assert "no WebApp to index yet" in kit.operator_log()
    # and it works from there on
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
