"""Kopf registration: indexes, thin event handlers, deliberate settings, the worker pool.

Why these Kopf features and no others:

- WebApps are Kopf's: `@kopf.index` keeps a compact entry of each in memory, and Kopf holds back
  its handlers until the index has its initial listing. The index function is `async def`:
  Kopf runs a sync handler in its thread pool, a thread hop per watch event.
- `@kopf.on.event` only enqueues keys. It keeps no diff-base and no progress annotations; no
  change-detecting handler (`on.create/update/delete`) is registered at all, and no finalizer.
- Managed Secrets, Deployments, ReplicaSets, Services (and Ingresses, autoscalers, disruption
  budgets, migration Jobs) are not watched through Kopf but through informers
  (`kube/informer.py`): each event costs a JSON decoding into a compact entry, with none of
  Kopf's per-event machinery and per-object memory (a fan-out's new snapshots and rollouts
  make many events; a cluster holds thousands of managed Secrets). The Secrets are kept in a
  `state.SecretIndex`, read as a Kopf index is. Kopf never sees a Secret, so it never writes
  one's data anywhere (invariant 2).
- The workers start once Kopf's index and every informer have listed, so the first reconcile
  after a restart already sees the whole cluster and finds nothing to write (invariant 7).
- Server-side label selectors: Secrets by the key `twelvefactor.dev/secret` (sources, revisions,
  snapshots), the rendered kinds by `managed-by=webapp-operator`; memory does not grow with
  unrelated objects.
- Posting of log messages as Kubernetes Events is off: the operator posts its own Events, whose
  texts name objects and never values.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from webapp_operator import GROUP, PLURAL, VERSION
from webapp_operator.controller import kopf_patches, leader, metrics, reconcile, state, workqueue
from webapp_operator.controller import sealing as sealing_keys
from webapp_operator.domain import envrules, observe, owned, render, revisions, schedule
from webapp_operator.kube import client as kube
from webapp_operator.kube import informer, transport

logger = logging.getLogger(__name__)

# Before Kopf runs: index pre-population without quadratic wakeups (kopf_patches.py).
kopf_patches.apply()

MANAGED_SELECTOR: Final = "app.kubernetes.io/managed-by=webapp-operator"
KEYS_SECRET: Final = "webapp-operator-keys"  # noqa: S105 (a name, not a secret)
# On KEYS_SECRET: the first start of an operator that signs revisions (reconcile.Context).
SIGNATURES_SINCE_ANNOTATION: Final = "twelvefactor.dev/signatures-since"
SNAPSHOT_KEY_FIELD: Final = "snapshot-key"
WEBAPP_DELAY: Final = 0.05
SETTLING_SWEEP: Final = 256  # coalescing windows kept before the ended ones are dropped
# Work queue priorities: a change someone made (a Secret's content, a WebApp's spec, a due
# rotation) goes before the follow-up reconciles that the operator's own writes cause (rollout
# progress, status, pruning checks), so a fan-out reaches every app first.
URGENT: Final = workqueue.URGENT
FOLLOW_UP: Final = workqueue.FOLLOW_UP
FOLLOW_UP_DELAY: Final = workqueue.FOLLOW_UP_DELAY


class SystemClock:
    """Wall-clock time, optionally shifted by the seconds in a file (for tests of schedules)."""

    def __init__(self, offset_file: str | None = None) -> None:
        self.offset_file = offset_file

    def now(self) -> datetime:
        now = datetime.now(UTC)
        if self.offset_file:
            try:
                with open(self.offset_file) as handle:
                    from datetime import timedelta

                    now += timedelta(seconds=float(handle.read().strip() or 0))
            except (OSError, ValueError):
                pass
        return now


class Runtime:
    """Everything the handlers share, created at start-up and kept in Kopf's memo."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        self.counter = kube.RequestCounter()
        self.queue: workqueue.WorkQueue[reconcile.Key] = workqueue.WorkQueue()
        # Ready once Kopf has listed every index (its first handler runs) and every informer
        # has listed its collection: only then does a reconcile see the whole cluster.
        self.ready = asyncio.Event()
        self.kopf_ready = asyncio.Event()
        self.workloads = Workloads()
        self.secrets = state.SecretIndex(secret_keys)
        self.informers: list[informer.Informer[Any]] = []
        self.ctx: reconcile.Context | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.metrics = metrics.Metrics(self.counter, lambda: len(self.queue))
        self.server: Any = None
        self.transport: transport.Transport | None = None
        # Set while this replica may reconcile: always, unless leader election is on.
        self.leading = asyncio.Event()
        self.leading.set()
        self.election: leader.LeaderElection | None = None
        self.coalesce = float(self.options.get("coalesce_delay", 0.2))
        self.coalesce_max = float(self.options.get("coalesce_max", 2.0))
        # (namespace, source) -> when the coalescing window its last change opened ends (the
        # queue's clock): its new revision wakes the observers no sooner, so that siblings
        # changed just after it still join the same rollout.
        self.settling: dict[tuple[str, str], float] = {}
        # Opens sealed source Secrets in the Secret index; its keys are loaded at start-up.
        self.unsealer = sealing_keys.Unsealer()

    def webapp(
        self, namespace: str, name: str, delay: float = WEBAPP_DELAY, priority: int = URGENT
    ) -> None:
        self.queue.add(
            ("webapp", namespace, name), delay, max_wait=self.coalesce_max, priority=priority
        )

    def secret(self, namespace: str, name: str, delay: float = 0.0, priority: int = URGENT) -> None:
        self.queue.add(("secret", namespace, name), delay, priority=priority)

    def source_changed(self, namespace: str, name: str) -> None:
        """A source's content may have changed: its coalescing window starts now."""
        now = self.queue.clock()
        if len(self.settling) >= SETTLING_SWEEP:
            self.settling = {k: t for k, t in self.settling.items() if t > now}
        self.settling[(namespace, name)] = now + self.coalesce

    def revision_delay(self, namespace: str, source: str) -> float:
        """How long a new revision of `source` waits before it wakes its observers: what is
        left of the source's coalescing window, or nothing."""
        until = self.settling.pop((namespace, source), None)
        return 0.0 if until is None else max(0.0, until - self.queue.clock())


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


