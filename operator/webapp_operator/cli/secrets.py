"""Juju's secret commands on a cluster: add, update, grant, revoke, list, show, remove, refresh.

`kubectl webapp add-secret NAME k=v ...` is `juju add-secret`; the other commands follow Juju's
CLI in the same way (docs/cli.md has the mapping). Every command acts with the caller's own
kubeconfig, so it can do nothing the caller's RBAC does not allow: it is never a way around RBAC.

The source Secret (label `twelvefactor.dev/secret: "true"`) is what these commands write; the
operator turns each content change into an immutable revision snapshot `<name>.rev-<n>`, which
the commands only read (and `remove-secret --revision` deletes).

Each command gathers what it needs from the API server into plain dicts, decides with the pure
functions of this module (argument parsing, plans, tables: tested without a cluster), and then
writes. Secret values are read only to compare content and for `show-secret --reveal`; they
never appear in a message, an error or a note.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import json
import re
import secrets as secrets_module
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx
import yaml
from lightkube import ALL_NS, ApiError, Client
from lightkube.core.client import LabelSelector
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Secret
from lightkube.types import PatchType

from webapp_operator.cli import apps
from webapp_operator.domain import (
    grants,
    numbers,
    observe,
    owned,
    reasons,
    revisions,
    schedule,
    sealing,
)
from webapp_operator.domain.errors import InvalidConfig, WebAppError
from webapp_operator.kube import client as kube

# --- the refresh request (read by the operator) ---------------------------------------------

REFRESH_ANNOTATION = observe.REFRESH_ANNOTATION
REFRESH_ALL = observe.REFRESH_ALL
REFRESH_NONCE_SEPARATOR = observe.REFRESH_NONCE_SEPARATOR
REFRESHED_STATUS_FIELD = observe.REFRESHED_STATUS_FIELD
format_refresh = observe.format_refresh
parse_refresh = observe.parse_refresh

CLI: Final = "kubectl webapp"

# Secret keys become parts of environment variable names (envrules.secret_env_name).
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]+")
MAX_KEY: Final = 253
# Juju's limits: a value, and the whole content, at most 1,000,000 bytes base64-encoded.
MAX_ENCODED_VALUE: Final = 1_000_000
MAX_ENCODED_CONTENT: Final = 1_000_000
# A source name must leave room for `.rev-<n>` within Kubernetes' 253 characters.
MAX_SOURCE_NAME: Final = revisions.MAX_NAME - len(revisions.REVISION_SEPARATOR) - 7
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

OUTPUTS: Final = ("table", "json", "yaml")
SHOW_OUTPUTS: Final = ("yaml", "json", "table")
NONE: Final = "-"
ROLE_VIEW: Final = "view"
DEFAULT_WAIT_TIMEOUT: Final = 120.0
# `update-secret --wait` follows rollouts, which take as long as `status --wait` allows.
ROLLOUT_WAIT_TIMEOUT: Final = 300.0
EXIT_INTERRUPTED: Final = 130
WAIT_INTERVAL: Final = 1.0


Revision = revisions.Revision


class CommandError(WebAppError):
    """A secret command cannot go on: bad arguments, or cluster state the user must change.

    Raised by every command of this module; the message says what to do. Never holds a value.
    """


# --- content arguments: k=v, k#base64=..., k#file=path --------------------------------------

FileReader = Callable[[str], bytes]


def _read_file(path: str) -> bytes:
    return Path(path).expanduser().read_bytes()


def _encoded_size(raw: bytes) -> int:
    return 4 * ((len(raw) + 2) // 3)


def check_key(key: str, where: str) -> None:
    """Refuse a key that cannot become (part of) an environment variable name."""
    if not key:
        msg = f"{where} has an empty key; expected KEY=VALUE"
        raise CommandError(msg)
    if len(key) > MAX_KEY or not KEY_PATTERN.fullmatch(key):
        msg = (
            f"{where}: key {key!r} cannot become an environment variable name; use ASCII "
            f"letters, digits, '-' and '_' (at most {MAX_KEY} characters)"
        )
        raise CommandError(msg)


def parse_content(
    items: Sequence[str], file_keys: Sequence[str] = (), read_file: FileReader = _read_file
) -> dict[str, bytes]:
    """The content given on the command line, as raw bytes per key.

    Items are `KEY=VALUE` (the value may contain `=`), `KEY#base64=VALUE` (already base64, as in
    Juju) or `KEY#file=PATH`; each `--file-key` is `KEY=PATH` or `KEY=@PATH`. Keys must be
    non-empty and given once; values must be non-empty (as Juju requires). Errors name the
    argument and the key, never a value: an argument without `=` is not shown at all, since it
    may be a value whose key was forgotten.
    """
    content: dict[str, bytes] = {}

    def add(key: str, value: bytes, where: str) -> None:
        if key in content:
            msg = f"key {key!r} is given twice; give each key once"
            raise CommandError(msg)
        if not value:
            msg = (
                f"{where}: key {key!r} has an empty value; values must not be empty (as in "
                "Juju); to remove a key, leave it out of update-secret"
            )
            raise CommandError(msg)
        if _encoded_size(value) > MAX_ENCODED_VALUE:
            msg = f"{where}: the value of key {key!r} is over {MAX_ENCODED_VALUE} bytes base64"
            raise CommandError(msg)
        content[key] = value

    def read(key: str, path: str, where: str) -> bytes:
        if not path:
            msg = f"{where}: key {key!r} names no file; expected {key}#file=PATH"
            raise CommandError(msg)
        try:
            return read_file(path)
        except OSError as error:
            msg = f"{where}: key {key!r}: cannot read {path}: {error.strerror or error}"
            raise CommandError(msg) from None

    for index, item in enumerate(items, start=1):
        where = f"argument {index}"
        left, sep, value = item.partition("=")
        if not sep:
            msg = (
                f"{where} is not KEY=VALUE, KEY#base64=VALUE or KEY#file=PATH (it is not "
                "shown, as it may be a value)"
            )
            raise CommandError(msg)
        key, hash_sign, form = left.partition("#")
        check_key(key, where)
        if not hash_sign:
            add(key, value.encode(), where)
        elif form == "base64":
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                msg = f"{where}: the value of key {key!r} is not valid base64"
                raise CommandError(msg) from None
            add(key, decoded, where)
        elif form == "file":
            add(key, read(key, value, where), where)
        else:
            msg = f"{where}: key {key!r}: unknown form #{form}; use KEY#base64= or KEY#file="
            raise CommandError(msg)
    for index, item in enumerate(file_keys, start=1):
        where = f"--file-key {index}"
        key, sep, path = item.partition("=")
        if not sep:
            msg = f"{where}: expected KEY=@PATH, got {item!r}"
            raise CommandError(msg)
        check_key(key, where)
        add(key, read(key, path.removeprefix("@"), where), where)
    total = sum(_encoded_size(v) for v in content.values())
    if total > MAX_ENCODED_CONTENT:
        msg = f"the content is {total} bytes base64; at most {MAX_ENCODED_CONTENT} are allowed"
        raise CommandError(msg)
    return content


def encode_content(content: Mapping[str, bytes]) -> dict[str, str]:
    """`data` of a Secret: base64 of each value, keys sorted."""
    return {k: base64.b64encode(v).decode() for k, v in sorted(content.items())}


def decode_data(data: Mapping[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


# --- names and options ---------------------------------------------------------------------


def check_source_name(name: str) -> None:
    """A name `add-secret` may create: a DNS subdomain that leaves room for `.rev-<n>`."""
    if len(name) > MAX_SOURCE_NAME or not _DNS_SUBDOMAIN.fullmatch(name):
        msg = (
            f"{name!r} is not a Secret name for add-secret: use lower-case letters, digits, "
            f"'-' and '.' (at most {MAX_SOURCE_NAME} characters, so that revision names fit)"
        )
        raise CommandError(msg)
    if revisions.REVISION_SEPARATOR in name:
        msg = (
            f"{name!r} contains {revisions.REVISION_SEPARATOR!r}, which names revision "
            "snapshots; choose another name"
        )
        raise CommandError(msg)


def check_namespace(namespace: str) -> None:
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        msg = f"{namespace!r} is not a namespace name (a DNS-1123 label)"
        raise CommandError(msg)


def canonical_rotate(value: str) -> str:
    """The rotation policy as the annotation holds it (`90m` -> `1h30m`); clear errors."""
    try:
        return str(schedule.parse_rotate_policy(value))
    except InvalidConfig as error:
        raise CommandError(f"--rotate: {error.message}") from None


def canonical_expire(value: str, now: datetime) -> str:
    """The expiry as the annotation holds it; a time in the past is refused."""
    try:
        policy = schedule.parse_expire(value)
    except InvalidConfig as error:
        raise CommandError(f"--expire: {error.message}") from None
    if policy.at is not None and policy.at <= now:
        msg = (
            f"--expire: {value} is in the past (now is {schedule.format_time(now)}); give a "
            "later time or a duration such as 30d"
        )
        raise CommandError(msg)
    return str(policy)


def split_apps(items: Sequence[str]) -> list[str]:
    """`shop,api tools/reporter` -> [shop, api, tools/reporter]; empty items dropped."""
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_apps(namespace: str, items: Sequence[str]) -> list[grants.AppRef]:
    apps = split_apps(items)
    if not apps:
        msg = "name at least one WebApp: APP, NAMESPACE/APP, * or NAMESPACE/*"
        raise CommandError(msg)
    try:
        return [grants.parse_app_ref(namespace, app) for app in apps]
    except InvalidConfig as error:
        raise CommandError(error.message.replace(f"{grants.GRANT_ANNOTATION}: ", "")) from None


@dataclass(frozen=True)
class GrantChange:
    """The grant annotation after `grant-secret`/`revoke-secret`; None removes it."""

    value: str | None
    changed: tuple[grants.AppRef, ...]
    unchanged: tuple[grants.AppRef, ...]


def plan_grant(
    namespace: str, annotation: str | None, apps: Sequence[grants.AppRef], revoke: bool
) -> GrantChange:
    """Add or remove apps from a Secret's grant annotation, in canonical order."""
    try:
        current = grants.parse_grants(namespace, annotation)
    except InvalidConfig as error:
        msg = (
            f"{error.message}; fix the annotation first (kubectl annotate secret ... "
            f"--overwrite {grants.GRANT_ANNOTATION}=...)"
        )
        raise CommandError(msg) from None
    updated = current
    changed: list[grants.AppRef] = []
    unchanged: list[grants.AppRef] = []
    for app in apps:
        if revoke:
            try:
                after = updated.without_app(app)
            except InvalidConfig as error:
                raise CommandError(error.message) from None
        else:
            after = updated.with_app(app)
        (changed if after != updated else unchanged).append(app)
        updated = after

    def canonical(app: grants.AppRef) -> tuple[bool, str]:
        return app.namespace != namespace, str(app)

    text = updated.to_annotation()
    return GrantChange(
        text or None, tuple(sorted(changed, key=canonical)), tuple(sorted(unchanged, key=canonical))
    )


