"""A revision snapshot is the operator's only if its signature (a keyed digest of its namespace,
source, number and content, under the operator's key) checks out: a Secret someone else labels
as a revision, even with an ownerReference to the source's uid (which anyone who may list
Events can read), is never read into an app's environment, never removed, and never counted.
Revisions an older operator made without a signature are signed once, if they were created
before this operator first started (`Context.signatures_since`).

The reconcilers run against the fake API server of test_reconcile_crash.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import Secret
from tests.unit import test_reconcile_crash as crash
from tests.unit.test_reconcile_crash import (
    NOW,
    NS,
    FakeCluster,
    FakeIndexes,
    credentials,
    new_context,
    settle,
    webapp,
)

from webapp_operator.controller import handlers, reconcile, state
from webapp_operator.domain import revisions, schedule

CANARY = "forged-revision-canary-5d1e"
KEY = b"s" * 32  # new_context's snapshot key


def started() -> FakeCluster:
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto"))
    asyncio.run(settle(cluster))
    return cluster


def source_uid(cluster: FakeCluster) -> str:
    return str(cluster.objects[("Secret", NS, "credentials")]["metadata"]["uid"])


def forged(cluster: FakeCluster, name: str, number: int, **extra: Any) -> dict[str, Any]:
    """A Secret labelled as revision `number` of `credentials`, owned (on paper) by it."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "labels": revisions.revision_labels("credentials", number),
        "annotations": {},
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": "credentials",
                "uid": source_uid(cluster),
            }
        ],
    }
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "immutable": True,
        "stringData": {"password": CANARY},
    }
    for key, value in extra.items():
        meta["annotations"][key] = value
    return body


