"""Nobody reads a Secret they were not granted, through the operator (invariants 2 and 5).

Mallory is a real restricted user: a ServiceAccount token from the TokenRequest API, with a
Role that may create/get/list/watch/update WebApps and get/list Deployments, ReplicaSets,
Pods and Events, and nothing on Secrets. The cluster holds a canary value in Secrets she was
not granted. She tries every way to make the operator copy it somewhere she can read, or into
an environment snapshot her pods would mount; each attempt must end in a clear condition.
Then, as her, everything she can read is searched for the canary (plain and base64), and, as
admin, every environment snapshot her apps' Deployments name.

One scene (namespaces, RBAC, the operator, the victim apps, all of Mallory's attempts created
together) is shared by the module; each attempt is its own test. The trust model's boundary
(`create`/`update` on WebApps is as powerful as on the Pods they run; a grant names an app of
the Secret's namespace) is tested from the side that holds; docs/reliability.md has the table.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Event, Namespace, Pod, Secret, Service, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from tests.cluster import opkit, support
from tests.cluster.support import BackgroundProcess, ServiceAccountIdentity, wait_for

pytestmark = pytest.mark.timeout(600)

CANARY = "canary-deputy-7f3a9c1e5b"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
KUBECTL_WEBAPP = str(Path(sys.executable).parent / "kubectl-webapp")
TEST_LABEL = "twelvefactor.dev/test"


def app_spec(**extra: Any) -> dict[str, Any]:
    return {"framework": "flask", "image": "mallory/app:1", **extra}


def secret_ref(name: str, **extra: Any) -> dict[str, Any]:
    return {"secrets": {"creds": {"secretName": name, **extra}}}


# --------------------------------------------------------------------------------------------
# The attempts: (test id, WebApp name, spec, expected Ready reason, what it tries)


@dataclass(frozen=True)
class Attempt:
    id: str
    app: str
    spec: dict[str, Any]
    reason: str
    what: str


def attempts(scene: Scene) -> list[Attempt]:
    """Built from the scene: some names (snapshots) are only known once the victim runs."""
    other, victim_env = scene.other, scene.victim_env
    return [
        Attempt("secrets", "m-secrets", app_spec(**secret_ref("canary-src")),
                "SecretNotGranted", "spec.secrets names the ungranted Secret"),
        Attempt("integrations", "m-integrations",
                app_spec(integrations={"postgresql": {"secretName": "canary-src"}}),
                "SecretNotGranted", "spec.integrations names it"),
        Attempt("pinned-revision", "m-pinned",
                app_spec(**secret_ref("canary-src", revision=1)),
                "SecretNotGranted", "a pin to its revision 1"),
        Attempt("app-secret-key-id", "m-key-id",
                app_spec(secrets={"app-secret-key-id": {"secretName": "canary-src"}}),
                "SecretNotGranted", "app-secret-key-id names it"),
        Attempt("not-opted-in", "m-unlabelled", app_spec(**secret_ref("plain-canary")),
                "SecretNotFound", "a Secret not opted in to tracking (no label)"),
        Attempt("cross-namespace-same-name", "shop",
                app_spec(**secret_ref(f"{other}/cross-canary")),
                "SecretNotGranted",
                f"WebApp `shop`, named like the app {other}/shop the Secret is granted to"),
        Attempt("cross-namespace-wildcard", "m-wildcard",
                app_spec(**secret_ref(f"{other}/wild-canary")),
                "SecretNotGranted", f"{other}/wild-canary grants `*` (its own namespace only)"),
        Attempt("revision-snapshot", "m-revision", app_spec(**secret_ref("canary-src.rev-1")),
                "SecretNotFound", "the revision snapshot canary-src.rev-1, by name"),
        Attempt("env-snapshot", "m-env", app_spec(**secret_ref(victim_env)),
                "SecretNotFound", f"the victim's environment snapshot {victim_env}, by name"),
        Attempt("app-secret-key", "m-secret-key", app_spec(**secret_ref("victim.secret-key")),
                "SecretNotGranted", "the victim's app secret key victim.secret-key"),
        Attempt("owned-secret", "m-owned", app_spec(**secret_ref("victim.token")),
                "SecretNotGranted", "the victim's owned secret victim.token"),
        Attempt("operator-keys", "m-operator-keys",
                app_spec(**secret_ref("webapp-operator-keys")),
                "SecretNotFound", "the operator's snapshot key Secret webapp-operator-keys"),
        Attempt("sealing-keys", "m-sealing-keys",
                app_spec(**secret_ref("webapp-operator-sealing-keys")),
                "SecretNotFound", "the operator's sealing keys webapp-operator-sealing-keys"),
        Attempt("owned-name-opted-in", "m-adopt",
                app_spec(ownedSecrets={"loot": {"keys": ["password"]}}),
                "InvalidConfig",
                "ownedSecrets `loot` where the opted-in Secret m-adopt.loot already exists"),
        Attempt("owned-name-plain", "m-adopt-plain",
                app_spec(ownedSecrets={"loot": {"keys": ["password"]}}),
                "InvalidConfig",
                "ownedSecrets `loot` where the plain Secret m-adopt-plain.loot already exists"),
        Attempt("service-takeover", "payments", app_spec(), "InvalidConfig",
                "WebApp `payments`, named like the admin's Service payments, to send its "
                "traffic (and its clients' credentials) to her pods"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# The scene


@dataclass
class Scene:
    admin: Client
    kubeconfig: Path
    ns: str
    other: str
    operator: BackgroundProcess
    mallory: ServiceAccountIdentity
    workdir: Path
    victim_env: str = ""
    created: dict[str, Attempt] = field(default_factory=dict)

    def condition(self, app: str, namespace: str | None = None) -> dict[str, Any]:
        body = opkit.as_dict(self.admin.get(opkit.WebApp, app, namespace=namespace or self.ns))
        for cond in (body.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready":
                return dict(cond)
        return {}

    def wait_ready(self, app: str, namespace: str | None = None) -> None:
        wait_for(
            lambda: self.condition(app, namespace).get("status") == "True",
            120,
            message=f"{app} Ready",
            ignore=(ApiError,),
        )

    def secret(
        self,
        name: str,
        data: dict[str, str],
        namespace: str | None = None,
        grant: str | None = None,
        opted_in: bool = False,
    ) -> None:
        """A Secret as its owner (admin) writes it: opted in or not, granted or not."""
        meta: dict[str, Any] = {"name": name, "namespace": namespace or self.ns}
        if opted_in:
            meta["labels"] = {"twelvefactor.dev/secret": "true"}
        if grant is not None:
            meta["annotations"] = {"twelvefactor.dev/grant": grant}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        opkit.apply(self.admin, Secret, body)

    def webapp(self, client: Client, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec,
        }
        obj: Any = opkit.WebApp.from_dict(body)
        client.create(obj)

    def env_of(self, name: str) -> dict[str, str]:
        body = opkit.as_dict(self.admin.get(Secret, name, namespace=self.ns))
        return {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}

    def referenced_snapshots(self, app: str) -> set[str]:
        """Every Secret the app's Deployments and ReplicaSets name in envFrom (as admin)."""
        names: set[str] = set()
        selector: Any = {"twelvefactor.dev/webapp": app}
        for res in (Deployment, ReplicaSet):
            for obj in self.admin.list(res, namespace=self.ns, labels=selector):
                body = opkit.as_dict(obj)
                for container in body["spec"]["template"]["spec"]["containers"]:
                    for source in container.get("envFrom") or []:
                        if source.get("secretRef"):
                            names.add(source["secretRef"]["name"])
        return names