# --- update plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdatePlan:
    """A JSON merge patch of a source Secret (None values remove keys) and what it changes."""

    data: dict[str, str | None]
    annotations: dict[str, str | None]
    changes: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.data and not self.annotations


def plan_update(
    data: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    content: Mapping[str, bytes] | None,
    annotation_values: Mapping[str, str | None],
) -> UpdatePlan:
    """What `update-secret` changes: the given content replaces the whole content (Juju's
    semantics; None leaves it alone), and each annotation given is set (None removes it).
    The descriptions of changes name keys and annotations only."""
    old = decode_data(data)
    patch_data: dict[str, str | None] = {}
    changes: list[str] = []
    if content is not None:
        added = sorted(set(content) - set(old))
        removed = sorted(set(old) - set(content))
        changed = sorted(k for k in set(content) & set(old) if content[k] != old[k])
        for key in added + changed:
            patch_data[key] = base64.b64encode(content[key]).decode()
        for key in removed:
            patch_data[key] = None
        for label, keys in (("added", added), ("changed", changed), ("removed", removed)):
            if keys:
                changes.append(f"{label} {', '.join(keys)}")
    current = annotations or {}
    patch_annotations: dict[str, str | None] = {}
    for key, value in annotation_values.items():
        if current.get(key) != value:
            patch_annotations[key] = value
            short = key.removeprefix("twelvefactor.dev/")
            changes.append(f"{short} {'removed' if value is None else value}")
    return UpdatePlan(patch_data, patch_annotations, tuple(changes))


# --- the refresh request --------------------------------------------------------------------


