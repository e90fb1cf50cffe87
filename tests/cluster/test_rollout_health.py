"""A health check and a rollout that cannot progress, on the real API server and controllers.

The web process's `healthCheck` is its readiness probe as the API server takes it. A rollout
whose new pods never become available (here: a CPU request no node can give, so the scheduler
leaves the new pod Pending; with a failing readiness probe the Deployment controller sees the
same) is given up by the Deployment controller after `progressDeadlineSeconds`; the app says
Ready=False, RolloutStalled, one Warning Event tells it, the old pod keeps running and the CLI's
wait stops with the reason. Fixing the spec rolls again, and the app is Ready.
"""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError
from lightkube.resources.core_v1 import Pod
from tests.cluster import opkit
from tests.cluster.support import wait_for
from tests.cluster.test_controller import counted

PASSWORD = "canary-stall-7d2a"
PASSWORD_2 = "canary-stall-two-51be"
PASSWORD_3 = "canary-stall-three-0c94"

APP: dict[str, Any] = {
    "framework": "flask",
    "image": "localhost:32000/juju-secret-app:0.1",
    "replicas": 1,
    "healthCheck": {"path": "/healthz", "periodSeconds": 5},
    "progressDeadlineSeconds": 5,
    "secrets": {"credentials": {"secretName": "credentials"}},
}


def running_web_pods(kit: opkit.Kit) -> list[str]:
    pods = kit.objects(
        Pod, **{"twelvefactor.dev/webapp": "shop", "twelvefactor.dev/process": "web"}
    )
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if p.get("status", {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    )


def test_a_rollout_that_cannot_progress_is_rolloutstalled_and_the_old_pod_keeps_running(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp_operator.cli import main

    monkeypatch.setenv("KUBECONFIG", kit.kubeconfig)
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    web = kit.deployments("shop")["shop"]
    assert web["spec"]["progressDeadlineSeconds"] == 5
    probe = web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"]) == (5, 3, 3)
    before = wait_for(lambda: running_web_pods(kit), 60, message="the web pod running")

    # A request no node can give: the new pod stays Pending, the rollout makes no progress.
    kit.webapp("shop", {**APP, "resources": {"requests": {"cpu": "5000"}}})
    wait_for(
        lambda: kit.condition("shop").get("reason") == "RolloutStalled",
        120,
        message=f"RolloutStalled (now {kit.condition('shop')})",
        ignore=(ApiError,),
    )
    condition = kit.condition("shop")
    assert condition["status"] == "False"
    assert "Deployment shop:" in condition["message"]
    assert "progress" in condition["message"]
    stalled = wait_for(lambda: kit.events("RolloutStalled"), 30, message="RolloutStalled Event")
    assert [e["type"] for e in stalled] == ["Warning"]
    assert stalled[0]["involvedObject"]["name"] == "shop"
    assert counted(kit.metrics_text(), 'webapp_operator_errors_total{reason="RolloutStalled"}') == 1
    assert running_web_pods(kit) == before  # maxUnavailable 0: the old pod serves on
    # The CLI's wait ends with the reason, not at its timeout.
    assert main.main(["status", "shop", "-n", kit.namespace, "--wait", "--timeout", "60"]) == 1
    assert "RolloutStalled" in capsys.readouterr().err

    # Fixed: the next rollout completes.
    kit.webapp("shop", APP)
    kit.wait_ready("shop", timeout=120)
    assert kit.condition("shop")["reason"] == "Available"
    assert len(kit.events("RolloutStalled")) == 1
    assert kit.canary_hits([PASSWORD]) == []


def test_a_health_check_the_crd_refuses(kit: opkit.Kit) -> None:
    """A relative path is refused by the API server at apply time, with the field named."""
    with pytest.raises(ApiError) as refused:
        kit.webapp("shop", {**APP, "healthCheck": {"path": "healthz"}})
    assert refused.value.status.code == 422
    assert "healthCheck.path" in str(refused.value.status.message)


def test_pods_the_namespace_refuses_stall_the_rollout_at_once_and_are_told_once(
    kit: opkit.Kit,
) -> None:
    """The namespace starts enforcing the restricted Pod Security level: the new ReplicaSet's
    pods are refused at admission (ReplicaFailure), which the app says at once, before any
    progress deadline, in the same words at each of the ReplicaSet controller's retries."""
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    app = {k: v for k, v in APP.items() if k != "progressDeadlineSeconds"}  # Kubernetes' 600 s
    kit.webapp("shop", app)
    kit.wait_ready("shop")
    before = wait_for(lambda: running_web_pods(kit), 60, message="the web pod running")

    kit.enforce_pod_security("restricted")
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(
        lambda: kit.condition("shop").get("reason") == "RolloutStalled",
        90,
        message=f"RolloutStalled (now {kit.condition('shop')})",
        ignore=(ApiError,),
    )
    message = kit.condition("shop")["message"]
    assert "Deployment shop: its pods cannot be created" in message
    assert "PodSecurity" in message
    assert running_web_pods(kit) == before
    wait_for(lambda: kit.events("RolloutStalled"), 30, message="RolloutStalled Event")

    # A fix and a new change: the next rollout completes.
    kit.enforce_pod_security(None)
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_3}, grant="shop")
    kit.wait_ready("shop", timeout=120)
    assert kit.tracked("shop", "credentials") == 3
    # Told once, however often the ReplicaSet controller retried meanwhile.
    assert len(kit.events("RolloutStalled")) == 1
    assert kit.canary_hits([PASSWORD, PASSWORD_2, PASSWORD_3]) == []


def test_a_restricted_app_runs_in_a_namespace_that_enforces_the_restricted_level(
    kit: opkit.Kit,
) -> None:
    """`podSecurity: restricted` renders what Pod Security admission asks of each pod, for
    every process: the namespace enforces the level from the start and every pod is admitted."""
    kit.enforce_pod_security("restricted")
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    processes: dict[str, Any] = {"web": {}, "queue-worker": {}, "beat-scheduler": {}}
    spec = {**APP, "processes": processes, "podSecurity": "restricted", "runAsUser": 584792}
    kit.webapp("shop", spec)
    kit.wait_ready("shop", timeout=120)
    pods = kit.objects(Pod, **{"twelvefactor.dev/webapp": "shop"})
    assert sorted(p["metadata"]["labels"]["twelvefactor.dev/process"] for p in pods) == [
        "beat-scheduler",
        "queue-worker",
        "web",
    ]
    for pod in pods:
        assert pod["spec"]["securityContext"]["runAsUser"] == 584792
    assert kit.events("RolloutStalled") == []
    assert kit.canary_hits([PASSWORD]) == []
