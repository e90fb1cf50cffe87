"""`spec.podAnnotations`, `spec.nodeSelector` and `spec.tolerations` on the real API server and
scheduler: every pod of the app carries them, pods go only where they may (a node selector no
node matches leaves the new pods Pending and the rollout stalls, the old pods serving), and a
tolerated taint does not keep them off a node.
"""

from __future__ import annotations

from typing import Any

from lightkube import ApiError
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType
from tests.cluster import opkit
from tests.cluster.support import wait_for
from tests.cluster.test_rollout_health import running_web_pods

PASSWORD = "canary-placement-2b7f"
NODE = "kwok-node-0"

APP: dict[str, Any] = {
    "framework": "fastapi",
    "image": "localhost:32000/shop:1",
    "replicas": 1,
    "progressDeadlineSeconds": 5,
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "twelvefactor-test", "operator": "Exists", "effect": "NoSchedule"}],
    "secrets": {"credentials": {"secretName": "credentials"}},
}


def taint(kit: opkit.Kit, taints: list[dict[str, str]] | None) -> None:
    kit.kube.patch(Node, NODE, {"spec": {"taints": taints}}, patch_type=PatchType.MERGE)


def test_pods_go_where_the_app_says_and_carry_its_annotations(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    # A taint the app tolerates: its pods still run on the node.
    taint(kit, [{"key": "twelvefactor-test", "value": "x", "effect": "NoSchedule"}])
    try:
        kit.webapp("shop", APP)
        kit.wait_ready("shop")
        (name,) = wait_for(lambda: running_web_pods(kit), 60, message="the web pod running")
        pod = opkit.as_dict(kit.kube.get(Pod, name, namespace=kit.namespace))
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["spec"]["nodeSelector"] == {"type": "kwok"}
        assert pod["spec"]["nodeName"] == NODE
    finally:
        taint(kit, None)

    # A selector no node matches: the new pod stays Pending, the rollout stalls, the old pod
    # keeps running.
    kit.webapp("shop", {**APP, "nodeSelector": {"type": "nowhere"}})
    wait_for(
        lambda: kit.condition("shop").get("reason") == "RolloutStalled",
        120,
        message=f"RolloutStalled (now {kit.condition('shop')})",
        ignore=(ApiError,),
    )
    assert running_web_pods(kit) == [name]
    kit.webapp("shop", APP)
    kit.wait_ready("shop", timeout=120)
    assert kit.canary_hits([PASSWORD]) == []