def secret_options(webapp: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Options of a WebApp that read a Secret: spec.secrets and spec.integrations, by name."""
    spec = webapp.get("spec") or {}
    found: dict[str, Mapping[str, Any]] = {}
    for section in ("integrations", "secrets"):
        for name, ref in (spec.get(section) or {}).items():
            if isinstance(ref, Mapping):
                found[name] = ref
    return found


def check_refresh_options(webapp: Mapping[str, Any], requested: Sequence[str]) -> list[str]:
    """Check `refresh`'s options against the WebApp; return notes for the user."""
    name = (webapp.get("metadata") or {}).get("name", "?")
    options = secret_options(webapp)
    if not options:
        msg = f"WebApp {name} has no spec.secrets or spec.integrations: nothing to refresh"
        raise CommandError(msg)
    unknown = [o for o in requested if o not in options]
    if unknown:
        msg = (
            f"WebApp {name} has no secret option or integration {', '.join(unknown)}; "
            f"it has {', '.join(sorted(options))}"
        )
        raise CommandError(msg)
    notes = []
    for option in requested or sorted(options):
        ref = options[option]
        if ref.get("revision") is not None:
            pinned = f"option {option} is pinned to revision {ref['revision']}"
            if requested:
                msg = f"{pinned}; remove spec.secrets.{option}.revision to follow newer revisions"
                raise CommandError(msg)
            notes.append(f"{pinned} and stays there")
        elif requested and ref.get("refresh", "auto") == "auto":
            notes.append(f"option {option} follows the latest revision already (refresh: auto)")
    return notes


# --- what a Secret looks like: revisions, observers -----------------------------------------


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return schedule.parse_time(value)
    except InvalidConfig:
        return None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def revisions_by_source(
    items: Iterable[Mapping[str, Any]],
    disowned: Collection[str] = (),
) -> dict[tuple[str, str], list[Revision]]:
    """Revision snapshots (metadata only) by (namespace, source), ascending by number.

    Only Secrets named as the operator names revisions (`<source>.rev-<n>`, as their labels
    say): anyone who may label a Secret could make any other look like one. The CLI holds no
    key to check a revision's signature (the operator does; docs/reliability.md, "Forged
    revisions"): those whose uid is in `disowned` (the operator's `RevisionNotSigned` Events
    name them) are marked so."""
    found: dict[tuple[str, str], list[Revision]] = {}
    for item in items:
        meta = _meta(item)
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        created = _time(meta.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC)
        # A malformed time annotation is read as absent: the revision is kept, not the time.
        revision = revisions.parse_revision(labels, annotations, created)
        named = revision is not None and meta.get("name") == revisions.revision_name(
            revision.source, revision.number
        )
        if revision is not None and named:
            if meta.get("uid") in disowned:
                revision = replace(revision, disowned=True)
            found.setdefault((meta.get("namespace", ""), revision.source), []).append(revision)
    for listed in found.values():
        listed.sort(key=lambda r: r.number)
    return found


@dataclass(frozen=True, order=True)
class Observer:
    """One secret option (or integration) of one WebApp that reads a Secret."""

    namespace: str
    app: str
    option: str
    tracked: int | None = None
    pinned: int | None = None

    def relative_to(self, namespace: str) -> str:
        return self.app if self.namespace == namespace else f"{self.namespace}/{self.app}"


def observers_of(namespace: str, name: str, webapps: Iterable[Mapping[str, Any]]) -> list[Observer]:
    """Every option of every WebApp whose `secretName` names the Secret `namespace/name`."""
    found: list[Observer] = []
    for webapp in webapps:
        meta = _meta(webapp)
        app_ns, app = meta.get("namespace", ""), meta.get("name", "")
        status = webapp.get("status") or {}
        tracked = {
            s.get("option"): s.get("trackedRevision")
            for s in status.get("secrets") or []
            if isinstance(s, Mapping)
        }
        for option, ref in secret_options(webapp).items():
            try:
                ref_ns, ref_name = grants.parse_secret_ref(app_ns, str(ref.get("secretName", "")))
            except InvalidConfig:
                continue
            if (ref_ns, ref_name) != (namespace, name):
                continue
            number = tracked.get(option)
            pin = ref.get("revision")
            found.append(
                Observer(
                    app_ns,
                    app,
                    option,
                    number if isinstance(number, int) else None,
                    pin if isinstance(pin, int) else None,
                )
            )
    return sorted(found)


def followers(namespace: str, name: str, webapps: Iterable[Mapping[str, Any]]) -> list[Observer]:
    """The observers of `namespace/name` that move to a new revision by themselves: `refresh:
    auto` (the default) and no pinned revision."""
    manual = {
        (_meta(w).get("namespace", ""), _meta(w).get("name", ""), option)
        for w in webapps
        for option, ref in secret_options(w).items()
        if ref.get("refresh") == "manual"
    }
    return [
        o
        for o in observers_of(namespace, name, webapps)
        if o.pinned is None and (o.namespace, o.app, o.option) not in manual
    ]


def format_observers(observers: Sequence[Observer], namespace: str) -> str:
    """`shop(2), tools/api(3)`: each app with the revision it tracks (`-` when none yet)."""
    seen: list[str] = []
    for observer in observers:
        tracked = NONE if observer.tracked is None else str(observer.tracked)
        text = f"{observer.relative_to(namespace)}({tracked})"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen) or NONE


@dataclass(frozen=True)
class SecretInfo:
    """What `secrets` and `show-secret` show about one source Secret. No content."""

    namespace: str
    name: str
    created: datetime | None
    revisions: tuple[Revision, ...]
    observers: tuple[Observer, ...]
    rotation: str
    next_rotation: datetime | None
    description: str | None
    grants: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def latest(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.number == number), None)


def describe(
    source: Mapping[str, Any],
    snapshots: Sequence[Revision],
    webapps: Iterable[Mapping[str, Any]],
) -> SecretInfo:
    """A source Secret's metadata, its revisions and observers, as the commands show them."""
    meta = _meta(source)
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    annotations = meta.get("annotations") or {}
    problems: list[str] = []
    rotation = "never"
    if schedule.ROTATE_ANNOTATION in annotations:
        try:
            rotation = str(schedule.parse_rotate_policy(annotations[schedule.ROTATE_ANNOTATION]))
        except InvalidConfig as error:
            rotation = "invalid"
            problems.append(error.message)
    next_rotation = None
    if rotation not in ("never", "invalid"):
        next_rotation = _time(annotations.get(schedule.NEXT_ROTATION_ANNOTATION))
    granted, invalid = grants.parse_grants_lenient(
        namespace, annotations.get(grants.GRANT_ANNOTATION)
    )
    if invalid:
        problems.append(f"{grants.GRANT_ANNOTATION} has invalid items: {', '.join(invalid)}")
    expire = annotations.get(schedule.EXPIRE_ANNOTATION)
    if expire is not None:
        try:
            schedule.parse_expire(expire)
        except InvalidConfig as error:
            problems.append(error.message)
    ordered = tuple(sorted((r for r in snapshots if not r.disowned), key=lambda r: r.number))
    problems += [
        f"Secret {revisions.revision_name(name, r.number)} is labelled as revision {r.number} "
        "but the operator found it is not one it made (a Warning Event RevisionNotSigned on "
        "it): it is ignored, never read nor removed, and not listed; delete it: kubectl "
        f"delete secret {revisions.revision_name(name, r.number)} -n {namespace}"
        for r in sorted(snapshots, key=lambda r: r.number)
        if r.disowned
    ]
    problems += [
        f"revision {r.number} carries no signature ({revisions.SIGNATURE_ANNOTATION}): the "
        "operator ignores it unless it was made before the operator signed revisions (an "
        "upgrade; it is then signed by the next reconcile); see docs/reliability.md, "
        '"Forged revisions"'
        for r in ordered
        if not r.has_signature
    ]
    entries = granted.to_annotation()
    return SecretInfo(
        namespace=namespace,
        name=name,
        created=_time(meta.get("creationTimestamp")),
        revisions=ordered,
        observers=tuple(observers_of(namespace, name, webapps)),
        rotation=rotation,
        next_rotation=next_rotation,
        description=annotations.get(revisions.DESCRIPTION_ANNOTATION),
        grants=tuple(entries.split(",")) if entries else (),
        problems=tuple(problems),
    )


def check_revision_removable(info: SecretInfo, number: int) -> None:
    """Refuse to remove a revision that is missing, the latest, tracked or pinned."""
    if info.revision(number) is None:
        existing = ", ".join(str(r.number) for r in info.revisions) or "none yet"
        msg = f"Secret {info.ref} has no revision {number} (revisions: {existing})"
        raise CommandError(msg)
    latest = info.latest
    if latest is not None and latest.number == number:
        msg = (
            f"revision {number} is the latest revision of Secret {info.ref}; it cannot be "
            f"removed (update the Secret to make a newer one, or remove the whole secret with: "
            f"{CLI} remove-secret {info.name} -n {info.namespace})"
        )
        raise CommandError(msg)
    users = [o for o in info.observers if number in (o.tracked, o.pinned)]
    if users:
        names = ", ".join(
            f"{o.relative_to(info.namespace)} (option {o.option}"
            f"{', pinned' if o.pinned == number else ''})"
            for o in users
        )
        first = users[0]
        hint = (
            "remove the pin first"
            if first.pinned == number
            else f"refresh it first: {CLI} refresh {first.app} {first.option} -n {first.namespace}"
        )
        msg = f"revision {number} of Secret {info.ref} is in use by {names}; {hint}"
        raise CommandError(msg)


