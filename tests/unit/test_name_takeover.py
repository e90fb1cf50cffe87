"""An object someone else made under a name the operator renders is never taken over.

A forced server-side apply would make a Deployment, Service, Ingress, autoscaler or Job of
that name the app's (its image, its rules, its selector): whoever may create a WebApp could
rewrite objects RBAC does not let them write. Before the operator makes an object for the
first time (its watches do not hold it), a dry-run create checks that the name is free; a held
name fails the app with InvalidConfig naming the object, and nothing of the release is applied.

The reconcilers run against the fake API server of test_reconcile_crash.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from tests.unit.test_reconcile_crash import NS, FakeCluster, credentials, settle, webapp

INTRUDED = "canary-takeover-9b3d"


def ready(cluster: FakeCluster) -> dict[str, Any]:
    status = cluster.objects[("WebApp", NS, "shop")].get("status") or {}
    return next(c for c in status.get("conditions") or [] if c["type"] == "Ready")


def theirs(kind: str, name: str) -> dict[str, Any]:
    """An object another team made by hand: not labelled for any app."""
    api = {
        "Deployment": "apps/v1",
        "Service": "v1",
        "Ingress": "networking.k8s.io/v1",
        "Job": "batch/v1",
    }[kind]
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "payments"}},
        "spec": {"note": INTRUDED},
    }


def with_foreign(kind: str, name: str) -> tuple[FakeCluster, dict[str, Any]]:
    cluster = FakeCluster()
    cluster.put(theirs(kind, name))
    before = copy.deepcopy(cluster.objects[(kind, NS, name)])
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "queue-worker")))
    asyncio.run(settle(cluster))
    return cluster, before


def test_a_deployment_someone_else_made_is_never_overwritten() -> None:
    cluster, before = with_foreign("Deployment", "shop-queue-worker")
    assert cluster.objects[("Deployment", NS, "shop-queue-worker")] == before
    condition = ready(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfig")
    assert "Deployment shop-queue-worker already exists in the namespace" in condition["message"]
    assert "never overwritten" in condition["message"]
    assert f"kubectl delete deployment shop-queue-worker -n {NS}" in condition["message"]
    # Nothing of the release is applied: no half-made app.
    assert ("Deployment", NS, "shop") not in cluster.objects
    assert ("Service", NS, "shop") not in cluster.objects
    assert cluster.warnings == ["InvalidConfig"]


def test_a_service_someone_else_made_is_never_overwritten() -> None:
    cluster, before = with_foreign("Service", "shop")
    assert cluster.objects[("Service", NS, "shop")] == before
    assert "Service shop already exists" in ready(cluster)["message"]
    assert ("Deployment", NS, "shop") not in cluster.objects


def test_once_the_name_is_free_the_app_is_made() -> None:
    cluster, _ = with_foreign("Service", "shop")
    del cluster.objects[("Service", NS, "shop")]
    asyncio.run(settle(cluster))
    assert ready(cluster)["reason"] == "Available"
    assert cluster.objects[("Service", NS, "shop")]["metadata"]["labels"]["twelvefactor.dev/webapp"]


def test_an_ingress_someone_else_made_is_never_overwritten_and_the_app_keeps_running() -> None:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto"))
    asyncio.run(settle(cluster))
    deployment = copy.deepcopy(cluster.objects[("Deployment", NS, "shop")])
    cluster.put(theirs("Ingress", "shop"))
    before = copy.deepcopy(cluster.objects[("Ingress", NS, "shop")])
    body = webapp("shop", "auto")
    body["spec"].update(baseUrl="https://shop.example.com/", ingress={"className": "nginx"})
    body["metadata"]["generation"] = 2
    body["status"] = cluster.objects[("WebApp", NS, "shop")]["status"]
    cluster.put(body)
    asyncio.run(settle(cluster))
    assert cluster.objects[("Ingress", NS, "shop")] == before
    assert "Ingress shop already exists" in ready(cluster)["message"]
    assert cluster.objects[("Deployment", NS, "shop")]["spec"] == deployment["spec"]


def test_a_migration_job_name_someone_else_holds_is_never_overwritten() -> None:
    body = webapp("shop", "auto")
    body["spec"]["migration"] = {"command": ["migrate"]}
    probe = FakeCluster(jobs="run")  # the same rendering gives the same Job name
    probe.put(credentials("one"))
    probe.put(body)
    asyncio.run(settle(probe))
    (name,) = [n for (k, _, n) in probe.objects if k == "Job"]

    cluster = FakeCluster()
    cluster.put(theirs("Job", name))
    before = copy.deepcopy(cluster.objects[("Job", NS, name)])
    cluster.put(credentials("one"))
    cluster.put(body)
    asyncio.run(settle(cluster))
    assert cluster.objects[("Job", NS, name)] == before
    assert f"Job {name} already exists" in ready(cluster)["message"]
    assert ("Deployment", NS, "shop") not in cluster.objects


def test_objects_the_operator_made_are_not_checked_again() -> None:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "queue-worker")))
    asyncio.run(settle(cluster))
    assert sorted(cluster.dry_runs) == [
        "Deployment/shop",
        "Deployment/shop-queue-worker",
        "Service/shop",
    ]
    cluster.dry_runs.clear()
    cluster.put(credentials("two"))  # a rollout: every object is the operator's already
    asyncio.run(settle(cluster))
    assert cluster.dry_runs == []
    cluster.writes.clear()
    asyncio.run(settle(cluster))  # a restart
    assert cluster.writes == []
    assert cluster.dry_runs == []
