"""The two reconcilers: source Secrets (owner side) and WebApps (observer side).

Each one gathers from the in-memory indexes (no GETs), decides with the pure domain, and only
then writes, and only what differs from what the cluster already has. So a restart with nothing
changed writes nothing (invariant 7), and one change of environment is one server-side apply of
each Deployment, however many triggers arrived (the work queue coalesces them).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from webapp_operator import API_VERSION, KIND
from webapp_operator.controller import state, workqueue
from webapp_operator.domain import (
    drift,
    grants,
    model,
    observe,
    owned,
    reasons,
    render,
    resolve,
    revisions,
    schedule,
    sealing,
)
from webapp_operator.domain.errors import InvalidConfig as InvalidConfigError
from webapp_operator.domain.errors import InvalidSecretKey as InvalidSecretKeyError
from webapp_operator.domain.errors import MigrationFailed, SnapshotNameTaken, WebAppError
from webapp_operator.kube.client import HANDOFF_MANAGER

logger = logging.getLogger(__name__)

SECRET_KEY_SUFFIX: Final = owned.SECRET_KEY_SUFFIX
SECRET_KEY_DATA: Final = owned.SECRET_KEY_DATA
# A WebApp waiting for a revision the operator is about to create is queued again by that
# revision's watch event; this is only the safety net should an event be missed.
PENDING_RETRY: Final = 2.0
# The key form that looks a workload up by kind and name instead of by app.
# Retries of what no watch event announces (a name held by a Secret the operator does not watch,
# a ServiceAccount's grant): 1, 2, 4, 8 s, then every RETRY_MAX s until it succeeds.
RETRY_FIRST: Final = 1.0
RETRY_MAX: Final = 10.0

Key = tuple[Literal["webapp", "secret"], str, str]


class Store(Protocol):
    """An index (Kopf's, or the Secret informer's `state.SecretIndex`): key -> collection of
    values."""

    def get(self, key: Any, default: Any = None) -> Any: ...


class WorkloadStore(Store, Protocol):
    """The workloads of each app, and each workload by its own name."""

    def named(self, kind: str, namespace: str, name: str) -> state.WorkloadEntry | None: ...


class Writer(Protocol):
    """The gateway operations the reconcilers use (kube/client.py's Gateway)."""

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None: ...
    async def apply(self, obj: Mapping[str, Any], manager: str = ...) -> None: ...
    async def patch_strategic(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None: ...
    async def create(self, obj: Mapping[str, Any]) -> bool: ...
    async def name_free(self, obj: Mapping[str, Any]) -> bool: ...
    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool: ...
    async def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None: ...
    async def patch_secret_data(
        self, namespace: str, name: str, data: Mapping[str, str | None]
    ) -> None: ...
    async def patch_webapp_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...
    async def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
        name: str | None = None,
    ) -> None: ...


@dataclass
class Indexes:
    """The indexes the reconcilers read (see handlers.py)."""

    secrets: Store  # (ns, name) -> SecretEntry: every managed Secret
    revisions: Store  # (ns, source) -> SecretEntry: revision snapshots
    webapps: Store  # (ns, name) -> WebAppEntry
    observers: Store  # (secret ns, secret name) -> (app ns, app name)
    workloads: WorkloadStore  # (ns, app) -> WorkloadEntry: Deployments, ReplicaSets, Services


def _all(store: Store, key: Any) -> list[Any]:
    values = store.get(key)
    return list(values) if values is not None else []


def _one(store: Store, key: Any) -> Any:
    values = _all(store, key)
    return values[0] if values else None


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class Context:
    """What a reconcile needs besides the key."""

    indexes: Indexes
    writer: Writer
    clock: Clock
    settings: render.Settings
    token: Any = field(repr=False)  # (bytes) -> str: URL-safe random text, for generated values
    # One agenda for every Secret's rotation and expiry times (the scheduler sleeps on it).
    agenda: schedule.Agenda[tuple[str, str]] = field(default_factory=schedule.Agenda)
    # (namespace, name) -> None: queue a WebApp (set by the handlers).
    enqueue_webapp: Any = field(default=None, repr=False)
    # key -> bool: whether changes someone made, other than this key's, wait in the work queue
    # or are being handled (set by the handlers).
    urgent_besides: Any = field(default=None, repr=False)
    # What this process wrote moments ago, so a reconcile racing the watch stream does not
    # write it again; entries expire, so drift is still corrected later.
    recent: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)
    # The app to wake when the memory of an object's write ends before the watch showed it
    # (an object made and deleted while a watch was down, both missed by the relist): by key.
    awaiting: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)
    memory_seconds: float = 30.0
    # `recent` is swept of expired entries when it reaches this size (then twice what is left).
    recent_sweep_at: int = 1024
    # Sealed sources whose values do not open, as last reported by Event: (ns, name) -> message.
    unseal_reported: dict[tuple[str, str], str] = field(default_factory=dict)
    monotonic: Any = field(default=None, repr=False)  # () -> float
    # Sources whose next revision's name is held by a Secret that is not one of their
    # revisions: (ns, name) -> the message (names only), for the source's Event and observers.
    squatted: dict[tuple[str, str], str] = field(default_factory=dict)
    # The next retry delay of things no watch event announces (see RETRY_FIRST), by key.
    retries: dict[tuple[str, ...], float] = field(default_factory=dict)
    # Since when revisions are signed with the current key (the operator's keys Secret records
    # the first start that signed with it): a revision without a valid signature created
    # before is an older operator's (or one signed with a lost key) and is signed once; one
    # created since is someone else's. None: no revision is taken without a valid signature.
    signatures_since: datetime | None = None
    # Secrets labelled as revisions that failed the check, told once: (ns, name, uid).
    unsigned_seen: set[tuple[str, str, str]] = field(default_factory=set)
    # What the operator may not do (403), told once: ReplicaSets to drop it may not delete,
    # (kind, ns, name); Deployments it may not read, ("get", "Deployment", "").
    refused: set[tuple[str, str, str]] = field(default_factory=set)
    # The last repair of each Deployment's pod template and how many times in a row it was
    # the same one: (kind, ns, name) -> (the patch's digest, count); dropped once intact.
    repaired: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)

    def now_text(self) -> str:
        return schedule.format_time(self.clock.now())

    def _tick(self) -> float:
        if self.monotonic is None:
            import time

            return time.monotonic()
        return float(self.monotonic())

    def wrote_recently(self, key: tuple[str, ...], digest: str = "") -> bool:
        seen = self.recent.get(key)
        return (
            seen is not None and seen[0] == digest and self._tick() - seen[1] < self.memory_seconds
        )

    def made_recently(self, key: tuple[str, ...]) -> bool:
        """Written by this process moments ago, whatever it wrote (the watch may be behind)."""
        seen = self.recent.get(key)
        return seen is not None and self._tick() - seen[1] < self.memory_seconds

    def caught_up(self, key: tuple[str, ...], digest: str | None = "") -> None:
        """The watch shows `key` as this process wrote it (`digest`): the memory of the write
        has done its work, and must not keep the object, deleted from now on, from being made
        again (it would be taken for a write the watch has not shown yet)."""
        seen = self.recent.get(key)
        if seen is not None and seen[0] == digest:
            del self.recent[key]
            self.awaiting.pop(key, None)

    def remember(
        self, key: tuple[str, ...], digest: str = "", wake: tuple[str, str] | None = None
    ) -> None:
        """Remember a write for a while; `wake`: the app (namespace, name) to queue if the
        watch never shows it (`forget_expired`), for nothing else would."""
        self.recent[key] = (digest, self._tick())
        if wake is not None:
            self.awaiting[key] = wake
        if len(self.recent) >= self.recent_sweep_at:
            self.forget_expired()  # every write adds a key (each told Event its own)

    def forget_expired(self) -> None:
        """Drop what was written too long ago to matter (also when idle: the scheduler), and
        queue the apps of objects written that long ago that the watch never showed: a
        reconcile that found them missing took them for a watch behind its write."""
        now = self._tick()
        kept: dict[tuple[str, ...], tuple[str, float]] = {}
        woken: set[tuple[str, str]] = set()
        for key, seen in self.recent.items():
            if now - seen[1] < self.memory_seconds:
                kept[key] = seen
            elif (app := self.awaiting.pop(key, None)) is not None:
                woken.add(app)
        self.recent = kept
        self.recent_sweep_at = max(1024, 2 * len(self.recent))
        for app in sorted(woken):
            logger.info(
                "WebApp %s/%s: an object written over %.0f s ago is still not in its watch; "
                "reconciling again", app[0], app[1], self.memory_seconds,
            )  # fmt: skip
            if self.enqueue_webapp is not None:
                self.enqueue_webapp(*app)

    def repair_tries(self, key: tuple[str, ...], repair: Mapping[str, Any]) -> int:
        """How many times in a row Deployment `key` needed `repair`, this time included: more
        than REPAIR_TRIES when something changes its template again at every write."""
        digest = _repair_id(repair)
        last, count = self.repaired.get(key, ("", 0))
        count = count + 1 if last == digest else 1
        self.repaired[key] = (digest, count)
        return count

    def backoff(self, key: tuple[str, ...]) -> float:
        """The delay before the next try of `key`: doubling from RETRY_FIRST up to RETRY_MAX."""
        delay = self.retries.get(key, RETRY_FIRST)
        self.retries[key] = min(delay * 2, RETRY_MAX)
        return delay

    def succeeded(self, key: tuple[str, ...]) -> None:
        self.retries.pop(key, None)


# ----------------------------------------------------------------------------- lookups


class IndexLookup:
    """resolve.SecretLookup over the indexes: sources and revision snapshots."""

    def __init__(self, indexes: Indexes, signatures_since: datetime | None = None) -> None:
        self.indexes = indexes
        self.signatures_since = signatures_since

    def source(self, namespace: str, name: str) -> resolve.SecretObject | None:
        entry: state.SecretEntry | None = _one(self.indexes.secrets, (namespace, name))
        if entry is None or entry.kind != revisions.KIND_SOURCE:
            return None
        return resolve.SecretObject(
            namespace=namespace,
            name=name,
            labels=entry.labels,
            annotations=entry.annotations,
            data=entry.data,
        )

    def revision_entries(self, namespace: str, name: str) -> list[state.SecretEntry]:
        """The source's revisions, oldest first: only those whose signature checks out, or
        those made before the current key signed (`state.older_operators`; signed by the
        source's next reconcile): a Secret anyone labels as a revision is never read, counted
        or removed."""
        entries = [e for e in _all(self.indexes.revisions, (namespace, name)) if e.revision]
        if any(not e.verified for e in entries):
            source: state.SecretEntry | None = _one(self.indexes.secrets, (namespace, name))
            uid = source.uid if source is not None else ""
            since = self.signatures_since
            entries = [e for e in entries if e.verified or state.older_operators(e, uid, since)]
        return sorted(entries, key=lambda e: e.revision.number)

    def revision(self, namespace: str, name: str, revision: int) -> resolve.SecretObject | None:
        for entry in self.revision_entries(namespace, name):
            if entry.revision is not None and entry.revision.number == revision:
                return resolve.SecretObject(
                    namespace=namespace,
                    name=entry.name,
                    labels=entry.labels,
                    annotations=entry.annotations,
                    data=entry.data,
                )
        return None

    def latest_revision(self, namespace: str, name: str) -> int | None:
        entries = self.revision_entries(namespace, name)
        last = entries[-1].revision if entries else None
        return last.number if last else None

    def pending(self, namespace: str, name: str) -> bool:
        """True when the source holds content no revision has yet: a revision is coming."""
        source: state.SecretEntry | None = _one(self.indexes.secrets, (namespace, name))
        if source is None or source.kind != revisions.KIND_SOURCE:
            return False
        if source.unseal_error is not None:
            return False  # no revision can come from content that does not open
        entries = self.revision_entries(namespace, name)
        if not entries:
            return True
        # The content itself, compared in memory (no digest: every observer of a source asks).
        return source.data != entries[-1].data