# ----------------------------------------------------------------------------- indexes


# The Secret index and Kopf's WebApp index each hold several kinds of key (Kopf keeps bookkeeping
# per object and index, and runs every index function on every event): they are told apart by
# their first item, and `Prefixed` reads one kind as if it were an index of its own.
REVISIONS_OF: Final = "revisions-of"  # ("revisions-of", ns, source) -> its revision snapshots
OBSERVED_BY: Final = "observed-by"  # ("observed-by", secret ns, secret name) -> (app ns, app name)


class Prefixed:
    """The keys of an index that start with `prefix`, looked up without it."""

    def __init__(self, index: Any, prefix: str) -> None:
        self.index = index
        self.prefix = prefix

    def get(self, key: Any, default: Any = None) -> Any:
        return self.index.get((self.prefix, *key), default)


def secret_keys(entry: state.SecretEntry) -> list[state.IndexKey]:
    """The keys of the Secret index a managed Secret is found under besides (ns, name):
    (ENV_OF, ns, app) for an app's env snapshots, (state.OWNED_BY, ns, app) for its owned sources,
    (REVISIONS_OF, ns, source) for a source's revisions."""
    keys: list[state.IndexKey] = []
    if entry.kind == revisions.KIND_ENVIRONMENT:
        app = entry.labels.get(render.LABEL_ENVIRONMENT)
        if app:
            keys.append((state.ENV_OF, entry.namespace, app))
    owner = entry.labels.get(owned.OWNED_BY_LABEL)
    if owner and entry.kind == revisions.KIND_SOURCE:
        keys.append((state.OWNED_BY, entry.namespace, owner))
    if entry.kind == revisions.KIND_REVISION and entry.source_name:
        keys.append((REVISIONS_OF, entry.namespace, entry.source_name))
    return keys


