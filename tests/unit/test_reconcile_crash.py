"""The reconcilers stopped at every write they make, then run again by a fresh process.

A fake API server (below the level under test, implementing the reconcilers' `Writer`) applies
writes to plain objects and feeds them back through the operator's real index functions (Kopf's
for WebApps, the Secret informer's entries and keys), as the watch streams would. Scenario:
`credentials` gets new content, observed by `shop` (refresh: auto, two processes, so a new
revision, a new environment and a rollout) and by `audit` (refresh: manual, so a
`SecretChanged` notice). For every k, the operator dies at its
k-th write (the write is not made, nor any after it: SIGKILL; dying just after a write is dying
before the next one, as nothing but the writes outlives the process), and a new process, with no
memory, settles the cluster. Then it must hold what an uninterrupted run holds, and every notice
must have been told exactly once, except those being posted by the write that died (and by the
writes posted with it): they may be lost, never repeated.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from webapp_operator.controller import handlers, reconcile, state, workqueue
from webapp_operator.domain import render

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NS = "demo"
SNAPSHOT_KEY = b"s" * 32  # the operator's key: the informers check snapshots and revisions with it


class Crash(Exception):  # noqa: N818 (named after what it models)
    """The operator process died before this write reached the API server."""


@dataclass
class Clock:
    """The operator's clock: the cluster's time, which the test moves."""

    cluster: FakeCluster

    def now(self) -> datetime:
        return self.cluster.now


class Index:
    """An index as the reconcilers read it: key -> values, refilled from the fake cluster."""

    def __init__(self) -> None:
        self.items: dict[Any, list[Any]] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self.items.get(key, default)


class WorkloadIndex(Index):
    """The informers' workloads: by app, and each by its own name."""

    def named(self, kind: str, namespace: str, name: str) -> state.WorkloadEntry | None:
        for entries in self.items.values():
            for entry in entries:
                if (entry.kind, entry.namespace, entry.name) == (kind, namespace, name):
                    return entry  # type: ignore[no-any-return]
        return None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def strategic_merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """A strategic merge patch as the API server makes it of what the operator sends: maps
    merged, lists of named items merged by name, other lists replaced, null deleting, a map
    or a list that says `$patch: replace` replaced whole."""
    for key, value in patch.items():
        old = target.get(key)
        if value is None:
            target.pop(key, None)  # null deletes the field
        elif isinstance(value, Mapping) and value.get("$patch") == "replace":
            target[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "$patch"}
        elif isinstance(value, list) and value and value[0] == {"$patch": "replace"}:
            target[key] = copy.deepcopy(value[1:])
        elif isinstance(value, Mapping) and isinstance(old, dict):
            strategic_merge(old, value)
        elif isinstance(value, list) and isinstance(old, list) and all("name" in v for v in value):
            items = {item["name"]: item for item in old}
            for item in value:
                if item["name"] in items:
                    strategic_merge(items[item["name"]], item)
                else:
                    old.append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class FakeCluster:
    """Objects by (kind, namespace, name), and the Events posted; every write is counted, and
    the write numbered `crash_at` (0-based) raises Crash, as does every write after it."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, object, message)
    warnings: list[str] = field(default_factory=list)  # the reasons of Warning Events
    event_names: set[str] = field(default_factory=set)
    writes: list[str] = field(default_factory=list)
    crash_at: int | None = None
    now: datetime = NOW
    # Generated values are numbered from here by every operator started: the same values
    # whichever process makes them.
    first_token: int = 1
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # Deployments whose next rollouts the Deployment controller gives up on at once (their new
    # pods never ready, the progress deadline passed), until taken out of the set.
    stalling: set[str] = field(default_factory=set)
    # Kinds the operator may not write here (403), as with an RBAC older than its code; "get
    # <kind>": objects of that kind it may not read one by one.
    denied: set[str] = field(default_factory=set)
    # What the Job controller makes of a new Job at once: "succeed" (Complete), "fail" (Failed,
    # its backoff limit reached) or "run" (no condition yet: finish it with `end_jobs`).
    jobs: str = "succeed"
    # The dry-run creates that checked a name was free (reconcile._claim_names).
    dry_runs: list[str] = field(default_factory=list)
    # A mutating admission webhook: what it does to each object the operator writes.
    admission: Callable[[dict[str, Any]], None] | None = None

    def _write(self, what: str) -> None:
        if self.crash_at is not None and len(self.writes) >= self.crash_at:
            raise Crash(what)
        self.writes.append(what)

    def _stamp(self, body: dict[str, Any]) -> None:
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self.serial))
        meta.setdefault("uid", f"uid-{meta['resourceVersion']}")
        meta.setdefault("creationTimestamp", "2026-01-01T11:00:00Z")

    def put(self, body: Mapping[str, Any]) -> None:
        """A write by someone else (the user, the Deployment controller)."""
        obj = copy.deepcopy(dict(body))
        obj["data"] = {
            k: _b64(v) for k, v in (obj.pop("stringData", None) or {}).items()
        } or obj.get("data", {})
        self._stamp(obj)
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", NS), meta["name"])] = obj

    # ------------------------------------------------------------------ reconcile.Writer

    def _check_denied(self, kind: str) -> None:
        if kind in self.denied:
            from lightkube.core.exceptions import ApiError
            from lightkube.models.meta_v1 import Status

            raise ApiError(status=Status(code=403, reason="Forbidden"))

    async def apply(self, obj: Mapping[str, Any], manager: str = "webapp-operator") -> None:
        self._check_denied(obj["kind"])
        self._write(f"apply {obj['kind']}/{obj['metadata']['name']}")
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        self._store(key, copy.deepcopy(dict(obj)))

    async def patch_strategic(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        self._write(f"patch {kind}/{name}")
        key = (kind, namespace, name)
        new = copy.deepcopy(self.objects[key])
        strategic_merge(new, patch)
        self._store(key, new)

    def _store(self, key: tuple[str, str, str], new: dict[str, Any]) -> None:
        if self.admission is not None:
            self.admission(new)
        old = self.objects.get(key)
        if new["kind"] == "Deployment":
            generation = int((old or {}).get("metadata", {}).get("generation") or 0)
            if old is None or old.get("spec") != new.get("spec"):
                generation += 1
            new["metadata"]["generation"] = generation
            if old is not None:
                new["metadata"]["uid"] = old["metadata"]["uid"]
            replicas = int(new["spec"].get("replicas") or 1)
            # The Deployment controller and kubelets, instantly: rolled out.
            new["status"] = {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
            }
            if old is not None and key[2] in self.stalling:
                # One new pod, never ready; the old ones keep running.
                new["status"] = {
                    "observedGeneration": generation,
                    "replicas": replicas + 1,
                    "updatedReplicas": 1,
                    "availableReplicas": replicas,
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                            "message": f'ReplicaSet "{key[2]}-{generation}" has timed out '
                            "progressing.",
                        }
                    ],
                }
        if new["kind"] == "Job" and "status" not in new:
            new["status"] = self._job_status(self.jobs)
        self._stamp(new)
        self.objects[key] = new

    @staticmethod
    def _job_status(outcome: str) -> dict[str, Any]:
        if outcome == "succeed":
            return {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        if outcome == "fail":
            failed = {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
            return {"failed": 1, "conditions": [failed]}
        return {"active": 1}

    def end_jobs(self, outcome: str) -> None:
        """The Job controller: every running Job ends so ("succeed" or "fail")."""
        for (kind, _, _), obj in self.objects.items():
            if kind == "Job" and "conditions" not in obj["status"]:
                obj["status"] = self._job_status(outcome)
                self._stamp(obj)

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        self._check_denied(f"get {kind}")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def create(self, obj: Mapping[str, Any]) -> bool:
        self._write(f"create {obj['kind']}/{obj['metadata']['name']}")
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.objects:
            return False
        new = copy.deepcopy(dict(obj))
        self._stamp(new)
        self.objects[key] = new
        return True

    async def name_free(self, obj: Mapping[str, Any]) -> bool:
        self._check_denied(obj["kind"])
        # Not a write (nothing is stored), so not counted as one; kept apart.
        self.dry_runs.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]) not in (
            self.objects
        )

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self._check_denied(kind)
        self._write(f"delete {kind}/{name}")
        return self.objects.pop((kind, namespace, name), None) is not None

    async def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None:
        self._write(f"patch {kind}/{name} metadata")
        obj = self.objects[(kind, namespace, name)]
        _merge(obj["metadata"], metadata)
        self._stamp(obj)

    async def patch_secret_data(
        self, namespace: str, name: str, data: Mapping[str, str | None]
    ) -> None:
        self._write(f"patch Secret/{name} data")
        obj = self.objects[("Secret", namespace, name)]
        _merge(
            obj.setdefault("data", {}), {k: None if v is None else _b64(v) for k, v in data.items()}
        )
        self._stamp(obj)

    async def patch_webapp_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self._write(f"status WebApp/{name}")
        obj = self.objects[("WebApp", namespace, name)]
        _merge(obj.setdefault("status", {}), status)
        self._stamp(obj)

    async def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
        name: str | None = None,
    ) -> None:
        self._write(f"event {reason}")
        if name is not None:  # the API server refuses a second Event of one name
            if name in self.event_names:
                return
            self.event_names.add(name)
        self.events.append((reason, involved["metadata"]["name"], message))
        if warning:
            self.warnings.append(reason)

    # ------------------------------------------------------------------ the watch streams

    async def fill(self, indexes: FakeIndexes) -> None:
        """Rebuild every index from the objects, through the operator's own index functions."""
        for index in indexes.all():
            index.items.clear()
        for gone in list(indexes.secrets.by_name.values()):
            indexes.secrets.put(gone, None)
        for (kind, namespace, name), obj in sorted(self.objects.items()):
            if kind == "WebApp":  # Kopf's index function
                body = kopf.Body(copy.deepcopy(obj))  # type: ignore[arg-type]
                function: Any = handlers.webapps  # as Kopf calls it, with the keywords used
                found = await function(body=body, namespace=namespace, name=name)
                for key, value in found.items():
                    indexes.webapps.items.setdefault(key, []).append(value)
            if kind == "Secret":  # the Secret informer's entries, in the operator's index
                entry = state.secret_entry(copy.deepcopy(obj), snapshot_key=SNAPSHOT_KEY)
                if entry.kind:
                    indexes.secrets.put(None, entry)
            if kind in (
                "Deployment",
                "ReplicaSet",
                "Service",
                "Ingress",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "Job",
            ):  # the informers' entries
                workload = state.workload_entry(kind, obj)
                if workload is not None:
                    key = (workload.namespace, workload.app)
                    indexes.workloads.items.setdefault(key, []).append(workload)