# ----------------------------------------------------------------------------- secrets


def _revision_object(
    source: state.SecretEntry, number: int, now: datetime, key: bytes
) -> dict[str, Any]:
    annotations = {
        revisions.CREATED_ANNOTATION: schedule.format_time(now),
        revisions.SIGNATURE_ANNOTATION: revisions.signature(
            source.namespace, source.name, number, source.data, key
        ),
    }
    expire = source.annotations.get(schedule.EXPIRE_ANNOTATION)
    if expire:
        try:
            expiry = schedule.parse_expire(expire).expiry_for(now)
            annotations[schedule.REVISION_EXPIRES_ANNOTATION] = schedule.format_time(expiry)
        except WebAppError:
            logger.warning(
                "Secret %s/%s: ignoring an invalid %s annotation",
                source.namespace,
                source.name,
                schedule.EXPIRE_ANNOTATION,
            )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": revisions.revision_name(source.name, number),
            "namespace": source.namespace,
            "labels": revisions.revision_labels(source.name, number),
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "name": source.name,
                    "uid": source.uid,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "data": {k: _b64(v) for k, v in sorted(source.data.items())},
    }


def _b64(value: bytes) -> str:
    import base64

    return base64.b64encode(value).decode()


def _in_use(ctx: Context, namespace: str, name: str) -> tuple[set[int], set[int]]:
    """(tracked, used by live ReplicaSets, current templates or running migrations) revisions
    of one Secret."""
    tracked: set[int] = set()
    in_use: set[int] = set()
    ref = f"{namespace}/{name}"
    for app_ns, app_name in set(_all(ctx.indexes.observers, (namespace, name))):
        app: state.WebAppEntry | None = _one(ctx.indexes.webapps, (app_ns, app_name))
        if app is not None:
            for item in app.status.get("secrets") or []:
                qualified = item.get("secretName", "")
                if "/" not in qualified:
                    qualified = f"{app_ns}/{qualified}"
                if qualified == ref and item.get("trackedRevision"):
                    tracked.add(int(item["trackedRevision"]))
            spec = app.body.get("spec") or {}
            for option in (spec.get("secrets") or {}).values():
                pin = (option or {}).get("revision")
                sref = (option or {}).get("secretName", "")
                if pin and grants.parse_secret_ref(app_ns, sref) == (namespace, name):
                    tracked.add(int(pin))
        for workload in _all(ctx.indexes.workloads, (app_ns, app_name)):
            keep = (
                workload.kind == "Deployment"
                or (workload.kind == "ReplicaSet" and workload.live)
                or workload.running  # a migration Job's pods may still start
            )
            if not keep or not workload.snapshot:
                continue
            snapshot = _one(ctx.indexes.secrets, (app_ns, workload.snapshot))
            if snapshot is None:
                continue
            sources = snapshot.sources
            for src_ns, src_name, number in sources.values():
                if (src_ns, src_name) == (namespace, name) and number is not None:
                    in_use.add(number)
    return tracked, in_use


async def reconcile_secret(ctx: Context, namespace: str, name: str) -> float | None:
    """Create the next revision when content changed; prune revisions nobody needs."""
    source: state.SecretEntry | None = _one(ctx.indexes.secrets, (namespace, name))
    if source is None or source.kind != revisions.KIND_SOURCE:
        ctx.agenda.drop((namespace, name))
        return None
    await _check_unsigned(ctx, source)
    lookup = IndexLookup(ctx.indexes, ctx.signatures_since)
    entries = lookup.revision_entries(namespace, name)
    latest = entries[-1] if entries else None
    await _report_unseal(ctx, source)
    if lookup.pending(namespace, name):
        number = (latest.revision.number if latest and latest.revision else 0) + 1
        now = ctx.clock.now()
        revision = _revision_object(source, number, now, ctx.settings.snapshot_key)
        created = await ctx.writer.create(revision)
        if created:
            await _squat_cleared(ctx, source)
            await ctx.writer.post_event(
                source.as_involved(),
                reasons.REVISION_CREATED,
                f"Created revision {number} of Secret {namespace}/{name}",
                now,
            )
            return None
        return await _revision_name_held(ctx, source, number)
    await _squat_cleared(ctx, source)
    if latest is None or latest.revision is None:
        return None
    await _schedule(ctx, source, entries)
    tracked, in_use = _in_use(ctx, namespace, name)
    numbers = [e.revision.number for e in entries if e.revision]
    for number in revisions.removable(numbers, latest.revision.number, tracked, in_use):
        removed = await ctx.writer.delete(
            "v1", "Secret", namespace, revisions.revision_name(name, number)
        )
        if removed:
            await ctx.writer.post_event(
                source.as_involved(),
                reasons.REVISION_REMOVED,
                f"Removed revision {number} of Secret {namespace}/{name}: not the latest, "
                "tracked by no app, used by no running pod",
                ctx.clock.now(),
            )
    return None


def _is_revision_of(
    ctx: Context, body: Mapping[str, Any], source: state.SecretEntry, number: int
) -> bool:
    """True when `body` is revision `number` of `source`, made by the operator: its labels and
    its signature, or (`_older_operators`) made before the current key signed."""
    if not _labelled_as(body, source, number):
        return False
    return _signature(ctx, body) is True or _older_operators(ctx, body, source)


def _labelled_as(body: Mapping[str, Any], source: state.SecretEntry, number: int) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return bool(labels == {**labels, **revisions.revision_labels(source.name, number)})


def _signature(ctx: Context, body: Mapping[str, Any]) -> bool | None:
    """Whether a Secret labelled as a revision carries its valid signature (None: it carries
    none at all)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if revisions.SIGNATURE_ANNOTATION not in annotations:
        return None
    try:
        data = state.decode_data(body.get("data"))
    except (ValueError, TypeError):
        return False
    namespace, labels = meta.get("namespace", ""), meta.get("labels") or {}
    return revisions.is_signed(namespace, labels, annotations, data, ctx.settings.snapshot_key)


def _older_operators(ctx: Context, body: Mapping[str, Any], source: state.SecretEntry) -> bool:
    """`state.older_operators` of a Secret as read (not through the index), without a valid
    signature."""
    if _signature(ctx, body) is True:
        return False
    entry = state.secret_entry(body)
    return state.older_operators(entry, source.uid, ctx.signatures_since)


async def _check_unsigned(ctx: Context, source: state.SecretEntry) -> None:
    """Each Secret labelled as a revision of `source` whose signature does not check out: one
    made before the current key signed (`state.older_operators`, read as a revision
    meanwhile) is signed, one metadata patch; anything else is left alone, never read nor
    removed, and a warning names it once per process (names only)."""
    for entry in _all(ctx.indexes.revisions, source.key):
        if entry.verified is not False or entry.revision is None:
            continue
        number = entry.revision.number
        if state.older_operators(entry, source.uid, ctx.signatures_since):
            memory = ("signed", entry.namespace, entry.name)
            if ctx.wrote_recently(memory, entry.uid):
                continue  # its watch event is on its way
            key = ctx.settings.snapshot_key
            signed = revisions.signature(source.namespace, source.name, number, entry.data, key)
            await ctx.writer.patch_metadata(
                "v1",
                "Secret",
                entry.namespace,
                entry.name,
                {"annotations": {revisions.SIGNATURE_ANNOTATION: signed}},
            )
            ctx.remember(memory, entry.uid)
            logger.info("Secret %s/%s: revision %d signed (made before this key signed)",
                        entry.namespace, entry.name, number)  # fmt: skip
            continue
        seen = (entry.namespace, entry.name, entry.uid)
        if seen in ctx.unsigned_seen:
            continue
        message = (
            f"Secret {entry.namespace}/{entry.name} is labelled as revision {number} of Secret "
            f"{source.namespace}/{source.name} but was not made by the operator (no valid "
            f"{revisions.SIGNATURE_ANNOTATION} annotation): it is ignored, never read nor "
            "removed; delete it (docs/reliability.md, Forged revisions)"
        )
        logger.warning("%s", message)
        # A Warning on the Secret itself, for whoever looks at it (`kubectl describe`, `secret
        # show`): named after its uid, so told once whatever restarts (names only).
        await _post_once(
            ctx,
            entry.as_involved(),
            ("unsigned", entry.uid),
            "",
            reasons.REVISION_NOT_SIGNED,
            message,
            ctx.clock.now(),
            warning=True,
        )
        ctx.unsigned_seen.add(seen)


async def _revision_name_held(ctx: Context, source: state.SecretEntry, number: int) -> float | None:
    """The create of revision `number` met AlreadyExists: ours (the watch is behind), or a
    Secret someone else made under that name, which is neither adopted nor overwritten: a
    Warning Event on the source names it, its observers fail naming it, and the create is
    tried again with a backoff, so that the squatter's removal lets the revision follow."""
    name = revisions.revision_name(source.name, number)
    retry_key = ("revision", source.namespace, source.name)
    body = await ctx.writer.get("v1", "Secret", source.namespace, name)
    if body is not None and _is_revision_of(ctx, body, source, number):
        return None  # ours: its watch event brings the next reconcile
    if body is None:
        return ctx.backoff(retry_key)  # gone meanwhile: try again
    message = (
        f"Secret {source.namespace}/{name} holds the name of revision {number} of Secret "
        f"{source.namespace}/{source.name} and is not one of its revisions (not made by the "
        f"operator); it is neither used nor overwritten, and no new revision is made until it "
        f"is removed: kubectl delete secret {name} -n {source.namespace}"
    )
    if ctx.squatted.get(source.key) != message:
        ctx.squatted[source.key] = message
        logger.warning("%s", message)
        await ctx.writer.post_event(
            source.as_involved(),
            reasons.SNAPSHOT_NAME_TAKEN,
            message,
            ctx.clock.now(),
            warning=True,
        )
        _enqueue_observers(ctx, source.key)
    return ctx.backoff(retry_key)


async def _squat_cleared(ctx: Context, source: state.SecretEntry) -> None:
    """Forget a squatted revision name once the revision is made (or no longer wanted)."""
    ctx.succeeded(("revision", source.namespace, source.name))
    if ctx.squatted.pop(source.key, None) is not None:
        _enqueue_observers(ctx, source.key)