# --- output ----------------------------------------------------------------------------------


def format_age(delta: timedelta) -> str:
    """kubectl's human duration: `45s`, `5m30s`, `3h`, `2d4h`, `400d`, `3y10d`."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as kubectl prints them: left-aligned, three spaces apart, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            msg = f"a row has {len(row)} cells for {len(headers)} columns"
            raise ValueError(msg)
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *rows]
    ]
    return "\n".join(lines) + "\n"


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else schedule.format_time(value)


SECRETS_HEADERS: Final = (
    "NAME",
    "REVISION",
    "OBSERVERS",
    "ROTATION",
    "NEXT ROTATION",
    "EXPIRES",
    "GRANTED",
    "AGE",
)


def _secret_row(info: SecretInfo, now: datetime, revision: int | None = None) -> list[str]:
    """The SECRETS_HEADERS cells of one secret, at revision `revision` (default: the latest)."""
    shown = info.latest if revision is None else info.revision(revision)
    return [
        info.name,
        str(shown.number) if shown else NONE,
        format_observers(info.observers, info.namespace),
        info.rotation,
        _stamp(info.next_rotation) or NONE,
        _stamp(shown.expires if shown else None) or NONE,
        ",".join(info.grants) or NONE,
        format_age(now - info.created) if info.created else NONE,
    ]


def secrets_table(infos: Sequence[SecretInfo], now: datetime, all_namespaces: bool) -> str:
    """The `secrets` table; a NAMESPACE column first with `-A`."""
    rows = []
    for info in infos:
        row = _secret_row(info, now)
        rows.append([info.namespace, *row] if all_namespaces else row)
    headers = ("NAMESPACE", *SECRETS_HEADERS) if all_namespaces else SECRETS_HEADERS
    return format_table(headers, rows)


REVISIONS_HEADERS: Final = ("REVISION", "CREATED", "EXPIRES", "TRACKED BY")
CONTENT_HEADERS: Final = ("KEY", "VALUE")


def _tracked_by(info: SecretInfo, number: int) -> str:
    apps = {o.relative_to(info.namespace) for o in info.observers if o.tracked == number}
    return ", ".join(sorted(apps)) or NONE


def show_table(
    info: SecretInfo,
    now: datetime,
    *,
    revision: int | None = None,
    with_revisions: bool = False,
    content: Mapping[str, bytes] | None = None,
) -> str:
    """`show-secret -o table`: the secret's row of the `secrets` table (at `revision`), then
    with `with_revisions` one row per revision and the apps tracking it, then with `content`
    (`--reveal`) one row per key. Tables are separated by a blank line."""
    tables = [format_table(SECRETS_HEADERS, [_secret_row(info, now, revision)])]
    if with_revisions:
        rows = [
            [
                str(item.number) if item.has_signature else f"{item.number} (unsigned)",
                _stamp(item.created) or NONE,
                _stamp(item.expires) or NONE,
                _tracked_by(info, item.number),
            ]
            for item in info.revisions
        ]
        tables.append(format_table(REVISIONS_HEADERS, rows))
    if content is not None:
        rows = [[key, value] for key, value in readable_content(content).items()]
        tables.append(format_table(CONTENT_HEADERS, rows))
    return "\n".join(tables)


def info_document(
    info: SecretInfo,
    *,
    revision: int | None = None,
    with_revisions: bool = False,
    content: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """One secret in Juju's `show-secret` shape (keys absent when there is nothing to say).

    `revision` selects the revision whose number, times and content are shown (the latest by
    default); `content` is shown only when given (`--reveal`).
    """
    shown = info.latest if revision is None else info.revision(revision)
    doc: dict[str, Any] = {}
    if shown is not None:
        doc["revision"] = shown.number
    doc["owner"] = info.namespace
    doc["rotation"] = info.rotation
    if info.next_rotation is not None:
        doc["rotates"] = _stamp(info.next_rotation)
    if shown is not None and shown.expires is not None:
        doc["expires"] = _stamp(shown.expires)
    if info.description:
        doc["description"] = info.description
    if info.created is not None:
        doc["created"] = _stamp(info.created)
    if shown is not None:
        doc["updated"] = _stamp(shown.created)
    if info.grants:
        doc["access"] = [{"target": target, "role": ROLE_VIEW} for target in info.grants]
    if info.observers:
        observers = []
        for observer in info.observers:
            entry: dict[str, Any] = {
                "app": observer.relative_to(info.namespace),
                "option": observer.option,
                "tracked-revision": observer.tracked,
            }
            if observer.pinned is not None:
                entry["pinned-revision"] = observer.pinned
            observers.append(entry)
        doc["observers"] = observers
    if with_revisions:
        listed = []
        for item in info.revisions:
            entry = {"revision": item.number, "created": _stamp(item.created)}
            if item.expires is not None:
                entry["expires"] = _stamp(item.expires)
            if not item.has_signature:
                entry["unsigned"] = True
            listed.append(entry)
        doc["revisions"] = listed
    if info.problems:
        doc["problems"] = list(info.problems)
    if content is not None:
        doc["content"] = readable_content(content)
    return doc


def readable_content(content: Mapping[str, bytes]) -> dict[str, str]:
    """Text values as they are; other bytes as `KEY#base64: ...`, as Juju shows them."""
    shown: dict[str, str] = {}
    for key, value in sorted(content.items()):
        try:
            shown[key] = value.decode()
        except UnicodeDecodeError:
            shown[f"{key}#base64"] = base64.b64encode(value).decode()
    return shown


def dump(document: Mapping[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(document, indent=2) + "\n"
    return str(yaml.safe_dump(document, sort_keys=False, width=10_000))


# --- talking to the cluster -----------------------------------------------------------------


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _api_message(error: ApiError) -> str:
    """The API server's answer, with what to do for the usual cases."""
    code = error.status.code
    text = error.status.message or str(error)
    if code == 403:
        return (
            f"permission denied: {text}. The CLI acts with your kubeconfig's credentials; ask "
            "your cluster admin for that RBAC permission"
        )
    if code == 401:
        return f"not authenticated: {text}. Check your kubeconfig's credentials"
    return f"the API server refused: {text} (HTTP {code})"


@dataclass
class Session:
    """A client with the caller's kubeconfig and the namespace the command works in."""

    client: Client
    namespace: str


class Connector:
    """Connects on first call, with the caller's kubeconfig, so that bad arguments are refused
    without a cluster; `close()` closes the client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.session: Session | None = None

    def __call__(self) -> Session:
        if self.session is None:
            config = kube.load_config()
            namespace = getattr(self.args, "namespace", None) or config.namespace
            check_namespace(namespace)
            client = kube.sync_client(config=config, namespace=namespace)
            self.session = Session(client, namespace)
        return self.session

    def close(self) -> None:
        if self.session is not None:
            self.session.client.close()
            self.session = None


Command = Callable[[argparse.Namespace, Connector], int]
Handler = Callable[[argparse.Namespace], int]


def with_cluster_errors(run: Command) -> Handler:
    """A handler with its connection closed at the end, and API, configuration and connection
    errors turned into clear `error:` lines."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        connector = Connector(args)
        try:
            return run(args, connector)
        except ApiError as error:
            raise CommandError(_api_message(error)) from None
        except kube.ConfigurationError as error:
            raise CommandError(str(error)) from None
        except httpx.HTTPError as error:
            msg = f"cannot reach the Kubernetes API server: {error}"
            raise CommandError(msg) from None
        finally:
            connector.close()

    return wrapped


