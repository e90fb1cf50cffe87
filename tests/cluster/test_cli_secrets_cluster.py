"""The secret commands against the real API server, run through the entry point as a user would.

The operator is not running here: where a command needs revision snapshots or a WebApp's
status, the test writes them the way the operator would (the controller's own tests prove that
it does). Every command uses the kubeconfig in KUBECONFIG, as `kubectl webapp` does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Secret
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType
from tests.cluster.conftest import ServiceAccountFactory
from tests.cluster.support import REPO_ROOT, is_not_found, wait_for

from webapp_operator.cli import main
from webapp_operator.cli import secrets as cli
from webapp_operator.domain import grants, revisions, schedule
from webapp_operator.kube.client import WebAppResource

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

CRD_FILE = REPO_ROOT / "crds" / "webapps.twelvefactor.dev.yaml"
PASSWORD = "s3cr3t-Pa55w0rd-cli"
NEW_PASSWORD = "n3w-Pa55w0rd-cli"
OLD_PASSWORD = "0ld-Pa55w0rd-cli"


@pytest.fixture(scope="session")
def webapp_crd(kube: Client) -> None:
    """The committed WebApp CRD, applied (idempotently) and served."""
    body = yaml.safe_load(CRD_FILE.read_text())
    crd = CustomResourceDefinition.from_dict(body)
    kube.apply(crd, field_manager="tests", force=True)  # type: ignore[call-overload]

    def established() -> bool:
        crd = kube.get(CustomResourceDefinition, body["metadata"]["name"])
        conditions = (crd.status.conditions if crd.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, 60, message="the WebApp CRD to be established")


@pytest.fixture
def as_admin(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands act with the admin kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))


Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    status = main.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, err = run(capsys, *argv)
    assert status == 0, f"{argv} failed: {err}"
    return out


def data_of(kube: Client, namespace: str, name: str) -> dict[str, str]:
    secret = kube.get(Secret, name, namespace=namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def meta_of(kube: Client, namespace: str, name: str) -> ObjectMeta:
    metadata = kube.get(Secret, name, namespace=namespace).metadata
    assert metadata is not None
    return metadata


def make_revision(
    kube: Client,
    namespace: str,
    source: str,
    number: int,
    content: Mapping[str, str],
    created: datetime,
    expires: datetime | None = None,
) -> None:
    """A revision snapshot as the operator makes it: immutable, labelled, owned by the source,
    signed (under a key of the test's: the CLI cannot check a signature, only see one)."""
    uid = meta_of(kube, namespace, source).uid
    data = {k: v.encode() for k, v in content.items()}
    annotations = {
        revisions.CREATED_ANNOTATION: schedule.format_time(created),
        revisions.SIGNATURE_ANNOTATION: revisions.signature(
            namespace, source, number, data, b"cli-tests-key"
        ),
    }
    if expires is not None:
        annotations[schedule.REVISION_EXPIRES_ANNOTATION] = schedule.format_time(expires)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": revisions.revision_name(source, number),
            "namespace": namespace,
            "labels": revisions.revision_labels(source, number),
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": source, "uid": uid}],
        },
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    kube.create(Secret.from_dict(body), namespace=namespace)  # type: ignore[call-overload]


def make_webapp(
    kube: Client,
    namespace: str,
    name: str,
    secrets: Mapping[str, Mapping[str, Any]],
    tracked: Mapping[str, int] | None = None,
) -> None:
    """A WebApp whose status says which revision each option tracks (as the operator writes)."""
    body = {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"framework": "flask", "image": "example.invalid/shop:1", "secrets": secrets},
    }
    wait_for(
        lambda: kube.create(WebAppResource.from_dict(body), namespace=namespace),
        timeout=30,
        message=f"creating WebApp {name}",
        ignore=(ApiError,),
    )
    if tracked:
        status = {
            "secrets": [
                {
                    "option": option,
                    "secretName": str(secrets[option]["secretName"]),
                    "trackedRevision": number,
                }
                for option, number in tracked.items()
            ]
        }
        kube.patch(
            WebAppResource.Status,
            name,
            {"status": status},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )


def refresh_annotation(kube: Client, namespace: str, name: str) -> str | None:
    got = kube.get(WebAppResource, name, namespace=namespace)
    annotations = (got.metadata.annotations if got.metadata else None) or {}
    value: str | None = annotations.get(cli.REFRESH_ANNOTATION)
    return value


def annotation(kube: Client, namespace: str, name: str, key: str) -> str | None:
    return (meta_of(kube, namespace, name).annotations or {}).get(key)


# --- add-secret, update-secret ---------------------------------------------------------------


@pytest.mark.usefixtures("as_admin")
def test_add_secret_creates_an_opted_in_secret(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys,
        "add-secret",
        "creds",
        "user=admin",
        f"password={PASSWORD}",
        "--grant",
        "shop,tools/reporter",
        "--rotate",
        "monthly",
        "--expire",
        "30d",
        "--description",
        "db login",
        "-n",
        namespace,
    )

    assert (status, out) == (0, f"{namespace}/creds\n"), err
    meta = meta_of(kube, namespace, "creds")
    assert meta.labels == {revisions.MANAGED_LABEL: "true"}
    assert meta.annotations == {
        grants.GRANT_ANNOTATION: "shop,tools/reporter",
        schedule.ROTATE_ANNOTATION: "monthly",
        schedule.EXPIRE_ANNOTATION: "30d",
        revisions.DESCRIPTION_ANNOTATION: "db login",
    }
    assert data_of(kube, namespace, "creds") == {"user": "admin", "password": PASSWORD}
    assert PASSWORD not in out + err