@dataclass
class FakeIndexes:
    """The operator's Secret index and Kopf's WebApp index (read as the handlers read them), and
    the workload informers' entries."""

    secrets: state.SecretIndex = field(
        default_factory=lambda: state.SecretIndex(handlers.secret_keys)
    )
    webapps: Index = field(default_factory=Index)
    workloads: WorkloadIndex = field(default_factory=WorkloadIndex)

    def all(self) -> list[Index]:
        """The indexes refilled by clearing them (the Secret index empties through `put`)."""
        return [self.webapps, self.workloads]


def new_context(cluster: FakeCluster, indexes: FakeIndexes) -> reconcile.Context:
    """A freshly started operator: no memory of earlier writes."""
    tokens = itertools.count(cluster.first_token)
    return reconcile.Context(
        indexes=reconcile.Indexes(
            indexes.secrets,
            handlers.Prefixed(indexes.secrets, handlers.REVISIONS_OF),
            indexes.webapps,
            handlers.Prefixed(indexes.webapps, handlers.OBSERVED_BY),
            indexes.workloads,
        ),
        writer=cluster,
        clock=Clock(cluster),
        settings=render.Settings(snapshot_key=SNAPSHOT_KEY),
        token=lambda size: f"generated-{next(tokens):04d}-".ljust(size, "x"),
        monotonic=lambda: 0.0,
    )


