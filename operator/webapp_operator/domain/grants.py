"""Who may read a Secret: the `twelvefactor.dev/grant` annotation, parsed and checked.

This is Juju's `grant-secret` on Kubernetes. The owner of a Secret lists the WebApps that may
read it in one annotation on the Secret itself, so that the grant lives (and is reviewed) next to
the Secret, and only someone who may edit the Secret can widen it:

    twelvefactor.dev/grant: "shop, billing, tools/reporter"

Items, separated by commas (whitespace around items is ignored, empty items too):

- `NAME`: the WebApp `NAME` in the Secret's own namespace;
- `NAMESPACE/NAME`: the WebApp `NAME` in another namespace (a cross-namespace grant);
- `*`: every WebApp in the Secret's own namespace, and **only** there: a wildcard never reaches
  into another namespace, since anyone who may create a WebApp there could then read the Secret;
- `NAMESPACE/*`: every WebApp of one other, explicitly named, namespace. The owner writes the
  namespace down, so nothing is granted by accident; `*/NAME` and `*/*` are refused.

Names and namespaces are DNS-1123 labels, as WebApp names and namespaces are. An item that is
not one of these forms is reported by name. Checking access (`check_granted`) fails closed but
stays available: a valid item still grants even when another item is malformed, because a
malformed item is never interpreted, so it cannot widen access.

Nothing here reads Secret content; messages name Secrets and WebApps only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from webapp_operator.domain.errors import (
    InvalidConfig,
    SecretNotGranted,
    ServiceAccountNotFound,
    ServiceAccountNotGranted,
)

GRANT_ANNOTATION: Final = "twelvefactor.dev/grant"

WILDCARD: Final = "*"
"""The name that stands for every WebApp of one namespace."""

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_LABEL_MAX: Final = 63
_SUBDOMAIN_MAX: Final = 253

_FORMS: Final = "NAME, NAMESPACE/NAME, * or NAMESPACE/* (names are DNS-1123 labels)"

# The command line users are told to run; `kubectl webapp` is the kubectl plugin of this package.
_CLI: Final = "kubectl webapp"


def _is_label(value: str) -> bool:
    return len(value) <= _LABEL_MAX and _DNS_LABEL.fullmatch(value) is not None


def _is_subdomain(value: str) -> bool:
    return len(value) <= _SUBDOMAIN_MAX and _DNS_SUBDOMAIN.fullmatch(value) is not None


@dataclass(frozen=True, order=True)
class AppRef:
    """A WebApp (or, with name `*`, every WebApp) of one namespace."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_wildcard(self) -> bool:
        return self.name == WILDCARD

    def relative_to(self, namespace: str) -> str:
        """The shortest form that means this app to someone in `namespace`: bare or ns/name."""
        return self.name if self.namespace == namespace else str(self)


def parse_app_ref(default_namespace: str, item: str) -> AppRef:
    """One grant item (`NAME`, `NAMESPACE/NAME`, `*`, `NAMESPACE/*`) as an `AppRef`.

    Bare names and `*` belong to `default_namespace` (the Secret's). Raises `InvalidConfig`
    naming the item. Used for the annotation and for the `grant-secret` command line.
    """
    text = item.strip()
    namespace, sep, name = text.rpartition("/")
    if not sep:
        namespace = default_namespace
    valid = _is_label(namespace) and (name == WILDCARD or _is_label(name))
    if not valid:
        msg = f"{GRANT_ANNOTATION}: {text!r} is not a WebApp; expected {_FORMS}"
        raise InvalidConfig(msg)
    return AppRef(namespace=namespace, name=name)


@dataclass(frozen=True)
class Grants:
    """The WebApps a Secret in `namespace` has granted, as parsed from its annotation."""

    namespace: str
    entries: frozenset[AppRef] = frozenset()

    def allows(self, app: AppRef) -> bool:
        """True when `app` (a concrete WebApp) may read the Secret."""
        if app.is_wildcard:
            msg = f"allows() takes one WebApp, not the wildcard {app}"
            raise ValueError(msg)
        return app in self.entries or AppRef(app.namespace, WILDCARD) in self.entries

    def with_app(self, app: AppRef) -> Grants:
        """These grants plus `app` (a WebApp or a wildcard); unchanged when already listed."""
        return Grants(self.namespace, self.entries | {app})

    def without_app(self, app: AppRef) -> Grants:
        """These grants minus `app`, as `revoke-secret` needs them.

        Revoking an app that is not listed is a no-op. Revoking one that a wildcard would still
        grant raises `InvalidConfig`: a revoke that leaves access in place must not pass quietly.
        """
        remaining = Grants(self.namespace, self.entries - {app})
        if not app.is_wildcard and remaining.allows(app):
            wildcard = AppRef(app.namespace, WILDCARD).relative_to(self.namespace)
            msg = (
                f"cannot revoke {app.relative_to(self.namespace)}: the grant {wildcard!r} gives "
                f"it access to every WebApp of namespace {app.namespace}; revoke {wildcard!r} "
                f"and grant the other WebApps by name"
            )
            raise InvalidConfig(msg)
        return remaining

    def to_annotation(self) -> str:
        """The canonical annotation value: sorted, own namespace first with bare names.

        `parse_grants(ns, g.to_annotation()) == g` for every `g` of namespace `ns`.
        """
        own = sorted(e.name for e in self.entries if e.namespace == self.namespace)
        other = sorted(str(e) for e in self.entries if e.namespace != self.namespace)
        return ",".join(own + other)


