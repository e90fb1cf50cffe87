"""What the controller remembers of the cluster: compact entries built from watch events.

Kopf (WebApps) and the informers (managed Secrets, Deployments, ReplicaSets, Services) feed
every watched object to `handlers.py`, which keeps only these entries (metadata and, for source
and revision Secrets, their content, needed to build environments without a GET per reconcile;
revision content is immutable, so never stale). Everything here is rebuilt from the watch
streams after a restart: no state is lost.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from webapp_operator.domain import drift, render, revisions, sealing
from webapp_operator.kube.client import FIELD_MANAGER

APPLIED_ANNOTATION = "twelvefactor.dev/applied"

# Opens a sealed source: (namespace, name, data) -> (content, None) or ({}, error message).
Unseal = Callable[[str, str, Mapping[str, bytes]], tuple[dict[str, bytes], str | None]]


def created_at(meta: Mapping[str, Any]) -> datetime:
    stamp = meta.get("creationTimestamp")
    if isinstance(stamp, datetime):
        return stamp.astimezone(UTC)
    if isinstance(stamp, str) and stamp:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True, slots=True)
class SecretEntry:
    """A Secret the operator manages: a source, a revision snapshot or an env snapshot."""

    namespace: str
    name: str
    uid: str
    kind: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    created: datetime
    data: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    # A sealed source that does not open: why (names only); its data is then empty, and its
    # sealed text is kept to try again when the operator's keys change (controller/sealing.py).
    unseal_error: str | None = None
    sealed: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    # An environment snapshot or a revision: whether the operator made it (`is_own_snapshot`,
    # `revisions.is_signed`); None when not known (neither, or no snapshot key at hand when the
    # index took it). Only a verified revision is ever read (reconcile.IndexLookup).
    verified: bool | None = None
    # A revision's or an environment snapshot's ownerReferences' uids (empty for other
    # kinds): one of the marks of one made before the current key (`older_operators`,
    # `older_snapshot`).
    owners: tuple[str, ...] = ()
    # Entries are immutable (a change is a new entry from the watch), so what lookups read of
    # their metadata is parsed once: a revision snapshot's number and times, and an environment
    # snapshot's sources (option -> (namespace, name, revision)).
    revision: revisions.Revision | None = field(init=False, repr=False, compare=False)
    sources: dict[str, tuple[str, str, int | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        revision = revisions.parse_revision(self.labels, self.annotations, self.created)
        sources = revisions.parse_sources(self.annotations.get(render.ANNOTATION_SOURCES))
        object.__setattr__(self, "revision", revision)
        object.__setattr__(self, "sources", sources)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def source_name(self) -> str | None:
        return self.labels.get(revisions.REVISION_OF_LABEL)

    def as_involved(self) -> dict[str, Any]:
        """Enough of the object to post an Event about it."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }


IndexKey = tuple[str, ...]


class SecretIndex:
    """Every managed Secret's entry by (namespace, name), and under the further keys `keys_of`
    gives it (an app's environment snapshots, a source's revisions, an app's owned sources),
    kept in step with the Secret informers' changes. Read as Kopf's indexes are: `get(key)`
    gives the entries under a key, in the order they came, or `default`."""

    def __init__(self, keys_of: Callable[[SecretEntry], Iterable[IndexKey]]) -> None:
        self.keys_of = keys_of
        self.by_name: dict[tuple[str, str], SecretEntry] = {}
        self.by_key: dict[IndexKey, tuple[SecretEntry, ...]] = {}

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, key: IndexKey, default: Any = None) -> Any:
        if len(key) == 2:
            found = self.by_name.get((key[0], key[1]))
            return default if found is None else (found,)
        return self.by_key.get(key, default)

    def put(self, old: SecretEntry | None, new: SecretEntry | None) -> None:
        """`old` (None: it is new) is now `new` (None: it is gone); an entry that stays under a
        key keeps its place there."""
        gone = set(self.keys_of(old)) if old is not None else set()
        if old is not None:
            self.by_name.pop(old.key, None)
        if new is not None:
            self.by_name[new.key] = new
            for key in self.keys_of(new):
                gone.discard(key)
                entries = self.by_key.get(key, ())
                at = next((i for i, e in enumerate(entries) if e.key == new.key), None)
                if at is None:
                    self.by_key[key] = (*entries, new)
                else:
                    self.by_key[key] = (*entries[:at], new, *entries[at + 1 :])
        if old is None:
            return
        for key in gone:
            kept = tuple(e for e in self.by_key.get(key, ()) if e.key != old.key)
            if kept:
                self.by_key[key] = kept
            else:
                self.by_key.pop(key, None)