async def reconcile_rounds(
    cluster: FakeCluster, indexes: FakeIndexes, ctx: reconcile.Context, rounds: int
) -> bool:
    """Reconcile every Secret and WebApp, the indexes refreshed before each (the watch streams
    caught up), for `rounds` rounds or until a whole round writes nothing (True)."""
    for _ in range(rounds):
        before = len(cluster.writes)
        keys = sorted(k for k in cluster.objects if k[0] in ("Secret", "WebApp"))
        for kind, namespace, name in keys:
            await cluster.fill(indexes)
            if kind == "WebApp":
                await reconcile.reconcile_webapp(ctx, namespace, name)
            else:
                await reconcile.reconcile_secret(ctx, namespace, name)
        if len(cluster.writes) == before:
            return True
    return False


async def settle(cluster: FakeCluster, rounds: int = 12) -> None:
    """Start an operator and reconcile until a whole round writes nothing."""
    indexes = FakeIndexes()
    if not await reconcile_rounds(cluster, indexes, new_context(cluster, indexes), rounds):
        raise AssertionError(f"never settled: {cluster.writes[-20:]}")


def webapp(name: str, refresh: str, processes: tuple[str, ...] = ("web",)) -> dict[str, Any]:
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {
            "framework": "go",
            "image": f"{name}:1",
            "processes": {process: {} for process in processes},
            "secrets": {"credentials": {"secretName": "credentials", "refresh": refresh}},
        },
    }