def _enqueue_observers(ctx: Context, key: tuple[str, str]) -> None:
    if ctx.enqueue_webapp is not None:
        for app in set(_all(ctx.indexes.observers, key)):
            ctx.enqueue_webapp(*app)


def _not_granted(
    webapp: model.WebApp, subject: str, source: state.SecretEntry
) -> WebAppError | None:
    """The grant error of `source` for `webapp`, prefixed with `subject`; None when granted.
    Checked before telling an app anything about a Secret's state."""
    try:
        grants.check_granted(
            source.namespace,
            source.name,
            source.annotations.get(grants.GRANT_ANNOTATION),
            grants.AppRef(namespace=webapp.namespace, name=webapp.name),
        )
    except WebAppError as error:
        return type(error)(f"{subject}: {error.message}")
    return None


def _squat_failure(
    ctx: Context, webapp: model.WebApp, path: str, namespace: str, name: str
) -> WebAppError | None:
    """SnapshotNameTaken for an app granted a source whose next revision's name is squatted."""
    taken = ctx.squatted.get((namespace, name))
    source: state.SecretEntry | None = _one(ctx.indexes.secrets, (namespace, name))
    if taken is None or source is None:
        return None
    subject = f"WebApp {webapp.namespace}/{webapp.name}: {path}"
    return _not_granted(webapp, subject, source) or SnapshotNameTaken(f"{subject}: {taken}")


async def _report_unseal(ctx: Context, source: state.SecretEntry) -> None:
    """A Warning Event on a sealed source whose values do not open, once per new cause.

    No revision is made from it (`pending` is False), so the latest revision and every app on
    it stay as they are. Observers learn it from their own condition (`_unseal_failure`).
    """
    if source.unseal_error is None:
        ctx.unseal_reported.pop(source.key, None)
        return
    if ctx.unseal_reported.get(source.key) == source.unseal_error:
        return
    message = f"Secret {source.namespace}/{source.name} does not open: {source.unseal_error}"
    logger.warning("%s", message)
    # Named after the Secret and the cause: a restarted operator (whose memory above is empty)
    # posting it again is refused by the API server instead of telling it twice.
    await ctx.writer.post_event(
        source.as_involved(),
        sealing.UNSEAL_FAILED,
        message,
        ctx.clock.now(),
        warning=True,
        name=_event_name(source.name, "unseal-failed", source.uid, source.unseal_error),
    )
    ctx.unseal_reported[source.key] = source.unseal_error


def _unseal_failure(
    ctx: Context, webapp: model.WebApp, path: str, namespace: str, name: str
) -> WebAppError | None:
    """InvalidSecretKey for an app whose granted sealed Secret does not open (else None)."""
    source: state.SecretEntry | None = _one(ctx.indexes.secrets, (namespace, name))
    if source is None or source.unseal_error is None:
        return None
    subject = f"WebApp {webapp.namespace}/{webapp.name}: {path}"
    refused = _not_granted(webapp, subject, source)
    if refused is not None:
        return refused
    return InvalidSecretKeyError(
        f"{subject}: sealed Secret {namespace}/{name} does not open, so no new revision is "
        f"made from it (running pods keep their environment): {source.unseal_error}"
    )


def _policy(source: state.SecretEntry) -> schedule.RotatePolicy:
    value = source.annotations.get(schedule.ROTATE_ANNOTATION)
    return schedule.parse_rotate_policy(value) if value else schedule.NEVER


def _expire_policy(source: state.SecretEntry) -> schedule.ExpirePolicy | None:
    value = source.annotations.get(schedule.EXPIRE_ANNOTATION)
    return schedule.parse_expire(value) if value else None


def rotation_decision(
    source: state.SecretEntry, latest: state.SecretEntry, now: datetime
) -> schedule.RotationDecision:
    """plan_rotation for a source Secret from its annotations (pure)."""
    revision = latest.revision
    assert revision is not None
    expiry = schedule.expiry_from_annotations(revision.number, latest.annotations)
    return schedule.plan_rotation(
        _policy(source),
        schedule.rotation_from_annotations(source.annotations),
        schedule.LatestRevision(
            revision.number, revision.created, expiry.expires if expiry else None
        ),
        now,
    )


def _changed(current: Mapping[str, str], wanted: Mapping[str, str | None]) -> dict[str, str | None]:
    """The merge-patch entries that move `current` annotations to `wanted` (None removes)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


async def _schedule(
    ctx: Context, source: state.SecretEntry, entries: list[state.SecretEntry]
) -> None:
    """Rotation and expiry of one source Secret: notices, persisted state, next wake-up."""
    now = ctx.clock.now()
    latest = entries[-1]
    assert latest.revision is not None
    involved = source.as_involved()
    wakes: list[datetime] = []
    notify_observers = False
    try:
        expire_policy = _expire_policy(source)
        recorded = schedule.expiry_from_annotations(latest.revision.number, latest.annotations)
        wanted = schedule.latest_revision_expiry(
            expire_policy, latest.revision.number, latest.revision.created, recorded
        )
        if wanted != recorded:
            await _patch_annotations(ctx, latest, schedule.expiry_to_annotations(wanted))
            return  # the snapshot's watch event brings us back with the new expiry
        expiries = [
            e
            for e in (
                schedule.expiry_from_annotations(x.revision.number, x.annotations)
                for x in entries
                if x.revision
            )
            if e is not None
        ]
        decision = schedule.plan_expiry(expiries, now)
        by_number = {x.revision.number: x for x in entries if x.revision}
        for item in decision.revisions:
            if item.revision in decision.notify:
                # Bookkeeping first: a stop between the two loses one notice (it repeats in
                # 5 minutes) instead of telling the owner twice after a restart.
                await _patch_annotations(
                    ctx, by_number[item.revision], schedule.expiry_to_annotations(item)
                )
                await ctx.writer.post_event(
                    involved,
                    reasons.EXPIRED,
                    f"Revision {item.revision} of Secret {source.namespace}/{source.name} "
                    f"expired at {schedule.format_time(item.expires)}; create a new revision "
                    "or remove this one",
                    now,
                    warning=True,
                )
                notify_observers = True
        if decision.wake_at is not None:
            wakes.append(decision.wake_at)

        rotation = rotation_decision(source, latest, now)
        patch = _changed(source.annotations, schedule.rotation_to_annotations(rotation.state))
        if patch:
            # Bookkeeping before acting on it, as for expiry above: a restart neither repeats
            # the notice nor rotates an owned secret twice.
            await _patch_annotations(ctx, source, patch)
        generator = source.annotations.get(owned.GENERATE_ANNOTATION)
        if rotation.notify and generator and source.labels.get(owned.OWNED_BY_LABEL):
            # The operator owns this secret: it rotates it itself (a new revision follows).
            values = owned.generate(owned.parse_generate(generator), ctx.token)
            await ctx.writer.patch_secret_data(
                source.namespace, source.name, _replace_keys(source.data, values)
            )
        if rotation.notify:
            policy = _policy(source)
            why = "its latest revision expires first" if rotation.early else f"policy {policy.name}"
            await ctx.writer.post_event(
                involved,
                reasons.ROTATION_DUE,
                f"Secret {source.namespace}/{source.name} is due for rotation ({why}); "
                f"create a new revision: kubectl webapp update-secret {source.name} "
                f"-n {source.namespace} KEY=VALUE ...",
                now,
            )
            notify_observers = True
        if rotation.wake_at is not None:
            wakes.append(rotation.wake_at)
    except WebAppError as error:
        logger.warning(
            "Secret %s/%s: rotation or expiry not scheduled: %s",
            source.namespace,
            source.name,
            error.message,
        )
    ctx.agenda.set(source.key, min(wakes, default=None))
    if notify_observers and ctx.enqueue_webapp is not None:
        for app in set(_all(ctx.indexes.observers, source.key)):
            ctx.enqueue_webapp(*app)


async def _patch_annotations(
    ctx: Context, entry: state.SecretEntry, annotations: Mapping[str, str | None]
) -> None:
    await ctx.writer.patch_metadata(
        "v1", "Secret", entry.namespace, entry.name, {"annotations": dict(annotations)}
    )


# ----------------------------------------------------------------------------- webapps


def _digest(obj: Mapping[str, Any]) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:20]


def stamp_applied(obj: dict[str, Any]) -> str:
    """Annotate a rendered object with the digest of what it is without that annotation (what
    the informers read back as `applied`); the digest."""
    digest = _digest(obj)
    obj["metadata"].setdefault("annotations", {})[state.APPLIED_ANNOTATION] = digest
    return digest


def rollout_patch(
    obj: Mapping[str, Any], current: state.WorkloadEntry | None
) -> dict[str, Any] | None:
    """The strategic merge patch that rolls a Deployment onto a new environment, when that is
    all that changed since it was last applied; None when anything else changed too.

    `obj` is the rendered Deployment, its applied digest annotated. A change of environment
    changes one thing in it: the snapshot its containers read through `envFrom`. When the
    rendering with the old snapshot put back digests to what the live Deployment says was
    applied, nothing else changed, and the rollout is that field (and the new digest): a patch
    that costs the API server about half a server-side apply of the whole Deployment
    (docs/performance.md). Any other change is a full apply, which takes back every field; so
    is a rollout of a Deployment another field manager holds fields of (`current.shared`).
    """
    if obj["kind"] != "Deployment" or current is None or not current.snapshot or current.shared:
        return None
    containers = obj["spec"]["template"]["spec"]["containers"]
    sources = [source for container in containers for source in container.get("envFrom") or []]
    refs = [source["secretRef"] for source in sources if "secretRef" in source]
    # Every container reads one snapshot, and only it, and it is not the live one.
    if not refs or len(refs) != len(sources) or len({ref.get("name") for ref in refs}) != 1:
        return None
    if refs[0].get("name") == current.snapshot:
        return None
    # The digest of the rendering with the old snapshot, made on `obj` itself (the names put
    # back and the annotation left out, then restored): a deep copy of the Deployment cost as
    # much as the digest.
    meta: dict[str, Any] = obj["metadata"]
    annotations = meta["annotations"]
    digest = annotations.pop(state.APPLIED_ANNOTATION)
    alone = not annotations
    wanted = refs[0]["name"]
    try:
        if alone:
            del meta["annotations"]
        for ref in refs:
            ref["name"] = current.snapshot
        before = _digest(obj)
    finally:
        annotations[state.APPLIED_ANNOTATION] = digest
        if alone:
            meta["annotations"] = annotations
        for ref in refs:
            ref["name"] = wanted
    if before != current.applied:
        return None
    return {
        "metadata": {"annotations": {state.APPLIED_ANNOTATION: digest}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": c["name"], "envFrom": c["envFrom"]}
                        for c in containers
                        if "envFrom" in c
                    ]
                }
            }
        },
    }


async def _drop_foreign_history(
    ctx: Context, workloads: Iterable[state.WorkloadEntry], drifted: set[str]
) -> None:
    """Delete the ReplicaSets an environment changed outside the operator left as rollout
    history, once scaled down and their Deployment put back: they hold what was set (`kubectl
    set env PASSWORD=...`), a value outside any Secret (invariant 2). Without `delete` on
    ReplicaSets (an older RBAC) they stay, and a warning says so once."""
    listed = list(workloads)
    intact = {w.name for w in listed if w.kind == "Deployment" and not w.env_foreign} - drifted
    for w in listed:
        if w.kind != "ReplicaSet" or not w.env_foreign or w.live or w.owner not in intact:
            continue
        key = ("ReplicaSet", w.namespace, w.name)
        if ctx.made_recently(key) or key in ctx.refused:
            continue
        try:
            await ctx.writer.delete("apps/v1", "ReplicaSet", w.namespace, w.name)
        except Exception as error:
            if not _denied(error):
                raise
            ctx.refused.add(key)  # told once per process
            logger.warning(
                "ReplicaSet %s/%s holds an environment changed outside the operator, and the "
                "operator may not delete it (grant delete on replicasets, as the chart's RBAC "
                "does); delete it: kubectl delete replicaset %s -n %s",
                w.namespace, w.name, w.name, w.namespace,
            )  # fmt: skip
            continue
        ctx.remember(key)
        logger.info(
            "ReplicaSet %s/%s deleted: rollout history of an environment changed outside the "
            "operator", w.namespace, w.name,
        )  # fmt: skip


# How many times in a row the same repair of a pod template is sent (`Context.repair_tries`).
REPAIR_TRIES: Final = 3
# What a ChangeReverted names when the Deployment could not be read (no `get`).
TEMPLATE_FIELDS: Final = "containers or pod"
# What `changed_by_hand` says of a Deployment whose pod template (a field the WebApp decides)
# someone changed: `_template_changes` reads the Deployment to say which.
TEMPLATE: Final = "template"


def changed_by_hand(obj: Mapping[str, Any], current: state.WorkloadEntry) -> list[str]:
    """The fields of a Deployment or Service applied as rendered that someone changed since
    (`state.marks`): of a Deployment, TEMPLATE when a field of its pod template the WebApp
    decides differs (`drift`: a container added by hand is not the operator's to take back,
    only its environment is), its template's labels or annotations the operator sets, and
    its replica count when the operator sets one (not one an autoscaler holds): all but
    TEMPLATE applied again; of a Service, its type, selector or ports; of an Ingress, an
    autoscaler or a disruption budget, the keys of its spec (and an Ingress's annotations).
    The `applied` digest says what the operator wrote, not what the object holds now."""
    kind = obj["kind"]
    live = dict(current.marks)
    rendered = state.marks(kind, obj["spec"], obj["metadata"])
    differ = [name for name, mark in rendered if live.get(name) != mark]
    fields = []
    if kind == "Deployment":
        notes = [n for n in differ if n.startswith(state.ANNOTATION_MARK)]
        if any(n != state.LABELS_MARK and n not in notes for n in differ):
            fields.append(TEMPLATE)
        if state.LABELS_MARK in differ:
            fields.append("the pod's labels")
        if notes:
            keys = ", ".join(n.removeprefix(state.ANNOTATION_MARK) for n in notes)
            fields.append(f"the pod's annotations ({keys})")
    if kind != "Deployment":  # a Service's, an Ingress's, an autoscaler's, a budget's
        notes = [
            n.removeprefix(state.ANNOTATION_MARK)
            for n in differ
            if n.startswith(state.ANNOTATION_MARK)
        ]
        fields += [n for n in differ if not n.startswith(state.ANNOTATION_MARK)]
        if notes:
            fields.append(f"annotations ({', '.join(notes)})")
    wanted = obj["spec"].get("replicas") if kind == "Deployment" else None
    if wanted is not None and wanted != current.replicas:
        fields.append("replicas")
    return fields


async def _template_changes(
    ctx: Context, obj: Mapping[str, Any], current: state.WorkloadEntry, undone: list[str]
) -> tuple[list[str], dict[str, Any] | None]:
    """When `undone` has TEMPLATE: which fields of the template differ (`drift.changed`, read
    from the Deployment itself: its marks say only that something does), to tell, and the
    patch that puts them back; nothing when the Deployment is gone or already back.

    A template no other manager holds a field of (`shared`) was changed by no one else: what
    differs is what an earlier repair of the operator's left (it owns what it patched back,
    so a field the WebApp stops setting stays where an apply alone would take it out). It is
    put back, not told."""
    if TEMPLATE not in undone:
        return [], None
    try:
        live = await ctx.writer.get(obj["apiVersion"], obj["kind"], current.namespace, current.name)
    except Exception as error:
        if not _denied(error):
            raise
        if ("get", "Deployment", "") not in ctx.refused:  # told once per process
            ctx.refused.add(("get", "Deployment", ""))
            logger.warning(
                "The operator may not read Deployments (grant get on deployments, as the "
                "chart's RBAC does): a pod template changed by hand is applied again, which "
                "takes back what the WebApp sets but not what someone added",
            )
        return [TEMPLATE_FIELDS], None  # applied again instead
    if live is None:
        return [], None
    said, repair = drift.changed(obj, live), drift.repair(obj, live)
    if said and not current.shared:
        logger.info(
            "Deployment %s/%s: %s no longer set by WebApp %s; taken out",
            current.namespace, current.name, " and ".join(said), current.app,
        )  # fmt: skip
        said = []
    return said, repair


def _repair_id(repair: Mapping[str, Any]) -> str:
    """A short digest of a repair's patch: the same patch, the same digest."""
    return state.short_digest(repair)