def as_dict(obj: Any) -> dict[str, Any]:  # noqa: ANN401 (typed and generic lightkube objects)
    """A lightkube object (typed or generic) as a plain dict."""
    if isinstance(obj, dict):
        return obj
    result: dict[str, Any] = obj.to_dict()
    return result


def _dicts(listing: Iterable[Any]) -> list[dict[str, Any]]:
    return [as_dict(item) for item in listing]


def get_source(session: Session, name: str) -> dict[str, Any]:
    """The source Secret `name`: it must exist and be opted in (else a clear error)."""
    ref = f"{session.namespace}/{name}"
    try:
        secret = as_dict(session.client.get(Secret, name, namespace=session.namespace))
    except ApiError as error:
        if kube.is_not_found(error):
            msg = f"Secret {ref} not found; create it with: {CLI} add-secret {name} KEY=VALUE ..."
            raise CommandError(msg) from None
        raise
    labels = _meta(secret).get("labels") or {}
    kind = labels.get(revisions.MANAGED_LABEL)
    if kind == revisions.KIND_SOURCE:
        return secret
    if kind == revisions.KIND_REVISION:
        source = labels.get(revisions.REVISION_OF_LABEL, "?")
        msg = (
            f"Secret {ref} is a revision snapshot made by the operator; use its source "
            f"Secret {source} (with --revision for one revision)"
        )
    elif kind == revisions.KIND_ENVIRONMENT:
        msg = f"Secret {ref} is an environment snapshot made by the operator, not a secret"
    else:
        msg = (
            f"Secret {ref} is not opted in to revision tracking; opt it in with: kubectl label "
            f"secret {name} -n {session.namespace} {revisions.MANAGED_LABEL}=true"
        )
    raise CommandError(msg)


def list_revisions(
    session: Session, namespace: str, source: str | None = None
) -> dict[tuple[str, str], list[Revision]]:
    labels: LabelSelector = {revisions.MANAGED_LABEL: revisions.KIND_REVISION}
    if source is not None:
        labels[revisions.REVISION_OF_LABEL] = source
    items = session.client.list(Secret, namespace=namespace, labels=labels)
    return revisions_by_source(_dicts(items), _disowned(session, namespace))


def _disowned(session: Session, namespace: str) -> set[str]:
    """The uids of Secrets the operator told (Warning `RevisionNotSigned`) are labelled as
    revisions but not its own. Someone who may not list Events sees them as revisions still
    (marked "unsigned" when they carry no signature at all)."""
    try:
        items = session.client.list(
            Event, namespace=namespace, fields={"reason": reasons.REVISION_NOT_SIGNED}
        )
        return {
            str(uid)
            for event in _dicts(items)
            if (uid := (event.get("involvedObject") or {}).get("uid"))
        }
    except ApiError as error:
        if error.status.code == 403:
            return set()
        raise


def _list_webapps(session: Session, namespace: str) -> list[dict[str, Any]]:
    return _dicts(session.client.list(kube.WebAppResource, namespace=namespace))


@dataclass
class WebAppScan:
    """The WebApps the caller could list, and the namespaces they could not look into."""

    webapps: list[dict[str, Any]]
    unchecked: list[str]


def find_webapps(session: Session, namespaces: Iterable[str]) -> WebAppScan:
    """WebApps of every namespace when the caller may list them; else of `namespaces` only.

    An observer of a Secret is in the Secret's namespace or in one its grant names, so falling
    back to those misses only apps that lost their grant. Each fallback is noted on stderr.
    """
    wanted = sorted(set(namespaces))
    try:
        return WebAppScan(_list_webapps(session, ALL_NS), [])
    except ApiError as error:
        if kube.is_not_found(error):
            _note("the WebApp CRD is not installed: no observers to show")
            return WebAppScan([], [])
        if error.status.code != 403:
            raise
    _note(
        "you may not list WebApps in all namespaces; observers are looked up in "
        f"{', '.join(wanted)} only"
    )
    found: list[dict[str, Any]] = []
    unchecked: list[str] = []
    for namespace in wanted:
        try:
            found.extend(_list_webapps(session, namespace))
        except ApiError as error:
            if kube.is_not_found(error):  # the CRD is not installed
                continue
            if error.status.code != 403:
                raise
            unchecked.append(namespace)
            _note(f"you may not list WebApps in namespace {namespace}: its observers are unknown")
    return WebAppScan(found, unchecked)


def _granted_namespaces(source: Mapping[str, Any]) -> set[str]:
    meta = _meta(source)
    namespace = meta.get("namespace", "")
    annotation = (meta.get("annotations") or {}).get(grants.GRANT_ANNOTATION)
    granted, _ = grants.parse_grants_lenient(namespace, annotation)
    return {namespace} | {entry.namespace for entry in granted.entries}


def _merge_patch(session: Session, name: str, patch: Mapping[str, Any]) -> None:
    """A JSON merge patch of a Secret; `resourceVersion` in it makes a concurrent change a 409."""
    try:
        session.client.patch(
            Secret, name, dict(patch), namespace=session.namespace, patch_type=PatchType.MERGE
        )
    except ApiError as error:
        if kube.is_conflict(error):
            msg = f"Secret {session.namespace}/{name} changed while this command ran; run it again"
            raise CommandError(msg) from None
        raise


def _now() -> datetime:
    return datetime.now(UTC)


# --- the commands ----------------------------------------------------------------------------


@with_cluster_errors
def run_add(args: argparse.Namespace, connect: Connector) -> int:
    check_source_name(args.name)
    content = parse_content(args.content, args.file_key)
    if not content:
        msg = "give the content: KEY=VALUE, KEY#base64=VALUE or KEY#file=PATH, at least one"
        raise CommandError(msg)
    now = _now()
    annotations: dict[str, str] = {}
    if args.rotate is not None:
        annotations[schedule.ROTATE_ANNOTATION] = canonical_rotate(args.rotate)
    if args.expire is not None:
        annotations[schedule.EXPIRE_ANNOTATION] = canonical_expire(args.expire, now)
    if args.description:
        annotations[revisions.DESCRIPTION_ANNOTATION] = args.description
    session = connect()
    if args.grant:
        apps = parse_apps(session.namespace, args.grant)
        change = plan_grant(session.namespace, None, apps, revoke=False)
        if change.value:
            annotations[grants.GRANT_ANNOTATION] = change.value
    secret = Secret(
        metadata=ObjectMeta(
            name=args.name,
            namespace=session.namespace,
            labels={revisions.MANAGED_LABEL: revisions.KIND_SOURCE},
            annotations=annotations,
        ),
        type="Opaque",
        data=encode_content(content),
    )
    ref = f"{session.namespace}/{args.name}"
    try:
        session.client.create(secret, namespace=session.namespace)
    except ApiError as error:
        if kube.is_already_exists(error):
            msg = (
                f"Secret {ref} already exists; change its content with: {CLI} update-secret "
                f"{args.name} KEY=VALUE ... -n {session.namespace}"
            )
            raise CommandError(msg) from None
        if kube.is_not_found(error):
            msg = f"namespace {session.namespace} not found: {error.status.message}"
            raise CommandError(msg) from None
        raise
    print(ref)
    return 0