# Another team's Service, made by hand: the operator must never make it select her pods.
PAYMENTS_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "payments"},
    "spec": {"selector": {"app": "payments-backend"}, "ports": [{"port": 80}]},
}

MALLORY_RULES = [
    {
        "apiGroups": ["twelvefactor.dev"],
        "resources": ["webapps"],
        "verbs": ["create", "get", "list", "watch", "update"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "replicasets"],
        "verbs": ["get", "list"],
    },
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list"]},
]


@pytest.fixture(scope="module")
def scene(
    kube: Client, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    suffix = uuid.uuid4().hex[:6]
    ns, other = f"t-deputy-{suffix}", f"t-deputy-other-{suffix}"
    workdir = tmp_path_factory.mktemp("deputy")
    for name in (ns, other):
        kube.create(Namespace(metadata=ObjectMeta(name=name, labels={TEST_LABEL: "true"})))
    operator = BackgroundProcess(
        name="operator",
        argv=[
            opkit.WEBAPP_CLI, "run", "--debug", "--operator-namespace", ns,
            "--namespace", ns, "--namespace", other, "--metrics-port", "0",
        ],
        log_path=workdir / "operator.log",
        env=support.tool_env(kubeconfig),
    )  # fmt: skip
    try:
        opkit.install_crd(kube)
        operator.start()
        operator.wait_for_log(r"webapp-operator started", timeout=60)
        opkit.apply(kube, Role, opkit.role(ns, "mallory", MALLORY_RULES))
        opkit.apply(kube, RoleBinding, opkit.role_binding(ns, "mallory", "mallory"))
        mallory = support.service_account_identity(kube, kubeconfig, ns, "mallory", workdir)
        built = Scene(kube, kubeconfig, ns, other, operator, mallory, workdir)
        _stage(built)
        yield built
        mallory.client.close()
    finally:
        operator.stop()
        for name in (ns, other):
            try:
                kube.delete(Namespace, name)
            except ApiError as error:
                if not support.is_not_found(error):
                    raise


def _stage(scene: Scene) -> None:
    """The admin's Secrets and victim apps, then every one of Mallory's attempts at once."""
    canary = {"password": CANARY}
    scene.secret("canary-src", canary, grant="victim", opted_in=True)
    scene.secret("plain-canary", canary)
    scene.secret("m-adopt.loot", canary, opted_in=True)  # opted in, but owned by nobody
    scene.secret("m-adopt-plain.loot", canary)  # a plain Secret with an owned secret's name
    # Granted to other/shop (a bare name is the Secret's namespace), never to ns/shop.
    scene.secret("cross-canary", canary, scene.other, grant="shop", opted_in=True)
    scene.secret("wild-canary", canary, scene.other, grant="*", opted_in=True)
    payments = {**PAYMENTS_SERVICE, "metadata": {"name": "payments", "namespace": scene.ns}}
    opkit.apply(scene.admin, Service, payments)  # another team's, made by hand
    victim = app_spec(**secret_ref("canary-src"), ownedSecrets={"token": {"keys": ["token"]}})
    scene.webapp(scene.admin, "victim", victim)
    scene.wait_ready("victim")
    status = opkit.as_dict(scene.admin.get(opkit.WebApp, "victim", namespace=scene.ns))["status"]
    scene.victim_env = str(status["environment"])
    assert scene.env_of(scene.victim_env)["FLASK_CREDS_PASSWORD"] == CANARY  # the bait is real
    for attempt in attempts(scene):
        scene.webapp(scene.mallory.client, attempt.app, attempt.spec)
        scene.created[attempt.id] = attempt


# --------------------------------------------------------------------------------------------
# Each attempt ends in a clear condition, and nothing she could mount holds the canary


ATTEMPT_IDS = [
    "secrets",
    "integrations",
    "pinned-revision",
    "app-secret-key-id",
    "not-opted-in",
    "cross-namespace-same-name",
    "cross-namespace-wildcard",
    "revision-snapshot",
    "env-snapshot",
    "app-secret-key",
    "owned-secret",
    "operator-keys",
    "sealing-keys",
    "owned-name-opted-in",
    "owned-name-plain",
    "service-takeover",
]


def canary_free_snapshots(scene: Scene, app: str) -> None:
    for name in scene.referenced_snapshots(app):
        try:
            values = scene.env_of(name)
        except ApiError as error:
            if support.is_not_found(error):
                continue  # a pod cannot start on a missing Secret
            raise
        for canary in (CANARY, LEAK_CANARY):
            assert canary not in json.dumps(values), f"{app}'s pods would mount {name} with it"


def foreign_untouched(scene: Scene, name: str) -> None:
    """A Secret the operator must neither adopt nor change: same data, none of its marks."""
    body = opkit.as_dict(scene.admin.get(Secret, name, namespace=scene.ns))
    assert body["data"] == {"password": CANARY_B64}, f"{name} was overwritten"
    meta = body["metadata"]
    assert "twelvefactor.dev/owned-by" not in (meta.get("labels") or {}), f"{name} adopted"
    assert not meta.get("ownerReferences"), f"{name} adopted"
    assert "twelvefactor.dev/generate" not in (meta.get("annotations") or {}), f"{name} adopted"


@pytest.mark.parametrize("attempt_id", ATTEMPT_IDS)
def test_attempt_ends_in_a_clear_condition(scene: Scene, attempt_id: str) -> None:
    attempt = scene.created[attempt_id]
    try:
        cond = wait_for(
            lambda: (c := scene.condition(attempt.app)).get("reason") == attempt.reason and c,
            30,
            message=lambda: (
                f"{attempt.app}: Ready=False {attempt.reason} ({attempt.what}); "
                f"now {scene.condition(attempt.app)}"
            ),
            ignore=(ApiError,),
        )
    finally:
        # Whatever the condition says, nothing was copied where her pods could read it.
        assert scene.referenced_snapshots(attempt.app) == set(), "a Deployment was made"
        canary_free_snapshots(scene, attempt.app)
        if attempt_id.startswith("owned-name"):
            foreign_untouched(scene, f"{attempt.app}.loot")
        if attempt_id == "service-takeover":
            service = opkit.as_dict(scene.admin.get(Service, "payments", namespace=scene.ns))
            assert service["spec"]["selector"] == {"app": "payments-backend"}, "taken over"
            managers = {e.get("manager") for e in service["metadata"].get("managedFields") or []}
            assert "webapp-operator" not in managers
    assert cond["status"] == "False"
    assert CANARY not in cond["message"]


# --------------------------------------------------------------------------------------------
# ServiceAccounts, and the trust model's boundary
#
# They use another canary, so that the attempts above and the final scan stay meaningful.

LEAK_CANARY = "canary-deputy-leak-41d0e2"


def runs_with(scene: Scene, app: str, image: str) -> str | None:
    """The snapshot of `app`'s Deployment if it runs `image` on a snapshot with LEAK_CANARY."""
    selector: Any = {"twelvefactor.dev/webapp": app}
    for obj in scene.admin.list(Deployment, namespace=scene.ns, labels=selector):
        pod = opkit.as_dict(obj)["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for source in container.get("envFrom") or []:
                name = (source.get("secretRef") or {}).get("name")
                if container["image"] == image and name and LEAK_CANARY in str(scene.env_of(name)):
                    return str(name)
    return None


def test_pods_as_another_service_account(scene: Scene) -> None:
    """A ServiceAccount that has not granted her app is refused by name; nothing runs as it."""
    ns = scene.ns
    scene.secret("sa-canary", {"password": LEAK_CANARY})
    reader = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    opkit.apply(scene.admin, Role, opkit.role(ns, "secret-reader", reader))
    opkit.apply(scene.admin, RoleBinding, opkit.role_binding(ns, "secret-reader", "secret-reader"))
    support.service_account_identity(
        scene.admin, scene.kubeconfig, ns, "secret-reader", scene.workdir
    ).client.close()
    # Mallory herself may not read it; the ServiceAccount may.
    with pytest.raises(ApiError) as denied:
        scene.mallory.client.get(Secret, "sa-canary", namespace=ns)
    assert support.api_status(denied.value) == 403
    spec = app_spec(serviceAccountName="secret-reader", image="mallory/exfil:1")
    scene.webapp(scene.mallory.client, "m-service-account", spec)
    scene.webapp(scene.mallory.client, "m-no-account", app_spec(serviceAccountName="nobody"))

    cond = wait_for(
        lambda: (
            (c := scene.condition("m-service-account")).get("reason") == "ServiceAccountNotGranted"
            and c
        ),
        60,
        message=lambda: f"ServiceAccountNotGranted; now {scene.condition('m-service-account')}",
        ignore=(ApiError,),
    )
    assert cond["status"] == "False"
    assert "ServiceAccount" in cond["message"]
    assert "secret-reader" in cond["message"]
    assert "kubectl annotate serviceaccount secret-reader" in cond["message"]
    assert scene.referenced_snapshots("m-service-account") == set(), "a Deployment was made"
    missing = wait_for(
        lambda: (
            (c := scene.condition("m-no-account")).get("reason") == "ServiceAccountNotFound" and c
        ),
        60,
        message=lambda: f"ServiceAccountNotFound; now {scene.condition('m-no-account')}",
        ignore=(ApiError,),
    )
    assert "nobody" in missing["message"]
    assert scene.referenced_snapshots("m-no-account") == set(), "a Deployment was made"


def test_a_service_account_that_grants_the_app_runs_it(scene: Scene) -> None:
    """The owner of a ServiceAccount grants it to an app, as for a Secret: then it runs as it."""
    ns = scene.ns
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "runner",
            "namespace": ns,
            "annotations": {"twelvefactor.dev/grant": "m-granted-account"},
        },
    }
    opkit.apply(scene.admin, ServiceAccount, account)
    scene.webapp(
        scene.admin, "m-granted-account", app_spec(serviceAccountName="runner", image="ok:1")
    )
    scene.wait_ready("m-granted-account")
    selector: Any = {"twelvefactor.dev/webapp": "m-granted-account"}
    accounts = {
        opkit.as_dict(d)["spec"]["template"]["spec"].get("serviceAccountName")
        for d in scene.admin.list(Deployment, namespace=ns, labels=selector)
    }
    assert accounts == {"runner"}
    # Granted to that app only: another app naming it is refused.
    scene.webapp(scene.mallory.client, "m-runner-too", app_spec(serviceAccountName="runner"))
    wait_for(
        lambda: scene.condition("m-runner-too").get("reason") == "ServiceAccountNotGranted",
        60,
        message="ServiceAccountNotGranted for an app the account did not grant",
        ignore=(ApiError,),
    )