async def _tell_kept(
    ctx: Context,
    entry: state.WebAppEntry,
    current: state.WorkloadEntry,
    said: list[str],
    repair: Mapping[str, Any],
) -> None:
    """A Warning, once for each such repair, that a Deployment's template is changed again at
    every repair (by a mutating admission webhook or policy, in the same write), so the
    operator leaves it rather than write for ever."""
    fields = " and ".join(said) or "its pod template"
    message = (
        f"Deployment {current.name}: {fields} changed again at each of {REPAIR_TRIES} repairs "
        "(a mutating admission webhook or policy?); left as it is: set it in WebApp "
        f"{entry.name} or exempt the app from what changes it"
    )
    logger.warning("WebApp %s/%s: %s", entry.namespace, entry.name, message)
    what = (reasons.CHANGE_NOT_REVERTED, current.uid, _repair_id(repair))
    await _post_once(
        ctx, _entry_ref(entry), what, "", reasons.CHANGE_NOT_REVERTED, message,
        ctx.clock.now(), True,
    )  # fmt: skip


async def _tell_reverted(
    ctx: Context, entry: state.WebAppEntry, reverting: list[tuple[state.WorkloadEntry, list[str]]]
) -> None:
    """A Warning for each object about to be applied again because someone changed it:
    its fields, never their values; named after the change (`_change_id`) and posted before
    the apply, so it is told once whatever dies (as `_patch_back`)."""
    for current, fields in reverting:
        if not fields:
            continue  # the operator's own leftovers (`_template_changes`)
        message = (
            f"{current.kind} {current.name}: {' and '.join(fields)} changed outside the "
            f"operator; put back as WebApp {entry.name} says (change the WebApp instead)"
        )
        await _warn_changed(ctx, entry, current, reasons.CHANGE_REVERTED, message)


def _change_id(current: state.WorkloadEntry) -> str:
    """What tells one change by hand of an object from the next: a Deployment's generation
    (a Service has none; for it and the other kinds: what it holds now)."""
    if current.kind == "Deployment":
        return str(current.generation)
    return state.marks_id(current.marks)


async def _warn_changed(
    ctx: Context,
    entry: state.WebAppEntry,
    current: state.WorkloadEntry,
    reason: str,
    message: str,
) -> None:
    """Log and tell on the WebApp (a Warning) that an object was changed by hand and is put
    back; named after the change (`_change_id`), so told once for each change."""
    logger.warning("WebApp %s/%s: %s", entry.namespace, entry.name, message)
    what = (reason, current.kind, current.name, current.uid, _change_id(current))
    await _post_once(ctx, _entry_ref(entry), what, "", reason, message, ctx.clock.now(), True)


def _drifted(
    obj: Mapping[str, Any], current: state.WorkloadEntry, snapshot: str
) -> tuple[str, ...]:
    """The containers whose environment to put back, of a Deployment applied as rendered: all
    of them when they read more or other than one snapshot (`env_foreign`), the rendered ones
    when they all read another snapshot than the rendered one; () when intact."""
    if obj["kind"] != "Deployment":
        return ()
    if current.env_foreign:
        return current.env_foreign
    if current.snapshot == snapshot:
        return ()
    return tuple(c["name"] for c in obj["spec"]["template"]["spec"]["containers"])


def env_repair(names: Iterable[str], snapshot: str) -> dict[str, Any]:
    """The strategic merge patch that puts a Deployment's environment back: each container of
    `names` reads `snapshot` through `envFrom` and nothing else (null deletes an `env` list,
    which a server-side apply could not take back from the manager that added it)."""
    containers = [
        {"name": name, "envFrom": [{"secretRef": {"name": snapshot}}], "env": None}
        for name in names
    ]
    return {"spec": {"template": {"spec": {"containers": containers}}}}


async def _patch_back(
    ctx: Context,
    entry: state.WebAppEntry,
    snapshot: str,
    drifted: list[tuple[state.WorkloadEntry, tuple[str, ...]]],
    repairs: Mapping[str, dict[str, Any]],
) -> None:
    """Patch back the Deployments changed by hand: their pod templates' `repairs`, and the
    environment of the `drifted` ones.

    Deployments applied as rendered whose containers read more or other than their
    environment snapshot (`kubectl set env`, an edited `envFrom`): every container of every
    process must see exactly the same environment (invariant 1), and a variable set beside the
    snapshot would shadow a secret's refresh. Each is patched back (a rollout) and told by a
    Warning naming the Deployment and its containers, never a variable or a value. The Warning
    goes first, named after the Deployment's generation: a process that dies before the patch
    finds the same drift after its restart and tells it under the same name, which the API
    server refuses, so it is told once. The `repairs` of pod templates (told already) go in
    the same patch where a Deployment has both, so no template between them ever rolls out."""
    left = dict(repairs)
    for current, names in drifted:
        key = ("Deployment", current.namespace, current.name)
        message = (
            f"Deployment {current.name}: the environment of its containers "
            f"({', '.join(names)}) was changed outside the operator (env or envFrom); put "
            f"back: every container reads only environment snapshot {snapshot}"
        )
        await _warn_changed(ctx, entry, current, reasons.ENVIRONMENT_RESTORED, message)
        patch = _merged(env_repair(names, snapshot), left.pop(current.name, None))
        await ctx.writer.patch_strategic(
            "apps/v1", "Deployment", current.namespace, current.name, patch
        )
        ctx.remember(("env", *key), str(current.generation))
    for name, patch in left.items():
        await ctx.writer.patch_strategic("apps/v1", "Deployment", entry.namespace, name, patch)