@kopf.index("twelvefactor.dev", "v1alpha1", "webapps")
async def webapps(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any]:
    """(ns, name) -> the WebApp's entry; (OBSERVED_BY, secret ns, secret name) -> (ns, name)
    for every Secret it references, including the app's own secret key."""
    ns = namespace or ""
    keys: dict[Any, Any] = {(ns, name): state.WebAppEntry(ns, name, _compact(body))}
    refs = state.observed_refs(body)
    refs.append((ns, f"{name}{reconcile.SECRET_KEY_SUFFIX}"))
    for ref in refs:
        keys[(OBSERVED_BY, *ref)] = (ns, name)
    return keys


# Metadata nothing reads from the index, often larger than the spec: the field managers' sets,
# and `kubectl apply`'s copy of the whole object.
_UNREAD_METADATA: Final = ("managedFields",)
_UNREAD_ANNOTATIONS: Final = ("kubectl.kubernetes.io/last-applied-configuration",)


def _compact(body: kopf.Body) -> dict[str, Any]:
    """A copy of a WebApp body without the metadata no reconcile reads (its keys interned:
    every app's body has the same ones)."""
    copied = {k: state.intern_keys(v) for k, v in body.items() if k != "metadata"}
    meta = {k: state.intern_keys(v) for k, v in body.metadata.items() if k not in _UNREAD_METADATA}
    annotations = meta.get("annotations")
    if annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in _UNREAD_ANNOTATIONS}
    copied["metadata"] = meta
    return copied


class Workloads:
    """Deployments, ReplicaSets and Services of each app, as the informers last saw them.

    Fed by `kube/informer.py` streams rather than Kopf: a rollout's many status updates cost a
    JSON decoding each, not Kopf's per-event machinery (docs/performance.md)."""

    def __init__(self) -> None:
        self.by_app: dict[tuple[str, str], dict[tuple[str, str], state.WorkloadEntry]] = {}
        self.by_name: dict[tuple[str, str, str], state.WorkloadEntry] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        """(ns, app) -> that app's workloads."""
        found = self.by_app.get(key)
        return list(found.values()) if found else default

    def named(self, kind: str, namespace: str, name: str) -> state.WorkloadEntry | None:
        return self.by_name.get((kind, namespace, name))

    def put(self, old: state.WorkloadEntry | None, new: state.WorkloadEntry | None) -> None:
        if old is not None:
            entries = self.by_app.get((old.namespace, old.app)) or {}
            entries.pop((old.kind, old.name), None)
            if not entries:
                self.by_app.pop((old.namespace, old.app), None)
            self.by_name.pop((old.kind, old.namespace, old.name), None)
        if new is not None:
            self.by_app.setdefault((new.namespace, new.app), {})[(new.kind, new.name)] = new
            self.by_name[(new.kind, new.namespace, new.name)] = new