def test_without_update_she_cannot_change_a_granted_app(scene: Scene) -> None:
    """The trust model (docs/reliability.md): `update` on WebApps is as powerful as `update` on
    the Deployments they render, so it is given like that. Without it, the granted app stays
    as its owner wrote it."""
    ns = scene.ns
    scene.secret("payroll-db", {"password": LEAK_CANARY}, grant="payroll", opted_in=True)
    scene.webapp(scene.admin, "payroll", app_spec(image="payroll:1", **secret_ref("payroll-db")))
    scene.wait_ready("payroll")
    no_update = [
        {
            "apiGroups": ["twelvefactor.dev"],
            "resources": ["webapps"],
            "verbs": ["create", "get", "list", "watch"],
        }
    ]
    opkit.apply(scene.admin, Role, opkit.role(ns, "eve", no_update))
    opkit.apply(scene.admin, RoleBinding, opkit.role_binding(ns, "eve", "eve"))
    eve = support.service_account_identity(scene.admin, scene.kubeconfig, ns, "eve", scene.workdir)
    try:
        body = opkit.as_dict(eve.client.get(opkit.WebApp, "payroll", namespace=ns))
        body["spec"]["image"] = "mallory/exfil:1"
        with pytest.raises(ApiError) as denied:
            eve.client.replace(opkit.WebApp.from_dict(body))
        assert support.api_status(denied.value) == 403
        with pytest.raises(ApiError) as denied:
            eve.client.patch(
                opkit.WebApp, "payroll", {"spec": {"image": "mallory/exfil:1"}}, namespace=ns
            )
        assert support.api_status(denied.value) == 403
    finally:
        eve.client.close()
    assert runs_with(scene, "payroll", "payroll:1"), "payroll runs its own image"
    assert runs_with(scene, "payroll", "mallory/exfil:1") is None