def _merged(patch: dict[str, Any], other: Mapping[str, Any] | None) -> dict[str, Any]:
    """Two patches of a Deployment's pod template as one, containers merged by name."""
    if other is None:
        return patch
    ours = patch["spec"]["template"]["spec"]
    theirs = dict(other["spec"]["template"]["spec"])
    containers = {c["name"]: dict(c) for c in ours.get("containers", [])}
    for container in theirs.pop("containers", []):
        containers.setdefault(container["name"], {}).update(container)
    return {
        "spec": {"template": {"spec": {**ours, **theirs, "containers": [*containers.values()]}}}
    }


async def _handoff(
    ctx: Context, obj: Mapping[str, Any], current: state.WorkloadEntry | None
) -> None:
    """Before a process passes to its autoscaler: its Deployment is applied without a replica
    count from now on, and a field only the operator's apply held would be removed, the count
    falling back to 1 until the autoscaler acts. So another manager of the operator's applies
    the live count first (once: the operator holds it no more after that), and the count
    stays where it is until the autoscaler changes it."""
    if obj["kind"] != "Deployment" or "replicas" in obj["spec"]:
        return
    if current is None or not current.owns_replicas:
        return
    meta = obj["metadata"]
    held = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": current.replicas},
    }
    await ctx.writer.apply(held, manager=HANDOFF_MANAGER)


async def _write_workload(
    ctx: Context, obj: Mapping[str, Any], current: state.WorkloadEntry | None
) -> None:
    """A rollout onto a new environment by its patch, anything else by a server-side apply."""
    patch = rollout_patch(obj, current)
    if patch is None:
        await ctx.writer.apply(obj)
        return
    meta = obj["metadata"]
    await ctx.writer.patch_strategic(
        obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], patch
    )


@dataclass
class _Option:
    """One secret option's tracking, decided in this reconcile."""

    option: str
    secret_name: str
    namespace: str
    name: str
    mode: Literal["auto", "manual"]
    pin: int | None
    tracked: int | None = None
    latest: int | None = None
    prior: int | None = None
    notified: int | None = None


def _refresh_request(webapp: model.WebApp, handled: str | None) -> tuple[str | None, set[str]]:
    """The refresh annotation if it is new: (token, options; '*' for all)."""
    token = observe.pending_refresh(webapp.metadata.annotations, handled)
    if token is None:
        return None, set()
    try:
        options, _ = observe.parse_refresh(token)
    except WebAppError:
        return token, set()  # malformed: recorded as handled, refreshes nothing
    return token, {observe.REFRESH_ALL} if options is None else set(options)


def _options(webapp: model.WebApp) -> list[tuple[str, str, str, str | None, int | None]]:
    """(status option name, field path, secretName, refresh, pin) of every tracked reference."""
    items: list[tuple[str, str, str, str | None, int | None]] = []
    for option, ref in sorted((webapp.spec.secrets or {}).items()):
        items.append(
            (option, f"spec.secrets.{option}", ref.secret_name, ref.refresh_mode, ref.revision)
        )
    for name, integration in sorted((webapp.spec.integrations or {}).items()):
        items.append(
            (name, f"spec.integrations.{name}", integration.secret_name, integration.refresh, None)
        )
    return items


def _owned_object(
    webapp: model.WebApp,
    name: str,
    generator: Mapping[str, int],
    values: Mapping[str, str] | None,
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """An operator-owned source Secret of `webapp` (its secret key, or an owned secret)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": webapp.namespace,
            "labels": {
                revisions.MANAGED_LABEL: revisions.KIND_SOURCE,
                owned.OWNED_BY_LABEL: webapp.name,
                "app.kubernetes.io/managed-by": "webapp-operator",
            },
            "annotations": {
                **annotations,
                owned.GENERATE_ANNOTATION: owned.format_generate(generator),
            },
            "ownerReferences": render.owner_references(webapp),
        },
        "type": "Opaque",
    }
    if values is not None:
        body["data"] = {k: _b64(v.encode()) for k, v in sorted(values.items())}
    return body


def _owned_wanted(webapp: model.WebApp) -> dict[str, tuple[dict[str, int], dict[str, str]]]:
    """Secret name -> (generator, owner annotations) of every Secret the operator keeps for it."""
    wanted = {
        f"{webapp.name}{SECRET_KEY_SUFFIX}": (
            {SECRET_KEY_DATA: owned.SECRET_KEY_BYTES},
            {
                grants.GRANT_ANNOTATION: webapp.name,
                revisions.DESCRIPTION_ANNOTATION: (
                    f"The secret key of WebApp {webapp.name}, generated by the operator; "
                    "rotate it with: kubectl webapp rotate-secret "
                    f"{webapp.name}{SECRET_KEY_SUFFIX}"
                ),
            },
        )
    }
    for name, spec in sorted((webapp.spec.owned_secrets or {}).items()):
        granted = grants.Grants(webapp.namespace, frozenset()).with_app(
            grants.AppRef(webapp.namespace, webapp.name)
        )
        for item in spec.grant or []:
            granted = granted.with_app(grants.parse_app_ref(webapp.namespace, item))
        annotations = {grants.GRANT_ANNOTATION: granted.to_annotation()}
        if spec.rotate:
            annotations[schedule.ROTATE_ANNOTATION] = spec.rotate
        annotations[revisions.DESCRIPTION_ANNOTATION] = spec.description or (
            f"Owned by WebApp {webapp.name}; values generated by the operator"
        )
        wanted[owned.owned_secret_name(webapp.name, name)] = (
            dict.fromkeys(spec.keys, spec.length),
            annotations,
        )
    return wanted


async def _ensure_owned(ctx: Context, webapp: model.WebApp) -> bool:
    """Create, update or delete the Secrets the operator keeps for `webapp`; True if pending."""
    pending = False
    namespace = webapp.namespace
    wanted = _owned_wanted(webapp)
    for name, (generator, owner_annotations) in wanted.items():
        current: state.SecretEntry | None = _one(ctx.indexes.secrets, (namespace, name))
        key = ("Secret", namespace, name)
        not_owned = WebAppError(
            f"WebApp {namespace}/{webapp.name}: Secret {namespace}/{name} exists and is not "
            "owned by this app; rename or remove it"
        )
        if current is None:
            if not ctx.wrote_recently(key):
                values = owned.generate(generator, ctx.token)
                created = await ctx.writer.create(
                    _owned_object(webapp, name, generator, values, owner_annotations)
                )
                if not created:
                    # A Secret the index does not hold (not opted in): ours only if it carries
                    # both our marks (then the watch is behind); never adopted, never changed.
                    body = await ctx.writer.get("v1", "Secret", namespace, name)
                    labels = ((body or {}).get("metadata") or {}).get("labels") or {}
                    ours = labels.get(revisions.MANAGED_LABEL) == revisions.KIND_SOURCE and (
                        labels.get(owned.OWNED_BY_LABEL) == webapp.name
                    )
                    if body is not None and not ours:
                        raise not_owned
                    if ours:
                        ctx.remember(key)
                else:
                    ctx.remember(key)
            pending = True
            continue
        ctx.caught_up(key)  # made: deleted from now on, it is made again
        if current.labels.get(owned.OWNED_BY_LABEL) != webapp.name:
            raise not_owned
        desired = {
            **owner_annotations,
            owned.GENERATE_ANNOTATION: owned.format_generate(generator),
        }
        patch: dict[str, str | None] = {
            k: v for k, v in desired.items() if current.annotations.get(k) != v
        }
        if schedule.ROTATE_ANNOTATION in current.annotations and (
            schedule.ROTATE_ANNOTATION not in desired
        ):
            patch[schedule.ROTATE_ANNOTATION] = None
        if patch and not ctx.wrote_recently(key, str(sorted(patch.items()))):
            await _patch_annotations(ctx, current, patch)
            ctx.remember(key, str(sorted(patch.items())))
        if set(current.data) != set(generator):
            # The keys changed: new values for every key, so a new revision.
            await ctx.writer.patch_secret_data(
                namespace, name, _replace_keys(current.data, owned.generate(generator, ctx.token))
            )
    for entry in _all(ctx.indexes.secrets, (state.OWNED_BY, namespace, webapp.name)):
        if entry.name not in wanted:
            await ctx.writer.delete("v1", "Secret", namespace, entry.name)
    return pending


async def _together(calls: list[Coroutine[Any, Any, None]]) -> None:
    """Await independent writes concurrently; raise the first failure once all are done."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _replace_keys(current: Mapping[str, bytes], values: Mapping[str, str]) -> dict[str, Any]:
    """A data merge patch that leaves exactly `values` (removed keys set to None)."""
    patch: dict[str, Any] = dict.fromkeys(current)
    patch.update(values)
    return patch


def _status_secrets(options: Iterable[_Option]) -> list[dict[str, Any]]:
    items = []
    for item in options:
        entry: dict[str, Any] = {"option": item.option, "secretName": item.secret_name}
        if item.tracked is not None:
            entry["trackedRevision"] = item.tracked
        if item.latest is not None:
            entry["latestRevision"] = item.latest
        if item.notified is not None:
            entry["notifiedRevision"] = item.notified
        items.append(entry)
    return items


def _involved(webapp: model.WebApp) -> dict[str, Any]:
    return _webapp_ref(webapp.name, webapp.namespace, webapp.metadata.uid)


def _webapp_ref(name: str, namespace: str, uid: str | None) -> dict[str, Any]:
    """A WebApp as an Event's involved object."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }


def _entry_ref(entry: state.WebAppEntry) -> dict[str, Any]:
    """The WebApp of an index entry as an Event's involved object."""
    uid = (entry.body.get("metadata") or {}).get("uid")
    return _webapp_ref(entry.name, entry.namespace, uid)


async def _write_status(
    ctx: Context,
    entry: state.WebAppEntry,
    generation: int | None,
    decided: list[observe.ConditionSpec],
    extra: Mapping[str, Any],
    keep_undecided: bool = False,
) -> None:
    old = entry.status
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": observe.conditions(
            old.get("conditions"), decided, ctx.now_text(), generation, keep_undecided
        ),
        **extra,
    }
    if not observe.status_equal(old, status):
        changed = sorted(k for k, v in status.items() if old.get(k) != v)
        ready: dict[str, Any] = next(
            (c for c in status["conditions"] if c["type"] == reasons.READY), {}
        )
        logger.info(
            "WebApp %s/%s: writing status (%s changed; Ready=%s %s)",
            entry.namespace,
            entry.name,
            ", ".join(changed),
            ready.get("status"),
            ready.get("reason"),
        )
        await ctx.writer.patch_webapp_status(entry.namespace, entry.name, status)


def _told_ready(entry: state.WebAppEntry) -> Mapping[str, Any]:
    """The Ready condition the WebApp's status holds ({} if none)."""
    conditions = entry.status.get("conditions") or []
    return next((c for c in conditions if c.get("type") == reasons.READY), {})


