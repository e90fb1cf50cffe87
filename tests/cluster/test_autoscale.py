"""`processes.<p>.autoscale` on the real API server: a HorizontalPodAutoscaler the API server
takes, a Deployment whose replica count the operator never applies, so what the autoscaler
sets survives the next rollout; taken out, the autoscaler goes and the count is the app's.

The devcluster runs no autoscaler controller (and no metrics): the test scales the Deployment
through its scale subresource as the autoscaler would.
"""

from __future__ import annotations

import json
from typing import Any

from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.types import PatchType
from tests.cluster import opkit
from tests.cluster.support import wait_for

PASSWORD_1 = "canary-scale-one-a17c"
PASSWORD_2 = "canary-scale-two-64d0"

APP: dict[str, Any] = {
    "framework": "fastapi",
    "image": "localhost:32000/shop:1",
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
    "processes": {
        "web": {"autoscale": {"minReplicas": 2, "maxReplicas": 5, "memoryUtilization": 75}}
    },
    "secrets": {"credentials": {"secretName": "credentials"}},
}


def replicas(kit: opkit.Kit) -> int:
    return int(kit.deployments("shop")["shop"]["spec"]["replicas"])


def operator_fields(kit: opkit.Kit) -> str:
    deployment = kit.deployments("shop")["shop"]
    entries = deployment["metadata"].get("managedFields") or []
    return json.dumps([e.get("fieldsV1") for e in entries if e.get("manager") == "webapp-operator"])


def test_an_autoscaled_process_keeps_the_autoscalers_count_across_a_rollout(
    kit: opkit.Kit,
) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    found = wait_for(
        lambda: kit.objects(HorizontalPodAutoscaler, **{"twelvefactor.dev/webapp": "shop"}),
        60,
        message="the HorizontalPodAutoscaler",
    )
    spec = found[0]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 5)
    assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu", "memory"]
    assert '"f:replicas"' not in operator_fields(kit)

    # The autoscaler scales the web process; a new revision rolls it; the count stays.
    kit.kube.patch(
        Deployment.Scale,
        "shop",
        {"spec": {"replicas": 4}},
        namespace=kit.namespace,
        patch_type=PatchType.MERGE,
        field_manager="autoscaler-stand-in",
    )
    wait_for(lambda: replicas(kit) == 4, 30, message="scaled to 4")
    kit.secret("credentials", {"username": "a", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="tracking revision 2")
    kit.wait_ready("shop", timeout=120)
    assert kit.env(kit.one_snapshot("shop"))["APP_CREDENTIALS_PASSWORD"] == PASSWORD_2
    assert replicas(kit) == 4

    # Autoscale taken out: the autoscaler goes, and the count is the app's again.
    kit.webapp("shop", {**APP, "processes": {"web": {"replicas": 2}}})
    wait_for(
        lambda: not kit.objects(HorizontalPodAutoscaler, **{"twelvefactor.dev/webapp": "shop"}),
        60,
        message="the HorizontalPodAutoscaler deleted",
    )
    wait_for(lambda: replicas(kit) == 2, 60, message="back to the app's 2")
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []


def test_a_process_passing_to_its_autoscaler_keeps_its_pods(kit: opkit.Kit) -> None:
    """From a fixed count to autoscale: the Deployment is applied without `replicas` from then
    on; had only the operator's apply held the field, it would fall back to 1 pod until the
    autoscaler acted (none runs here, so it would stay 1)."""
    kit.start_operator()
    kit.secret("credentials", {"username": "a", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", {**APP, "processes": {"web": {"replicas": 3}}})
    kit.wait_ready("shop")
    assert replicas(kit) == 3
    kit.webapp("shop", APP)
    wait_for(
        lambda: kit.objects(HorizontalPodAutoscaler, **{"twelvefactor.dev/webapp": "shop"}),
        60,
        message="the HorizontalPodAutoscaler",
    )
    wait_for(lambda: '"f:replicas"' not in operator_fields(kit), 60, message="count handed over")
    kit.wait_ready("shop")
    assert replicas(kit) == 3
    # Once handed over, a restart has nothing more to hand: it writes nothing.
    before = kit.operator_writes()
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert kit.operator_writes() == before
    assert replicas(kit) == 3
