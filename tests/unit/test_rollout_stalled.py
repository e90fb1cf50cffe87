"""A rollout the Deployment controller gave up on (Progressing=False, ProgressDeadlineExceeded:
the new pods never became ready): the app says Ready=False, RolloutStalled, naming the
Deployment; one Warning Event tells it; the previous environment is kept for the pods still
on it; a restart writes nothing; the next change that rolls out makes the app Ready again.

The reconcilers run against the fake API server of test_reconcile_crash, whose Deployment
controller gives up at once on the Deployments listed in `stalling`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.test_reconcile_crash import NS, FakeCluster, credentials, settle, webapp

from webapp_operator.controller import state

CANARY = "stalled-canary-5c1d"


def ready(cluster: FakeCluster, name: str) -> dict[str, Any]:
    status = cluster.objects[("WebApp", NS, name)]["status"]
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def snapshots(cluster: FakeCluster) -> list[str]:
    return sorted(
        name
        for (kind, _, name), obj in cluster.objects.items()
        if kind == "Secret"
        and obj["metadata"].get("labels", {}).get("twelvefactor.dev/environment-of") == "shop"
    )


def stalled_cluster() -> tuple[FakeCluster, list[str]]:
    """shop (web and a worker) settled on revision 1; then its web rollout onto revision 2
    stalls."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "queue-worker")))
    asyncio.run(settle(cluster))
    assert ready(cluster, "shop")["reason"] == "Available"
    before = snapshots(cluster)
    cluster.stalling.add("shop")
    cluster.put(credentials(CANARY))
    cluster.events.clear()
    asyncio.run(settle(cluster))
    return cluster, before


def test_a_stalled_rollout_is_ready_false_rolloutstalled_naming_the_deployment() -> None:
    cluster, _ = stalled_cluster()
    condition = ready(cluster, "shop")
    assert (condition["status"], condition["reason"]) == ("False", "RolloutStalled")
    assert (
        'Deployment shop: no progress within its deadline (ReplicaSet "shop-2" has timed out '
        "progressing.)" in condition["message"]
    )
    assert "shop-queue-worker" not in condition["message"]  # it rolled out
    assert CANARY not in str(cluster.objects[("WebApp", NS, "shop")])


def test_a_stall_is_told_once_by_a_warning_event() -> None:
    cluster, _ = stalled_cluster()
    stalled = [e for e in cluster.events if e[0] == "RolloutStalled"]
    assert len(stalled) == 1
    assert stalled[0][1] == "shop"
    assert cluster.warnings == ["RolloutStalled"]
    assert CANARY not in stalled[0][2]


def test_the_previous_environment_is_kept_while_a_rollout_is_stalled() -> None:
    cluster, before = stalled_cluster()
    after = snapshots(cluster)
    assert set(before) < set(after)  # the old snapshot stays (the old pods run on it)
    assert len(after) == 2


def test_a_restart_with_a_stalled_rollout_writes_nothing() -> None:
    cluster, _ = stalled_cluster()
    cluster.writes.clear()
    asyncio.run(settle(cluster))  # a new operator process
    assert cluster.writes == []


def test_the_next_rollout_that_completes_makes_the_app_ready_again() -> None:
    cluster, before = stalled_cluster()
    cluster.stalling.clear()  # whatever kept the new pods from being ready is fixed
    cluster.put(credentials("three"))
    asyncio.run(settle(cluster))
    condition = ready(cluster, "shop")
    assert (condition["status"], condition["reason"]) == ("True", "Available")
    assert len(snapshots(cluster)) == 1
    assert not set(before) & set(snapshots(cluster))


def test_a_stall_counts_only_for_the_template_the_controller_looked_at() -> None:
    """A Deployment whose newer template the controller has not observed yet is not stalled,
    whatever its conditions still say of the previous one."""
    body: dict[str, Any] = {
        "metadata": {"name": "shop", "namespace": NS, "generation": 3, "labels": {}},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 2,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "timed out",
                }
            ],
        },
    }
    body["metadata"]["labels"]["twelvefactor.dev/webapp"] = "shop"
    entry = state.workload_entry("Deployment", body)
    assert entry is not None
    assert entry.stalled is None
    body["status"]["observedGeneration"] = 3
    entry = state.workload_entry("Deployment", body)
    assert entry is not None
    assert entry.stalled == "no progress within its deadline (timed out)"


def test_pods_that_cannot_be_created_stall_a_rollout_at_once_in_the_same_words() -> None:
    """ReplicaFailure (a quota, Pod Security admission): stalled before any deadline, and the
    pod's name, new at each retry of the ReplicaSet controller, left out of the message, so
    that a retry changes no status and tells nothing again."""

    def entry(pod: str) -> state.WorkloadEntry | None:
        failure = {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": f'pods "{pod}" is forbidden: exceeded quota: one, requested: pods=1',
        }
        body: dict[str, Any] = {
            "metadata": {"name": "shop", "namespace": NS, "generation": 2},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 2, "conditions": [failure]},
        }
        body["metadata"]["labels"] = {"twelvefactor.dev/webapp": "shop"}
        return state.workload_entry("Deployment", body)

    first, retry = entry("shop-5d8f7-x2x4z"), entry("shop-5d8f7-q9k7w")
    assert first is not None
    assert retry is not None
    assert first.stalled == (
        "its pods cannot be created (pods is forbidden: exceeded quota: one, requested: pods=1)"
    )
    assert retry.stalled == first.stalled