def credentials(password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "credentials",
            "namespace": NS,
            "labels": {"twelvefactor.dev/secret": "true"},
            "annotations": {"twelvefactor.dev/grant": "shop,audit"},
        },
        "type": "Opaque",
        "stringData": {"password": password},
    }


@pytest.fixture(scope="module")
def changed() -> FakeCluster:
    """Both apps settled on revision 1, then the user writes new content: the state to crash in."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    cluster.put(webapp("shop", "auto", ("web", "queue-worker")))
    cluster.put(webapp("audit", "manual"))
    asyncio.run(settle(cluster))
    cluster.put(credentials("two"))
    cluster.writes.clear()
    cluster.events.clear()
    return cluster


def crashed_at_each_write(
    start: FakeCluster, reference: FakeCluster
) -> Iterator[tuple[int, FakeCluster, str]]:
    """For each write of the run from `start` that `reference` made: a copy of `start` whose
    operator died at that write and was started again, and where it died (for messages)."""
    for crash_at, dying in enumerate(reference.writes):
        cluster = copy.deepcopy(start)
        cluster.crash_at = crash_at
        with pytest.raises(Crash):
            asyncio.run(settle(cluster))
        cluster.crash_at = None
        asyncio.run(settle(cluster))  # the restarted operator
        yield crash_at, cluster, f"died at write {crash_at} ({dying}) of {reference.writes}"


def dying_notices(reference: FakeCluster, crash_at: int) -> set[tuple[str, str, str]]:
    """The notices a process dying at write `crash_at` was posting: the run of Event writes
    starting there (notices decided together are posted together, after what records them)."""
    posted = iter(reference.events)
    by_write = {i: next(posted) for i, w in enumerate(reference.writes) if w.startswith("event ")}
    dying: set[tuple[str, str, str]] = set()
    index = crash_at
    while index in by_write:
        dying.add(by_write[index])
        index += 1
    return dying


def outcome(cluster: FakeCluster) -> dict[str, Any]:
    """What must not depend on where the operator died: objects and the apps' tracking."""
    statuses = {
        name: obj.get("status", {}).get("secrets")
        for (kind, _, name), obj in cluster.objects.items()
        if kind == "WebApp"
    }
    templates = {
        name: obj["spec"]["template"]
        for (kind, _, name), obj in cluster.objects.items()
        if kind == "Deployment"
    }
    return {"objects": sorted(cluster.objects), "status": statuses, "templates": templates}


def test_an_uninterrupted_run_tells_each_notice_once(changed: FakeCluster) -> None:
    cluster = copy.deepcopy(changed)
    asyncio.run(settle(cluster))
    reasons = sorted((reason, obj) for reason, obj, _ in cluster.events)
    assert reasons == [
        ("RevisionCreated", "credentials"),
        ("RolloutStarted", "shop"),
        ("SecretChanged", "audit"),
        ("SecretRefreshed", "shop"),
    ]
    audit = cluster.objects[("WebApp", NS, "audit")]["status"]["secrets"][0]
    assert (audit["trackedRevision"], audit["latestRevision"], audit["notifiedRevision"]) == (
        1,
        2,
        2,
    )