@with_cluster_errors
def run_update(args: argparse.Namespace, connect: Connector) -> int:
    content = parse_content(args.content, args.file_key) if args.content or args.file_key else None
    now = _now()
    values: dict[str, str | None] = {}
    if args.rotate is not None:
        values[schedule.ROTATE_ANNOTATION] = canonical_rotate(args.rotate) if args.rotate else None
    if args.expire is not None:
        values[schedule.EXPIRE_ANNOTATION] = (
            canonical_expire(args.expire, now) if args.expire else None
        )
    if args.description is not None:
        values[revisions.DESCRIPTION_ANNOTATION] = args.description or None
    if content is None and not values:
        msg = (
            "nothing to update: give the new content (KEY=VALUE ...: it replaces the whole "
            "content) or --rotate, --expire or --description"
        )
        raise CommandError(msg)
    session = connect()
    secret = get_source(session, args.name)
    ref = f"{session.namespace}/{args.name}"
    if content is not None and sealing.is_sealed_secret(_meta(secret).get("annotations") or {}):
        msg = (
            f"Secret {ref} is sealed: its values are ciphertext for Git; seal the new values "
            f"with `{CLI} seal --name {args.name} -n {session.namespace} KEY=VALUE ...` and "
            "apply the result (docs/sealing.md)"
        )
        raise CommandError(msg)
    if content is not None and secret.get("immutable"):
        msg = f"Secret {ref} is immutable; its content cannot change"
        raise CommandError(msg)
    meta = _meta(secret)
    plan = plan_update(secret.get("data"), meta.get("annotations"), content, values)
    if plan.empty:
        print(f"{ref} unchanged: it already has this content and these settings")
        return 0
    # Read before the write: the revision the new content must come after, and who follows.
    before = _latest_revision(session, args.name) if args.wait else None
    patch: dict[str, Any] = {"metadata": {"resourceVersion": meta.get("resourceVersion")}}
    if plan.annotations:
        patch["metadata"]["annotations"] = plan.annotations
    if plan.data:
        patch["data"] = plan.data
    _merge_patch(session, args.name, patch)
    print(f"{ref} updated: {'; '.join(plan.changes)}")
    if not args.wait:
        return 0
    if not plan.data:
        _note("the content did not change, so there is no new revision to wait for")
        return 0
    scan = find_webapps(session, _granted_namespaces(secret))
    return wait_for_followers(
        functools.partial(apps.read_status, session.client),
        followers(session.namespace, args.name, scan.webapps),
        ref,
        before,
        args.timeout,
    )


def _latest_revision(session: Session, name: str) -> int | None:
    found = list_revisions(session, session.namespace, name).get((session.namespace, name), [])
    return max((r.number for r in found if not r.disowned), default=None)


def moved_past(option: str, before: int | None) -> Callable[[Mapping[str, Any]], bool]:
    """`apps.follow`'s goal for one observer of an updated Secret: its option tracks a revision
    newer than `before` (the latest before the update), and the app is Ready on it."""

    def reached(info: Mapping[str, Any]) -> bool:
        tracked = (info["secrets"].get(option) or {}).get("tracked")
        newer = isinstance(tracked, int) and (before is None or tracked > before)
        return newer and apps.done(info)

    return reached


def _say(line: str) -> None:
    print(line, flush=True)


