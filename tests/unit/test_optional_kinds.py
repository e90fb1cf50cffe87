"""Ingresses and autoscalers, the objects the operator writes only when a field asks: an
operator whose RBAC predates them says so on the app; a process passing to its autoscaler keeps
its pod count.

The reconcilers run against the fake API server of test_reconcile_crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import NS, FakeCluster, credentials, settle, webapp
from tests.unit.test_rollout_stalled import ready

from webapp_operator.controller import reconcile, state


def test_an_ingress_the_operator_may_not_write_is_a_condition_and_is_tried_again() -> None:
    """An operator whose RBAC predates spec.ingress: the app's other objects are applied, the
    app says what to grant, and once granted the next try makes the Ingress."""
    cluster = FakeCluster()
    cluster.denied.add("Ingress")
    cluster.put(credentials("one"))
    app = webapp("shop", "auto")
    app["spec"]["baseUrl"] = "https://shop.example.com/"
    app["spec"]["ingress"] = {}
    cluster.put(app)
    asyncio.run(settle(cluster))
    condition = ready(cluster, "shop")
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfig")
    assert "spec.ingress: the operator may not write ingresses (403)" in condition["message"]
    assert ("Deployment", NS, "shop") in cluster.objects
    assert [e[0] for e in cluster.events].count("InvalidConfig") == 1
    cluster.denied.clear()
    asyncio.run(settle(cluster))
    assert ("Ingress", NS, "shop") in cluster.objects
    assert ready(cluster, "shop")["reason"] == "Available"


def deployment_managed_by(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "shop",
            "namespace": NS,
            "generation": 1,
            "labels": {"twelvefactor.dev/webapp": "shop"},
            "managedFields": list(entries),
        },
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1},
    }


APPLIED_REPLICAS = {
    "manager": "webapp-operator",
    "operation": "Apply",
    "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}},
}
PATCHED_TEMPLATE = {
    "manager": "webapp-operator",
    "operation": "Update",
    "fieldsV1": {"f:spec": {"f:template": {}}},
}


def test_whether_the_operators_apply_holds_the_replica_count() -> None:
    held = state.workload_entry("Deployment", deployment_managed_by(APPLIED_REPLICAS))
    assert held is not None
    assert held.owns_replicas
    applied = {**APPLIED_REPLICAS, "fieldsV1": {"f:spec": {"f:template": {}}}}
    other = state.workload_entry("Deployment", deployment_managed_by(applied, PATCHED_TEMPLATE))
    assert other is not None
    assert not other.owns_replicas


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, Any]]] = []

    async def apply(self, obj: Mapping[str, Any], manager: str = "webapp-operator") -> None:
        self.applied.append((manager, dict(obj)))


@pytest.mark.parametrize(
    ("rendered_replicas", "entries", "handed"),
    [
        (None, [APPLIED_REPLICAS], True),  # now autoscaled, the count was the operator's
        (None, [PATCHED_TEMPLATE], False),  # already handed over
        (3, [APPLIED_REPLICAS], False),  # not autoscaled
    ],
    ids=["to-autoscaler", "handed-already", "fixed-count"],
)
def test_a_process_passing_to_its_autoscaler_keeps_its_count(
    rendered_replicas: int | None, entries: list[dict[str, Any]], handed: bool
) -> None:
    """Applied without `replicas` for the first time, a Deployment whose count only the
    operator's apply held would fall back to 1 pod: another manager applies the live count
    first, once."""
    current = state.workload_entry("Deployment", deployment_managed_by(*entries))
    spec: dict[str, Any] = {"template": {}}
    if rendered_replicas is not None:
        spec["replicas"] = rendered_replicas
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": spec,
    }
    recorder = Recorder()
    ctx: Any = SimpleNamespace(writer=recorder)
    asyncio.run(reconcile._handoff(ctx, obj, current))
    if handed:
        assert recorder.applied == [
            (
                "webapp-operator-handoff",
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "shop", "namespace": NS},
                    "spec": {"replicas": 3},
                },
            )
        ]
    else:
        assert recorder.applied == []