def test_a_crash_at_any_write_repeats_no_notice_and_loses_only_those_being_posted(
    changed: FakeCluster,
) -> None:
    reference = copy.deepcopy(changed)
    asyncio.run(settle(reference))
    told = sorted(reference.events)
    assert len(reference.writes) > 8  # revision, snapshot, Deployments, Service?, Events, statuses
    for crash_at, cluster, where in crashed_at_each_write(changed, reference):
        assert outcome(cluster) == outcome(reference), where
        lost = [e for e in told if e not in cluster.events]
        assert sorted(cluster.events + lost) == told, where  # nothing told twice
        assert set(lost) <= dying_notices(reference, crash_at), where
        # The WebApp's notices are named Events posted before the status that records them:
        # exactly once, wherever it died. (The owner's RevisionCreated follows its create, and
        # may be lost with it.)
        assert [e for e in lost if e[0] != "RevisionCreated"] == [], where


async def revised(cluster: FakeCluster, indexes: FakeIndexes, ctx: reconcile.Context) -> None:
    """The watch streams caught up, revision 2 of `credentials` made, caught up again."""
    await cluster.fill(indexes)
    await reconcile.reconcile_secret(ctx, NS, "credentials")
    await cluster.fill(indexes)


def test_a_reconcile_ahead_of_the_watch_does_not_tell_again(changed: FakeCluster) -> None:
    """The status that records a notice is written, but the index still shows the old one
    (the watch event is on its way) when the app is reconciled again: nothing is told twice."""
    cluster = copy.deepcopy(changed)
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)

    async def run() -> None:
        await revised(cluster, indexes, ctx)
        for _ in range(2):  # no fill in between: the second pass reads the stale index
            await reconcile.reconcile_webapp(ctx, NS, "audit")
            await reconcile.reconcile_webapp(ctx, NS, "shop")

    asyncio.run(run())
    told = collections.Counter((reason, obj) for reason, obj, _ in cluster.events)
    assert told[("SecretChanged", "audit")] == 1
    assert told[("SecretRefreshed", "shop")] == 1
    assert told[("RolloutStarted", "shop")] == 1


def test_a_rollout_amid_a_fan_out_tells_and_records_it_once_the_others_are_written(
    changed: FakeCluster,
) -> None:
    """While other apps' changes wait or are being written, a reconcile that rolls `shop`
    writes the rollout only and comes back as a follow-up; that follow-up, run once the others
    are done, tells the notices and records the status, as one uninterrupted reconcile does."""
    reference = copy.deepcopy(changed)
    asyncio.run(settle(reference))
    cluster = copy.deepcopy(changed)
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)
    asked: list[tuple[str, ...]] = []
    busy = [True]

    def urgent_besides(key: tuple[str, ...]) -> bool:
        asked.append(key)
        return busy[0]

    ctx.urgent_besides = urgent_besides

    async def run() -> object:
        await revised(cluster, indexes, ctx)
        cluster.writes.clear()
        return await reconcile.reconcile_webapp(ctx, NS, "shop")

    again = asyncio.run(run())
    assert again == workqueue.Again(workqueue.FOLLOW_UP_DELAY, workqueue.FOLLOW_UP)
    assert asked == [("webapp", NS, "shop")]
    assert not [w for w in cluster.writes if w.startswith(("event", "status"))], cluster.writes
    assert [w for w in cluster.writes if w.startswith("patch Deployment")] != []

    busy[0] = False  # the others are written: the follow-up runs
    asyncio.run(settle(cluster))
    assert outcome(cluster) == outcome(reference)
    assert sorted(cluster.events) == sorted(reference.events)  # each told once


