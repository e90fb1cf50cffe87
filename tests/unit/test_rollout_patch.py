"""A rollout onto a new environment is a strategic merge patch of `envFrom`, exactly equal to
the full apply it replaces; any other change is a full apply (reconcile.rollout_patch)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import strategic_merge
from tests.unit.test_render import SETTINGS, app, inputs

from webapp_operator.controller import reconcile, state
from webapp_operator.domain import model, render

Objects = dict[tuple[str, str], dict[str, Any]]


def rendered(webapp: model.WebApp, password: str) -> Objects:
    """Every Deployment and the Service of the app by kind and name, stamped as the reconciler
    applies them."""
    result = render.render(inputs(webapp, password), SETTINGS)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in [*result.deployments, result.service]}
    for obj in objects.values():
        reconcile.stamp_applied(obj)
    return objects


def live(obj: dict[str, Any]) -> state.WorkloadEntry:
    """What the informer reads back of an applied object."""
    body = copy.deepcopy(obj)
    body["metadata"]["uid"] = "uid-live"
    entry = state.workload_entry(obj["kind"], body)
    assert entry is not None
    return entry


def test_an_environment_change_is_patched_into_exactly_the_new_rendering() -> None:
    before = rendered(app(), "canary-old-1b2c")
    after = rendered(app(), "canary-new-3d4e")
    deployments = [key for key in after if key[0] == "Deployment"]
    assert len(deployments) == 3
    for name in deployments:
        patch = reconcile.rollout_patch(after[name], live(before[name]))
        assert patch is not None, name
        merged = copy.deepcopy(before[name])
        strategic_merge(merged, patch)
        assert merged == after[name]
        # The patch names the new snapshot and the new digest, nothing else of the spec.
        assert set(patch) == {"metadata", "spec"}
        digest = after[name]["metadata"]["annotations"][state.APPLIED_ANNOTATION]
        assert patch["metadata"] == {"annotations": {state.APPLIED_ANNOTATION: digest}}
        containers = patch["spec"]["template"]["spec"]["containers"]
        assert [set(c) for c in containers] == [{"name", "envFrom"}]


def _without_environment(obj: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    del body["metadata"]["annotations"][state.APPLIED_ANNOTATION]
    for container in body["spec"]["template"]["spec"]["containers"]:
        container.pop("envFrom", None)
    return body


@pytest.mark.parametrize(
    "change",
    [
        {"image": "example/app:2"},
        {"replicas": 5},
        {"config": {"greeting": "bonjour"}},
        {"processes": {"web": {"command": ["gunicorn", "--workers=4"]}}},
    ],
)
def test_a_patch_only_ever_reproduces_the_full_apply(change: dict[str, Any]) -> None:
    """Whatever changed: a Deployment that differs in more than its environment is applied in
    full; one that differs in its environment alone is patched into exactly its rendering."""
    before = rendered(app(), "canary-old-1b2c")
    after = rendered(app(**change), "canary-new-3d4e")
    for key, obj in after.items():
        if key not in before or key[0] != "Deployment":
            continue
        patch = reconcile.rollout_patch(obj, live(before[key]))
        if _without_environment(obj) != _without_environment(before[key]):
            assert patch is None, (change, key)
        else:
            assert patch is not None, (change, key)
            merged = copy.deepcopy(before[key])
            strategic_merge(merged, patch)
            assert merged == obj


def test_nothing_to_patch_from() -> None:
    before = rendered(app(), "canary-old-1b2c")
    after = rendered(app(), "canary-new-3d4e")
    # No live Deployment yet, the Service, the same snapshot, a Deployment applied by hand.
    web, service = ("Deployment", "shop"), ("Service", "shop")
    assert reconcile.rollout_patch(after[web], None) is None
    assert reconcile.rollout_patch(after[service], live(before[service])) is None
    assert reconcile.rollout_patch(before[web], live(before[web])) is None
    hand = copy.deepcopy(before[web])
    hand["metadata"]["annotations"][state.APPLIED_ANNOTATION] = "not-ours"
    assert reconcile.rollout_patch(after[web], live(hand)) is None


@pytest.mark.parametrize("others", [{}, {"team": "shop"}])
def test_the_rendering_is_left_as_it_was(others: dict[str, str]) -> None:
    """The old rendering's digest is taken on the new rendering itself, its snapshot names and
    annotation swapped and put back: whichever the outcome, the object is then applied or
    remembered as it was rendered."""

    def annotated(objects: Objects) -> Objects:
        for obj in objects.values():
            annotations = obj["metadata"]["annotations"]
            del annotations[state.APPLIED_ANNOTATION]
            annotations.update(others)
            if not annotations:
                del obj["metadata"]["annotations"]
            reconcile.stamp_applied(obj)
        return objects

    before = annotated(rendered(app(), "canary-old-1b2c"))
    after = annotated(rendered(app(), "canary-new-3d4e"))
    for key in [k for k in after if k[0] == "Deployment"]:
        kept = copy.deepcopy(after[key])
        assert reconcile.rollout_patch(after[key], live(before[key])) is not None
        assert after[key] == kept
        assert list(after[key]["metadata"]) == list(kept["metadata"])
        hand = copy.deepcopy(before[key])
        hand["metadata"]["annotations"][state.APPLIED_ANNOTATION] = "not-ours"
        assert reconcile.rollout_patch(after[key], live(hand)) is None
        assert after[key] == kept


REVISION: dict[str, Any] = {
    "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}
}
OURS: dict[str, Any] = {
    "manager": "webapp-operator",
    "operation": "Apply",
    "fieldsV1": {"f:spec": {"f:replicas": {}}},
}
CONTROLLER: list[dict[str, Any]] = [
    {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "subresource": "status",
        "fieldsV1": {**REVISION, "f:status": {"f:replicas": {}}},
    },
    {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": REVISION},
]


@pytest.mark.parametrize(
    ("others", "shared"),
    [
        ([], False),
        (CONTROLLER, False),
        (
            [
                *CONTROLLER,
                {
                    "manager": "intruder",
                    "operation": "Apply",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
            ],
            True,
        ),
        (
            [
                {
                    "manager": "kubectl-rollout",
                    "operation": "Update",
                    "fieldsV1": {
                        "f:spec": {
                            "f:template": {
                                "f:metadata": {
                                    "f:annotations": {"f:kubectl.kubernetes.io/restartedAt": {}}
                                }
                            }
                        }
                    },
                }
            ],
            True,
        ),
        (
            [
                {
                    "manager": "kubectl-annotate",
                    "operation": "Update",
                    "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:team": {}}}},
                }
            ],
            True,
        ),
    ],
)
def test_a_deployment_another_manager_holds_fields_of_is_applied_in_full(
    others: list[dict[str, Any]], shared: bool
) -> None:
    """A full apply takes back what another field manager took; a patch would leave it."""
    before = rendered(app(), "canary-old-1b2c")
    after = rendered(app(), "canary-new-3d4e")
    web = ("Deployment", "shop")
    body = copy.deepcopy(before[web])
    body["metadata"]["managedFields"] = [OURS, *others]
    entry = state.workload_entry("Deployment", body)
    assert entry is not None
    assert entry.shared is shared
    patch = reconcile.rollout_patch(after[web], entry)
    assert (patch is None) is shared
