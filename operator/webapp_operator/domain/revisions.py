"""Revision snapshots of source Secrets: names, labels, and the rules that keep or remove them.

A source Secret `credentials` (labelled `twelvefactor.dev/secret: "true"`) has immutable revision
snapshots `credentials.rev-1`, `credentials.rev-2`, ... created by the operator, one per content
change, labelled `twelvefactor.dev/revision-of: credentials` and `twelvefactor.dev/revision: "<n>"`.
Environment snapshots (see `render.py`) are labelled too, so one server-side selector on the key
`twelvefactor.dev/secret` watches exactly the Secrets the operator manages.

Pure: the caller passes every time and every key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from webapp_operator.domain import numbers, schedule
from webapp_operator.domain.errors import InvalidConfig

# The one label key of every Secret the operator cares about, and its values.
MANAGED_LABEL: Final = "twelvefactor.dev/secret"
KIND_SOURCE: Final = "true"
KIND_REVISION: Final = "revision"
KIND_ENVIRONMENT: Final = "environment"
WATCH_SELECTOR: Final = MANAGED_LABEL  # existence: sources, revisions and snapshots

REVISION_OF_LABEL: Final = "twelvefactor.dev/revision-of"
REVISION_LABEL: Final = "twelvefactor.dev/revision"
CREATED_ANNOTATION: Final = "twelvefactor.dev/created"
# A keyed digest of what a revision is (see `signature`): labels and ownerReferences are
# metadata anyone who may create or patch Secrets can write; only the operator holds the key.
SIGNATURE_ANNOTATION: Final = "twelvefactor.dev/signature"
DESCRIPTION_ANNOTATION: Final = "twelvefactor.dev/description"
REVISION_SEPARATOR: Final = ".rev-"
MAX_NAME: Final = 253


def revision_name(source: str, number: int) -> str:
    """`credentials.rev-3`: deterministic, so a retried create cannot make a duplicate."""
    return f"{source}{REVISION_SEPARATOR}{number}"


def revision_labels(source: str, number: int) -> dict[str, str]:
    return {
        MANAGED_LABEL: KIND_REVISION,
        REVISION_OF_LABEL: source,
        REVISION_LABEL: str(number),
        "app.kubernetes.io/managed-by": "webapp-operator",
    }


def signature(
    namespace: str, source: str, number: int, data: Mapping[str, bytes], key: bytes
) -> str:
    """The keyed digest of revision `number` of `namespace/source` holding `data`: 128 bits,
    hex. It binds the content to where it belongs, so a revision moved to another source,
    renumbered or changed no longer matches, and a Secret the operator did not make cannot
    be given one without the key (the snapshot key, kept in the operator's namespace)."""
    content = sorted((k, base64.b64encode(v).decode()) for k, v in data.items())
    canonical = json.dumps([namespace, source, number, content], separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()[:32]


def is_signed(
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    data: Mapping[str, bytes],
    key: bytes,
) -> bool:
    """True when a Secret labelled as a revision carries the signature of exactly that
    revision (its namespace, source, number and content) under `key`."""
    source = labels.get(REVISION_OF_LABEL)
    given = annotations.get(SIGNATURE_ANNOTATION)
    number = numbers.whole_number(labels.get(REVISION_LABEL), least=1)
    if not source or not given or number is None:
        return False
    expected = signature(namespace, source, number, data, key)
    # As bytes: compare_digest refuses str with non-ASCII characters (TypeError), and the
    # annotation is anyone's to write.
    return hmac.compare_digest(given.encode(), expected.encode())


def revision_selector(source: str) -> str:
    """Label selector of every revision snapshot of `source`."""
    return f"{MANAGED_LABEL}={KIND_REVISION},{REVISION_OF_LABEL}={source}"


@dataclass(frozen=True)
class Revision:
    """What the operator knows about one revision snapshot (metadata only, no content)."""

    source: str
    number: int
    created: datetime
    expires: datetime | None = None
    # Whether it carries a `twelvefactor.dev/signature` at all. Not whether the signature is
    # good: that takes the snapshot key, which only the operator holds (`is_signed`).
    has_signature: bool = False
    # The operator checked it and found it is not one it made (it told so by a Warning Event
    # `RevisionNotSigned` on it): how the CLI, which holds no key, knows a forged signature.
    disowned: bool = False


def parse_revision(
    labels: Mapping[str, str], annotations: Mapping[str, str], created: datetime
) -> Revision | None:
    """A Revision from a snapshot's metadata, or None if it is not a revision snapshot."""
    if labels.get(MANAGED_LABEL) != KIND_REVISION:
        return None
    source = labels.get(REVISION_OF_LABEL)
    number = numbers.whole_number(labels.get(REVISION_LABEL), least=1)
    if not source or number is None:
        return None
    # The operator's own bookkeeping, but metadata anyone who may edit the Secret can change:
    # a malformed time is read as absent (the creation time of the object, no expiry) rather
    # than failing every reconcile of the source and of each app that uses it.
    created_at = _time(annotations.get(CREATED_ANNOTATION)) or created
    expires = _time(annotations.get(schedule.REVISION_EXPIRES_ANNOTATION))
    return Revision(
        source=source,
        number=number,
        created=created_at,
        expires=expires,
        has_signature=bool(annotations.get(SIGNATURE_ANNOTATION)),
    )


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return schedule.parse_time(text)
    except InvalidConfig:
        return None


def removable(
    numbers: Iterable[int], latest: int | None, tracked: Set[int], in_use: Set[int]
) -> list[int]:
    """Revisions that may be removed (invariant 4), oldest first.

    A revision stays while it is the latest, while any observer tracks it, or while a live
    ReplicaSet of any observer runs on an environment built from it.
    """
    keep = set(tracked) | set(in_use)
    if latest is not None:
        keep.add(latest)
    return sorted(n for n in set(numbers) if n not in keep)


SOURCES_ITEM_KINDS: Final = ("secret", "integration")


def parse_sources(annotation: str | None) -> dict[str, tuple[str, str, int | None]]:
    """Read an environment snapshot's `twelvefactor.dev/sources` annotation.

    `secret:credentials=demo/credentials#2,integration:postgresql=demo/db#1` ->
    {"secret:credentials": ("demo", "credentials", 2), ...}. Malformed items are skipped:
    the annotation is the operator's own, and a skipped item only keeps more revisions.
    """
    result: dict[str, tuple[str, str, int | None]] = {}
    for item in (annotation or "").split(","):
        option, sep, ref = item.partition("=")
        if not sep or ":" not in option:
            continue
        path, _, number = ref.partition("#")
        namespace, slash, name = path.partition("/")
        if not slash or not namespace or not name:
            continue
        result[option] = (namespace, name, numbers.whole_number(number))
    return result
