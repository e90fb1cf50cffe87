"""Sealed secrets on the real API server: `cert`, `seal`, and the operator opening, refusing,
renewing and losing its keys (issue 5 item 6, issue 7 item 6).

Each test runs the operator in the background with its keys in the test's namespace (the Kit
passes it as --operator-namespace), seals values with the CLI exactly as a user would (the
public key read from the cluster, or from a saved file), and applies the manifest `seal`
prints. The operator's clock is shifted through a file, so key renewal is tested in moments.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret
from lightkube.types import PatchType
from tests.cluster import opkit
from tests.cluster.support import BackgroundProcess, wait_for
from tests.cluster.test_rotation_expiry import ShiftedClock

from webapp_operator.cli import main
from webapp_operator.domain import sealing

KEYS_SECRET = "webapp-operator-sealing-keys"
CERT_CONFIGMAP = "webapp-operator-sealing-cert"
PASSWORD_1 = "canary-sealed-one-51c9"
PASSWORD_2 = "canary-sealed-two-a07e"
PASSWORD_3 = "canary-sealed-three-3b8d"
CANARIES = [PASSWORD_1, PASSWORD_2, PASSWORD_3]

APP = {
    "framework": "flask",
    "image": "shop:1",
    "processes": {
        "web": {"command": ["gunicorn", "app:app"]},
        "celery-worker": {"command": ["celery", "worker"]},
    },
    "secrets": {"credentials": {"secretName": "credentials"}},
}


@pytest.fixture
def clock(tmp_path: Path) -> ShiftedClock:
    return ShiftedClock(tmp_path / "clock-offset")


@pytest.fixture
def kit(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    background: Callable[..., BackgroundProcess],
    clock: ShiftedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[opkit.Kit]:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # for the CLI, run in this process
    for kit in opkit.kit_fixture(kube, namespace, background, kubeconfig):
        kit.extra_args = ["--clock-offset-file", str(clock.path)]
        yield kit


@pytest.fixture
def other_namespace(kube: Client, namespace: str) -> Iterator[str]:
    name = f"{namespace[:55]}-other"
    kube.create(Namespace(metadata=ObjectMeta(name=name, labels={"twelvefactor.dev/test": "true"})))
    yield name
    kube.delete(Namespace, name)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def seal(
    kit: opkit.Kit,
    capsys: pytest.CaptureFixture[str],
    name: str,
    values: Mapping[str, str],
    namespace: str | None = None,
    grant: str = "shop",
    cert: Path | None = None,
) -> dict[str, Any]:
    """The manifest `webapp-operator seal` prints (key from the cluster, or from `cert`)."""
    where = ["--cert", str(cert)] if cert else ["--operator-namespace", kit.namespace]
    out = cli(
        capsys,
        "seal",
        "--name",
        name,
        "-n",
        namespace or kit.namespace,
        "--grant",
        grant,
        *where,
        *(f"{k}={v}" for k, v in values.items()),
    )
    manifest: dict[str, Any] = yaml.safe_load(out)
    return manifest


def apply(kit: opkit.Kit, manifest: Mapping[str, Any]) -> None:
    opkit.apply(kit.kube, Secret, manifest)


def retarget(
    manifest: Mapping[str, Any], namespace: str, name: str, grant: str = "shop"
) -> dict[str, Any]:
    """The same sealed text pasted into another Secret (what a careless copy does)."""
    annotations = {**manifest["metadata"]["annotations"], "twelvefactor.dev/grant": grant}
    meta = {
        **manifest["metadata"],
        "namespace": namespace,
        "name": name,
        "annotations": annotations,
    }
    return {**manifest, "metadata": meta}


def cert(kit: opkit.Kit, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / f"cert-{len(list(tmp_path.glob('cert-*')))}.pem"
    path.write_text(cli(capsys, "cert", "-n", kit.namespace))
    return path


def key_ids(kit: opkit.Kit) -> list[str]:
    found = opkit.as_dict(kit.kube.get(Secret, KEYS_SECRET, namespace=kit.namespace))
    return sorted(found.get("data") or {})


def published(kit: opkit.Kit) -> dict[str, str]:
    found = opkit.as_dict(kit.kube.get(ConfigMap, CERT_CONFIGMAP, namespace=kit.namespace))
    return dict(found.get("data") or {})


def revision_data(kit: opkit.Kit, source: str, number: int) -> dict[str, str]:
    name = f"{source}.rev-{number}"
    found = opkit.as_dict(kit.kube.get(Secret, name, namespace=kit.namespace))
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


def idle_count(kit: opkit.Kit) -> int:
    return kit.operator_log().count("work queue idle")


def settle_after(kit: opkit.Kit, before: int) -> None:
    """Wait until the operator drained its queue again after the count `before`."""
    wait_for(lambda: idle_count(kit) > before, 60, message="the operator to handle the change")


def unseal_events(kit: opkit.Kit, secret: str) -> list[str]:
    return [
        e.get("message", "")
        for e in kit.events("UnsealFailed")
        if e["involvedObject"]["name"] == secret
    ]


# ----------------------------------------------------------------------------------- tests


def test_cert_prints_the_key_the_operator_keeps(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.start_operator()
    pem = cli(capsys, "cert", "-n", kit.namespace)
    key_id = cli(capsys, "cert", "-n", kit.namespace, "--key-id").strip()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert sealing.fingerprint(sealing.load_public_key(pem)) == key_id
    assert key_ids(kit) == [key_id]
    assert published(kit)["key-id"] == key_id
    keys = opkit.as_dict(kit.kube.get(Secret, KEYS_SECRET, namespace=kit.namespace))
    assert "twelvefactor.dev/secret" not in keys["metadata"]["labels"]
    private = base64.b64decode(keys["data"][key_id]).decode()
    assert "PRIVATE KEY" in private
    assert private.splitlines()[1] not in kit.operator_log()

    # A restart with nothing changed keeps the key and writes nothing.
    writes = kit.operator_writes()
    kit.stop_operator()
    kit.start_operator()  # returns once start-up, where the keys are loaded, is done
    assert cli(capsys, "cert", "-n", kit.namespace, "--key-id").strip() == key_id
    assert kit.operator_writes() == writes


def test_sealed_value_reaches_the_app_and_opens_nowhere_else(
    kit: opkit.Kit,
    capsys: pytest.CaptureFixture[str],
    other_namespace: str,
) -> None:
    kit.watch = [kit.namespace, other_namespace]
    kit.start_operator()
    manifest = seal(kit, capsys, "credentials", {"username": "admin", "password": PASSWORD_1})
    assert PASSWORD_1 not in yaml.safe_dump(manifest)
    apply(kit, manifest)
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    env = kit.env(kit.one_snapshot("shop"))
    assert env["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    assert env["FLASK_CREDENTIALS_USERNAME"] == "admin"
    assert kit.revisions("credentials") == [1]
    assert kit.tracked("shop", "credentials") == 1

    # The same sealed text under another name, and in another namespace: neither opens.
    apply(kit, retarget(manifest, kit.namespace, "copied", grant="thief"))
    kit.webapp("thief", {**APP, "secrets": {"credentials": {"secretName": "copied"}}})
    wait_for(
        lambda: kit.condition("thief").get("reason") == "InvalidSecretKey",
        60,
        message=lambda: f"thief told its Secret does not open (now {kit.condition('thief')})",
    )
    message = kit.condition("thief")["message"]
    assert "sealed Secret" in message
    assert "was sealed for another Secret" in message
    assert f"{kit.namespace}/copied" in message
    events = wait_for(lambda: unseal_events(kit, "copied"), 30, message="UnsealFailed")
    assert "was sealed for another Secret" in events[0]
    assert kit.revisions("copied") == []
    assert kit.deployments("thief") == {}
    # A restarted operator (no memory of what it told) does not tell it again: the Event is
    # named after the Secret and the cause, and the API server refuses a second one.
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert len(unseal_events(kit, "copied")) == 1, unseal_events(kit, "copied")

    apply(kit, retarget(manifest, other_namespace, "credentials"))
    other = opkit.Kit(kit.kube, other_namespace, kit.start_background)
    wait_for(
        lambda: [
            e
            for e in other.events("UnsealFailed")
            if f"Secret {other_namespace}/credentials" in e.get("message", "")
        ],
        60,
        message="UnsealFailed in the other namespace",
    )
    assert kit.revisions("credentials", namespace=other_namespace) == []

    # The original is untouched throughout.
    assert kit.revisions("credentials") == [1]
    assert kit.ready("shop"), kit.condition("shop")
    assert kit.env(kit.one_snapshot("shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_1
    assert kit.canary_hits(CANARIES) == []
    assert other.canary_hits(CANARIES) == []


def test_a_bad_copy_over_a_good_secret_overwrites_nothing(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.start_operator()
    good = seal(kit, capsys, "credentials", {"password": PASSWORD_1})
    apply(kit, good)
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")
    deployments = {n: d["metadata"]["generation"] for n, d in kit.deployments("shop").items()}

    # Sealed for another Secret, then pasted over this one's value.
    elsewhere = seal(kit, capsys, "other", {"password": PASSWORD_2})
    apply(kit, {**good, "data": elsewhere["data"]})
    wait_for(
        lambda: kit.condition("shop").get("reason") == "InvalidSecretKey",
        60,
        message="shop told credentials does not open",
    )
    assert "running pods keep their environment" in kit.condition("shop")["message"]
    assert unseal_events(kit, "credentials")
    assert kit.revisions("credentials") == [1]
    assert revision_data(kit, "credentials", 1) == {"password": PASSWORD_1}
    assert kit.snapshot_names("shop") == {snapshot}
    assert {n: d["metadata"]["generation"] for n, d in kit.deployments("shop").items()} == (
        deployments
    )

    # Sealed properly again: revision 2, and the app follows.
    apply(kit, seal(kit, capsys, "credentials", {"password": PASSWORD_3}))
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    kit.wait_ready("shop")
    assert kit.env(kit.one_snapshot("shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_3
    assert kit.canary_hits(CANARIES) == []


def test_resealing_the_same_value_makes_no_revision_and_a_new_value_makes_one(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.start_operator()
    first = seal(kit, capsys, "credentials", {"password": PASSWORD_1})
    apply(kit, first)
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")

    again = seal(kit, capsys, "credentials", {"password": PASSWORD_1})
    assert again["data"] != first["data"]  # new ciphertext, same value
    before = idle_count(kit)
    apply(kit, again)
    settle_after(kit, before)
    assert kit.revisions("credentials") == [1]
    created = [
        e for e in kit.events("RevisionCreated") if e["involvedObject"]["name"] == "credentials"
    ]
    assert len(created) == 1
    assert kit.one_snapshot("shop") == snapshot

    apply(kit, seal(kit, capsys, "credentials", {"password": PASSWORD_2}))
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    kit.wait_ready("shop")
    assert kit.env(kit.one_snapshot("shop"))["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD_2
    assert revision_data(kit, "credentials", 2) == {"password": PASSWORD_2}
    assert kit.canary_hits(CANARIES) == []


def test_renewal_adds_a_key_and_old_values_still_open(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str], clock: ShiftedClock, tmp_path: Path
) -> None:
    kit.start_operator("--sealing-key-renewal", "1m")
    old_cert = cert(kit, capsys, tmp_path)
    old_id = published(kit)["key-id"]
    apply(kit, seal(kit, capsys, "credentials", {"password": PASSWORD_1}))
    kit.webapp("shop", APP)
    kit.wait_ready("shop")

    clock.advance(2)
    wait_for(lambda: len(key_ids(kit)) == 2, 60, message="a second key")
    new_id = wait_for(
        lambda: published(kit)["key-id"] != old_id and published(kit)["key-id"],
        30,
        message="the new key published",
    )
    assert set(key_ids(kit)) == {old_id, new_id}
    assert cli(capsys, "cert", "-n", kit.namespace, "--key-id").strip() == new_id

    # New values are sealed with the new key; a value sealed offline with the old key still
    # opens, and so does the Secret sealed before the renewal.
    apply(kit, seal(kit, capsys, "credentials", {"password": PASSWORD_2}))
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    apply(kit, seal(kit, capsys, "legacy", {"password": PASSWORD_3}, cert=old_cert))
    wait_for(lambda: kit.revisions("legacy") == [1], 60, message="legacy opens with the old key")
    assert revision_data(kit, "legacy", 1) == {"password": PASSWORD_3}

    # After a restart both keys are loaded again; the renewal is not repeated.
    kit.stop_operator()
    kit.start_operator("--sealing-key-renewal", "1m")
    kit.operator_log_wait_idle()
    assert set(key_ids(kit)) == {old_id, new_id}
    assert unseal_events(kit, "legacy") == []
    assert unseal_events(kit, "credentials") == []
    kit.wait_ready("shop")
    assert kit.canary_hits(CANARIES) == []


def test_a_lost_key_is_reported_and_a_restored_backup_opens_again(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.start_operator()
    apply(kit, seal(kit, capsys, "credentials", {"password": PASSWORD_1}))
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    snapshot = kit.one_snapshot("shop")
    lost_id = published(kit)["key-id"]
    backup = opkit.as_dict(kit.kube.get(Secret, KEYS_SECRET, namespace=kit.namespace))

    kit.stop_operator()
    kit.kube.delete(Secret, KEYS_SECRET, namespace=kit.namespace)
    kit.start_operator()
    wait_for(
        lambda: kit.condition("shop").get("reason") == "InvalidSecretKey",
        60,
        message="shop told its Secret's key is lost",
    )
    message = kit.condition("shop")["message"]
    assert f"sealed with key {lost_id}, which this cluster does not have" in message
    assert "docs/sealing.md" in message
    events = unseal_events(kit, "credentials")
    assert events
    assert lost_id in events[0]
    assert published(kit)["key-id"] != lost_id  # a fresh key seals from now on
    # Nothing was overwritten: the revision, its content, the Deployments' environment.
    assert kit.revisions("credentials") == [1]
    assert revision_data(kit, "credentials", 1) == {"password": PASSWORD_1}
    assert kit.snapshot_names("shop") == {snapshot}

    # Restore the backup next to the new key (a merge, as `kubectl apply` does), restart.
    kit.kube.patch(
        Secret,
        KEYS_SECRET,
        {
            "metadata": {"annotations": backup["metadata"].get("annotations") or {}},
            "data": backup["data"],
        },
        namespace=kit.namespace,
        patch_type=PatchType.MERGE,
    )
    kit.stop_operator()
    kit.start_operator()
    kit.wait_ready("shop")
    assert kit.revisions("credentials") == [1]  # the same value: no new revision
    assert kit.one_snapshot("shop") == snapshot
    assert len(key_ids(kit)) == 2
    assert kit.canary_hits(CANARIES) == []