async def _fail(
    ctx: Context, entry: state.WebAppEntry, error: WebAppError, generation: int | None
) -> None:
    """The one failure path: Warning Event (on change only), Ready=False, keep workloads.

    The Warning is told before the status records the failure, and is named after the failure
    and the Ready condition it replaces: a process that dies in between tells it again after
    its restart under the same name, which the API server refuses, so it is told once; the
    same failure coming back later (after another condition, or in a new generation of the
    spec) is a new name, told again."""
    ready = _told_ready(entry)
    changed = ready.get("reason") != error.reason or ready.get("message") != error.message
    if changed:
        involved = _entry_ref(entry)
        uid = str(involved["metadata"]["uid"])
        before = [str(ready.get(k, "")) for k in ("status", "reason", "lastTransitionTime")]
        name = _event_name(
            entry.name, error.reason.lower(), uid, error.message, str(generation), *before
        )
        await ctx.writer.post_event(
            involved, error.reason, error.message, ctx.clock.now(), True, name=name
        )
    decided = [observe.ConditionSpec(reasons.READY, "False", error.reason, error.message)]
    # The other conditions (a revision available, a rotation due, an expiry) were decided from
    # a spec and Secrets this failure keeps the operator from reading again: they stay as
    # last decided, not dropped (a Secret that expired is still expired).
    await _write_status(ctx, entry, generation, decided, {}, keep_undecided=True)


async def reconcile_webapp(
    ctx: Context, namespace: str, name: str
) -> float | workqueue.Again | None:
    """Bring one WebApp's snapshot, Deployments, Service and status to what its spec says."""
    entry: state.WebAppEntry | None = _one(ctx.indexes.webapps, (namespace, name))
    if entry is None:
        return None
    generation = (entry.body.get("metadata") or {}).get("generation")
    try:
        webapp = model.parse_webapp(entry.body)
    except WebAppError as error:
        await _fail(ctx, entry, error, generation)
        return None

    # The ServiceAccount its pods would run as must have granted the app: nothing is rendered
    # or applied otherwise (the last good Deployments keep running).
    account_key = ("ServiceAccount", namespace, name)
    try:
        await _check_service_account(ctx, webapp)
    except WebAppError as error:
        await _fail(ctx, entry, error, generation)
        return ctx.backoff(account_key)  # the grant is on an object no watch follows
    ctx.succeeded(account_key)

    lookup = IndexLookup(ctx.indexes, ctx.signatures_since)
    prior = {s.get("option"): s for s in entry.status.get("secrets") or []}
    token, refresh = _refresh_request(webapp, entry.status.get("refreshed"))

    # The app secret key and the app's owned secrets: operator-owned source Secrets,
    # revisioned like any other.
    key_name = f"{webapp.name}{SECRET_KEY_SUFFIX}"
    owned_key = ("owned", namespace, name)
    try:
        if await _ensure_owned(ctx, webapp):
            return PENDING_RETRY
    except WebAppError as error:
        await _fail(ctx, entry, InvalidConfigError(error.message), generation)
        # A Secret the operator does not watch may hold the name: its removal is noticed here.
        return ctx.backoff(owned_key)
    ctx.succeeded(owned_key)

    options: list[_Option] = []
    resolved: dict[str, render.ResolvedSecret] = {}
    integrations: dict[str, render.ResolvedSecret] = {}
    errors: list[WebAppError] = []
    pending = lookup.pending(namespace, key_name)
    for option, path, ref, refresh_mode, pin in _options(webapp):
        mode: Literal["auto", "manual"] = "manual" if refresh_mode == "manual" else "auto"
        try:
            ref_ns, ref_name = grants.parse_secret_ref(namespace, ref)
        except WebAppError as error:
            errors.append(error)
            continue
        before = prior.get(option) or {}
        item = _Option(
            option=option,
            secret_name=ref,
            namespace=ref_ns,
            name=ref_name,
            mode=mode,
            pin=pin,
            latest=lookup.latest_revision(ref_ns, ref_name),
            prior=before.get("trackedRevision"),
            notified=before.get("notifiedRevision"),
        )
        wants_refresh = "*" in refresh or option in refresh
        item.tracked = observe.choose_tracked(mode, pin, item.prior, item.latest, wants_refresh)
        options.append(item)
        # A sealed source that does not open fails the apps that follow it (or have nothing
        # yet); apps pinned or on manual refresh keep their revision and stay as they are.
        unsealed = _unseal_failure(ctx, webapp, path, ref_ns, ref_name)
        follows = (mode == "auto" and pin is None) or item.tracked is None
        if unsealed is not None and follows:
            errors.append(unsealed)
            continue
        squatted = _squat_failure(ctx, webapp, path, ref_ns, ref_name)
        if squatted is not None and follows:
            errors.append(squatted)
            continue
        if lookup.pending(ref_ns, ref_name) and mode == "auto" and pin is None:
            pending = True
        if item.tracked is None and lookup.source(ref_ns, ref_name) is not None:
            pending = True  # revision 1 is about to be created
            continue
        try:
            target = integrations if path.startswith("spec.integrations") else resolved
            target[option] = resolve.resolve_one(
                webapp, path, option, ref, item.tracked if item.tracked else None, lookup
            )
        except WebAppError as error:
            errors.append(error)
    if errors:
        first = errors[0]
        message = "\n".join(e.message for e in errors)
        await _fail(ctx, entry, type(first)(message), generation)
        return None
    if pending:
        return PENDING_RETRY

    key_revision = lookup.latest_revision(namespace, key_name)
    key_content = lookup.revision(namespace, key_name, key_revision) if key_revision else None
    generated = key_content.data.get(SECRET_KEY_DATA, b"").decode() if key_content else None
    try:
        result = render.render(
            render.RenderInputs(
                webapp=webapp,
                secrets=resolved,
                integrations=integrations,
                generated_secret_key=generated,
            ),
            ctx.settings,
        )
    except WebAppError as error:
        await _fail(ctx, entry, error, generation)
        return None

    workloads = {(w.kind, w.name): w for w in _all(ctx.indexes.workloads, (namespace, name))}
    snapshot_key = ("Secret", namespace, result.snapshot_name)
    taken = await _ensure_snapshot(ctx, webapp, result)
    if taken is not None:
        await _fail(ctx, entry, taken, generation)
        return ctx.backoff(snapshot_key)  # the squatter may be a Secret no watch follows
    ctx.succeeded(snapshot_key)

    if result.migration is not None:
        # The release's migration first: no process moves to it before the Job succeeded.
        passed, again = await _migration(ctx, entry, result, workloads, generation)
        if not passed:
            return again

    rolled = []
    # Applied as rendered, their environment changed since: with the containers to put back.
    drifted: list[tuple[state.WorkloadEntry, tuple[str, ...]]] = []
    # Applied as rendered, fields changed since (`kubectl set image`, `kubectl scale`): applied
    # again, with the fields named.
    reverting: list[tuple[state.WorkloadEntry, list[str]]] = []
    # The patches that put their pod templates back, by Deployment (`drift.repair`).
    repairs: dict[str, dict[str, Any]] = {}
    changed: list[tuple[dict[str, Any], tuple[str, ...], str, state.WorkloadEntry | None]] = []
    digests: dict[tuple[str, str], str] = {}
    for obj in result.workloads():
        digest = stamp_applied(obj)
        digests[obj["kind"], obj["metadata"]["name"]] = digest
        key = (obj["kind"], namespace, obj["metadata"]["name"])
        current = workloads.get((obj["kind"], obj["metadata"]["name"]))
        if current is not None and current.applied == digest:
            ctx.caught_up(key, digest)
            names = _drifted(obj, current, result.snapshot_name)
            if names and not ctx.wrote_recently(("env", *key), str(current.generation)):
                drifted.append((current, names))
            undone = changed_by_hand(obj, current)
            if TEMPLATE not in undone:
                ctx.repaired.pop(key, None)  # intact: a repair held
            if not undone or ctx.wrote_recently(("hand", *key), _change_id(current)):
                continue
            said, repair = await _template_changes(ctx, obj, current, undone)
            if repair is not None and (tries := ctx.repair_tries(key, repair)) > REPAIR_TRIES:
                if tries == REPAIR_TRIES + 1:
                    await _tell_kept(ctx, entry, current, said, repair)
                said, repair = [], None
            told = said + [f for f in undone if f != TEMPLATE]
            if not told and repair is None:
                continue  # gone, or put back since the watch's event
            reverting.append((current, told))
            if repair is not None:
                repairs[current.name] = repair
            if repair is not None and undone == [TEMPLATE]:
                continue  # its repair alone puts it back
        if ctx.wrote_recently(key, digest):
            continue
        holder = ctx.indexes.workloads.named(*key)
        if holder is not None and holder.app != name:
            msg = (
                f"{obj['kind']} {key[2]} already belongs to WebApp {holder.app}: rename a "
                f"process of {name} (or the app) so that their names differ"
            )
            await _fail(ctx, entry, InvalidConfigError(msg), generation)
            return None
        changed.append((obj, key, digest, current))
        if (
            obj["kind"] == "Deployment"
            and current is not None
            and (current.snapshot != result.snapshot_name)
        ):
            rolled.append(obj["metadata"]["name"])
    fresh = [o for o, key, _, current in changed if current is None and not ctx.made_recently(key)]
    if fresh:
        claimed, again = await _claim_names(ctx, entry, generation, fresh)
        if not claimed:
            return again
    for obj, _, _, current in changed:
        await _handoff(ctx, obj, current)
    await _tell_reverted(ctx, entry, reverting)
    # Independent objects: applied together, one round trip rather than one per process.
    outcomes = await asyncio.gather(
        *(_write_workload(ctx, obj, current) for obj, _, _, current in changed),
        return_exceptions=True,
    )
    failed = []
    for (obj, written, digest, _), outcome in zip(changed, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed.append((obj["kind"], outcome))
        else:
            ctx.remember(written, digest, wake=(namespace, name))
    if failed:
        return await _write_failed(ctx, entry, generation, failed)
    await _patch_back(ctx, entry, result.snapshot_name, drifted, repairs)
    for current, _ in reverting:
        hand = ("hand", current.kind, current.namespace, current.name)
        ctx.remember(hand, _change_id(current))
    await _drop_foreign_history(ctx, workloads.values(), {d.name for d, _ in drifted})

    ctx.succeeded(("optional", namespace, name))
    desired = {d["metadata"]["name"] for d in result.deployments}
    scalers = {a["metadata"]["name"] for a in result.autoscalers}
    budgets = {b["metadata"]["name"] for b in result.budgets}
    for kind, wname in workloads:
        if kind == "Deployment" and wname not in desired:
            await ctx.writer.delete("apps/v1", "Deployment", namespace, wname)
        if kind == "Ingress" and result.ingress is None:  # spec.ingress taken out
            await ctx.writer.delete("networking.k8s.io/v1", "Ingress", namespace, wname)
        if kind == "HorizontalPodAutoscaler" and wname not in scalers:  # autoscale taken out
            await ctx.writer.delete("autoscaling/v2", kind, namespace, wname)
        if kind == "PodDisruptionBudget" and wname not in budgets:  # taken out
            await ctx.writer.delete("policy/v1", kind, namespace, wname)
        if kind == "Job" and result.migration is None:  # spec.migration taken out
            await ctx.writer.delete("batch/v1", kind, namespace, wname)
    if changed and ctx.urgent_besides is not None and ctx.urgent_besides(("webapp", *entry.key)):
        # Other apps wait for their new environment or are being rolled onto it (a fan-out):
        # their writes go first, and this app's status and notices follow as a follow-up, held
        # until the last of them is written (RolloutStarted is decided from the status, so the
        # follow-up tells it). Its pods already roll.
        return workqueue.Again(workqueue.FOLLOW_UP_DELAY, workqueue.FOLLOW_UP)

    now = ctx.clock.now()
    involved = _involved(webapp)
    existing = [n for n in sorted(desired) if ("Deployment", n) in workloads]
    notices = _rollout_notice(entry, result.snapshot_name, existing, options)
    notices += _tracking_notices(webapp, options)
    notices += _migrated_notice(entry, result)

    deployments = [workloads.get(("Deployment", n)) for n in sorted(desired)]
    done = all(
        d is not None and d.snapshot == result.snapshot_name and d.rolled_out and not rolled
        for d in deployments
    )
    if done:
        # Only after the rollout completed: until then old pods may restart on old snapshots.
        await _prune_snapshots(
            ctx,
            namespace,
            name,
            result.snapshot_name,
            workloads.values(),
            webapp.metadata.uid or "",
        )
    # A Deployment the controller gave up on, as this reconcile rendered it (not one it just
    # rolled again: that starts a new attempt).
    stalled = [
        f"Deployment {d.name}: {d.stalled}"
        for d in deployments
        if not done
        and d is not None
        and d.stalled
        and d.applied == digests.get(("Deployment", d.name))
    ]
    if done:
        ready = observe.ConditionSpec(
            reasons.READY, "True", reasons.AVAILABLE, "All processes run the current environment"
        )
    elif stalled:
        ready = observe.ConditionSpec(
            reasons.READY,
            "False",
            reasons.ROLLOUT_STALLED,
            f"Rolling out environment {result.snapshot_name} does not progress: "
            f"{'; '.join(stalled)}",
        )
    else:
        ready = observe.ConditionSpec(
            reasons.READY,
            "False",
            reasons.ROLLOUT_IN_PROGRESS,
            f"Rolling out environment {result.snapshot_name}",
        )
    decided = [ready]
    behind = [o for o in options if o.latest and o.tracked and o.latest > o.tracked]
    decided.append(
        observe.ConditionSpec(
            reasons.SECRET_UPDATE_AVAILABLE,
            "True" if behind else "False",
            "NewRevision" if behind else "UpToDate",
            "; ".join(
                f"{o.option}: revision {o.latest} available, tracking {o.tracked}" for o in behind
            ),
        )
    )
    decided += _notice_conditions(ctx, options, now)
    notes = result.environment.notes
    if notes:
        decided.append(
            observe.ConditionSpec(
                reasons.CONFIG_OVERRIDDEN,
                "True",
                "Overridden",
                "; ".join(n.message for n in notes)[:2000],
            )
        )
    extra: dict[str, Any] = {
        "secrets": _status_secrets(options),
        "environment": result.snapshot_name,
    }
    if result.migration is not None:
        extra["migration"] = result.migration["metadata"]["name"]
    if token is not None or entry.status.get("refreshed"):
        extra["refreshed"] = token or entry.status.get("refreshed")
    # Told before the status records them (environment, trackedRevision, notifiedRevision),
    # each as an Event named after the notice: a process stopped before the status write
    # decides them again after its restart, and the API server refuses the second Event of
    # that name, so each is told exactly once (as Juju tells an observer of a revision once).
    seen = str((entry.body.get("metadata") or {}).get("resourceVersion", ""))
    await _together(
        [
            *(
                _post_once(ctx, involved, key, seen, reason, message, now)
                for key, reason, message in notices
            ),
            *(
                _post_once(ctx, involved, key, seen, reasons.ROLLOUT_STALLED, message, now, True)
                for key, message in _stall_notice(entry, ready)
            ),
        ]
    )
    await _write_status(ctx, entry, generation, decided, extra)
    return None


async def _write_failed(
    ctx: Context,
    entry: state.WebAppEntry,
    generation: int | None,
    failed: list[tuple[str, BaseException]],
) -> float | None:
    """Writes of rendered objects (of these kinds) failed: say why on the app when the answer
    is the cluster's (a kind it may not write, an object the API server refuses), and retry
    when a retry may help; raise the first failure otherwise."""
    namespace, name = entry.namespace, entry.name
    denied = sorted({kind for kind, error in failed if _denied(error) and kind in OPTIONAL_KINDS})
    if denied:
        # The operator may not write them (an RBAC older than the fields that ask for them):
        # say so on the app, and try again (no watch tells of a grant).
        msg = f"WebApp {namespace}/{name}: " + "; ".join(
            f"{field}: the operator may not write {resource} (403); grant it list, watch, "
            f"create, patch and delete on {resource} ({group}), as the chart's RBAC does, "
            "or take the field out"
            for group, resource, field in (OPTIONAL_KINDS[kind] for kind in denied)
        )
        await _fail(ctx, entry, InvalidConfigError(msg), generation)
        return ctx.backoff(("optional", namespace, name))
    refused = next((error for _, error in failed if _refused(error)), None)
    if refused is not None:
        # The API server will not take what the spec renders (a webhook, a limit): say so on
        # the app. What it did take keeps running; the next spec change retries.
        status = refused.status  # type: ignore[attr-defined]
        msg = f"the API server refused a rendered object: {status.code} {status.message}"
        await _fail(ctx, entry, InvalidConfigError(msg[:1000]), generation)
        return None
    raise failed[0][1]


async def _claim_names(
    ctx: Context,
    entry: state.WebAppEntry,
    generation: int | None,
    objs: list[dict[str, Any]],
) -> tuple[bool, float | None]:
    """Whether the names of objects the operator is about to make for the first time are
    free: (True, None), or (False, when to look again) with the app failed.

    A forced server-side apply would take over an object someone else made under that name
    (its image, its rules, its selector), which whoever may create a WebApp may not be allowed
    to write: the operator would be their way around RBAC. Its watches only see its own
    (labelled) objects, and it may not `get` others, so each name is checked by a dry-run
    create (nothing is stored; 409 when the name is held).
    """
    namespace, name = entry.namespace, entry.name
    answers = await asyncio.gather(
        *(ctx.writer.name_free(obj) for obj in objs), return_exceptions=True
    )
    # A kind the operator may not write at all cannot be taken over: its apply tells the app.
    failed = [
        (o["kind"], a)
        for o, a in zip(objs, answers, strict=True)
        if isinstance(a, BaseException) and not (_denied(a) and o["kind"] in OPTIONAL_KINDS)
    ]
    if failed:
        return False, await _write_failed(ctx, entry, generation, failed)
    held = [o for o, free in zip(objs, answers, strict=True) if free is False]
    if not held:
        ctx.succeeded(("held", namespace, name))
        return True, None
    names = ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in held)
    deletes = "; ".join(
        f"kubectl delete {o['kind'].lower()} {o['metadata']['name']} -n {namespace}" for o in held
    )
    one = len(held) == 1
    msg = (
        f"WebApp {namespace}/{name}: {names} already {'exists' if one else 'exist'} in the "
        f"namespace and {'was' if one else 'were'} not made by the operator for this app; "
        f"{'it is' if one else 'they are'} never overwritten. Rename the app (or the process), "
        f"or remove {'it' if one else 'them'} if {'it' if one else 'they'} may go ({deletes})"
    )
    await _fail(ctx, entry, InvalidConfigError(msg[:2000]), generation)
    return False, ctx.backoff(("held", namespace, name))  # no watch tells of its removal