def wait_for_followers(
    read: Callable[[str, str], dict[str, Any]],
    observers: Sequence[Observer],
    ref: str,
    before: int | None,
    timeout: float,
    say: Callable[[str], None] = _say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Follow, one after the other (they roll out at once), every observer that tracks the
    Secret automatically until it runs a revision newer than `before`, printing progress as
    `status --wait` does (`read(namespace, app)` is `apps.read_status`); `timeout` bounds the
    whole wait."""
    if not observers:
        _note(f"no WebApp follows {ref} automatically (refresh: auto, no pin): nothing to wait for")
        return 0
    deadline = clock() + timeout
    after = f"after {before}" if before is not None else "of it"
    try:
        for observer in observers:
            app = f"{observer.namespace}/{observer.app}"
            say(f"waiting for {app} ({observer.option}) to run a revision {after}")
            info = apps.follow(
                functools.partial(read, observer.namespace, observer.app),
                max(0.0, deadline - clock()),
                say,
                clock=clock,
                sleep=sleep,
                until=moved_past(observer.option, before),
                goal=f"Ready on a new revision of {ref}",
            )
            tracked = info["secrets"][observer.option]["tracked"]
            say(f"{app}: Ready on revision {tracked} ({observer.option})")
    except apps.StatusError as error:
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:
        _note("stopped waiting; the operator goes on with the rollout")
        return EXIT_INTERRUPTED
    return 0


@with_cluster_errors
def run_rotate(args: argparse.Namespace, connect: Connector) -> int:
    """New generated values for a Secret the operator keeps for an app (a new revision)."""
    session = connect()
    secret = get_source(session, args.name)
    ref = f"{session.namespace}/{args.name}"
    meta = _meta(secret)
    generator = (meta.get("annotations") or {}).get(owned.GENERATE_ANNOTATION)
    owner = (meta.get("labels") or {}).get(owned.OWNED_BY_LABEL)
    if not generator or not owner:
        msg = (
            f"Secret {ref} has no generated values (no {owned.GENERATE_ANNOTATION} annotation); "
            f"give it new content with: kubectl webapp update-secret {args.name} KEY=VALUE ..."
        )
        raise CommandError(msg)
    values = owned.generate(owned.parse_generate(generator), secrets_module.token_urlsafe)
    data: dict[str, str | None] = dict.fromkeys(secret.get("data") or {})
    data.update({k: base64.b64encode(v.encode()).decode() for k, v in values.items()})
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "data": data}
    _merge_patch(session, args.name, patch)
    print(
        f"{ref} rotated: new values for {', '.join(sorted(values))}; the operator makes the "
        f"next revision, and WebApp {owner} and the apps it granted follow it"
    )
    return 0


def _run_grant(args: argparse.Namespace, connect: Connector, revoke: bool) -> int:
    session = connect()
    apps = parse_apps(session.namespace, args.apps)
    secret = get_source(session, args.name)
    meta = _meta(secret)
    annotation = (meta.get("annotations") or {}).get(grants.GRANT_ANNOTATION)
    change = plan_grant(session.namespace, annotation, apps, revoke)
    ref = f"{session.namespace}/{args.name}"

    def names(items: Iterable[grants.AppRef]) -> str:
        return ", ".join(app.relative_to(session.namespace) for app in items)

    if change.unchanged:
        state = "not granted" if revoke else "already granted"
        _note(f"{names(change.unchanged)}: {state} on {ref}")
    if change.changed:
        patch = {
            "metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "annotations": {grants.GRANT_ANNOTATION: change.value},
            }
        }
        _merge_patch(session, args.name, patch)
        verb = "revoked" if revoke else "granted"
        print(f"{ref}: {verb} {names(change.changed)}; access: {change.value or 'nobody'}")
    else:
        print(f"{ref} unchanged; access: {change.value or 'nobody'}")
    return 0


@with_cluster_errors
def run_grant(args: argparse.Namespace, connect: Connector) -> int:
    return _run_grant(args, connect, revoke=False)


@with_cluster_errors
def run_revoke(args: argparse.Namespace, connect: Connector) -> int:
    return _run_grant(args, connect, revoke=True)


@with_cluster_errors
def run_list(args: argparse.Namespace, connect: Connector) -> int:
    session = connect()
    where = ALL_NS if args.all_namespaces else session.namespace
    labels: LabelSelector = {revisions.MANAGED_LABEL: revisions.KIND_SOURCE}
    sources = _dicts(session.client.list(Secret, namespace=where, labels=labels))
    sources.sort(key=lambda s: (_meta(s).get("namespace", ""), _meta(s).get("name", "")))
    snapshots = list_revisions(session, where)
    namespaces = {session.namespace}
    for source in sources:
        namespaces |= _granted_namespaces(source)
    scan = find_webapps(session, namespaces)
    infos = [
        describe(s, snapshots.get((_meta(s)["namespace"], _meta(s)["name"]), []), scan.webapps)
        for s in sources
    ]
    if args.output == "table":
        if not infos:
            scope = "any namespace" if args.all_namespaces else f"namespace {session.namespace}"
            _note(f"no secrets in {scope} (Secrets labelled {revisions.MANAGED_LABEL}=true)")
            return 0
        sys.stdout.write(secrets_table(infos, _now(), args.all_namespaces))
    else:
        sys.stdout.write(dump({info.ref: info_document(info) for info in infos}, args.output))
    return 0


def _read_content(session: Session, info: SecretInfo, number: int | None) -> dict[str, bytes]:
    """The content of revision `number` (default: the latest) with the caller's permissions."""
    if number is None and info.latest is None:
        _note(
            f"the operator has not made a revision of {info.ref} yet; showing the source "
            "Secret's current content"
        )
        secret = session.client.get(Secret, info.name, namespace=info.namespace)
        return decode_data(secret.data)
    latest = info.latest
    chosen = number if number is not None or latest is None else latest.number
    assert chosen is not None
    snapshot = revisions.revision_name(info.name, chosen)
    try:
        secret = session.client.get(Secret, snapshot, namespace=info.namespace)
    except ApiError as error:
        if error.status.code == 403:
            msg = (
                f"permission denied reading revision {chosen} of {info.ref} (Secret "
                f"{snapshot}): {error.status.message}. --reveal needs RBAC get on Secrets in "
                f"namespace {info.namespace}; the CLI acts as you, never as the operator"
            )
            raise CommandError(msg) from None
        if kube.is_not_found(error):
            msg = f"revision {chosen} of {info.ref} is gone (Secret {snapshot} not found)"
            raise CommandError(msg) from None
        raise
    return decode_data(secret.data)


@with_cluster_errors
def run_show(args: argparse.Namespace, connect: Connector) -> int:
    session = connect()
    try:
        source = get_source(session, args.name)
    except ApiError as error:
        if error.status.code == 403:
            what = "read its content" if args.reveal else "show it"
            msg = (
                f"permission denied reading Secret {session.namespace}/{args.name}: "
                f"{error.status.message}. To {what} you need RBAC get on Secrets in namespace "
                f"{session.namespace}; the CLI acts as you, never as the operator"
            )
            raise CommandError(msg) from None
        raise
    snapshots = list_revisions(session, session.namespace, args.name)
    scan = find_webapps(session, _granted_namespaces(source))
    info = describe(source, snapshots.get((session.namespace, args.name), []), scan.webapps)
    if args.revision is not None and info.revision(args.revision) is None:
        existing = ", ".join(str(r.number) for r in info.revisions) or "none yet"
        msg = f"Secret {info.ref} has no revision {args.revision} (revisions: {existing})"
        raise CommandError(msg)
    content = _read_content(session, info, args.revision) if args.reveal else None
    if args.output == "table":
        for problem in info.problems:
            _note(f"{info.ref}: {problem}")
        table = show_table(
            info, _now(), revision=args.revision, with_revisions=args.revisions, content=content
        )
        sys.stdout.write(table)
        return 0
    document = info_document(
        info, revision=args.revision, with_revisions=args.revisions, content=content
    )
    sys.stdout.write(dump({info.ref: document}, args.output))
    return 0


@with_cluster_errors
def run_remove(args: argparse.Namespace, connect: Connector) -> int:
    session = connect()
    source = get_source(session, args.name)
    ref = f"{session.namespace}/{args.name}"
    snapshots = list_revisions(session, session.namespace, args.name)
    scan = find_webapps(session, _granted_namespaces(source))
    info = describe(source, snapshots.get((session.namespace, args.name), []), scan.webapps)
    if args.revision is None:
        session.client.delete(Secret, args.name, namespace=session.namespace)
        count = len(info.revisions)
        print(f"{ref} removed; its {count} revision(s) follow by garbage collection")
        if info.observers:
            apps = format_observers(info.observers, session.namespace)
            _note(f"WebApps still reference it and will report SecretNotFound: {apps}")
        return 0
    check_revision_removable(info, args.revision)
    if scan.unchecked:
        msg = (
            f"cannot check whether WebApps in {', '.join(scan.unchecked)} track revision "
            f"{args.revision} of {ref} (no permission to list them); nothing removed"
        )
        raise CommandError(msg)
    snapshot = revisions.revision_name(args.name, args.revision)
    try:
        session.client.delete(Secret, snapshot, namespace=session.namespace)
    except ApiError as error:
        if kube.is_not_found(error):
            msg = f"revision {args.revision} of {ref} is already gone"
            raise CommandError(msg) from None
        raise
    print(f"{ref} revision {args.revision} removed")
    return 0


def wait_for_refresh(
    read_refreshed: Callable[[], str | None],
    expected: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = WAIT_INTERVAL,
) -> bool:
    """Poll until `read_refreshed()` returns `expected`; False when `timeout` ran out."""
    deadline = clock() + timeout
    while True:
        if read_refreshed() == expected:
            return True
        if clock() >= deadline:
            return False
        sleep(min(interval, max(0.0, deadline - clock())))


@with_cluster_errors
def run_refresh(args: argparse.Namespace, connect: Connector) -> int:
    session = connect()
    ref = f"{session.namespace}/{args.app}"
    try:
        webapp = as_dict(
            session.client.get(kube.WebAppResource, args.app, namespace=session.namespace)
        )
    except ApiError as error:
        if kube.is_not_found(error):
            msg = f"WebApp {ref} not found (kubectl get webapps -n {session.namespace})"
            raise CommandError(msg) from None
        raise
    for note in check_refresh_options(webapp, args.options):
        _note(note)
    value = format_refresh(args.options, str(time.time_ns()))
    session.client.patch(
        kube.WebAppResource,
        args.app,
        {"metadata": {"annotations": {REFRESH_ANNOTATION: value}}},
        namespace=session.namespace,
        patch_type=PatchType.MERGE,
    )
    listed = ", ".join(args.options) if args.options else "every secret option"
    print(f"{ref}: refresh of {listed} requested ({REFRESH_ANNOTATION}={value})")
    if not args.wait:
        return 0

    def refreshed() -> str | None:
        got = session.client.get(kube.WebAppResource, args.app, namespace=session.namespace)
        status = as_dict(got).get("status") or {}
        found = status.get(REFRESHED_STATUS_FIELD)
        return found if isinstance(found, str) else None

    try:
        done = wait_for_refresh(refreshed, value, args.timeout)
    except KeyboardInterrupt:
        _note("stopped waiting; the request stays and the operator handles it")
        return EXIT_INTERRUPTED
    if not done:
        msg = (
            f"the operator did not confirm the refresh of {ref} within {args.timeout:g}s "
            f"(status.{REFRESHED_STATUS_FIELD} is not {value}); is the operator running? The "
            "request stays in place and is handled when it runs"
        )
        raise CommandError(msg)
    print(f"{ref}: refreshed")
    return 0


# --- argument parsing ------------------------------------------------------------------------


class _IntermixedParser(argparse.ArgumentParser):
    """Options may come between positionals, as kubectl allows: `add-secret NAME --grant shop
    k=v`. (A plain argparse parser stops taking `nargs="*"` positionals after an option.)"""

    _inner = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._inner:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def _intermixed(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.__class__ = _IntermixedParser
    return parser


def _namespace_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        help="the namespace (default: the kubeconfig context's namespace)",
    )


def _content_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "content",
        nargs="+" if required else "*",
        metavar="KEY=VALUE",
        help="content: KEY=VALUE, KEY#base64=BASE64 or KEY#file=PATH (prefer files for real "
        "secrets: command lines end up in shell history)",
    )
    parser.add_argument(
        "--file-key",
        action="append",
        default=[],
        metavar="KEY=@PATH",
        help="a key whose value is the content of a file; repeatable",
    )