def environments(cluster: FakeCluster) -> dict[str, dict[str, str]]:
    return {
        name: {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        for (kind, _, name), obj in cluster.objects.items()
        if kind == "Secret"
        and obj["metadata"].get("labels", {}).get(revisions.MANAGED_LABEL) == "environment"
    }


def pinned(name: str, number: int) -> dict[str, Any]:
    app = webapp(name, "manual")
    app["spec"]["secrets"]["credentials"]["revision"] = number
    return app


def ready(cluster: FakeCluster, app: str) -> tuple[str, str, str]:
    status = cluster.objects[("WebApp", NS, app)]["status"]
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"], found["message"]


def password(cluster: FakeCluster, app: str) -> str | None:
    """The password in the app's current environment (None: it has none yet)."""
    status = cluster.objects[("WebApp", NS, app)]["status"]
    if not status.get("environment"):
        return None
    return environments(cluster)[status["environment"]].get("APP_CREDENTIALS_PASSWORD")


def tracked(cluster: FakeCluster) -> int:
    status = cluster.objects[("WebApp", NS, "shop")]["status"]
    return int(status["secrets"][0]["trackedRevision"])


def no_canary_anywhere(cluster: FakeCluster) -> None:
    for name, values in environments(cluster).items():
        assert CANARY not in values.values(), f"{name} holds the forged value"
    for app in ("shop", "audit"):
        assert CANARY not in repr(cluster.objects.get(("WebApp", NS, app)))
    assert all(CANARY not in message for _, _, message in cluster.events)


def test_the_operators_revision_is_signed_and_verified() -> None:
    cluster = started()
    body = cluster.objects[("Secret", NS, "credentials.rev-1")]
    assert revisions.SIGNATURE_ANNOTATION in body["metadata"]["annotations"]
    assert state.secret_entry(copy.deepcopy(body), snapshot_key=KEY).verified is True
    assert state.secret_entry(copy.deepcopy(body), snapshot_key=b"o" * 32).verified is False
    assert password(cluster, "shop") == "one"


@pytest.mark.parametrize(
    "change", ["content", "number", "source", "namespace"], ids=lambda c: f"{c}-changed"
)
def test_a_signature_holds_for_its_own_revision_only(change: str) -> None:
    cluster = started()
    body = copy.deepcopy(cluster.objects[("Secret", NS, "credentials.rev-1")])
    labels = body["metadata"]["labels"]
    if change == "content":
        body["data"]["password"] = base64.b64encode(CANARY.encode()).decode()
    elif change == "number":
        labels[revisions.REVISION_LABEL] = "2"
    elif change == "source":
        labels[revisions.REVISION_OF_LABEL] = "payroll"
    else:
        body["metadata"]["namespace"] = "elsewhere"
    assert state.secret_entry(body, snapshot_key=KEY).verified is False


@pytest.mark.parametrize("name", ["loot", "credentials.rev-2"], ids=["any-name", "next-name"])
@pytest.mark.parametrize(
    "signature", [None, "0" * 32, "é" * 32], ids=["unsigned", "bad-signature", "not-ascii"]
)
def test_a_secret_labelled_as_a_revision_is_never_taken_for_one(
    name: str, signature: str | None
) -> None:
    cluster = started()
    extra = {} if signature is None else {revisions.SIGNATURE_ANNOTATION: signature}
    cluster.put(forged(cluster, name, 2, **extra))
    # An app the source grants, pinned to revision 2: before signatures, the forged Secret's
    # content (a Secret that never granted it) became its environment.
    cluster.put(pinned("audit", 2))
    assert asyncio.run(run(cluster))
    assert tracked(cluster) == 1
    assert password(cluster, "shop") == "one"
    assert ready(cluster, "audit")[:2] == ("False", "RevisionNotFound")
    no_canary_anywhere(cluster)
    # Told on the forged Secret itself (`kubectl describe`, `secret show`), names only.
    told = [e for e in cluster.events if e[0] == "RevisionNotSigned"]
    assert [(reason, about) for reason, about, _ in told] == [("RevisionNotSigned", name)]
    assert told[0][2].startswith(
        f"Secret {NS}/{name} is labelled as revision 2 of Secret {NS}/credentials but was not "
        "made by the operator"
    )
    assert "RevisionNotSigned" in cluster.warnings

    # The source changes: its next revision is made (or, when the forged Secret holds its
    # name, refused as taken, tried again with a backoff), the forged one is neither pruned
    # nor counted.
    cluster.put(credentials("two"))
    asyncio.run(run(cluster))
    no_canary_anywhere(cluster)
    kept = cluster.objects[("Secret", NS, name)]
    assert base64.b64decode(kept["data"]["password"]).decode() == CANARY, "removed or changed"
    assert revisions.SIGNATURE_ANNOTATION not in kept["metadata"]["annotations"] or signature
    if name == "loot":
        assert tracked(cluster) == 2
        assert password(cluster, "shop") == "two"
        assert password(cluster, "audit") == "two"  # the real revision 2
        assert ("Secret", NS, "credentials.rev-2") in cluster.objects
    else:
        assert ready(cluster, "shop")[:2] == ("False", "SnapshotNameTaken")
        assert password(cluster, "shop") == "one"
        # Pinned to the revision that cannot be made: it is still not found.
        assert ready(cluster, "audit")[:2] == ("False", "RevisionNotFound")
    # Another operator process (a restart) told it already: the API server refuses the second.
    assert [e[1] for e in cluster.events if e[0] == "RevisionNotSigned"] == [name]


def unsigned(cluster: FakeCluster) -> None:
    """Revision 1 as an operator before signatures made it."""
    body = cluster.objects[("Secret", NS, "credentials.rev-1")]
    body["metadata"]["annotations"].pop(revisions.SIGNATURE_ANNOTATION)


async def run(cluster: FakeCluster, since: datetime | None = None, rounds: int = 8) -> bool:
    """A fresh operator (signing since `since`) reconciles every Secret and WebApp, the indexes
    refreshed before each, for `rounds` rounds or until one writes nothing (True)."""
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)
    ctx.signatures_since = since
    return await crash.reconcile_rounds(cluster, indexes, ctx, rounds)


def test_a_revision_made_before_signatures_is_signed_once() -> None:
    cluster = started()
    unsigned(cluster)
    names = sorted(cluster.objects)
    cluster.writes.clear()
    # FakeCluster stamps creationTimestamp 2026-01-01T11:00:00Z; signatures since NOW is after.
    assert asyncio.run(run(cluster, NOW))
    assert cluster.writes == ["patch Secret/credentials.rev-1 metadata"]
    body = cluster.objects[("Secret", NS, "credentials.rev-1")]
    assert state.secret_entry(copy.deepcopy(body), snapshot_key=KEY).verified is True
    assert tracked(cluster) == 1
    assert sorted(cluster.objects) == names  # nothing made, nothing removed
    cluster.writes.clear()
    assert asyncio.run(run(cluster, NOW))
    assert cluster.writes == []


def test_an_unsigned_revision_made_since_signatures_is_not_signed() -> None:
    """Created after the operator started signing: not an older operator's, so someone else's
    (even with the labels and an ownerReference to the source's uid)."""
    cluster = started()
    unsigned(cluster)
    cluster.writes.clear()
    asyncio.run(run(cluster, NOW - timedelta(days=3650), rounds=3))
    assert not any(w.endswith("metadata") for w in cluster.writes)
    body = cluster.objects[("Secret", NS, "credentials.rev-1")]
    assert revisions.SIGNATURE_ANNOTATION not in body["metadata"]["annotations"]
    # Not read: the content is due again as a revision, whose name this Secret holds.
    assert ready(cluster, "shop")[:2] == ("False", "SnapshotNameTaken")