def parse_grants_lenient(
    secret_namespace: str, value: str | None
) -> tuple[Grants, tuple[str, ...]]:
    """The valid items of an annotation value, and the invalid ones (stripped, in order)."""
    entries: set[AppRef] = set()
    invalid: list[str] = []
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            entries.add(parse_app_ref(secret_namespace, item))
        except InvalidConfig:
            invalid.append(item)
    return Grants(secret_namespace, frozenset(entries)), tuple(invalid)


def _describe_invalid(invalid: Iterable[str]) -> str:
    items = ", ".join(repr(item) for item in invalid)
    return f"{GRANT_ANNOTATION} has items that are not WebApps: {items}; expected {_FORMS}"


def parse_grants(secret_namespace: str, value: str | None) -> Grants:
    """Parse the annotation of a Secret in `secret_namespace`; None or "" grant nothing.

    Raises `InvalidConfig` naming every item that is not one of the accepted forms.
    """
    grants, invalid = parse_grants_lenient(secret_namespace, value)
    if invalid:
        raise InvalidConfig(_describe_invalid(invalid))
    return grants


def check_granted(
    secret_namespace: str, secret_name: str, annotation: str | None, app: AppRef
) -> None:
    """Raise `SecretNotGranted` unless the Secret's grant annotation allows `app`.

    The message gives the command that grants access, and the annotation that does the same.
    For an app of the Secret's own namespace that is the full value to set (existing grants
    kept); for an app of another namespace only the item to add, so that the Secret's grant
    list is not shown across a namespace boundary.
    """
    grants, invalid = parse_grants_lenient(secret_namespace, annotation)
    if grants.allows(app):
        return
    target = app.relative_to(secret_namespace)
    secret = f"{secret_namespace}/{secret_name}"
    command = f"{_CLI} grant-secret {secret_name} {target} -n {secret_namespace}"
    if app.namespace == secret_namespace:
        value = shlex.quote(f"{GRANT_ANNOTATION}={grants.with_app(app).to_annotation()}")
        alternative = (
            f"kubectl annotate secret {secret_name} -n {secret_namespace} --overwrite {value}"
        )
    else:
        alternative = f"add {target} to the {GRANT_ANNOTATION} annotation of Secret {secret}"
    msg = (
        f"Secret {secret} has not granted WebApp {app}; the owner of the Secret can grant it "
        f"with: {command} (or: {alternative})"
    )
    if invalid and app.namespace == secret_namespace:
        msg = f"{msg}; note: {_describe_invalid(invalid)}"
    raise SecretNotGranted(msg)


def check_service_account(
    namespace: str, name: str, annotations: Mapping[str, str] | None, app: AppRef
) -> None:
    """Raise unless the ServiceAccount `namespace/name` may run the pods of `app`.

    `annotations` are the ServiceAccount's, None when it does not exist. A WebApp names a
    ServiceAccount only if that account grants it, with the annotation Secrets use: whoever may
    create WebApps must not get the token (and the RBAC) of any account of the namespace
    (invariant 5). The owner of the account grants it, as for a Secret.
    """
    account = f"ServiceAccount {namespace}/{name}"
    if annotations is None:
        msg = (
            f"spec.serviceAccountName: {account} does not exist; create it and grant it to the "
            f"app with: kubectl annotate serviceaccount {name} -n {namespace} "
            f"{GRANT_ANNOTATION}={app.relative_to(namespace)}"
        )
        raise ServiceAccountNotFound(msg)
    grants, invalid = parse_grants_lenient(namespace, annotations.get(GRANT_ANNOTATION))
    if grants.allows(app):
        return
    value = shlex.quote(f"{GRANT_ANNOTATION}={grants.with_app(app).to_annotation()}")
    msg = (
        f"spec.serviceAccountName: {account} has not granted WebApp {app}; its pods would get "
        f"the account's token and permissions. The owner of the account can grant it with: "
        f"kubectl annotate serviceaccount {name} -n {namespace} --overwrite {value}"
    )
    if invalid:
        msg = f"{msg}; note: {_describe_invalid(invalid)}"
    raise ServiceAccountNotGranted(msg)


def parse_secret_ref(app_namespace: str, secret_name: str) -> tuple[str, str]:
    """A WebApp's `secretName` (`NAME` or `NAMESPACE/NAME`) as (namespace, name).

    A bare name is in the WebApp's namespace. Raises `InvalidConfig` on any other form.
    """
    text = secret_name.strip()
    namespace, sep, name = text.partition("/")
    if not sep:
        namespace, name = app_namespace, text
    if not (_is_label(namespace) and _is_subdomain(name)):
        msg = (
            f"secretName {secret_name!r} must be NAME or NAMESPACE/NAME "
            f"(a DNS-1123 namespace and Secret name)"
        )
        raise InvalidConfig(msg)
    return namespace, name
