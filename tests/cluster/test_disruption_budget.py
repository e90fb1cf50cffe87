"""`processes.<p>.disruptionBudget` on the real API server and disruption controller: the
PodDisruptionBudget the operator renders is what the Eviction API (the one `kubectl drain`
uses) obeys. With `minAvailable` equal to the pods, an eviction is refused (429); with
`maxUnavailable: 1` one pod may go; taken out, the budget is deleted.
"""

from __future__ import annotations

from typing import Any

from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget
from tests.cluster import opkit
from tests.cluster.support import wait_for
from tests.cluster.test_rollout_health import running_web_pods

PASSWORD = "canary-budget-6e0d"


def app(budget: dict[str, Any] | None) -> dict[str, Any]:
    web: dict[str, Any] = {"command": ["gunicorn", "app:app"]}  # (an empty map is sent as null)
    if budget is not None:
        web["disruptionBudget"] = budget
    return {
        "framework": "flask",
        "image": "localhost:32000/shop:1",
        "replicas": 2,
        "processes": {"web": web},
        "secrets": {"credentials": {"secretName": "credentials"}},
    }


def allowed(kit: opkit.Kit) -> int | None:
    found = kit.objects(PodDisruptionBudget, **{"twelvefactor.dev/webapp": "shop"})
    if not found:
        return None
    status = found[0].get("status") or {}
    if status.get("observedGeneration") != found[0]["metadata"].get("generation"):
        return None
    return int(status.get("disruptionsAllowed", -1))


def evict(kit: opkit.Kit, pod: str) -> int:
    """The HTTP status of an eviction of `pod`, as `kubectl drain` asks for it."""
    eviction = Pod.Eviction(metadata=ObjectMeta(name=pod, namespace=kit.namespace))
    try:
        kit.kube.create(eviction, name=pod, namespace=kit.namespace)
    except ApiError as error:
        return int(error.status.code or 0)
    return 201


def test_a_budget_is_what_a_drain_obeys(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    kit.webapp("shop", app({"minAvailable": 2}))
    kit.wait_ready("shop")

    def both() -> list[str] | None:
        running = running_web_pods(kit)
        return running if len(running) == 2 else None

    pods = wait_for(both, 60, message="both web pods running")
    wait_for(lambda: allowed(kit) == 0, 60, message="the budget allows no disruption")
    assert evict(kit, pods[0]) == 429  # too many requests: the budget holds
    assert running_web_pods(kit) == pods

    kit.webapp("shop", app({"maxUnavailable": 1}))
    wait_for(lambda: allowed(kit) == 1, 60, message="the budget allows one disruption")
    assert evict(kit, pods[0]) == 201
    wait_for(lambda: pods[0] not in running_web_pods(kit), 60, message="the pod evicted")

    kit.webapp("shop", app(None))
    wait_for(
        lambda: not kit.objects(PodDisruptionBudget, **{"twelvefactor.dev/webapp": "shop"}),
        60,
        message="the budget deleted",
    )
    kit.wait_ready("shop")
    assert kit.canary_hits([PASSWORD]) == []