def test_an_older_operators_revision_is_read_before_it_is_signed() -> None:
    """Its observers keep their environment meanwhile: nothing but the signature is written,
    whichever is reconciled first."""
    cluster = started()
    unsigned(cluster)
    before = copy.deepcopy(cluster.objects)
    cluster.writes.clear()

    async def apps_first() -> None:
        indexes = FakeIndexes()
        ctx = new_context(cluster, indexes)
        ctx.signatures_since = NOW
        await cluster.fill(indexes)
        await reconcile.reconcile_webapp(ctx, NS, "shop")
        assert cluster.writes == []
        await reconcile.reconcile_secret(ctx, NS, "credentials")
        await reconcile.reconcile_secret(ctx, NS, "credentials")  # before its watch event
        assert cluster.writes == ["patch Secret/credentials.rev-1 metadata"]

    asyncio.run(apps_first())
    assert cluster.objects[("WebApp", NS, "shop")] == before[("WebApp", NS, "shop")]


# --------------------------------------------------------------------------------------------
# Since when revisions are signed: recorded once on the operator's keys Secret


class KeysClient:
    """lightkube's AsyncClient as `handlers._keys` uses it, over one stored Secret."""

    def __init__(self, annotations: dict[str, str] | None, exists: bool = True) -> None:
        self.body: dict[str, Any] | None = None
        if exists:
            self.body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": handlers.KEYS_SECRET, "namespace": "op"},
                "data": {handlers.SNAPSHOT_KEY_FIELD: base64.b64encode(b"ab" * 32).decode()},
            }
            if annotations is not None:
                self.body["metadata"]["annotations"] = dict(annotations)
        self.writes: list[str] = []
        self.forbid_patch = False

    async def get(self, res: Any, name: str, namespace: str) -> Any:
        if self.body is None:
            raise ApiError(status=Status(code=404, reason="NotFound"))
        return Secret.from_dict(copy.deepcopy(self.body))

    async def patch(self, res: Any, name: str, obj: Any, namespace: str, patch_type: Any) -> None:
        assert self.body is not None
        if self.forbid_patch:
            raise ApiError(status=Status(code=403, reason="Forbidden"))
        self.writes.append(f"patch {patch_type.name}")
        self.body["metadata"].setdefault("annotations", {}).update(obj["metadata"]["annotations"])

    async def create(self, obj: Any) -> None:
        self.writes.append("create")
        self.body = obj.to_dict()


@pytest.mark.parametrize("exists", [True, False], ids=["older-keys", "no-keys"])
def test_the_first_start_that_signs_records_it_once(exists: bool) -> None:
    client = KeysClient(None, exists=exists)
    before = datetime.now(UTC).replace(microsecond=0)
    key, since = asyncio.run(handlers._keys(client, "op"))
    assert before <= since <= datetime.now(UTC)
    assert client.writes == (["patch MERGE"] if exists else ["create"])
    assert client.body is not None
    recorded = client.body["metadata"]["annotations"][handlers.SIGNATURES_SINCE_ANNOTATION]
    assert schedule.parse_time(recorded) == since
    # The next start reads it, and writes nothing (invariant 7).
    client.writes.clear()
    assert asyncio.run(handlers._keys(client, "op")) == (key, since)
    assert client.writes == []


def test_an_older_revision_of_another_secret_relabelled_is_not_read() -> None:
    """Someone who may patch, not read, an older revision of `payroll` strips its signature and
    labels it as revision 2 of `credentials`, owned by its uid: created before signatures, but
    its name (which nobody can change) is `payroll.rev-1`, so it is not an older operator's
    revision of `credentials`."""
    cluster = started()
    payroll = credentials(CANARY)
    payroll["metadata"]["name"] = "payroll"
    payroll["metadata"]["annotations"]["twelvefactor.dev/grant"] = "nobody"
    cluster.put(payroll)
    assert asyncio.run(run(cluster, NOW))
    body = cluster.objects[("Secret", NS, "payroll.rev-1")]
    body["metadata"]["annotations"].pop(revisions.SIGNATURE_ANNOTATION)
    body["metadata"]["labels"].update(revisions.revision_labels("credentials", 2))
    body["metadata"]["ownerReferences"][0]["uid"] = source_uid(cluster)
    cluster.put(pinned("audit", 2))
    # (payroll itself now lacks its revision 1, whose name the relabelled Secret holds: its
    # creates are refused and retried, so the rounds never go quiet.)
    asyncio.run(run(cluster, NOW, rounds=4))
    assert ready(cluster, "audit")[:2] == ("False", "RevisionNotFound")
    assert password(cluster, "shop") == "one"
    no_canary_anywhere(cluster)
    assert revisions.SIGNATURE_ANNOTATION not in body["metadata"]["annotations"]