def test_a_grant_by_name_reaches_no_other_namespace(scene: Scene) -> None:
    """A grant names an app of the Secret's namespace (whoever may create WebApps there can
    create that name: the trust model, docs/reliability.md); the same name in another
    namespace gets nothing."""
    scene.secret("billing-db", {"password": LEAK_CANARY}, grant="billing", opted_in=True)
    body = {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "billing", "namespace": scene.other},
        "spec": app_spec(image="mallory/exfil:1", **secret_ref(f"{scene.ns}/billing-db")),
    }
    obj: Any = opkit.WebApp.from_dict(body)
    scene.admin.create(obj)
    cond = wait_for(
        lambda: (
            (c := scene.condition("billing", scene.other)).get("reason") == "SecretNotGranted" and c
        ),
        60,
        message="SecretNotGranted for billing in the other namespace",
        ignore=(ApiError,),
    )
    assert cond["status"] == "False"
    selector: Any = {"twelvefactor.dev/webapp": "billing"}
    assert list(scene.admin.list(Deployment, namespace=scene.other, labels=selector)) == []


def uid_from_events(client: Client, namespace: str, secret: str) -> str:
    """A Secret's uid as anyone who may list Events learns it (its RevisionCreated Event)."""

    def found() -> str | None:
        for event in client.list(Event, namespace=namespace):
            involved = opkit.as_dict(event)["involvedObject"]
            if involved.get("kind") == "Secret" and involved.get("name") == secret:
                return str(involved["uid"])
        return None

    return wait_for(found, 60, message=f"the RevisionCreated Event of {secret}")