def interned(mapping: Mapping[str, Any] | None, values: bool = False) -> dict[str, Any]:
    """A copy of a label or annotation map whose keys (and, for labels, values: at most 63
    characters) are shared by every entry that has them, not one copy per object."""
    if values:
        return {sys.intern(k): sys.intern(v) for k, v in (mapping or {}).items()}
    return {sys.intern(k): v for k, v in (mapping or {}).items()}


def intern_keys(value: Any) -> Any:
    """A deep copy of a JSON value whose mapping keys are interned (see `interned`)."""
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): intern_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [intern_keys(v) for v in value]
    return value


def decode_data(data: Mapping[str, Any] | None) -> dict[str, bytes]:
    import base64

    return {str(k): base64.b64decode(str(v)) for k, v in (data or {}).items()}


def is_own_snapshot(body: Mapping[str, Any], snapshot_key: bytes) -> bool:
    """True when a Secret is an environment snapshot the operator made: labelled as one,
    immutable, and its content's keyed digest gives back its name (render.snapshot_name_matches).
    """
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(revisions.MANAGED_LABEL) != revisions.KIND_ENVIRONMENT or not body.get(
        "immutable"
    ):
        return False
    try:
        variables = {k: v.decode() for k, v in decode_data(body.get("data")).items()}
    except (ValueError, TypeError):
        return False
    return render.snapshot_name_matches(str(meta.get("name", "")), variables, snapshot_key)


def secret_entry(
    body: Mapping[str, Any], unseal: Unseal | None = None, snapshot_key: bytes | None = None
) -> SecretEntry:
    """The entry of a Secret; a sealed source is opened with `unseal` (docs/sealing.md); an
    environment snapshot (its content is not kept) and a revision are checked with
    `snapshot_key`."""
    meta = body.get("metadata") or {}
    labels = interned(meta.get("labels"), values=True)
    kind = labels.get(revisions.MANAGED_LABEL, "")
    annotations = interned(meta.get("annotations"))
    # Environment snapshots are only named by the operator: their content is never needed.
    keep_data = kind in (revisions.KIND_SOURCE, revisions.KIND_REVISION)
    data = decode_data(body.get("data")) if keep_data else {}
    error = None
    sealed: dict[str, bytes] = {}
    if kind == revisions.KIND_SOURCE and sealing.is_sealed_secret(annotations):
        sealed = data  # never taken for content
        data, error = (
            unseal(meta.get("namespace", ""), meta.get("name", ""), sealed)
            if unseal is not None
            else ({}, "the operator has no sealing keys loaded")
        )
    verified = None
    namespace = meta.get("namespace", "")
    if kind == revisions.KIND_ENVIRONMENT and snapshot_key is not None:
        verified = is_own_snapshot(body, snapshot_key)
    owners: tuple[str, ...] = ()
    if kind in (revisions.KIND_REVISION, revisions.KIND_ENVIRONMENT):
        refs = meta.get("ownerReferences") or []
        owners = tuple(str(o.get("uid", "")) for o in refs if isinstance(o, Mapping))
    if kind == revisions.KIND_REVISION and snapshot_key is not None:
        verified = revisions.is_signed(namespace, labels, annotations, data, snapshot_key)
    return SecretEntry(
        namespace=namespace,
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        kind=kind,
        labels=labels,
        annotations=annotations,
        created=created_at(meta),
        data=data,
        unseal_error=error,
        sealed=sealed if error is not None else {},
        verified=verified,
        owners=owners,
    )


def older_operators(entry: SecretEntry, source_uid: str, since: datetime | None) -> bool:
    """True when a revision without a valid signature is one an operator made before the
    current key signed: named as the operator names it (a name cannot be changed, so an older
    revision of another Secret relabelled does not pass), an ownerReference to its source's
    uid, and created (a time the API server sets) before `since`, the first start that signed
    with this key (an upgrade from an operator that did not sign, or a lost keys Secret made
    anew). Anything labelled as a revision since then without a valid signature is someone
    else's."""
    return (
        since is not None
        and entry.kind == revisions.KIND_REVISION
        and entry.revision is not None
        and entry.name == revisions.revision_name(entry.revision.source, entry.revision.number)
        and bool(source_uid)
        and source_uid in entry.owners
        and datetime.fromtimestamp(0, UTC) < entry.created < since
    )