@pytest.mark.usefixtures("as_admin")
def test_add_secret_refuses_an_existing_secret_and_bad_settings(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(capsys, "add-secret", "creds", f"password={PASSWORD}", "-n", namespace)

    again = run(capsys, "add-secret", "creds", f"password={NEW_PASSWORD}", "-n", namespace)
    bad_rotate = run(
        capsys, "add-secret", "other", f"p={PASSWORD}", "--rotate", "sometimes", "-n", namespace
    )
    bad_grant = run(
        capsys, "add-secret", "other", f"p={PASSWORD}", "--grant", "Shop", "-n", namespace
    )

    assert again[0] == 1
    assert "already exists; change its content with: kubectl webapp update-secret creds" in again[2]
    assert bad_rotate[0] == 1
    assert (
        "--rotate: twelvefactor.dev/rotate: 'sometimes' is not a rotation policy" in bad_rotate[2]
    )
    assert bad_grant[0] == 1
    assert "'Shop' is not a WebApp" in bad_grant[2]
    assert data_of(kube, namespace, "creds") == {"password": PASSWORD}
    with pytest.raises(ApiError) as missing:
        kube.get(Secret, "other", namespace=namespace)
    assert is_not_found(missing.value), "a refused add-secret wrote something"
    for _, out, err in (again, bad_rotate, bad_grant):
        assert PASSWORD not in out + err
        assert NEW_PASSWORD not in out + err


@pytest.mark.usefixtures("as_admin")
def test_update_secret_replaces_the_content_and_keeps_the_rest(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(
        capsys,
        "add-secret",
        "creds",
        "user=admin",
        f"password={PASSWORD}",
        "old=x",
        "--grant",
        "shop",
        "-n",
        namespace,
    )

    out = ok(
        capsys,
        "update-secret",
        "creds",
        "user=admin",
        f"password={NEW_PASSWORD}",
        "token=t",
        "--rotate",
        "weekly",
        "-n",
        namespace,
    )
    version = meta_of(kube, namespace, "creds").resourceVersion
    same = ok(capsys, "update-secret", "creds", "user=admin", f"password={NEW_PASSWORD}",
              "token=t", "-n", namespace)  # fmt: skip

    assert out == (
        f"{namespace}/creds updated: added token; changed password; removed old; rotate weekly\n"
    )
    assert data_of(kube, namespace, "creds") == {
        "user": "admin",
        "password": NEW_PASSWORD,
        "token": "t",
    }
    meta = meta_of(kube, namespace, "creds")
    assert meta.labels == {revisions.MANAGED_LABEL: "true"}
    assert meta.annotations == {
        grants.GRANT_ANNOTATION: "shop",
        schedule.ROTATE_ANNOTATION: "weekly",
    }
    assert same.startswith(f"{namespace}/creds unchanged")
    assert meta.resourceVersion == version, "an identical update wrote to the API server"
    assert NEW_PASSWORD not in out + same


@pytest.mark.usefixtures("as_admin")
def test_update_secret_refuses_a_secret_that_is_not_opted_in(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.create(
        Secret(metadata=ObjectMeta(name="plain"), stringData={"password": PASSWORD}),
        namespace=namespace,
    )

    status, _, err = run(capsys, "update-secret", "plain", "password=x", "-n", namespace)
    missing = run(capsys, "update-secret", "nope", "password=x", "-n", namespace)

    assert status == 1
    assert (
        f"not opted in to revision tracking; opt it in with: kubectl label secret plain "
        f"-n {namespace} twelvefactor.dev/secret=true" in err
    )
    assert data_of(kube, namespace, "plain") == {"password": PASSWORD}
    assert missing[0] == 1
    assert "not found; create it with: kubectl webapp add-secret nope" in missing[2]


# --- grant-secret, revoke-secret -------------------------------------------------------------


@pytest.mark.usefixtures("as_admin")
def test_update_secret_refuses_a_sealed_secret(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.create(
        Secret(
            metadata=ObjectMeta(
                name="sealed",
                labels={"twelvefactor.dev/secret": "true"},
                annotations={"twelvefactor.dev/sealed": "true"},
            ),
            stringData={"password": "tfs1:0123456789abcdef:AAAA"},
        ),
        namespace=namespace,
    )
    status, _, err = run(capsys, "update-secret", "sealed", f"password={PASSWORD}", "-n", namespace)
    assert status == 1
    assert "is sealed" in err
    assert "seal --name sealed" in err
    assert PASSWORD not in err
    assert data_of(kube, namespace, "sealed") == {"password": "tfs1:0123456789abcdef:AAAA"}


@pytest.mark.usefixtures("as_admin")
def test_grant_and_revoke_edit_the_grant_annotation(
    kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(capsys, "add-secret", "creds", f"password={PASSWORD}", "-n", namespace)

    granted = ok(capsys, "grant-secret", "creds", "tools/reporter,shop", "api", "-n", namespace)
    after_grant = annotation(kube, namespace, "creds", grants.GRANT_ANNOTATION)
    ok(capsys, "revoke-secret", "creds", "api", "-n", namespace)
    after_revoke = annotation(kube, namespace, "creds", grants.GRANT_ANNOTATION)
    wildcard = run(capsys, "grant-secret", "creds", "*", "-n", namespace)
    covered = run(capsys, "revoke-secret", "creds", "shop", "-n", namespace)
    ok(capsys, "revoke-secret", "creds", "*,shop,tools/reporter", "-n", namespace)

    assert granted == (
        f"{namespace}/creds: granted api, shop, tools/reporter; access: api,shop,tools/reporter\n"
    )
    assert after_grant == "api,shop,tools/reporter"
    assert after_revoke == "shop,tools/reporter"
    assert wildcard[0] == 0
    assert covered[0] == 1
    assert "cannot revoke shop: the grant '*' gives it access" in covered[2]
    assert annotation(kube, namespace, "creds", grants.GRANT_ANNOTATION) is None
    assert data_of(kube, namespace, "creds") == {"password": PASSWORD}


# --- secrets, show-secret --------------------------------------------------------------------


@pytest.fixture
def three_revisions(kube: Client, namespace: str, capsys: pytest.CaptureFixture[str]) -> datetime:
    """`creds` with revisions 1-3 (3 expiring), and WebApps tracking 2 (shop) and 3 (api)."""
    ok(
        capsys,
        "add-secret",
        "creds",
        f"password={NEW_PASSWORD}",
        "--grant",
        "shop,api",
        "--rotate",
        "monthly",
        "--description",
        "db login",
        "-n",
        namespace,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    make_revision(kube, namespace, "creds", 1, {"password": OLD_PASSWORD}, now - timedelta(days=2))
    make_revision(kube, namespace, "creds", 2, {"password": PASSWORD}, now - timedelta(days=1))
    make_revision(
        kube, namespace, "creds", 3, {"password": NEW_PASSWORD}, now, now + timedelta(days=30)
    )
    kube.patch(
        Secret,
        "creds",
        {"metadata": {"annotations": {schedule.NEXT_ROTATION_ANNOTATION: "2099-01-01T00:00:00Z"}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    make_webapp(
        kube,
        namespace,
        "shop",
        {"credentials": {"secretName": "creds", "refresh": "manual"}},
        {"credentials": 2},
    )
    make_webapp(kube, namespace, "api", {"db": {"secretName": "creds"}}, {"db": 3})
    return now


@pytest.mark.usefixtures("as_admin", "webapp_crd")
def test_secrets_lists_revisions_observers_and_schedule(
    namespace: str, three_revisions: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(capsys, "add-secret", "plain", "k=v", "-n", namespace)

    table = ok(capsys, "secrets", "-n", namespace)
    listing = json.loads(ok(capsys, "secrets", "-n", namespace, "-o", "json"))
    everywhere = ok(capsys, "secrets", "-A")

    header, *rows = table.splitlines()
    assert re.split(r"\s{3,}", header) == list(cli.SECRETS_HEADERS)
    cells = [re.split(r"\s{3,}", row) for row in rows]
    expires = schedule.format_time(three_revisions + timedelta(days=30))
    assert cells[0][:7] == [
        "creds",
        "3",
        "api(3), shop(2)",
        "monthly",
        "2099-01-01T00:00:00Z",
        expires,
        "api,shop",
    ]
    assert cells[1][:7] == ["plain", "-", "-", "never", "-", "-", "-"]
    assert listing[f"{namespace}/creds"]["revision"] == 3
    assert listing[f"{namespace}/creds"]["observers"] == [
        {"app": "api", "option": "db", "tracked-revision": 3},
        {"app": "shop", "option": "credentials", "tracked-revision": 2},
    ]
    assert re.search(rf"^{namespace}\s+creds\s+3\s+api\(3\), shop\(2\)", everywhere, re.M)
    for text in (table, everywhere, json.dumps(listing)):
        assert PASSWORD not in text
        assert NEW_PASSWORD not in text


@pytest.mark.usefixtures("as_admin", "webapp_crd")
def test_show_secret_like_juju(
    namespace: str, three_revisions: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = yaml.safe_load(ok(capsys, "show-secret", "creds", "--revisions", "-n", namespace))
    latest = json.loads(
        ok(capsys, "show-secret", "creds", "--reveal", "-o", "json", "-n", namespace)
    )
    second = yaml.safe_load(
        ok(capsys, "show-secret", "creds", "--reveal", "--revision", "2", "-n", namespace)
    )
    missing = run(capsys, "show-secret", "creds", "--revision", "9", "-n", namespace)

    document = shown[f"{namespace}/creds"]
    assert document["revision"] == 3
    assert document["owner"] == namespace
    assert document["rotation"] == "monthly"
    assert document["rotates"] == "2099-01-01T00:00:00Z"
    assert document["description"] == "db login"
    assert document["updated"] == schedule.format_time(three_revisions)
    assert document["access"] == [
        {"target": "api", "role": "view"},
        {"target": "shop", "role": "view"},
    ]
    assert document["revisions"] == [
        {"revision": 1, "created": schedule.format_time(three_revisions - timedelta(days=2))},
        {"revision": 2, "created": schedule.format_time(three_revisions - timedelta(days=1))},
        {
            "revision": 3,
            "created": schedule.format_time(three_revisions),
            "expires": schedule.format_time(three_revisions + timedelta(days=30)),
        },
    ]
    assert "problems" not in document
    assert "content" not in document
    assert latest[f"{namespace}/creds"]["content"] == {"password": NEW_PASSWORD}
    assert second[f"{namespace}/creds"]["revision"] == 2
    assert second[f"{namespace}/creds"]["content"] == {"password": PASSWORD}
    assert missing[0] == 1
    assert "has no revision 9 (revisions: 1, 2, 3)" in missing[2]


# --- remove-secret ---------------------------------------------------------------------------


@pytest.mark.usefixtures("as_admin", "webapp_crd")
def test_remove_secret_revision_refuses_latest_and_tracked(
    kube: Client, namespace: str, three_revisions: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = run(capsys, "remove-secret", "creds", "--revision", "3", "-n", namespace)
    tracked = run(capsys, "remove-secret", "creds", "--revision", "2", "-n", namespace)
    removed = ok(capsys, "remove-secret", "creds", "--revision", "1", "-n", namespace)

    assert latest[0] == 1
    assert "revision 3 is the latest revision" in latest[2]
    assert tracked[0] == 1
    assert "in use by shop (option credentials); refresh it first" in tracked[2]
    assert removed == f"{namespace}/creds revision 1 removed\n"
    names = {
        s.metadata.name
        for s in kube.list(Secret, namespace=namespace, labels={revisions.MANAGED_LABEL: None})
        if s.metadata
    }
    assert names == {"creds", "creds.rev-2", "creds.rev-3"}


@pytest.mark.usefixtures("as_admin", "webapp_crd")
def test_remove_secret_removes_the_source_and_its_revisions_follow(
    kube: Client, namespace: str, three_revisions: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "remove-secret", "creds", "-n", namespace)

    assert status == 0, err
    assert out.startswith(f"{namespace}/creds removed")
    assert "WebApps still reference it" in err

    def all_gone() -> bool:
        return not list(
            kube.list(Secret, namespace=namespace, labels={revisions.MANAGED_LABEL: None})
        )

    wait_for(all_gone, timeout=60, message="the revisions to be garbage-collected")


# --- refresh ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("as_admin", "webapp_crd")
def test_refresh_sets_the_annotation_and_waits_for_the_operator(
    kube: Client, kubeconfig: Path, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_webapp(
        kube,
        namespace,
        "shop",
        {
            "credentials": {"secretName": "creds", "refresh": "manual"},
            "api-key": {"secretName": "key", "refresh": "manual"},
        },
    )

    def requested() -> str | None:
        return refresh_annotation(kube, namespace, "shop")

    ok(capsys, "refresh", "shop", "credentials", "-n", namespace)
    first = requested()
    unknown = run(capsys, "refresh", "shop", "nope", "-n", namespace)
    timeout = run(capsys, "refresh", "shop", "--wait", "--timeout", "1", "-n", namespace)

    assert first is not None
    assert re.fullmatch(r"credentials@\d+", first)
    assert unknown[0] == 1
    assert "has no secret option or integration nope; it has api-key, credentials" in unknown[2]
    assert timeout[0] == 1
    assert "did not confirm the refresh" in timeout[2]
    assert re.fullmatch(r"\*@\d+", requested() or "")

    # A stand-in operator: confirm the next request in status, as the controller does.
    stop = threading.Event()

    def operator() -> None:
        client = Client(KubeConfig.from_file(kubeconfig), field_manager="tests")
        try:
            seen = requested()
            while not stop.is_set():
                value = refresh_annotation(client, namespace, "shop")
                if value and value != seen:
                    client.patch(
                        WebAppResource.Status,
                        "shop",
                        {"status": {cli.REFRESHED_STATUS_FIELD: value}},
                        namespace=namespace,
                        patch_type=PatchType.MERGE,
                    )
                    return
                stop.wait(0.2)
        finally:
            client.close()

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    try:
        waited = run(
            capsys, "refresh", "shop", "api-key", "--wait", "--timeout", "30", "-n", namespace
        )
    finally:
        stop.set()
        thread.join(10)

    assert waited[0] == 0, waited[2]
    assert waited[1].endswith(f"{namespace}/shop: refreshed\n")


# --- RBAC: the CLI acts as the caller --------------------------------------------------------


def _role(kube: Client, namespace: str, name: str, rules: list[PolicyRule]) -> None:
    kube.create(Role(metadata=ObjectMeta(name=name), rules=rules), namespace=namespace)
    kube.create(
        RoleBinding(
            metadata=ObjectMeta(name=name),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name=name),
            subjects=[Subject(kind="ServiceAccount", name=name, namespace=namespace)],
        ),
        namespace=namespace,
    )


def _wait_until_allowed(client: Client, check: Callable[[Client], object]) -> None:
    wait_for(
        lambda: check(client) is not None,
        timeout=30,
        message="the RoleBinding to take effect",
        ignore=(ApiError,),
    )


WEBAPP_READER = PolicyRule(
    apiGroups=["twelvefactor.dev"], resources=["webapps"], verbs=["get", "list"]
)


@pytest.mark.usefixtures("webapp_crd")
def test_a_user_who_may_not_read_secrets_gets_a_clear_error_and_no_content(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    service_account: ServiceAccountFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    ok(capsys, "add-secret", "creds", f"password={PASSWORD}", "-n", namespace)
    make_revision(kube, namespace, "creds", 1, {"password": PASSWORD}, datetime.now(UTC))
    _role(kube, namespace, "viewer", [WEBAPP_READER])
    viewer = service_account("viewer")
    _wait_until_allowed(viewer.client, lambda c: list(c.list(WebAppResource, namespace=namespace)))

    monkeypatch.setenv("KUBECONFIG", str(viewer.kubeconfig))
    status, out, err = run(capsys, "show-secret", "creds", "--reveal")  # context namespace

    assert status == 1
    assert f"permission denied reading Secret {namespace}/creds" in err
    assert f"you need RBAC get on Secrets in namespace {namespace}" in err
    assert viewer.username in err
    assert PASSWORD not in out + err


@pytest.mark.usefixtures("webapp_crd")
def test_a_user_who_may_not_list_webapps_everywhere_still_gets_the_table(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    service_account: ServiceAccountFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    ok(capsys, "add-secret", "creds", f"password={PASSWORD}", "-n", namespace)
    make_webapp(kube, namespace, "shop", {"c": {"secretName": "creds"}}, {"c": 1})
    secret_reader = PolicyRule(apiGroups=[""], resources=["secrets"], verbs=["get", "list"])
    _role(kube, namespace, "lister", [WEBAPP_READER, secret_reader])
    lister = service_account("lister")
    _wait_until_allowed(lister.client, lambda c: list(c.list(Secret, namespace=namespace)))

    monkeypatch.setenv("KUBECONFIG", str(lister.kubeconfig))
    status, out, err = run(capsys, "secrets")

    assert status == 0, err
    assert (
        f"you may not list WebApps in all namespaces; observers are looked up in {namespace}" in err
    )
    assert re.search(r"^creds\s+-\s+shop\(1\)", out, re.M)
    assert PASSWORD not in out + err