def test_a_secret_labelled_as_a_revision_is_never_read(scene: Scene) -> None:
    """Trudy may patch one Secret she cannot read (RBAC allows `patch` without `get`), list
    Events (each names its object's uid) and create WebApps. She labels that Secret as
    revision 2 of a Secret granted to her app, with an ownerReference to its uid, and pins
    her app to revision 2: before revisions were signed, its content became her app's
    environment. Now her app waits for the real revision 2, the Secret is neither read nor
    removed, and the real revision 2 reaches her app once its source changes. (Patching the
    Secret's own grant would give her the same read: who may write a Secret owns it, the
    trust model of docs/operator.md. What this proves is that a revision is only ever the
    operator's; the unit tier has the `create`-only injection into other apps.)"""
    ns = scene.ns
    scene.secret("handout", {"motd": "hello"}, grant="t-pinned", opted_in=True)
    scene.secret("vault", {"password": LEAK_CANARY})
    rules = [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["vault"],
         "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
        {"apiGroups": ["twelvefactor.dev"], "resources": ["webapps"],
         "verbs": ["create", "get", "list"]},
    ]  # fmt: skip
    opkit.apply(scene.admin, Role, opkit.role(ns, "trudy", rules))
    opkit.apply(scene.admin, RoleBinding, opkit.role_binding(ns, "trudy", "trudy"))
    trudy = support.service_account_identity(
        scene.admin, scene.kubeconfig, ns, "trudy", scene.workdir
    )
    try:
        with pytest.raises(ApiError) as denied:
            trudy.client.get(Secret, "vault", namespace=ns)
        assert support.api_status(denied.value) == 403

        uid = uid_from_events(trudy.client, ns, "handout")
        forged = {
            "metadata": {
                "labels": {
                    "twelvefactor.dev/secret": "revision",
                    "twelvefactor.dev/revision-of": "handout",
                    "twelvefactor.dev/revision": "2",
                },
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Secret", "name": "handout", "uid": uid}
                ],
            }
        }
        trudy.client.patch(Secret, "vault", forged, namespace=ns)
        pinned = secret_ref("handout", revision=2, refresh="manual")
        scene.webapp(trudy.client, "t-pinned", app_spec(**pinned))
        cond = wait_for(
            lambda: (c := scene.condition("t-pinned")).get("reason") == "RevisionNotFound" and c,
            60,
            message=lambda: (
                f"t-pinned: Ready=False RevisionNotFound; now {scene.condition('t-pinned')}"
            ),
            ignore=(ApiError,),
        )
        assert cond["status"] == "False"
        assert _hits("t-pinned's condition", json.dumps(cond)) == []
        canary_free_snapshots(scene, "t-pinned")

        # The source changes: the real revision 2 is made, read, and the forged Secret stays.
        scene.secret("handout", {"motd": "bye"}, grant="t-pinned", opted_in=True)
        scene.wait_ready("t-pinned")
        status = opkit.as_dict(scene.admin.get(opkit.WebApp, "t-pinned", namespace=ns))["status"]
        assert scene.env_of(str(status["environment"]))["FLASK_CREDS_MOTD"] == "bye"
        canary_free_snapshots(scene, "t-pinned")
        kept = opkit.as_dict(scene.admin.get(Secret, "vault", namespace=ns))
        assert base64.b64decode(kept["data"]["password"]).decode() == LEAK_CANARY
        assert "twelvefactor.dev/signature" not in (kept["metadata"].get("annotations") or {})
        assert _hits("operator log", scene.operator.log_text()) == []
    finally:
        trudy.client.close()