def older_snapshot(entry: SecretEntry, app: str, app_uid: str, since: datetime | None) -> bool:
    """True when an environment snapshot that fails the check under the current key is one
    the operator made for `app` under an older key (a lost keys Secret made anew renames every
    snapshot): named as the operator names them (`<app>-env-<digest>`; a name cannot be
    changed), labelled for the app, an ownerReference to its uid, and created (a time the API
    server sets) before `since`, the first start with the current key. It may be pruned once
    nothing reads it; anything else that fails the check is never touched."""
    digest = entry.name.removeprefix(f"{app}-env-")
    return (
        since is not None
        and entry.kind == revisions.KIND_ENVIRONMENT
        and entry.verified is False
        and entry.labels.get(render.LABEL_ENVIRONMENT) == app
        and entry.name.startswith(f"{app}-env-")
        and len(digest) == render.DIGEST_LENGTH
        and bool(app_uid)
        and app_uid in entry.owners
        and datetime.fromtimestamp(0, UTC) < entry.created < since
    )


@dataclass(frozen=True)
class WebAppEntry:
    """A WebApp as last seen: its whole body (spec, metadata, status)."""

    namespace: str
    name: str
    body: Mapping[str, Any]
    # How many Secrets it references (each once), read once: every new revision of one of
    # them asks whether it references others (handlers.on_secret).
    references: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", len(set(observed_refs(self.body))))

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}


@dataclass(frozen=True, slots=True)
class WorkloadEntry:
    """A Deployment, ReplicaSet, Service, Ingress, HorizontalPodAutoscaler or migration Job
    the operator rendered for an app."""

    kind: str
    namespace: str
    name: str
    app: str
    uid: str
    applied: str | None
    snapshot: str | None
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0
    status_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    owner: str | None = None
    # Another field manager holds fields of it, beyond its status and the Deployment
    # controller's annotations (a replica count taken by `kubectl apply`, the template
    # annotation of `kubectl rollout restart`): only a full apply takes back what it took, so
    # no rollout of it is a patch (reconcile.rollout_patch).
    shared: bool = False
    # Why a Deployment's current template does not roll out (its pods cannot be created, or
    # the controller gave up on them: `_stalled`); None while it progresses.
    stalled: str | None = None
    # The operator's own apply holds the Deployment's replica count (reconcile._handoff).
    owns_replicas: bool = False
    # A migration Job's end: succeeded, or failed (why, in the Job controller's words); both
    # unset while it runs.
    succeeded: bool = False
    failed: str | None = None
    # A Deployment (or a ReplicaSet) whose containers read anything besides one environment
    # snapshot (an `env` list, another or a second `envFrom` source, containers reading
    # different snapshots): changed outside the operator (`kubectl set env`). The names of all
    # its containers, whose environment the operator puts back (reconcile.env_repair), and
    # whose ReplicaSet it drops once scaled down; () when intact.
    env_foreign: tuple[str, ...] = ()
    # What `marks` digests of a Deployment (the fields of each container and of the pod that
    # a WebApp decides, `drift`) or a Service (its type, selector and each port's name and
    # target): the rendering's differ when someone changed one (`kubectl set image`,
    # `kubectl set resources`, `kubectl edit svc`), though the `applied` digest does not.
    marks: Marks = ()

    @property
    def running(self) -> bool:
        """A Job that has not ended: its pods may still start on its environment."""
        return self.kind == "Job" and not self.succeeded and self.failed is None

    @property
    def live(self) -> bool:
        """A ReplicaSet that has or wants pods: its environment must stay."""
        return self.replicas > 0 or self.status_replicas > 0

    @property
    def rolled_out(self) -> bool:
        """A Deployment whose newest template runs on every wanted pod."""
        return (
            self.observed_generation >= self.generation
            and self.updated_replicas >= self.replicas
            and self.available_replicas >= self.replicas
            and self.status_replicas <= self.replicas
        )


def _template_snapshot(spec: Mapping[str, Any]) -> str | None:
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name"):
                return str(ref["name"])
    return None


# Named short digests of an object's fields (`marks`): kept for every workload, so each digest
# is an int (36 bytes) rather than its hex text (65 bytes).
Marks = tuple[tuple[str, int], ...]


def _mark(value: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest())


# Kinds whose spec is marked key by key (the rendering's keys compared; an empty value, which
# the API server may default, is no key): an Ingress (its rules, class, TLS), an autoscaler
# (its target, bounds, metrics), a disruption budget (its bounds and eviction policy; not its
# selector, a map an apply cannot take a key added by hand out of). By kind, the keys left out.
_SPEC_MARKED: Final = {
    "Ingress": frozenset(),
    "HorizontalPodAutoscaler": frozenset(),
    "PodDisruptionBudget": frozenset({"selector"}),
}
# The names of a Deployment's marks besides its containers' (no container can be named so):
# the pod's fields, its template's labels the operator sets (render.TEMPLATE_LABELS), and each
# annotation of its template (the key after the prefix; the rendering's are compared, one
# added by someone, `kubectl rollout restart`'s, is not the operator's).
POD_MARK: Final = "/pod"
LABELS_MARK: Final = "/labels"
ANNOTATION_MARK: Final = "@"


