"""`drift`: what of a pod template the WebApp decides, as the API server keeps it, and the
patch that puts it back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webapp_operator.controller import state
from webapp_operator.domain import drift


def deployment(container: dict[str, Any], **pod: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [container], **pod}}}}


WEB: dict[str, Any] = {
    "name": "web",
    "image": "shop:1",
    "envFrom": [{"secretRef": {"name": "shop-env-0123456789"}}],
    "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
    "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}},
    "readinessProbe": {
        "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 0,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
        "successThreshold": 1,
    },
}


def kept(container: dict[str, Any]) -> dict[str, Any]:
    """WEB as the API server returns it."""
    live = copy.deepcopy(container)
    live["resources"] = {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    del live["readinessProbe"]["initialDelaySeconds"]
    live["ports"] = [{"name": "http", "containerPort": 8000}]
    live["terminationMessagePath"] = "/dev/termination-log"
    live["imagePullPolicy"] = "IfNotPresent"
    return live


def test_the_api_servers_forms_and_defaults_are_no_change() -> None:
    rendered = deployment(WEB)
    live = deployment(kept(WEB), terminationGracePeriodSeconds=30, securityContext={})
    assert drift.changed(rendered, live) == []
    assert drift.repair(rendered, live) is None
    assert drift.container_view(WEB) == drift.container_view(kept(WEB))


@pytest.mark.parametrize(
    ("request_", "same"),
    [("500m", True), ("0.5", True), ("250m", False)],
    ids=["defaulted", "same-amount", "lowered"],
)
def test_a_request_is_compared_by_amount_against_its_limit(request_: str, same: bool) -> None:
    live = kept(WEB)
    live["resources"]["requests"]["cpu"] = request_
    assert (drift.container_view(WEB) == drift.container_view(live)) is same


CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # what someone set on the web container: the patch's container
    "command-added": (
        {"command": ["sh"]},
        {"name": "web", "command": None},
    ),
    "memory-raised": (
        {"resources": {"limits": {"cpu": "500m", "memory": "8Gi"}}},
        {"name": "web", "resources": {"$patch": "replace", **WEB["resources"]}},
    ),
    "port-added": (
        {"ports": [*WEB["ports"], {"containerPort": 22}]},
        {"name": "web", "ports": [{"$patch": "replace"}, *WEB["ports"]]},
    ),
    "probe-slowed": (
        {"readinessProbe": {**WEB["readinessProbe"], "periodSeconds": 300}},
        {"name": "web", "readinessProbe": {"$patch": "replace", **WEB["readinessProbe"]}},
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_container_field_changed_is_replaced_whole(change: str) -> None:
    edit, container = CHANGES[change]
    live = deployment({**kept(WEB), **edit})
    (field,) = set(edit)
    assert drift.changed(deployment(WEB), live) == [f"container web ({field})"]
    assert drift.repair(deployment(WEB), live) == deployment(container)


def test_a_service_account_set_by_hand_is_taken_out_with_its_twin() -> None:
    live = deployment(kept(WEB), serviceAccountName="mallory", serviceAccount="mallory")
    assert drift.changed(deployment(WEB), live) == ["the pod's serviceAccountName"]
    patch = drift.repair(deployment(WEB), live)
    assert patch == {
        "spec": {"template": {"spec": {"serviceAccountName": None, "serviceAccount": None}}}
    }


def test_pod_fields_are_put_back_as_rendered() -> None:
    rendered = deployment(WEB, nodeSelector={"zone": "a"}, terminationGracePeriodSeconds=60)
    live = deployment(
        kept(WEB), nodeSelector={"zone": "a", "gpu": "yes"}, securityContext={"runAsUser": 0}
    )
    assert drift.changed(rendered, live) == [
        "the pod's securityContext, nodeSelector, terminationGracePeriodSeconds"
    ]
    assert drift.repair(rendered, live) == {
        "spec": {
            "template": {
                "spec": {
                    "securityContext": None,
                    "nodeSelector": {"$patch": "replace", "zone": "a"},
                    "terminationGracePeriodSeconds": 60,
                }
            }
        }
    }


def test_a_container_taken_out_is_put_back_whole_and_one_added_is_left() -> None:
    sidecar = {"name": "sidecar", "image": "proxy:1", "command": ["run"]}
    live = deployment(sidecar)
    assert drift.changed(deployment(WEB), live) == [
        f"container web ({', '.join(drift.CONTAINER_FIELDS)})"
    ]
    assert drift.repair(deployment(WEB), live) == deployment(WEB)
    with_sidecar = deployment(kept(WEB))
    with_sidecar["spec"]["template"]["spec"]["containers"].append(sidecar)
    assert drift.repair(deployment(WEB), with_sidecar) is None


def test_what_a_webapp_cannot_say_is_left_alone() -> None:
    """A liveness probe, volume mounts, the template's annotations: not the WebApp's."""
    live = deployment(
        {**kept(WEB), "livenessProbe": {"tcpSocket": {"port": 8000}}, "volumeMounts": []},
        volumes=[{"name": "cache", "emptyDir": {}}],
    )
    assert drift.changed(deployment(WEB), live) == []


def body_of(generation: int, uid: str = "u-1", image: str = "shop:1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "shop",
            "namespace": "demo",
            "uid": uid,
            "generation": generation,
            "labels": {"twelvefactor.dev/webapp": "shop"},
        },
        "spec": deployment({**WEB, "image": image})["spec"],
    }


def test_an_entry_of_the_same_spec_lends_its_checks_and_no_other_does() -> None:
    """A rollout's status events (same uid, same generation) reuse the template's checks; a
    new generation or another object (same name, new uid) is checked anew."""
    held = state.workload_entry("Deployment", body_of(3))
    assert held is not None
    again = state.workload_entry("Deployment", body_of(3), held)
    assert again is not None
    assert again.marks is held.marks
    for other in (body_of(4, image="other:2"), body_of(3, uid="u-2", image="other:2")):
        fresh = state.workload_entry("Deployment", other, held)
        assert fresh is not None
        assert fresh.marks != held.marks


@pytest.mark.parametrize(
    ("image", "default"),
    [
        ("shop:1", "IfNotPresent"),
        ("shop", "Always"),
        ("shop:latest", "Always"),
        ("localhost:32000/shop", "Always"),
        ("localhost:32000/shop:2", "IfNotPresent"),
        ("shop@sha256:" + "0" * 64, "IfNotPresent"),
    ],
)
def test_a_pull_policy_the_api_server_gave_is_no_change_and_another_is(
    image: str, default: str
) -> None:
    rendered = deployment({**WEB, "image": image})
    given = deployment({**kept(WEB), "image": image, "imagePullPolicy": default})
    assert drift.changed(rendered, given) == []
    other = "Never" if default != "Never" else "Always"
    live = deployment({**kept(WEB), "image": image, "imagePullPolicy": other})
    assert drift.changed(rendered, live) == ["container web (imagePullPolicy)"]
    assert drift.repair(rendered, live) == deployment({"name": "web", "imagePullPolicy": None})