def test_a_secret_of_hers_labelled_as_a_revision_reaches_no_app(scene: Scene) -> None:
    """Carol may create Secrets, not update them, and list Events. The admin's app `ledger`
    pins revision 2 of `ledger-db`, which the owner has not made yet. Carol creates her own
    Secret labelled as that revision (values of her choosing, an ownerReference to the
    source's uid): without the operator she could not change what `ledger` reads. It must
    wait for the owner's revision 2 and then run it, her Secret left as it is."""
    ns = scene.ns
    injected = "carol-injected-9b27"
    scene.secret("ledger-db", {"url": "postgres://ledger-1"}, grant="ledger", opted_in=True)
    pinned = secret_ref("ledger-db", revision=2, refresh="manual")
    scene.webapp(scene.admin, "ledger", app_spec(image="ledger:1", **pinned))
    rules = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
    ]
    opkit.apply(scene.admin, Role, opkit.role(ns, "carol", rules))
    opkit.apply(scene.admin, RoleBinding, opkit.role_binding(ns, "carol", "carol"))
    carol = support.service_account_identity(
        scene.admin, scene.kubeconfig, ns, "carol", scene.workdir
    )
    try:
        uid = uid_from_events(carol.client, ns, "ledger-db")
        forged: Any = Secret.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "carols-revision",
                    "namespace": ns,
                    "labels": {
                        "twelvefactor.dev/secret": "revision",
                        "twelvefactor.dev/revision-of": "ledger-db",
                        "twelvefactor.dev/revision": "2",
                    },
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Secret", "name": "ledger-db", "uid": uid}
                    ],
                },
                "stringData": {"url": f"postgres://{injected}"},
            }
        )
        carol.client.create(forged)
    finally:
        carol.client.close()
    cond = wait_for(
        lambda: (c := scene.condition("ledger")).get("reason") == "RevisionNotFound" and c,
        60,
        message=lambda: f"ledger: Ready=False RevisionNotFound; now {scene.condition('ledger')}",
        ignore=(ApiError,),
    )
    assert cond["status"] == "False"

    def holds(value: str) -> bool:
        return any(
            value in json.dumps(scene.env_of(n)) for n in scene.referenced_snapshots("ledger")
        )

    assert not holds(injected)
    scene.secret("ledger-db", {"url": "postgres://ledger-2"}, grant="ledger", opted_in=True)
    scene.wait_ready("ledger")
    assert holds("postgres://ledger-2")
    assert not holds(injected)
    kept = opkit.as_dict(scene.admin.get(Secret, "carols-revision", namespace=ns))
    assert base64.b64decode(kept["data"]["url"]).decode() == f"postgres://{injected}"