async def _migration(
    ctx: Context,
    entry: state.WebAppEntry,
    result: render.Rendered,
    workloads: Mapping[tuple[str, str], state.WorkloadEntry],
    generation: int | None,
) -> tuple[bool, float | None]:
    """Whether the release's migration succeeded; if not, its Job is started or waited for
    and the app says so: (False, when to look again; None waits for the Job's watch event).

    A Job per release (its name is a digest of what it runs), kept once it succeeded for its
    logs, and recorded in the status so that a Job deleted since is not run again. Jobs of
    other releases are deleted (a release given up while its migration ran stops it).
    """
    assert result.migration is not None
    namespace, app = entry.namespace, entry.name
    job = result.migration
    name = job["metadata"]["name"]
    for kind, other in workloads:
        if kind == "Job" and other != name:
            await ctx.writer.delete("batch/v1", kind, namespace, other)
    current = workloads.get(("Job", name))
    key = ("Job", namespace, name)
    if current is not None:
        # A Job deleted from now on (to run it again) is made again.
        ctx.caught_up(key, current.applied)
    if entry.status.get("migration") == name or (current is not None and current.succeeded):
        ctx.succeeded(("optional", namespace, app))
        return True, None
    snapshot = result.snapshot_name
    if current is not None and current.failed is not None:
        msg = (
            f"WebApp {namespace}/{app}: migration Job {name} for environment {snapshot} failed "
            f"({current.failed}); every process keeps its previous release. Fix the cause and "
            f"apply a new spec, or run it again: kubectl delete job {name} -n {namespace}"
        )
        if _told_ready(entry).get("message") != msg[:2000]:
            await _together(_started_notice(ctx, entry, name, snapshot))
        await _fail(ctx, entry, MigrationFailed(msg[:2000]), generation)
        return False, None
    digest = stamp_applied(job)
    if current is None and not ctx.wrote_recently(key, digest):
        if not ctx.made_recently(key):
            claimed, again = await _claim_names(ctx, entry, generation, [job])
            if not claimed:
                return False, again
        try:
            await ctx.writer.apply(job)
        except Exception as error:  # noqa: BLE001 (told on the app, or raised by _write_failed)
            return False, await _write_failed(ctx, entry, generation, [("Job", error)])
        ctx.remember(key, digest, wake=(namespace, app))
    ctx.succeeded(("optional", namespace, app))
    ready = observe.ConditionSpec(
        reasons.READY, "False", reasons.MIGRATION_IN_PROGRESS, _migrating(name, snapshot)
    )
    await _together(_started_notice(ctx, entry, name, snapshot))
    await _write_status(ctx, entry, generation, [ready], {}, keep_undecided=True)
    return False, None


def _migrating(job: str, snapshot: str) -> str:
    """The Ready message while a release's migration runs."""
    return (
        f"Running migration Job {job} for environment {snapshot}; the processes move to it "
        "once it succeeded"
    )


def _started(
    entry: state.WebAppEntry, job: str, snapshot: str
) -> list[tuple[tuple[str, ...], str, str]]:
    """MigrationStarted, unless the status already says the Job runs: it is told before the
    status records it, under a name of its own (once, whenever the process dies); a Job that
    ended before any status said it ran is told started when its end is."""
    if _told_ready(entry).get("message") == _migrating(job, snapshot):
        return []
    key = (reasons.MIGRATION_STARTED, entry.namespace, entry.name, job)
    message = f"Running migration Job {job} for environment {snapshot}"
    return [(key, reasons.MIGRATION_STARTED, message)]


def _started_notice(
    ctx: Context, entry: state.WebAppEntry, job: str, snapshot: str
) -> list[Coroutine[Any, Any, None]]:
    """Post `_started`, if due."""
    seen = str((entry.body.get("metadata") or {}).get("resourceVersion", ""))
    return [
        _post_once(ctx, _entry_ref(entry), key, seen, reason, message, ctx.clock.now())
        for key, reason, message in _started(entry, job, snapshot)
    ]