def test_the_memory_of_recent_writes_forgets_expired_ones() -> None:
    """Every told Event adds a key to what the process wrote recently: a long-running
    operator keeps only those young enough to matter, however many it has told."""
    ticks = itertools.count()
    ctx = new_context(FakeCluster(), FakeIndexes())
    ctx.monotonic = lambda: float(next(ticks))  # one second per write
    ctx.memory_seconds = 30.0
    for number in range(10_000):
        ctx.remember(("Event", NS, "shop", f"notice-{number}"), "seen")
    assert len(ctx.recent) < 2_048
    assert ctx.wrote_recently(("Event", NS, "shop", "notice-9999"), "seen")
    assert not ctx.wrote_recently(("Event", NS, "shop", "notice-0"), "seen")
    for _ in range(30):
        ctx.wrote_recently(("Event", NS, "shop", "notice-9999"), "seen")  # time passes
    ctx.forget_expired()  # the scheduler's periodic sweep: nothing left once all expired
    assert ctx.recent == {}


ROTATING = {
    "apiVersion": "twelvefactor.dev/v1alpha1",
    "kind": "WebApp",
    "metadata": {"name": "shop", "namespace": NS, "generation": 1},
    "spec": {
        "framework": "go",
        "image": "shop:1",
        "ownedSecrets": {"api-token": {"keys": ["token"], "rotate": "hourly"}},
        "secrets": {"token": {"secretName": "shop.api-token"}},
    },
}


@pytest.fixture(scope="module")
def due() -> FakeCluster:
    """`shop` on revision 1 of the secret it owns, then 61 minutes later: its rotation is due."""
    cluster = FakeCluster()
    cluster.put(ROTATING)
    asyncio.run(settle(cluster))
    cluster.now += timedelta(minutes=61)
    cluster.first_token = 100
    cluster.writes.clear()
    cluster.events.clear()
    return cluster


def test_a_crash_during_a_rotation_never_rotates_twice(due: FakeCluster) -> None:
    reference = copy.deepcopy(due)
    asyncio.run(settle(reference))
    writes = list(reference.writes)
    told = sorted(reference.events)
    assert [reason for reason, _, _ in told] == [
        "RevisionCreated",
        "RevisionRemoved",
        "RolloutStarted",
        "RotationDue",
        "SecretRefreshed",
    ]
    for crash_at, dying in enumerate(writes):
        cluster = copy.deepcopy(due)
        cluster.crash_at = crash_at
        with pytest.raises(Crash):
            asyncio.run(settle(cluster))
        cluster.crash_at = None
        asyncio.run(settle(cluster))

        where = f"died at write {crash_at} ({dying}) of {writes}"
        if dying == "patch Secret/shop.api-token data":
            # The notice was recorded first, the new values died with the process: no rotation
            # now (never two), and the owner, here the operator itself, is told again 5 minutes
            # later and rotates then.
            revisions = sorted(
                n for _, _, n in cluster.objects if n.startswith("shop.api-token.rev")
            )
            assert revisions == ["shop.api-token.rev-1"], where
            cluster.now += timedelta(minutes=5)
            asyncio.run(settle(cluster))
        assert outcome(cluster) == outcome(reference), where
        lost = [e for e in told if e not in cluster.events]
        assert sorted(cluster.events + lost) == told, where  # nothing told twice
        assert set(lost) <= dying_notices(reference, crash_at), where


def test_a_failure_is_warned_of_once_whenever_the_operator_dies() -> None:
    """The Warning of a failure is posted before the status records it: an operator that dies
    in between posts it again after its restart, under the same name, which is refused."""
    start = FakeCluster()
    start.put(credentials("one"))
    body = webapp("shop", "auto")
    body["spec"]["secrets"]["credentials"]["secretName"] = "other"
    other = credentials("two")
    other["metadata"]["name"] = "other"
    other["metadata"]["annotations"] = {}  # granted to nobody
    start.put(other)
    start.put(body)
    reference = copy.deepcopy(start)
    asyncio.run(settle(reference))
    assert reference.warnings == ["SecretNotGranted"]
    for _, cluster, where in crashed_at_each_write(start, reference):
        assert cluster.warnings.count("SecretNotGranted") <= 1, where
        status = cluster.objects[("WebApp", NS, "shop")]["status"]
        assert status == reference.objects[("WebApp", NS, "shop")]["status"], where