def _schedule_args(parser: argparse.ArgumentParser, clearable: bool) -> None:
    clear = " ('' removes it)" if clearable else ""
    parser.add_argument(
        "--rotate",
        metavar="POLICY",
        help="rotation policy: never, hourly, daily, weekly, monthly, quarterly, yearly, or a "
        f"duration such as 12h{clear}",
    )
    parser.add_argument(
        "--expire",
        metavar="TIME",
        help="expiry of each revision: an RFC 3339 time, or a duration from each revision's "
        f"creation such as 30d{clear}",
    )
    parser.add_argument(
        "--description", "--info", metavar="TEXT", help=f"what the secret is for{clear}"
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add = commands.add_parser(
        "add-secret",
        help="create a secret (like juju add-secret)",
        description="Create a source Secret opted in to revision tracking; the operator makes "
        "revision 1 of it. Prints the secret's reference, NAMESPACE/NAME.",
    )
    add.add_argument("name", metavar="NAME")
    _content_args(add, required=False)
    add.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="APP[,APP]",
        help="WebApps that may read it (NAME, NAMESPACE/NAME, *, NAMESPACE/*); repeatable",
    )
    _schedule_args(add, clearable=False)
    _namespace_arg(add)
    _intermixed(add).set_defaults(handler=run_add)

    update = commands.add_parser(
        "update-secret",
        help="replace a secret's content or settings (like juju update-secret)",
        description="The given keys become the whole content (keys left out are removed); the "
        "operator makes a new revision when the content changed. Identical content changes "
        "nothing.",
    )
    update.add_argument("name", metavar="NAME")
    _content_args(update, required=False)
    _schedule_args(update, clearable=True)
    update.add_argument(
        "--wait",
        action="store_true",
        help="follow the rollout of every WebApp that tracks the secret automatically until "
        "it is Ready on the new revision",
    )
    update.add_argument(
        "--timeout",
        type=float,
        default=ROLLOUT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long --wait waits in all (default {ROLLOUT_WAIT_TIMEOUT:g})",
    )
    _namespace_arg(update)
    _intermixed(update).set_defaults(handler=run_update)

    for verb, handler, text in (
        ("grant-secret", run_grant, "let WebApps read a secret (like juju grant-secret)"),
        ("revoke-secret", run_revoke, "stop WebApps reading a secret (like juju revoke-secret)"),
    ):
        cmd = commands.add_parser(verb, help=text, description=text)
        cmd.add_argument("name", metavar="NAME")
        cmd.add_argument(
            "apps",
            nargs="+",
            metavar="APP[,APP]",
            help="NAME, NAMESPACE/NAME (another namespace), * or NAMESPACE/*",
        )
        _namespace_arg(cmd)
        _intermixed(cmd).set_defaults(handler=handler)

    listing = commands.add_parser(
        "secrets",
        aliases=["list-secrets"],
        help="list secrets, their revisions and observers (like juju secrets)",
    )
    _namespace_arg(listing)
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list secrets of every namespace"
    )
    listing.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    _intermixed(listing).set_defaults(handler=run_list)

    show = commands.add_parser(
        "show-secret",
        help="show a secret's revisions, access and observers (like juju show-secret)",
    )
    show.add_argument("name", metavar="NAME")
    show.add_argument("--revisions", action="store_true", help="list every revision")
    show.add_argument(
        "--reveal",
        action="store_true",
        help="show the content (needs your own RBAC get on Secrets)",
    )
    show.add_argument(
        "--revision", type=_positive, metavar="N", help="this revision instead of the latest"
    )
    show.add_argument("-o", "--output", choices=SHOW_OUTPUTS, default="yaml")
    _namespace_arg(show)
    _intermixed(show).set_defaults(handler=run_show)

    remove = commands.add_parser(
        "remove-secret",
        help="remove a secret or one revision (like juju remove-secret)",
        description="Without --revision, delete the source Secret (its revisions follow by "
        "garbage collection). With --revision N, delete that revision unless it is the latest "
        "or a WebApp tracks or pins it.",
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--revision", type=_positive, metavar="N")
    _namespace_arg(remove)
    _intermixed(remove).set_defaults(handler=run_remove)

    rotate = commands.add_parser(
        "rotate-secret",
        help="generate new values for an app-owned secret (e.g. APP.secret-key)",
        description="Generate new values for a Secret the operator keeps for a WebApp (its "
        "secret key APP.secret-key, or one of its spec.ownedSecrets): a new revision, which "
        "its observers follow as usual.",
    )
    rotate.add_argument("name", metavar="NAME")
    _namespace_arg(rotate)
    _intermixed(rotate).set_defaults(handler=run_rotate)

    refresh = commands.add_parser(
        "refresh",
        help="move a manual observer to the latest revision",
        description="Ask the operator to move OPTIONs (default: every secret option and "
        f"integration) of WebApp APP to their latest revision, via {REFRESH_ANNOTATION}.",
    )
    refresh.add_argument("app", metavar="APP")
    refresh.add_argument("options", nargs="*", metavar="OPTION")
    refresh.add_argument("--wait", action="store_true", help="wait until the operator has done it")
    refresh.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long --wait waits (default {DEFAULT_WAIT_TIMEOUT:g})",
    )
    _namespace_arg(refresh)
    _intermixed(refresh).set_defaults(handler=run_refresh)


def _positive(text: str) -> int:
    number = numbers.whole_number(text, least=1)
    if number is None:
        msg = f"{text!r} is not a revision number (1, 2, ...)"
        raise argparse.ArgumentTypeError(msg)
    return number