# (kind, API prefix, plural, optional) of what the operator renders and watches through
# informers. An optional kind (written only when a field asks for it) may be denied by an RBAC
# older than that field: it is taken as empty, and only the apps that ask for it fail.
WORKLOAD_KINDS: Final = (
    ("Deployment", "/apis/apps/v1", "deployments", False),
    ("ReplicaSet", "/apis/apps/v1", "replicasets", False),
    ("Service", "/api/v1", "services", False),
    ("Ingress", "/apis/networking.k8s.io/v1", "ingresses", True),
    ("HorizontalPodAutoscaler", "/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    ("PodDisruptionBudget", "/apis/policy/v1", "poddisruptionbudgets", True),
    ("Job", "/apis/batch/v1", "jobs", True),
)


# ----------------------------------------------------------------------------- events


def _touch(memo: Any) -> Runtime:
    runtime = _runtime(memo)
    runtime.kopf_ready.set()  # Kopf runs no handler before every index is populated.
    return runtime


@kopf.on.event("twelvefactor.dev", "v1alpha1", "webapps")
async def on_webapp(body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    runtime = _touch(memo)
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    seen = status.get("observedGeneration")
    # Our own status writes leave the generation as observed: follow-ups. A spec change or a
    # refresh request not yet handled is someone's change.
    changed = (
        seen is None
        or meta.get("generation") != seen
        or observe.pending_refresh(meta.get("annotations"), status.get("refreshed")) is not None
    )
    if changed:
        runtime.webapp(namespace or "", name, 0.0, URGENT)
    else:
        runtime.webapp(namespace or "", name, FOLLOW_UP_DELAY, FOLLOW_UP)
    # Tracking may have moved: the revisions it used may now be prunable.
    for ref in state.observed_refs(body):
        runtime.secret(*ref, delay=runtime.coalesce, priority=FOLLOW_UP)


def on_secret(
    runtime: Runtime, event: str, old: state.SecretEntry | None, new: state.SecretEntry | None
) -> None:
    """An informer saw a managed Secret change (`event`: LISTED at start-up, then ADDED,
    MODIFIED or DELETED): keep the index, and queue its source and the observers."""
    runtime.secrets.put(old, new)
    entry = new or old
    if entry is None:
        return
    namespace, name, kind = entry.namespace, entry.name, entry.kind
    # A source's change waits `coalesce` seconds for its siblings (one rollout for Secrets
    # changed together). A new revision in the index is what its observers wait for: they run
    # once the source's window has ended, at once if it has (those already queued run sooner,
    # not again), and at once too if the source is the only Secret they reference. Other
    # revision events follow up.
    delay = runtime.coalesce
    new_revision = False
    if kind == revisions.KIND_SOURCE:
        source, priority = name, URGENT
        runtime.source_changed(namespace, name)
    elif kind == revisions.KIND_REVISION:
        source, priority = entry.source_name or "", FOLLOW_UP
        if event == "ADDED":
            delay, priority = runtime.revision_delay(namespace, source), URGENT
            new_revision = True
    else:
        if kind == revisions.KIND_ENVIRONMENT:
            _on_snapshot(runtime, old, new)
        return
    runtime.secret(namespace, source, priority=priority)
    ctx = runtime.ctx
    if ctx is None:
        return
    for app_ns, app_name in set(ctx.indexes.observers.get((namespace, source)) or []):
        # An app that references this one Secret and no other has no sibling change to wait
        # for: its new revision wakes it at once.
        wait = delay if not new_revision or _references_others(ctx, app_ns, app_name) else 0.0
        runtime.webapp(app_ns, app_name, delay=wait, priority=priority)


def _on_snapshot(
    runtime: Runtime, old: state.SecretEntry | None, new: state.SecretEntry | None
) -> None:
    """An environment snapshot's event: once the watch shows it, the memory of having made it
    ends; one that goes while a Deployment or Job of its app reads it (deleted by someone:
    the operator prunes only snapshots nothing reads) wakes the app, which makes it again."""
    ctx = runtime.ctx
    if ctx is None:
        return
    if new is not None:
        ctx.caught_up(("Secret", new.namespace, new.name))
        return
    assert old is not None
    app = old.labels.get(render.LABEL_ENVIRONMENT)
    if app and any(
        w.snapshot == old.name and w.kind in ("Deployment", "Job")
        for w in reconcile._all(ctx.indexes.workloads, (old.namespace, app))
    ):
        runtime.webapp(old.namespace, app, FOLLOW_UP_DELAY, priority=FOLLOW_UP)


def _references_others(ctx: reconcile.Context, namespace: str, name: str) -> bool:
    """Whether the WebApp references more than one Secret (or is not in the index)."""
    for entry in ctx.indexes.webapps.get((namespace, name)) or []:
        return bool(entry.references > 1)
    return True


def _workload_signature(entry: state.WorkloadEntry) -> tuple[Any, ...]:
    """What the reconcilers read of a workload: identity, applied digest, template snapshot,
    whether a Deployment finished rolling out (or gave up), a ReplicaSet still holds pods, a
    migration Job ended, or something the operator rendered was changed by hand (an
    environment, an image, a replica count, a Service's selector...)."""
    progress: Any = entry.rolled_out if entry.kind == "Deployment" else entry.live
    if entry.kind == "Job":
        progress = (entry.succeeded, entry.failed)
    return (
        entry.uid,
        entry.applied,
        entry.snapshot,
        entry.owner,
        progress,
        entry.stalled,
        entry.env_foreign,
        entry.marks,
        entry.replicas if entry.kind == "Deployment" else None,
    )


def on_workload(
    runtime: Runtime, old: state.WorkloadEntry | None, new: state.WorkloadEntry | None
) -> None:
    """An informer saw a workload change: queue its app and the Secrets its environment was
    built from, unless nothing a reconcile reads of it changed (a rollout's status updates)."""
    runtime.workloads.put(old, new)
    if new is not None and runtime.ctx is not None:
        runtime.ctx.caught_up((new.kind, new.namespace, new.name), new.applied)
    before = None if old is None else _workload_signature(old)
    after = None if new is None else _workload_signature(new)
    if before == after:
        return
    entry = new or old
    assert entry is not None
    namespace, app = entry.namespace, entry.app
    runtime.webapp(namespace, app, FOLLOW_UP_DELAY, priority=FOLLOW_UP)
    ctx = runtime.ctx
    if ctx is None:
        return
    # A ReplicaSet scaled down (or gone) may free revisions: look at the Secrets its
    # environment was built from, even when the WebApp itself is being deleted.
    refs: set[tuple[str, str]] = set()
    found = reconcile._one(ctx.indexes.webapps, (namespace, app))
    if found is not None:
        refs.update(state.observed_refs(found.body))
    for workload in (old, new):
        if workload is None or not workload.snapshot:
            continue
        snapshot = reconcile._one(ctx.indexes.secrets, (namespace, workload.snapshot))
        if snapshot is not None:
            sources = snapshot.sources
            refs.update((ns, name) for ns, name, _ in sources.values())
    for ref in refs:
        runtime.secret(*ref, delay=runtime.coalesce, priority=FOLLOW_UP)


def informers(
    runtime: Runtime, http: transport.Transport, namespaces: list[str]
) -> list[informer.Informer[Any]]:
    """One informer for managed Secrets and one per workload kind (each per watched namespace,
    in a namespaced install). Created once the snapshot key and the sealing keys are loaded."""
    ctx = runtime.ctx
    snapshot_key = ctx.settings.snapshot_key if ctx is not None else None

    def feed(old: Any, new: Any) -> None:
        on_workload(runtime, old, new)

    def secret(body: Mapping[str, Any]) -> state.SecretEntry | None:
        entry = state.secret_entry(body, runtime.unsealer, snapshot_key)
        return entry if entry.kind else None

    def fed(event: str, old: Any, new: Any) -> None:
        on_secret(runtime, event, old, new)

    made: list[informer.Informer[Any]] = []
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        collection = informer.Collection("/api/v1", "secrets", revisions.WATCH_SELECTOR, namespace)
        made.append(informer.Informer(http, collection, secret, fed))
    for kind, prefix, plural, optional in WORKLOAD_KINDS:

        def parse(body: Mapping[str, Any], kind: str = kind) -> state.WorkloadEntry | None:
            return state.workload_entry(kind, body)

        def reparse(
            body: Mapping[str, Any], held: state.WorkloadEntry, kind: str = kind
        ) -> state.WorkloadEntry | None:
            return state.workload_entry(kind, body, held)

        for namespace in scopes:
            collection = informer.Collection(prefix, plural, MANAGED_SELECTOR, namespace)
            made.append(
                informer.Informer(
                    http,
                    collection,
                    parse,
                    lambda _t, old, new: feed(old, new),
                    optional,
                    reparse,
                )
            )
    return made


# ----------------------------------------------------------------------------- lifecycle


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base at all. Kopf builds one for every watch event (a deep copy of the body) to
    detect changes for on.create/update/resume handlers; with none registered it is never used,
    and the copies were about 6% of the operator's CPU in a fan-out (docs/performance.md)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class ForeverBackoffs:
    """Kopf's retry delays for a failing API request, without an end: Kopf's own list ends after
    eight tries (~54 s), and a watch that still fails then (a 403 while RBAC is being rolled, an
    API server down for a minute) made the whole operator exit. A fresh iterator per request."""

    def __iter__(self) -> Iterator[float]:
        yield from (1, 1, 2, 3, 5, 8, 13, 21)
        yield from itertools.repeat(30.0)


def configure(settings: kopf.OperatorSettings, namespaced: bool = False) -> None:
    """Kopf settings, each chosen on purpose (see docs/operator.md)."""
    # With explicit namespaces there is nothing to discover: no cluster-wide Namespace and CRD
    # scans, so a namespaced install needs no cluster-scoped permission at all.
    settings.scanning.disabled = namespaced
    # One LIST of WebApps in pages, not one reply holding them all: a lower high-water mark.
    settings.watching.chunk_size = informer.PAGE
    settings.posting.enabled = False
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    settings.networking.error_backoffs = ForeverBackoffs()
    # Event and index handlers persist nothing; with no change-detecting handler registered,
    # Kopf's diff-base (an annotation holding the whole body) is never written. Progress goes
    # to status, never to annotations, should a handler with progress ever be added.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
    settings.persistence.diffbase_storage = NoDiffBase()


async def _ensure_namespace(client: Any, namespace: str) -> None:
    """The operator's own namespace must exist for its keys: create it if it can, else say so."""
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    try:
        await client.get(Namespace, namespace)
        return
    except ApiError as error:
        if kube.is_not_found(error):
            pass
        elif error.status.code == 403:
            return  # a namespaced install may not read Namespaces: assume it exists
        else:
            raise
    try:
        await client.create(Namespace(metadata=ObjectMeta(name=namespace)))
        logger.warning("created the operator namespace %s for its keys", namespace)
    except ApiError as error:
        if not kube.is_already_exists(error):
            msg = (
                f"the operator namespace {namespace} does not exist and cannot be created "
                f"({error.status.code} {error.status.reason}); create it or pass "
                "--operator-namespace"
            )
            raise kopf.PermanentError(msg) from None


async def _keys(client: Any, namespace: str) -> tuple[bytes, datetime]:
    """The snapshot key (created once in the operator's namespace, then only read) and since
    when revisions are signed with it: the first start of an operator that signs, recorded
    on the same Secret (an older operator's keys get it once; a keys Secret made anew, a new
    key, gets the time it was made: revisions signed with the lost key are signed again)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Secret
    from lightkube.types import PatchType

    now = schedule.format_time(datetime.now(UTC))
    try:
        found = await client.get(Secret, KEYS_SECRET, namespace=namespace)
    except ApiError as error:
        if not kube.is_not_found(error):
            raise
    else:
        key = bytes.fromhex(_unb64((found.data or {})[SNAPSHOT_KEY_FIELD]))
        since = (found.metadata.annotations or {}).get(SIGNATURES_SINCE_ANNOTATION)
        if since is None:
            since = now
            patch = {"metadata": {"annotations": {SIGNATURES_SINCE_ANNOTATION: since}}}
            try:
                await client.patch(
                    Secret, KEYS_SECRET, patch, namespace=namespace, patch_type=PatchType.MERGE
                )
            except ApiError as error:
                if not kube.is_forbidden(error):
                    raise
                # RBAC older than this operator: run, but say what it costs.
                logger.warning(
                    "cannot record %s on Secret %s/%s (403: grant patch on it, as the chart "
                    "does); until it is recorded, each start takes unsigned revisions created "
                    "before it for an older operator's",
                    SIGNATURES_SINCE_ANNOTATION,
                    namespace,
                    KEYS_SECRET,
                )
        return key, schedule.parse_time(since)
    key = secrets.token_bytes(32)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": KEYS_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "webapp-operator"},
            "annotations": {SIGNATURES_SINCE_ANNOTATION: now},
        },
        "type": "Opaque",
        "data": {SNAPSHOT_KEY_FIELD: _b64(key.hex())},
    }
    try:
        await client.create(Secret.from_dict(body))
    except ApiError as error:
        if not kube.is_already_exists(error):
            raise
        return await _keys(client, namespace)
    return key, schedule.parse_time(now)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    import base64

    return base64.b64decode(text).decode()


def _proxy() -> envrules.ProxySettings:
    return envrules.ProxySettings(
        http_proxy=os.environ.get("WEBAPP_HTTP_PROXY") or None,
        https_proxy=os.environ.get("WEBAPP_HTTPS_PROXY") or None,
        no_proxy=os.environ.get("WEBAPP_NO_PROXY") or None,
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **indexes: Any) -> None:
    """Configure Kopf, load the snapshot key, and start the workers (they wait for indexes)."""
    configure(settings, namespaced=bool(memo.options.get("namespaces")))
    runtime = Runtime(memo.options)
    memo.runtime = runtime
    config = kube.load_config()
    api = kube.async_client(runtime.counter, config)
    runtime.transport = transport.Transport(config, runtime.counter)
    options = runtime.options
    await _ensure_namespace(api, options["operator_namespace"])
    snapshot_key, signatures_since = await _keys(api, options["operator_namespace"])
    runtime.ctx = reconcile.Context(
        indexes=reconcile.Indexes(
            # Sealed sources that did not open are tried again once the keys change.
            secrets=sealing_keys.ReopeningStore(runtime.secrets, runtime.unsealer),
            revisions=Prefixed(runtime.secrets, REVISIONS_OF),
            webapps=indexes["webapps"],
            observers=Prefixed(indexes["webapps"], OBSERVED_BY),
            workloads=runtime.workloads,
        ),
        writer=kube.Gateway(runtime.transport, on_event=runtime.metrics.event),
        clock=SystemClock(options.get("clock_offset_file")),
        settings=render.Settings(
            snapshot_key=snapshot_key,
            proxy=_proxy(),
            revision_history_limit=int(options.get("revision_history_limit", 3)),
        ),
        token=secrets.token_urlsafe,
        signatures_since=signatures_since,
    )
    runtime.ctx.enqueue_webapp = runtime.webapp
    runtime.ctx.urgent_besides = runtime.queue.urgent_besides
    keys = sealing_keys.KeyManager(
        api,
        options["operator_namespace"],
        runtime.ctx.clock,
        sealing_keys.renewal_period(options),
        runtime.unsealer,
    )
    keys.on_change = lambda failed: _retry_sealed(runtime, failed)
    # Before any index runs, so sealed Secrets open from the first event. A standby only
    # reads; the replica that acts creates, renews and publishes (keys.run).
    await (keys.load() if options.get("leader_elect") else keys.start())
    poll = sealing_keys.POLL_SHIFTED if options.get("clock_offset_file") else sealing_keys.POLL
    if options.get("leader_elect"):
        runtime.election = leader.LeaderElection(
            api,
            options["operator_namespace"],
            identity=f"{os.environ.get('HOSTNAME') or 'webapp-operator'}-{os.getpid()}",
            duration=float(options.get("lease_duration", 15.0)),
            renew=float(options.get("lease_renew", 5.0)),
        )
        runtime.leading = runtime.election.leading
        runtime.tasks.append(asyncio.create_task(runtime.election.run()))
    runtime.tasks.append(asyncio.create_task(_when_leading(runtime, keys.run(poll))))
    port = int(options.get("metrics_port") or 0)
    if port:
        runtime.server = await metrics.serve(
            runtime.metrics, runtime.ready, str(options.get("metrics_address", "127.0.0.1")), port
        )
    runtime.informers = informers(runtime, runtime.transport, list(options.get("namespaces") or []))
    runtime.tasks.extend(asyncio.create_task(one.run()) for one in runtime.informers)
    namespaces = list(options.get("namespaces") or [])
    runtime.tasks.append(asyncio.create_task(_readiness(runtime, runtime.transport, namespaces)))
    runtime.tasks.append(asyncio.create_task(_work(runtime)))
    runtime.tasks.append(asyncio.create_task(_scheduler(runtime)))
    logger.info("webapp-operator started (namespaces: %s)", options.get("namespaces") or "all")


EMPTY_CHECK_AFTER: Final = 3.0


async def _readiness(runtime: Runtime, http: transport.Http, namespaces: list[str]) -> None:
    """Ready once Kopf's index and every informer have listed. Kopf says so only by running
    a handler, which it never does on a cluster with no WebApp: when none has run after a few
    seconds, one LIST (limit 1) tells whether that is why."""
    while not runtime.kopf_ready.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.kopf_ready.wait(), EMPTY_CHECK_AFTER)
        if not runtime.kopf_ready.is_set() and await _nothing_to_index(http, namespaces):
            logger.info("no WebApp to index yet")
            runtime.kopf_ready.set()
    for one in runtime.informers:
        await one.synced.wait()
    settle_collector()
    runtime.ready.set()


def settle_collector() -> None:
    """Once the indexes are listed, what start-up made (imported code, the first listing) is moved
    out of the cyclic collector's scans: in a fan-out of 100 the collector had paused the event
    loop for up to 0.1 s at a time, scanning every index entry (bench, gc callbacks). Young
    collections keep Python's default: spacing them out raised the steady-state RSS."""
    gc.collect()
    gc.freeze()


async def _nothing_to_index(http: transport.Http, namespaces: list[str]) -> bool:
    """True when no WebApp exists where the operator watches."""
    scopes = [f"/namespaces/{ns}" for ns in namespaces] or [""]
    for scope in scopes:
        path = f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}"
        try:
            reply = await http.request("GET", path, params={"limit": "1"})
        except Exception:  # noqa: BLE001 (a failed look is only "not yet")
            return False
        if reply.status != 200 or reply.json().get("items"):
            return False
    return True


def _retry_sealed(runtime: Runtime, failed: list[tuple[str, str]]) -> None:
    """New sealing keys: reconcile the sealed sources that did not open, and their observers."""
    ctx = runtime.ctx
    for namespace, name in failed:
        runtime.secret(namespace, name)
        observers = [] if ctx is None else ctx.indexes.observers.get((namespace, name)) or []
        for app_ns, app_name in set(observers):
            runtime.webapp(app_ns, app_name, delay=runtime.coalesce)


async def _when_leading(runtime: Runtime, job: Any) -> None:
    """Run `job` (a coroutine) once this replica leads: standbys write nothing."""
    await runtime.leading.wait()
    await job


async def _work(runtime: Runtime) -> None:
    await runtime.ready.wait()
    runtime.metrics.ready.set(1)
    ctx = runtime.ctx
    assert ctx is not None

    handled = 0

    async def handle(key: reconcile.Key) -> float | workqueue.Again | None:
        nonlocal handled
        await runtime.leading.wait()  # a standby keeps its indexes warm and waits here
        kind, namespace, name = key
        with runtime.metrics.reconcile_seconds.labels(kind=kind).time():
            if kind == "webapp":
                again = await reconcile.reconcile_webapp(ctx, namespace, name)
            else:
                again = await reconcile.reconcile_secret(ctx, namespace, name)
        handled += 1
        if again is None and len(runtime.queue) == 0:
            counter = runtime.counter
            logger.info(
                "work queue idle after %d reconciles; API requests so far: %d reads, %d writes",
                handled,
                counter.reads,
                counter.writes,
            )
        return again

    def on_error(key: reconcile.Key, error: BaseException) -> float | None:
        runtime.metrics.reconcile_errors.labels(kind=key[0]).inc()
        logger.warning("reconcile of %s %s/%s failed: %s", key[0], key[1], key[2], _safe(error))
        return None

    await workqueue.run_workers(
        runtime.queue, handle, on_error, int(runtime.options.get("concurrency", 8))
    )


async def _scheduler(runtime: Runtime) -> None:
    """The one timer of the operator: wakes when the agenda's next rotation/expiry is due,
    and at least every 30 s, when it also forgets the writes too old to matter."""
    await runtime.ready.wait()
    ctx = runtime.ctx
    assert ctx is not None
    # With a shifted clock (tests) the offset can jump at any moment: look often.
    poll = 0.5 if runtime.options.get("clock_offset_file") else 30.0
    while True:
        await runtime.leading.wait()
        now = ctx.clock.now()
        for namespace, name in ctx.agenda.pop_due(now):
            runtime.secret(namespace, name)
        if ctx.recent:
            ctx.forget_expired()
        upcoming = ctx.agenda.next_wake()
        delay = poll if upcoming is None else (upcoming - now).total_seconds()
        await asyncio.sleep(min(poll, max(0.05, delay)))


def _safe(error: BaseException) -> str:
    """An error's description without any request or response body."""
    from lightkube.core.exceptions import ApiError

    if isinstance(error, ApiError):
        return f"{error.status.code} {error.status.reason}"
    return type(error).__name__


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    if runtime.election is not None:
        await runtime.election.release()
    if runtime.server is not None:
        await runtime.server.cleanup()
    if runtime.transport is not None:
        await runtime.transport.close()
