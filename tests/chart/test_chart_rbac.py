"""RBAC audit of the rendered chart: no wildcard, and exactly the permissions the operator uses.

The tables below are the contract. Each row says which code makes the request; the cluster tier
(test_chart_cluster.py) checks them against the real API server from the other side: the
operator, authenticated as the chart's ServiceAccount, runs the controller scenarios with no
request refused, every request it logs is covered by a row, and every row was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest
from tests.chart import chartkit

SEALING_KEYS: Final = "webapp-operator-sealing-keys"
SEALING_CERT: Final = "webapp-operator-sealing-cert"

# One tuple per verb: (where, apiGroup, resource, verb, resourceName).
# where: "cluster" (ClusterRole + ClusterRoleBinding), "watched" (a Role in every watched
# namespace), "release" (a Role in the release namespace, where the operator keeps its keys).
IN_WATCHED_NAMESPACES: Final[dict[tuple[str, str, str], str]] = {
    # Kopf's index and event handler on webapps (controller/handlers.py), the operator's
    # informers on secrets, deployments, replicasets, services, ingresses,
    # horizontalpodautoscalers, poddisruptionbudgets and jobs (kube/informer.py): list, watch.
    ("twelvefactor.dev", "webapps", "list"): "Kopf index `webapps`, on_webapp",
    ("twelvefactor.dev", "webapps", "watch"): "same",
    # kube/client.py Gateway.patch_webapp_status (reconcile._write_status); nothing else on
    # WebApps is ever written: no finalizer, no annotation (status progress storage).
    ("twelvefactor.dev", "webapps/status", "patch"): "Gateway.patch_webapp_status",
    ("", "secrets", "list"): "the Secret informer (handlers.informers, on_secret)",
    # Gateway.get of a Secret holding a name the operator meant to create (a revision, an
    # environment snapshot, an owned Secret): ours (the watch is behind) or a squatter's,
    # named and never adopted (reconcile._revision_name_held, _ensure_snapshot); `list`
    # reads as much.
    ("", "secrets", "get"): "Gateway.get of a name held (reconcile._revision_name_held)",
    ("", "secrets", "watch"): "same (server-side selector twelvefactor.dev/secret)",
    # Gateway.create: revision snapshots (reconcile_secret), environment snapshots
    # (reconcile_webapp), app-owned Secrets and the app's secret key (_ensure_owned).
    ("", "secrets", "create"): "Gateway.create of snapshots and owned Secrets",
    # Gateway.patch_metadata (rotation/expiry bookkeeping, owned Secrets' annotations) and
    # Gateway.patch_secret_data (new values of owned Secrets): merge patches.
    ("", "secrets", "patch"): "Gateway.patch_metadata / patch_secret_data",
    # Gateway.delete: pruned revisions, unused environment snapshots, dropped owned Secrets.
    ("", "secrets", "delete"): "Gateway.delete (pruning)",
    ("apps", "deployments", "list"): "informer (handlers.informers, kube/informer.py)",
    ("apps", "deployments", "watch"): "same",
    # Gateway.get of a Deployment whose pod template someone changed, to name the fields and
    # build the patch that puts them back (reconcile._template_changes); `list` reads as much.
    ("apps", "deployments", "get"): "Gateway.get (reconcile._template_changes)",
    # Gateway.apply is server-side apply (PATCH); when the object does not exist yet the API
    # server authorises the same request as `create` (measured: 403 without it). Before the
    # first apply of each rendered object, Gateway.name_free (a dry-run POST, also `create`)
    # checks that nobody else's object holds the name (reconcile._claim_names).
    ("apps", "deployments", "create"): "Gateway.apply creating a process's Deployment",
    ("apps", "deployments", "patch"): "Gateway.apply",
    ("apps", "deployments", "delete"): "Gateway.delete of a removed process's Deployment",
    ("apps", "replicasets", "list"): "informer (snapshots in use)",
    ("apps", "replicasets", "watch"): "same",
    ("apps", "replicasets", "delete"): "rollout history of an environment changed by hand",
    ("", "services", "list"): "informer",
    ("", "services", "watch"): "same",
    ("", "services", "create"): "Gateway.apply creating the web process's Service",
    ("", "services", "patch"): "Gateway.apply",
    ("networking.k8s.io", "ingresses", "list"): "informer",
    ("networking.k8s.io", "ingresses", "watch"): "same",
    ("networking.k8s.io", "ingresses", "create"): "Gateway.apply creating a spec.ingress",
    ("networking.k8s.io", "ingresses", "patch"): "Gateway.apply",
    ("networking.k8s.io", "ingresses", "delete"): "Gateway.delete when spec.ingress goes",
    ("autoscaling", "horizontalpodautoscalers", "list"): "informer",
    ("autoscaling", "horizontalpodautoscalers", "watch"): "same",
    ("autoscaling", "horizontalpodautoscalers", "create"): "Gateway.apply of an autoscale",
    ("autoscaling", "horizontalpodautoscalers", "patch"): "Gateway.apply",
    ("autoscaling", "horizontalpodautoscalers", "delete"): "Gateway.delete when autoscale goes",
    ("batch", "jobs", "list"): "informer",
    ("batch", "jobs", "watch"): "same",
    ("batch", "jobs", "create"): "Gateway.apply of a release's spec.migration Job",
    ("batch", "jobs", "patch"): "Gateway.apply",
    ("batch", "jobs", "delete"): "Gateway.delete of another release's migration Job",
    ("policy", "poddisruptionbudgets", "list"): "informer",
    ("policy", "poddisruptionbudgets", "watch"): "same",
    ("policy", "poddisruptionbudgets", "create"): "Gateway.apply of a disruptionBudget",
    ("policy", "poddisruptionbudgets", "patch"): "Gateway.apply",
    ("policy", "poddisruptionbudgets", "delete"): "Gateway.delete when it is taken out",
    ("", "events", "create"): "Gateway.post_event (core/v1 Events; Kopf's own posting is off)",
    # Gateway.get of a WebApp's spec.serviceAccountName (reconcile._check_service_account): the
    # account must grant the app (twelvefactor.dev/grant) before its pods may run as it.
    ("", "serviceaccounts", "get"): "Gateway.get (reconcile._check_service_account)",
}
IN_RELEASE_NAMESPACE: Final[dict[tuple[str, str, str, str], str]] = {
    # handlers._ensure_namespace: GET of the operator's own namespace at start (a 403 would be
    # tolerated, but the request is made, so it is granted for that one name).
    ("", "namespaces", "get", "<release namespace>"): "handlers._ensure_namespace",
    # handlers._keys: GET of the snapshot key Secret, created on first start.
    ("", "secrets", "get", chartkit.KEYS_SECRET): "handlers._keys",
    ("", "secrets", "create", ""): "handlers._keys, KeyManager.start (not limitable by name)",
    # handlers._keys: once, the time of the first start that signs revisions, merge-patched
    # onto the snapshot key Secret of an older operator.
    ("", "secrets", "patch", chartkit.KEYS_SECRET): "handlers._keys (first start that signs)",
    # controller/sealing.py KeyManager: the sealing keys Secret is read (start, reload), created
    # once, merge-patched with a new key on each renewal; the cert ConfigMap is read, created
    # once, merge-patched when the newest key changes.
    ("", "secrets", "get", SEALING_KEYS): "KeyManager._read_keys / reload",
    ("", "secrets", "patch", SEALING_KEYS): "KeyManager.renew",
    ("", "configmaps", "get", SEALING_CERT): "KeyManager.publish",
    ("", "configmaps", "create", ""): "KeyManager.publish (first start)",
    ("", "configmaps", "patch", SEALING_CERT): "KeyManager.publish (after a renewal)",
}
# Kopf's own observation (kopf/_core/reactor/observation.py) watches CRDs cluster-wide. In
# namespaced mode the operator turns Kopf's scanning off (handlers.configure), so that mode
# needs nothing cluster-scoped.
KOPF_CRDS: Final = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# Leader election (controller/leader.py), only with several replicas or when enabled.
LEASES: Final[dict[tuple[str, str, str, str], str]] = {
    ("coordination.k8s.io", "leases", "get", "webapp-operator"): "LeaderElection._attempt",
    ("coordination.k8s.io", "leases", "update", "webapp-operator"): "LeaderElection renew/take",
    ("coordination.k8s.io", "leases", "create", ""): "LeaderElection._create (first replica)",
}


def _release(namespace: str) -> set[chartkit.Grant]:
    return {
        ("release", group, resource, verb, name.replace("<release namespace>", namespace))
        for group, resource, verb, name in IN_RELEASE_NAMESPACE
    }


def expected_cluster_wide(namespace: str = chartkit.NAMESPACE) -> set[chartkit.Grant]:
    cluster = {("cluster", g, r, v, "") for g, r, v in IN_WATCHED_NAMESPACES}
    cluster |= {("cluster", g, r, v, "") for g, r, v in KOPF_CRDS}
    return cluster | _release(namespace)


def expected_namespaced(namespace: str = chartkit.NAMESPACE) -> set[chartkit.Grant]:
    watched = {("watched", g, r, v, "") for g, r, v in IN_WATCHED_NAMESPACES}
    return watched | _release(namespace)


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return chartkit.parse(chartkit.template())


@pytest.fixture(scope="module")
def namespaced() -> list[dict[str, Any]]:
    return chartkit.parse(chartkit.template(values=[chartkit.NAMESPACED_VALUES]))


@pytest.mark.parametrize(
    "values",
    [[], [chartkit.NAMESPACED_VALUES], [chartkit.ALL_VALUES]],
    ids=["default", "namespaced", "all-values"],
)
def test_no_wildcard_in_any_rule(values: list[Path]) -> None:
    objects = chartkit.parse(chartkit.template(values=values))
    assert chartkit.wildcards(objects) == []
    assert any(o["kind"] in chartkit.RBAC_KINDS for o in objects)


def test_cluster_wide_rules_are_exactly_the_table(default: list[dict[str, Any]]) -> None:
    assert chartkit.grants(default) == expected_cluster_wide()


def test_namespaced_rules_are_exactly_the_table(namespaced: list[dict[str, Any]]) -> None:
    assert chartkit.grants(namespaced) == expected_namespaced()
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in namespaced
        if o["kind"] == "Role"
    }
    assert roles == {
        ("team-a", "webapp-operator"),
        ("team-b", "webapp-operator"),
        ("webapp-operator", "webapp-operator-self"),
    }


def test_namespaced_mode_is_roles_only(namespaced: list[dict[str, Any]]) -> None:
    assert not [o for o in namespaced if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert not {g for g in chartkit.grants(namespaced) if g[0] == "cluster"}


@pytest.mark.parametrize(
    "sets",
    [{"replicas": "2"}, {"leaderElection.enabled": "true"}],
    ids=["two-replicas", "enabled"],
)
def test_leader_election_adds_the_lease_and_its_rules(sets: dict[str, str]) -> None:
    objects = chartkit.parse(chartkit.template(values=[chartkit.NAMESPACED_VALUES], sets=sets))
    leases = {("release", g, r, v, n) for g, r, v, n in LEASES}
    assert chartkit.grants(objects) == expected_namespaced() | leases
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    assert "--lease-duration=15" in args
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_one_replica_has_no_lease_and_recreates(default: list[dict[str, Any]]) -> None:
    (deployment,) = [o for o in default if o["kind"] == "Deployment"]
    assert "--leader-elect" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not {g for g in chartkit.grants(default) if g[2] == "leases"}


def test_every_binding_names_the_chart_service_account(
    default: list[dict[str, Any]], namespaced: list[dict[str, Any]]
) -> None:
    for objects in (default, namespaced):
        bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
        assert bindings
        roles = {(o["kind"], o["metadata"]["name"]) for o in objects}
        for binding in bindings:
            assert binding["subjects"] == [
                {
                    "kind": "ServiceAccount",
                    "name": "webapp-operator",
                    "namespace": chartkit.NAMESPACE,
                }
            ]
            ref = binding["roleRef"]
            assert (ref["kind"], ref["name"]) in roles


def test_rbac_can_be_left_to_the_platform() -> None:
    objects = chartkit.parse(chartkit.template(sets={"rbac.create": "false"}))
    assert not [o for o in objects if "Role" in str(o["kind"])]