def test_a_new_key_signs_the_revisions_made_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys Secret was lost and made anew: a new key, and its time. Revisions signed with
    the old key are read and signed again; nothing stalls (the environment snapshots are
    renamed, so each app rolls once, as docs/install.md says)."""
    cluster = started()
    new_key = b"n" * 32
    monkeypatch.setattr(crash, "SNAPSHOT_KEY", new_key)
    cluster.writes.clear()
    assert asyncio.run(run(cluster, NOW))  # every object here was created before NOW
    for name in ("credentials.rev-1", "shop.secret-key.rev-1"):
        body = copy.deepcopy(cluster.objects[("Secret", NS, name)])
        assert state.secret_entry(body, snapshot_key=new_key).verified is True, name
    assert not any(w.startswith("create Secret/credentials.rev") for w in cluster.writes)
    assert ready(cluster, "shop")[:2] == ("True", "Available")
    assert (tracked(cluster), password(cluster, "shop")) == (1, "one")


def env_snapshots(cluster: FakeCluster) -> set[str]:
    return {
        name
        for (kind, _, name), body in cluster.objects.items()
        if kind == "Secret"
        and body["metadata"]["labels"].get(revisions.MANAGED_LABEL) == revisions.KIND_ENVIRONMENT
    }


def test_a_new_key_prunes_the_snapshots_the_old_key_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a new key every snapshot is renamed, and the old ones fail the check: they are the
    operator's all the same (its name, the app's label and uid, made before the key), so once
    nothing reads them they go, as any old snapshot does, and with them copies of values."""
    cluster = started()
    (old,) = env_snapshots(cluster)
    monkeypatch.setattr(crash, "SNAPSHOT_KEY", b"n" * 32)
    assert asyncio.run(run(cluster, NOW))
    (new,) = env_snapshots(cluster)
    assert new != old
    assert ready(cluster, "shop")[:2] == ("True", "Available")
    assert f"delete Secret/{old}" in cluster.writes


@pytest.mark.parametrize("unlike", ["made-since", "not-owned", "other-name", "other-app"])
def test_a_snapshot_like_an_older_ones_but_not_quite_is_never_deleted(
    monkeypatch: pytest.MonkeyPatch, unlike: str
) -> None:
    cluster = started()
    (old,) = env_snapshots(cluster)
    uid = cluster.objects[("WebApp", NS, "shop")]["metadata"]["uid"]
    body = copy.deepcopy(cluster.objects[("Secret", NS, old)])
    body["metadata"]["name"] = "shop-env-" + "a" * 10
    if unlike == "not-owned":
        body["metadata"].pop("ownerReferences")
    if unlike == "other-name":
        body["metadata"]["name"] = "shop-env-" + "a" * 11
    if unlike == "other-app":
        body["metadata"]["name"] = "shop-env-" + "a" * 10
        body["metadata"]["labels"]["twelvefactor.dev/environment-of"] = "audit"
    assert uid in [o["uid"] for o in body["metadata"].get("ownerReferences") or []] or (
        unlike == "not-owned"
    )
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        body["metadata"].pop(key)
    cluster.put(body)
    name = body["metadata"]["name"]
    if unlike == "made-since":
        cluster.objects[("Secret", NS, name)]["metadata"]["creationTimestamp"] = (
            "2026-01-01T12:00:01Z"  # after NOW, the first start with the new key
        )
    monkeypatch.setattr(crash, "SNAPSHOT_KEY", b"n" * 32)
    assert asyncio.run(run(cluster, NOW))
    assert ("Secret", NS, name) in cluster.objects
    assert f"delete Secret/{name}" not in cluster.writes
    assert f"delete Secret/{old}" in cluster.writes  # the real one goes


def test_rbac_without_the_patch_is_told_and_the_operator_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An upgrade that kept an older Role (no patch on the keys Secret): the start goes on,
    taking this start's time, and a warning says what to grant."""
    client = KeysClient(None)
    client.forbid_patch = True
    before = datetime.now(UTC).replace(microsecond=0)
    _, since = asyncio.run(handlers._keys(client, "op"))
    assert before <= since <= datetime.now(UTC)
    assert "grant patch on it" in caplog.text