def _migrated_notice(
    entry: state.WebAppEntry, result: render.Rendered
) -> list[tuple[tuple[str, ...], str, str]]:
    """MigrationSucceeded when the status does not record the release's migration yet (and
    MigrationStarted first, when no status said it ran)."""
    if result.migration is None:
        return []
    name = result.migration["metadata"]["name"]
    if entry.status.get("migration") == name:
        return []
    snapshot = result.snapshot_name
    notices = _started(entry, name, snapshot)
    notices.append(
        (
            (reasons.MIGRATION_SUCCEEDED, entry.namespace, entry.name, name),
            reasons.MIGRATION_SUCCEEDED,
            f"Migration Job {name} succeeded: the processes move to environment {snapshot}",
        )
    )
    return notices


def _stall_notice(
    entry: state.WebAppEntry, ready: observe.ConditionSpec
) -> list[tuple[tuple[str, ...], str]]:
    """A Warning RolloutStalled when the status does not say this stall yet: once per stall
    (its message names the new ReplicaSet, so a new attempt that stalls is told again), and not
    again after a restart, which finds it in the status."""
    if ready.reason != reasons.ROLLOUT_STALLED:
        return []
    told = _told_ready(entry)
    if told.get("reason") == ready.reason and told.get("message") == ready.message:
        return []
    return [((reasons.ROLLOUT_STALLED, entry.namespace, entry.name, ready.message), ready.message)]


async def _check_service_account(ctx: Context, webapp: model.WebApp) -> None:
    """Raise unless `spec.serviceAccountName` (when set) grants the app (one GET)."""
    account = webapp.spec.service_account_name
    if not account:
        return  # the namespace's default account: no grant needed
    body = await ctx.writer.get("v1", "ServiceAccount", webapp.namespace, account)
    annotations = (
        None if body is None else dict((body.get("metadata") or {}).get("annotations") or {})
    )
    try:
        grants.check_service_account(
            webapp.namespace,
            account,
            annotations,
            grants.AppRef(namespace=webapp.namespace, name=webapp.name),
        )
    except WebAppError as error:
        raise type(error)(f"WebApp {webapp.namespace}/{webapp.name}: {error.message}") from None


async def _ensure_snapshot(
    ctx: Context, webapp: model.WebApp, result: render.Rendered
) -> WebAppError | None:
    """Create the environment snapshot, or accept the existing one only if the operator made
    it: its content's keyed digest gives back its name. Else SnapshotNameTaken: a Secret of that
    name made by someone else is never mounted by the app's pods and never overwritten."""
    namespace, name = webapp.namespace, result.snapshot_name
    key = ("Secret", namespace, name)
    current: state.SecretEntry | None = _one(ctx.indexes.secrets, (namespace, name))
    if current is not None and current.verified is not None:
        if current.kind == revisions.KIND_ENVIRONMENT and current.verified:
            ctx.caught_up(key)  # deleted from now on, it is made again
            return None  # ours, checked when the index took it
    elif ctx.wrote_recently(key):
        return None  # created by this process moments ago; the watch is behind
    elif current is None and await ctx.writer.create(result.snapshot):
        ctx.remember(key, wake=(namespace, webapp.name))
        return None
    else:
        # Held, and not known to be ours (the watch is behind, or the Secret is not watched).
        body = await ctx.writer.get("v1", "Secret", namespace, name)
        if body is None and await ctx.writer.create(result.snapshot):
            ctx.remember(key, wake=(namespace, webapp.name))  # gone meanwhile, and made now
            return None
        if body is not None and state.is_own_snapshot(body, ctx.settings.snapshot_key):
            ctx.remember(key, wake=(namespace, webapp.name))
            return None
    return SnapshotNameTaken(
        f"WebApp {namespace}/{webapp.name}: the name of its environment snapshot {name} is held "
        f"by Secret {namespace}/{name}, which the operator did not make (its content is not "
        f"this app's environment); the app's pods never read it and it is not overwritten. "
        f"Remove it (kubectl delete secret {name} -n {namespace}) and the app rolls out"
    )


def _rollout_notice(
    entry: state.WebAppEntry, snapshot: str, existing: list[str], options: Iterable[_Option]
) -> list[tuple[tuple[str, ...], str, str]]:
    """RolloutStarted when the environment the status records moves to `snapshot`.

    Decided from the status, not from the Deployments' templates: a process that stopped after
    applying the Deployments and before recording the environment leaves the notice due.
    """
    before = entry.status.get("environment")
    if not before or before == snapshot or not existing:
        return []  # a new app is created, not rolled
    sources = ", ".join(f"{o.option}#{o.tracked}" for o in options if o.tracked) or "config"
    return [
        (
            (reasons.ROLLOUT_STARTED, entry.namespace, entry.name, snapshot),
            reasons.ROLLOUT_STARTED,
            f"Rolling {', '.join(existing)} to environment {snapshot} ({sources})",
        )
    ]


def _tracking_notices(
    webapp: model.WebApp, options: Iterable[_Option]
) -> list[tuple[tuple[str, ...], str, str]]:
    """(memory key, reason, message) of SecretRefreshed and SecretChanged, once per revision.

    Sets `notified` on manual options told of a newer revision, for the status to record.
    """
    notices: list[tuple[tuple[str, ...], str, str]] = []
    for item in options:
        key = (webapp.namespace, webapp.name, item.option)
        if item.prior is not None and item.tracked != item.prior:
            notices.append(
                (
                    (reasons.SECRET_REFRESHED, *key, str(item.tracked)),
                    reasons.SECRET_REFRESHED,
                    f"{item.option}: now tracking revision {item.tracked} of Secret "
                    f"{item.namespace}/{item.name} (was {item.prior})",
                )
            )
        lagging = (
            item.latest is not None and item.tracked is not None and item.latest > item.tracked
        )
        if item.mode == "manual" and lagging and item.notified != item.latest:
            notices.append(
                (
                    (reasons.SECRET_CHANGED, *key, str(item.latest)),
                    reasons.SECRET_CHANGED,
                    f"{item.option}: revision {item.latest} of Secret "
                    f"{item.namespace}/{item.name} is available (tracking {item.tracked}); run: "
                    f"kubectl webapp refresh {webapp.name} {item.option} -n {webapp.namespace}",
                )
            )
            item.notified = item.latest
    return notices


async def _post_once(
    ctx: Context,
    involved: Mapping[str, Any],
    key: tuple[str, ...],
    seen: str,
    reason: str,
    message: str,
    now: datetime,
    warning: bool = False,
) -> None:
    """Post a notice once. Its Event is named after the app's uid and the notice's key, so a
    second post (another process, after a restart) is refused by the API server; and this
    process does not even try again from the same WebApp resourceVersion (a reconcile that runs
    before the watch brings back the status decides it again)."""
    if ctx.wrote_recently(("Event", *key), seen):
        return
    meta = involved["metadata"]
    name = _event_name(meta["name"], reason.lower(), str(meta.get("uid")), *key)
    await ctx.writer.post_event(involved, reason, message, now, warning=warning, name=name)
    ctx.remember(("Event", *key), seen)


def _event_name(about: str, kind: str, uid: str, *what: str) -> str:
    """The name of an Event told once: the object, the kind of notice, and a digest of the
    object's uid and what the notice announces (the API server refuses a second of a name)."""
    digest = hashlib.sha256("\n".join([uid, *what]).encode()).hexdigest()[:12]
    return f"{about[:180]}.{kind}.{digest}"


# Kinds the operator writes only when a field asks (its RBAC may predate them): kind ->
# (API group, resource, the field).
OPTIONAL_KINDS: Final = {
    "Ingress": ("networking.k8s.io", "ingresses", "spec.ingress"),
    "HorizontalPodAutoscaler": (
        "autoscaling",
        "horizontalpodautoscalers",
        "spec.processes.<process>.autoscale",
    ),
    "PodDisruptionBudget": (
        "policy",
        "poddisruptionbudgets",
        "spec.processes.<process>.disruptionBudget",
    ),
    "Job": ("batch", "jobs", "spec.migration"),
}


def _denied(outcome: object) -> bool:
    from lightkube.core.exceptions import ApiError

    return isinstance(outcome, ApiError) and outcome.status.code == 403


def _refused(error: BaseException) -> bool:
    """A 4xx answer to a write that retrying the same request cannot change (not a conflict,
    not throttling, not a missing namespace or permission being rolled out)."""
    from lightkube.core.exceptions import ApiError

    return isinstance(error, ApiError) and error.status.code in (400, 422)


def _notice_conditions(
    ctx: Context, options: Iterable[_Option], now: datetime
) -> list[observe.ConditionSpec]:
    """SecretRotationDue and SecretExpired, from the sources' schedules (pure reads)."""
    due: list[str] = []
    expired: list[str] = []
    lookup = IndexLookup(ctx.indexes, ctx.signatures_since)
    for item in options:
        source: state.SecretEntry | None = _one(ctx.indexes.secrets, (item.namespace, item.name))
        entries = lookup.revision_entries(item.namespace, item.name)
        if source is None or not entries:
            continue
        try:
            if rotation_decision(source, entries[-1], now).due_since is not None:
                due.append(f"{item.option} ({item.namespace}/{item.name})")
            for entry in entries:
                revision = entry.revision
                if revision is None or revision.number != item.tracked:
                    continue
                expiry = schedule.expiry_from_annotations(revision.number, entry.annotations)
                if expiry is not None and expiry.expires <= now:
                    expired.append(
                        f"{item.option}: revision {revision.number} expired at "
                        f"{schedule.format_time(expiry.expires)}"
                    )
        except WebAppError:
            continue
    return [
        observe.ConditionSpec(
            reasons.SECRET_ROTATION_DUE,
            "True" if due else "False",
            reasons.ROTATION_DUE if due else "NotDue",
            ("Due for rotation: " + ", ".join(due)) if due else "",
        ),
        observe.ConditionSpec(
            reasons.SECRET_EXPIRED,
            "True" if expired else "False",
            reasons.EXPIRED if expired else "NotExpired",
            "; ".join(expired),
        ),
    ]


async def _prune_snapshots(
    ctx: Context,
    namespace: str,
    app: str,
    current: str,
    workloads: Iterable[state.WorkloadEntry],
    app_uid: str,
) -> None:
    """Delete environment snapshots no Deployment or kept ReplicaSet of the app names: the
    operator's own, under the current key or an older one (`state.older_snapshot`), never
    someone else's."""
    keep = {current} | {w.snapshot for w in workloads if w.snapshot}
    for entry in _all(ctx.indexes.secrets, (state.ENV_OF, namespace, app)):
        if entry.name in keep:
            continue
        if entry.verified is not False or state.older_snapshot(
            entry, app, app_uid, ctx.signatures_since
        ):
            await ctx.writer.delete("v1", "Secret", namespace, entry.name)
            # Made again later (a rollback) only after the check: the name may be squatted.
            ctx.recent.pop(("Secret", namespace, entry.name), None)