# --------------------------------------------------------------------------------------------
# Everything she can read, read as her


def _needles() -> list[str]:
    return [
        needle
        for value in (CANARY, LEAK_CANARY)
        for needle in (value, base64.b64encode(value.encode()).decode())
    ]


def _hits(where: str, text: str) -> list[str]:
    return [f"{where}: {needle[:8]}..." for needle in _needles() if needle in text]


def _cli(scene: Scene, *args: str) -> subprocess.CompletedProcess[str]:
    env = support.tool_env(scene.mallory.kubeconfig)
    return subprocess.run(
        [KUBECTL_WEBAPP, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_nothing_she_can_read_holds_the_canary(scene: Scene) -> None:
    ns, mallory = scene.ns, scene.mallory.client
    # Everything settled: every attempt has its condition (but the one known to get none).
    for attempt in scene.created.values():
        wait_for(lambda a=attempt: scene.condition(a.app).get("status"), 60,  # type: ignore[misc]
                 message=f"{attempt.app} to have a condition")  # fmt: skip
    with pytest.raises(ApiError) as denied:
        list(mallory.list(Secret, namespace=ns))
    assert support.api_status(denied.value) == 403, "Mallory must not list Secrets"

    hits: list[str] = []
    apps = [opkit.as_dict(w) for w in mallory.list(opkit.WebApp, namespace=ns)]
    assert len(apps) >= len(scene.created)
    for res in (opkit.WebApp, Deployment, ReplicaSet, Pod, Event):
        for obj in mallory.list(res, namespace=ns):
            body = opkit.as_dict(obj)
            hits += _hits(f"{res.__name__}/{body['metadata']['name']}", json.dumps(body))

    # The CLI with her kubeconfig: status of every app, and the Secret commands (refused).
    for app in apps:
        name = app["metadata"]["name"]
        done = _cli(scene, "status", name, "-n", ns, "-o", "yaml")
        assert done.returncode == 0, done.stderr
        hits += _hits(f"status {name}", done.stdout + done.stderr)
    for args in (
        ("secrets", "-n", ns),
        ("show-secret", "canary-src", "--reveal", "--revisions", "-n", ns),
        ("show-secret", "victim.secret-key", "--reveal", "-n", ns),
    ):
        done = _cli(scene, *args)
        assert done.returncode != 0, f"{args}: she may not read Secrets"
        hits += _hits(" ".join(args), done.stdout + done.stderr)
    # `render` of every WebApp she can read, values revealed: she has no Secret to give it.
    exported = scene.workdir / "webapps.yaml"
    exported.write_text(yaml.safe_dump_all(apps))
    done = _cli(scene, "render", "-f", str(exported), "--reveal", "-n", ns)
    hits += _hits("render --reveal", done.stdout + done.stderr)
    # And kubectl itself, as her.
    kubectl = subprocess.run(
        ["kubectl", "get", "webapps,deployments,replicasets,pods,events", "-n", ns, "-o", "yaml"],
        env=support.tool_env(scene.mallory.kubeconfig),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hits += _hits("kubectl get -o yaml", kubectl.stdout)
    assert hits == []

    # As admin: the operator's log, and every environment snapshot of her attempts' apps.
    hits += _hits("operator log", scene.operator.log_text())
    for attempt in scene.created.values():
        canary_free_snapshots(scene, attempt.app)
    assert hits == []
