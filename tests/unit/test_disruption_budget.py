"""`processes.<p>.disruptionBudget`: a PodDisruptionBudget per process that asks for one, named
as its Deployment and selecting exactly its pods; refused for a scheduler and unless exactly one
of maxUnavailable and minAvailable is set; deleted when taken out; nothing rendered without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import NS, FakeCluster, credentials, settle, webapp

from webapp_operator.domain import model, render
from webapp_operator.domain.errors import WebAppError


def rendered(processes: dict[str, Any]) -> render.Rendered:
    body = {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": NS, "uid": "uid-shop"},
        "spec": {"framework": "flask", "image": "shop:1", "processes": processes},
    }
    return render.render(
        render.RenderInputs(model.parse_webapp(body), {}, {}, "k" * 50),
        render.Settings(snapshot_key=b"s" * 32),
    )


def test_a_budget_selects_exactly_its_processs_pods() -> None:
    result = rendered(
        {
            "web": {"disruptionBudget": {"maxUnavailable": 1}},
            "queue-worker": {"disruptionBudget": {"minAvailable": "50%"}},
            "beat-scheduler": {},
        }
    )
    budgets = {b["metadata"]["name"]: b for b in result.budgets}
    assert sorted(budgets) == ["shop", "shop-queue-worker"]
    web, worker = budgets["shop"], budgets["shop-queue-worker"]
    assert web["apiVersion"] == "policy/v1"
    assert web["spec"] == {
        "selector": {
            "matchLabels": {"twelvefactor.dev/webapp": "shop", "twelvefactor.dev/process": "web"}
        },
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    assert worker["spec"]["minAvailable"] == "50%"
    assert "maxUnavailable" not in worker["spec"]
    deployments = {d["metadata"]["name"]: d for d in result.deployments}
    for name, budget in budgets.items():  # the Deployment's own selector: its pods, no others
        assert budget["spec"]["selector"] == deployments[name]["spec"]["selector"]
    assert web["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    assert [o["kind"] for o in result.workloads()][-2:] == ["PodDisruptionBudget"] * 2


def test_without_a_budget_nothing_is_rendered() -> None:
    assert rendered({"web": {}, "queue-worker": {"replicas": 3}}).budgets == ()


@pytest.mark.parametrize(
    ("processes", "message"),
    [
        ({"beat-scheduler": {"disruptionBudget": {"maxUnavailable": 1}}}, "is a scheduler"),
        ({"web": {"disruptionBudget": {}}}, "one of them"),
        ({"web": {"disruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}}, "one of them"),
        ({"web": {"disruptionBudget": {"maxUnavailable": "half"}}}, "percentage"),
        ({"web": {"disruptionBudget": {"maxUnavailable": "101%"}}}, "percentage"),
        ({"web": {"disruptionBudget": {"minAvailable": -1}}}, "between 0 and 1000"),
    ],
)
def test_a_budget_that_cannot_be_is_refused(processes: dict[str, Any], message: str) -> None:
    with pytest.raises(WebAppError, match=message):
        rendered(processes)


def app(budget: dict[str, Any] | None) -> dict[str, Any]:
    body = webapp("shop", "auto", ("web",))
    if budget is not None:
        body["spec"]["processes"]["web"] = {"disruptionBudget": budget}
    return body


def test_a_budget_is_applied_changed_and_deleted_when_taken_out() -> None:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(app({"maxUnavailable": 1}))
    asyncio.run(settle(cluster))
    key = ("PodDisruptionBudget", NS, "shop")
    assert cluster.objects[key]["spec"]["maxUnavailable"] == 1
    deployment = cluster.objects[("Deployment", NS, "shop")]["spec"]["template"]

    changed = app({"minAvailable": 2})
    changed["status"] = cluster.objects[("WebApp", NS, "shop")]["status"]
    cluster.put(changed)
    asyncio.run(settle(cluster))
    assert cluster.objects[key]["spec"]["minAvailable"] == 2
    # A budget is no rollout.
    assert cluster.objects[("Deployment", NS, "shop")]["spec"]["template"] == deployment

    cluster.writes.clear()
    asyncio.run(settle(cluster))  # a restart
    assert cluster.writes == []

    gone = app(None)
    gone["status"] = cluster.objects[("WebApp", NS, "shop")]["status"]
    cluster.put(gone)
    asyncio.run(settle(cluster))
    assert key not in cluster.objects


def test_a_budget_the_operator_may_not_write_names_the_grant() -> None:
    cluster = FakeCluster()
    cluster.denied.add("PodDisruptionBudget")
    cluster.put(credentials("one"))
    cluster.put(app({"maxUnavailable": 1}))
    asyncio.run(settle(cluster))
    status = cluster.objects[("WebApp", NS, "shop")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidConfig"
    assert (
        "disruptionBudget: the operator may not write poddisruptionbudgets (403)"
        in (ready["message"])
    )
    assert ("Deployment", NS, "shop") in cluster.objects  # the app's other objects are applied
