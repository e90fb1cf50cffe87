"""Resolve a WebApp's secret options and integrations to the content its pods may see.

The checks run in the order the cluster would answer them, and each failure is a domain error
whose message names the WebApp, the field and the Secret (never a value):

1. the Secret exists (`SecretNotFound`), and is opted in with `twelvefactor.dev/secret: "true"`
   (otherwise the operator does not track it: also `SecretNotFound`, saying how to opt in; the
   controller watches only labelled Secrets, so to it an unlabelled one is simply missing, and
   the message says both);
2. the Secret grants the WebApp (`SecretNotGranted`, saying the exact command that fixes it);
3. its owner's rotation and expiry annotations are well-formed (`InvalidConfig`, naming the
   annotation): an app does not take content whose expiry nobody can tell;
4. the chosen revision exists (`RevisionNotFound`);
5. every value is UTF-8 text without NUL characters (`InvalidSecretKey`, naming the key).

Only then is any content copied. The lookup is a protocol so that offline rendering (Secrets
from files) and the controller (Secrets and revision snapshots from the API server) share it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from webapp_operator.domain import grants, numbers, revisions, schedule
from webapp_operator.domain.errors import (
    InvalidConfig,
    InvalidSecretKey,
    RevisionNotFound,
    SecretNotFound,
    SecretNotGranted,
)
from webapp_operator.domain.model import WebApp
from webapp_operator.domain.render import RenderInputs, ResolvedSecret

OPT_IN_LABEL: Final = revisions.MANAGED_LABEL
REVISION_OF_LABEL: Final = revisions.REVISION_OF_LABEL
REVISION_LABEL: Final = revisions.REVISION_LABEL


@dataclass(frozen=True)
class SecretObject:
    """A Kubernetes Secret as the domain sees it: metadata apart, content hidden from repr."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def opted_in(self) -> bool:
        return self.labels.get(OPT_IN_LABEL) == revisions.KIND_SOURCE

    @property
    def revision(self) -> int | None:
        """The revision number of a revision snapshot, None for a source Secret."""
        return numbers.whole_number(self.labels.get(REVISION_LABEL), least=1)

    @classmethod
    def from_manifest(cls, body: Mapping[str, Any], default_namespace: str) -> SecretObject:
        """Read a Secret manifest (`data` base64, `stringData` plain, the latter winning); a
        field of the wrong shape is an InvalidConfig naming it, as the API server would."""
        meta = body.get("metadata") or {}
        if not isinstance(meta, Mapping):
            msg = "Secret: metadata must be a mapping"
            raise InvalidConfig(msg)
        name = meta.get("name")
        namespace = meta.get("namespace") or default_namespace
        if not isinstance(name, str) or not name:
            msg = "Secret: metadata.name is missing"
            raise InvalidConfig(msg)
        if not isinstance(namespace, str):
            msg = f"Secret {name}: metadata.namespace must be a string"
            raise InvalidConfig(msg)
        subject = f"Secret {namespace}/{name}"
        for field_name in ("labels", "annotations"):
            _string_map(subject, f"metadata.{field_name}", meta.get(field_name))
        for field_name in ("data", "stringData"):
            if not isinstance(body.get(field_name) or {}, Mapping):
                msg = f"{subject}: {field_name} must be a mapping of keys to values"
                raise InvalidConfig(msg)
        data: dict[str, bytes] = {}
        for key, value in (body.get("data") or {}).items():
            try:
                data[str(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                msg = f"{subject}: data.{key} is not valid base64"
                raise InvalidConfig(msg) from None
        for key, value in (body.get("stringData") or {}).items():
            if not isinstance(value, str):
                msg = f"{subject}: stringData.{key} must be a string"
                raise InvalidConfig(msg)
            data[str(key)] = value.encode()
        return cls(
            namespace=namespace,
            name=name,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            data=data,
        )


class SecretLookup(Protocol):
    """Where resolution reads Secrets from."""

    def source(self, namespace: str, name: str) -> SecretObject | None:
        """The Secret `namespace/name` itself, or None if it does not exist."""
        ...

    def revision(self, namespace: str, name: str, revision: int) -> SecretObject | None:
        """Revision snapshot `revision` of Secret `namespace/name`, or None."""
        ...

    def latest_revision(self, namespace: str, name: str) -> int | None:
        """The newest revision number of `namespace/name`, or None if it has none."""
        ...


class ManifestSecrets:
    """A SecretLookup over Secrets read from manifests (offline rendering)."""

    def __init__(self, secrets: Iterable[SecretObject]) -> None:
        self._sources: dict[tuple[str, str], SecretObject] = {}
        self._revisions: dict[tuple[str, str, int], SecretObject] = {}
        for secret in secrets:
            of = secret.labels.get(REVISION_OF_LABEL)
            number = secret.revision
            if of and number is not None:
                self._revisions[(secret.namespace, of, number)] = secret
            else:
                self._sources[(secret.namespace, secret.name)] = secret

    def source(self, namespace: str, name: str) -> SecretObject | None:
        return self._sources.get((namespace, name))

    def revision(self, namespace: str, name: str, revision: int) -> SecretObject | None:
        return self._revisions.get((namespace, name, revision))

    def latest_revision(self, namespace: str, name: str) -> int | None:
        found = [n for (ns, of, n) in self._revisions if (ns, of) == (namespace, name)]
        return max(found, default=None)


def _string_map(subject: str, field_name: str, value: Any) -> None:  # noqa: ANN401 (YAML)
    """Labels and annotations: a mapping of strings to strings, or absent."""
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        msg = f"{subject}: {field_name} must map strings to strings (quote numbers and booleans)"
        raise InvalidConfig(msg)


def decode_values(subject: str, data: Mapping[str, bytes]) -> dict[str, str]:
    """Secret values as text; a binary value is an InvalidSecretKey naming its key.

    A NUL character is binary too: no process can receive it in an environment variable (the
    container runtime would refuse to start the pod, after the rollout began).
    """
    values: dict[str, str] = {}
    for key, raw in sorted(data.items()):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            what = "binary data" if text is None else "a NUL character"
            msg = (
                f"{subject}: key {key!r} holds {what}; environment variables need "
                "UTF-8 text without NUL (store it base64-encoded under another key)"
            )
            raise InvalidSecretKey(msg)
        values[key] = text
    return values


def schedule_problems(annotations: Mapping[str, str]) -> list[str]:
    """What is wrong with a source Secret's rotation and expiry annotations (names no value
    of the Secret's content; the annotations are its owner's metadata)."""
    found = []
    for annotation, parse in (
        (schedule.ROTATE_ANNOTATION, schedule.parse_rotate_policy),
        (schedule.EXPIRE_ANNOTATION, schedule.parse_expire),
    ):
        value = annotations.get(annotation)
        if value is None:
            continue
        try:
            parse(value)
        except InvalidConfig as error:
            found.append(error.message)
    return found


def resolve_one(
    webapp: WebApp,
    field_path: str,
    option: str,
    ref: str,
    pin: int | None,
    lookup: SecretLookup,
) -> ResolvedSecret:
    """Check existence, opt-in, grant and revision of one reference; then read it."""
    subject = f"WebApp {webapp.namespace}/{webapp.name}: {field_path}"
    namespace, name = grants.parse_secret_ref(webapp.namespace, ref)
    source = lookup.source(namespace, name)
    if source is None:
        msg = (
            f"{subject}: Secret {namespace}/{name} not found; the operator reads only Secrets "
            f"labelled {OPT_IN_LABEL}=true: create it, or opt it in with: kubectl label "
            f"secret {name} -n {namespace} {OPT_IN_LABEL}=true"
        )
        raise SecretNotFound(msg)
    if not source.opted_in:
        msg = (
            f"{subject}: Secret {namespace}/{name} is not tracked by the operator; "
            f"opt it in with: kubectl label secret {name} -n {namespace} {OPT_IN_LABEL}=true"
        )
        raise SecretNotFound(msg)
    try:
        grants.check_granted(
            namespace,
            name,
            source.annotations.get(grants.GRANT_ANNOTATION),
            grants.AppRef(namespace=webapp.namespace, name=webapp.name),
        )
    except SecretNotGranted as error:
        raise SecretNotGranted(f"{subject}: {error.message}") from None
    problems = schedule_problems(source.annotations)
    if problems:
        msg = (
            f"{subject}: Secret {namespace}/{name} has malformed annotations, so the app takes "
            f"none of its content until its owner fixes them: {'; '.join(problems)}"
        )
        raise InvalidConfig(msg)
    content = source
    revision = lookup.latest_revision(namespace, name)
    if pin is not None:
        pinned = lookup.revision(namespace, name, pin)
        if pinned is None:
            msg = f"{subject}: revision {pin} of Secret {namespace}/{name} does not exist"
            raise RevisionNotFound(msg)
        content, revision = pinned, pin
    return ResolvedSecret(
        option=option,
        namespace=namespace,
        name=name,
        revision=revision,
        data=decode_values(f"{subject}: Secret {namespace}/{name}", content.data),
    )


def resolve(
    webapp: WebApp,
    lookup: SecretLookup,
    generated_secret_key: str | None,
) -> RenderInputs:
    """Resolve every secret option and integration of `webapp` at its pinned or latest revision.

    Offline rendering uses this directly; the controller resolves tracked revisions itself
    through the same `resolve_one`.
    """
    secrets = {
        option: resolve_one(
            webapp, f"spec.secrets.{option}", option, ref.secret_name, ref.revision, lookup
        )
        for option, ref in sorted((webapp.spec.secrets or {}).items())
    }
    integrations = {
        name: resolve_one(webapp, f"spec.integrations.{name}", name, ref.secret_name, None, lookup)
        for name, ref in sorted((webapp.spec.integrations or {}).items())
    }
    return RenderInputs(
        webapp=webapp,
        secrets=secrets,
        integrations=integrations,
        generated_secret_key=generated_secret_key,
    )