def _annotation_marks(annotations: Mapping[str, Any] | None) -> Marks:
    """A mark for each annotation, named after its key (ANNOTATION_MARK)."""
    return tuple(
        (sys.intern(ANNOTATION_MARK + str(k)), _mark(v))
        for k, v in sorted((annotations or {}).items())
    )


def short_digest(value: object) -> str:
    """A short digest of a value (by its repr), as text."""
    return f"{_mark(value):016x}"


def marks_id(found: Marks) -> str:
    """One short digest of an object's `marks`, as text."""
    return short_digest(found)


def marks(kind: str, spec: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> Marks:
    """Named short digests of fields the WebApp decides, in the form the API server keeps them,
    so the live object and the rendering give the same ones until someone changes a field: of
    a Deployment, each container's (`drift.container_view`, by container name) and the pod's
    (`drift.pod_view`, as POD_MARK); of a Service, its type, its selector, and each port's
    name and target (by port and protocol); of a Deployment's template also its labels the
    operator sets (LABELS_MARK) and each annotation (ANNOTATION_MARK); of an Ingress, an
    autoscaler or a disruption budget, each key of its spec (_SPEC_MARKED), and of an Ingress
    each annotation of `meta`. An item only the
    live object has (a container, a port, an annotation, a spec key added by hand) is not the
    operator's; () for other kinds."""
    if kind == "Deployment":
        template = spec.get("template") or {}
        pod = template.get("spec") or {}
        containers = tuple(
            (sys.intern(str(c.get("name", ""))), _mark(drift.container_view(c)))
            for c in pod.get("containers") or []
        )
        labelled = template.get("metadata") or {}
        labels = labelled.get("labels") or {}
        notes = _annotation_marks(labelled.get("annotations"))
        return (
            *containers,
            (POD_MARK, _mark(drift.pod_view(pod))),
            (LABELS_MARK, _mark(tuple(labels.get(k) for k in render.TEMPLATE_LABELS))),
            *notes,
        )
    if kind in _SPEC_MARKED:
        skip = _SPEC_MARKED[kind]
        keys = tuple(
            (key, _mark(drift.frozen(value)))  # as maps the API server orders its own way
            for key, value in sorted(spec.items())
            if key not in skip and value not in (None, [], {})
        )
        if kind != "Ingress":
            return keys
        # An Ingress's annotations configure its controller (authentication, allowed sources):
        # each is marked, the rendering's compared.
        return keys + _annotation_marks((meta or {}).get("annotations"))
    if kind == "Service":
        selector = sorted((spec.get("selector") or {}).items())
        ports = tuple(
            (
                f"port {p.get('port')}/{p.get('protocol', 'TCP')}",
                _mark((p.get("name"), p.get("targetPort"))),
            )
            for p in spec.get("ports") or []
        )
        return (("type", _mark(spec.get("type"))), ("selector", _mark(selector)), *ports)
    return ()


def _env_foreign(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the template's containers when any of them reads more or other than the
    one snapshot the first reads (see WorkloadEntry.env_foreign); () when none does."""
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    read: set[str | None] = set()
    for container in containers:
        sources = container.get("envFrom") or []
        only = sources[0] if len(sources) == 1 else {}
        ref = only.get("secretRef") or {}
        if container.get("env") or set(only) != {"secretRef"} or set(ref) != {"name"}:
            read.add(None)
        else:
            read.add(ref["name"])
    if len(read) <= 1 and None not in read:
        return ()
    return tuple(str(c.get("name", "")) for c in containers)


# The annotations of a Deployment that the Deployment controller keeps (the revision).
_CONTROLLER_ANNOTATIONS: Final = "f:deployment.kubernetes.io/"


def _foreign_fields(fields: Mapping[str, Any], path: tuple[str, ...] = ()) -> bool:
    """Whether a managedFields entry's field set holds more than the Deployment controller's
    own annotations (`deployment.kubernetes.io/revision`, ...)."""
    for key, value in fields.items():
        if key == ".":
            continue
        here = (*path, key)
        if here[:2] == ("f:metadata", "f:annotations") and len(here) == 3:
            if not key.startswith(_CONTROLLER_ANNOTATIONS):
                return True
            continue
        if not isinstance(value, Mapping) or not value or _foreign_fields(value, here):
            return True
    return False


def _shared(meta: Mapping[str, Any]) -> bool:
    """Whether a manager other than the operator holds fields of the object (its status and
    the Deployment controller's annotations aside)."""
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER or entry.get("subresource") == "status":
            continue
        if _foreign_fields(entry.get("fieldsV1") or {}):
            return True
    return False


# Kinds whose metadata.generation the API server moves at every change of their spec.
_GENERATIONS: Final = frozenset({"Deployment", "ReplicaSet"})
# Kinds whose template's environment is checked (`_env_foreign`).
_ENVIRONMENTS: Final = _GENERATIONS


def workload_entry(
    kind: str, body: Mapping[str, Any], held: WorkloadEntry | None = None
) -> WorkloadEntry | None:
    """The entry of a workload's body; `held`, the entry of the same object before, lends what
    its spec gave when the spec is the same (same uid and generation): most events of a
    rollout are its status, and the template's checks are the dear part of an entry."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    app = labels.get(render.LABEL_WEBAPP)
    if not app:
        return None
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    owners = [o.get("name") for o in meta.get("ownerReferences") or [] if o.get("controller")]
    generation = int(meta.get("generation") or 0)
    uid = meta.get("uid", "")
    same = (
        held is not None
        and kind in _GENERATIONS
        and generation > 0
        and (held.uid, held.generation) == (uid, generation)
    )
    if same and held is not None:
        foreign, found = held.env_foreign, held.marks
    else:
        foreign = _env_foreign(spec) if kind in _ENVIRONMENTS else ()
        found = marks(kind, spec, meta)
    return WorkloadEntry(
        kind=kind,
        namespace=sys.intern(meta.get("namespace", "")),
        name=meta.get("name", ""),
        app=sys.intern(app),
        uid=uid,
        applied=(meta.get("annotations") or {}).get(APPLIED_ANNOTATION),
        snapshot=_template_snapshot(spec),
        generation=generation,
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(spec.get("replicas") or 0),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        owner=owners[0] if owners else None,
        shared=kind == "Deployment" and _shared(meta),
        stalled=_stalled(meta, status) if kind == "Deployment" else None,
        owns_replicas=kind == "Deployment" and _applies_replicas(meta),
        env_foreign=foreign,
        marks=found,
        **(_job_end(status) if kind == "Job" else {}),
    )


def _job_end(status: Mapping[str, Any]) -> dict[str, Any]:
    """How a Job ended, from its conditions (Complete, Failed); {} while it runs."""
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return {"succeeded": True}
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "Failed"
            message = condition.get("message") or ""
            return {"failed": f"{reason}: {message}" if message else str(reason)}
    return {}


def _applies_replicas(meta: Mapping[str, Any]) -> bool:
    """Whether the operator's server-side apply holds `spec.replicas`."""
    return any(
        entry.get("manager") == FIELD_MANAGER
        and entry.get("operation") == "Apply"
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in meta.get("managedFields") or []
    )


# The name of the pod a failed create was for (a new random one at each retry).
_POD_NAME = re.compile(r'(?i)pods? "[^"]*" ')


def _stalled(meta: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    """Why the current template's rollout does not progress, in the Deployment controller's
    words: its pods cannot be created (ReplicaFailure: a quota, Pod Security admission), or it
    gave up waiting for them (ProgressDeadlineExceeded). None while it progresses."""
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return None  # a newer template: the controller has not looked at it yet
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        # Without the pod's name the message stays the same from one retry to the next.
        message = _POD_NAME.sub("pods ", str(failure.get("message") or failure.get("reason")))
        return f"its pods cannot be created ({message})"
    progressing = conditions.get("Progressing") or {}
    if (
        progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        return f"no progress within its deadline ({progressing.get('message') or 'timed out'})"
    return None


# The key prefix of an app's environment snapshots in the Secret index: (ENV_OF, ns, app).
ENV_OF: Final = "env-of"
# ... and of an app's owned sources: (OWNED_BY, ns, app).
OWNED_BY: Final = "owned-by"


def observed_refs(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of every Secret a WebApp body references (for reverse lookups)."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace", "")
    spec = body.get("spec") or {}
    refs: list[tuple[str, str]] = []
    for section in ("secrets", "integrations"):
        for option in (spec.get(section) or {}).values():
            name = (option or {}).get("secretName")
            if isinstance(name, str) and name:
                ns, _, bare = name.rpartition("/")
                refs.append((ns or namespace, bare))
    return refs
