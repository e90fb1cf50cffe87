"""`webapp-operator seal` and `webapp-operator cert`: secret values that are safe in Git.

`cert` prints the public key the operator seals with (from the ConfigMap
`webapp-operator-sealing-cert` in the operator's namespace, read with your kubeconfig).
`seal` encrypts values for one Secret, `NAMESPACE/NAME`, and prints a Secret manifest to commit:
offline from a saved public key (`--cert FILE`), or with the key fetched from the cluster.
A sealed value opens only in the Secret it was sealed for, and only where the operator holds
the private key (docs/sealing.md).

Values are never printed, echoed in errors, or written anywhere but as sealed text on stdout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
from lightkube import ApiError
from lightkube.resources.core_v1 import ConfigMap

from webapp_operator.cli import secrets
from webapp_operator.domain import grants, resolve, revisions, schedule, sealing
from webapp_operator.domain.errors import InvalidConfig, WebAppError
from webapp_operator.kube import client as kube

CERT_CONFIGMAP: Final = "webapp-operator-sealing-cert"
CERT_FIELD: Final = "public.pem"
KEY_ID_FIELD: Final = "key-id"
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
OUTPUTS: Final = ("yaml", "json")
DEFAULT_OPERATOR_NAMESPACE: Final = "webapp-operator"
MIN_RENEWAL_SECONDS: Final = 60.0


class SealError(secrets.CommandError):
    """`seal` or `cert` cannot go on; the message says what to do. Never holds a value."""


def operator_namespace_default() -> str:
    return os.environ.get("WEBAPP_OPERATOR_NAMESPACE") or DEFAULT_OPERATOR_NAMESPACE


def renewal_period(text: str) -> float:
    """`--sealing-key-renewal`: seconds of a duration such as 30d or 12h; `never` is 0."""
    if text.strip().lower() == "never":
        return 0.0
    try:
        seconds = schedule.parse_duration(text).total_seconds()
    except InvalidConfig as error:
        raise argparse.ArgumentTypeError(error.message) from None
    if seconds < MIN_RENEWAL_SECONDS:
        msg = f"{text!r} is shorter than a minute; give a duration such as 30d, or never"
        raise argparse.ArgumentTypeError(msg)
    return seconds


# --- the manifest (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plain:
    """What to seal: the target Secret, its content, and the metadata to keep."""

    namespace: str
    name: str
    content: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    type: str = "Opaque"


def read_manifest(text: str, where: str) -> dict[str, Any]:
    """The one Secret of a YAML or JSON manifest (a multi-document file may hold only one)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        msg = f"{where} is not valid YAML{at}"
        raise SealError(msg) from None
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Secret"]
    if len(found) != 1:
        msg = f"{where} holds {len(found)} Secrets; give a file with exactly one"
        raise SealError(msg)
    return found[0]


def plain_from_manifest(
    body: Mapping[str, Any], where: str, name: str | None, namespace: str | None
) -> tuple[Plain, list[str]]:
    """The Secret of a plain manifest, `--name`/`-n` overriding; notes for the user."""
    meta = body.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    notes: list[str] = []
    if sealing.is_sealed_secret(annotations):
        msg = f"{where} is already sealed ({sealing.SEALED_ANNOTATION}); give the plain Secret"
        raise SealError(msg)
    if annotations.pop(LAST_APPLIED, None) is not None:
        notes.append(f"dropped the {LAST_APPLIED} annotation: it holds a copy of the plain values")
    target_name = name or meta.get("name")
    target_namespace = namespace or meta.get("namespace")
    if name and meta.get("name") and name != meta.get("name"):
        notes.append(f"sealing for Secret name {name}, not {meta['name']} as {where} says")
    if namespace and meta.get("namespace") and namespace != meta.get("namespace"):
        notes.append(f"sealing for namespace {namespace}, not {meta['namespace']} as {where} says")
    if not target_name:
        msg = f"{where} has no metadata.name; give --name NAME"
        raise SealError(msg)
    if not target_namespace:
        msg = (
            f"{where} has no metadata.namespace; give -n NAMESPACE (a sealed value opens only "
            "in the namespace it is sealed for)"
        )
        raise SealError(msg)
    try:
        secret = resolve.SecretObject.from_manifest(
            {**body, "metadata": {**meta, "name": target_name, "namespace": target_namespace}},
            target_namespace,
        )
    except WebAppError as error:
        raise SealError(f"{where}: {error.message}") from None
    for value in secret.data.values():
        if sealing.is_sealed_text(value.decode("utf-8", "replace")):
            msg = f"{where} already holds sealed values; give the plain Secret"
            raise SealError(msg)
    plain = Plain(
        namespace=target_namespace,
        name=str(target_name),
        content=dict(secret.data),
        labels=dict(meta.get("labels") or {}),
        annotations=annotations,
        type=str(body.get("type") or "Opaque"),
    )
    return plain, notes


def seal_values(
    public_pem: str,
    namespace: str,
    name: str,
    content: Mapping[str, bytes],
    random: Callable[[int], bytes] = os.urandom,
) -> dict[str, str]:
    """Each value sealed for its key of Secret `namespace/name`, keys sorted."""
    return {
        key: sealing.seal(public_pem, namespace, name, key, value, random)
        for key, value in sorted(content.items())
    }


def sealed_manifest(plain: Plain, sealed: Mapping[str, str]) -> dict[str, Any]:
    """The Secret to commit: opted in, marked sealed, the sealed text of each value in `data`.

    `data`, not `stringData`: a key removed from `stringData` in Git stays in the cluster under
    both client-side and server-side apply; a key removed from `data` goes.
    """
    labels = {**plain.labels, revisions.MANAGED_LABEL: revisions.KIND_SOURCE}
    annotations = {**plain.annotations, sealing.SEALED_ANNOTATION: "true"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": plain.name,
            "namespace": plain.namespace,
            "labels": dict(sorted(labels.items())),
            "annotations": dict(sorted(annotations.items())),
        },
        "type": plain.type,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sealed.items()},
    }


def render(manifest: Mapping[str, Any], output: str, key_id: str) -> str:
    if output == "json":
        return json.dumps(manifest, indent=2) + "\n"
    meta = manifest["metadata"]
    header = (
        f"# Sealed for Secret {meta['namespace']}/{meta['name']} with sealing key {key_id} "
        "(webapp-operator seal).\n"
        "# Safe to commit: each value (base64 of tfs1:<key-id>:...) opens only in this Secret,\n"
        "# and only where the operator holds that key. Change a value by sealing it again;\n"
        "# renaming a key breaks its value.\n"
    )
    return header + str(yaml.safe_dump(dict(manifest), sort_keys=False, width=10_000))


# --- the cluster's public key ----------------------------------------------------------------


def check_cert(public_pem: str, key_id: str | None, where: str) -> str:
    """The key id of a published public key; its recorded id must match its fingerprint."""
    try:
        public_key = sealing.load_public_key(public_pem, where)
    except sealing.SealingError as error:
        raise SealError(error.message) from None
    actual = sealing.fingerprint(public_key)
    if key_id is not None and key_id != actual:
        msg = (
            f"{where}: its {KEY_ID_FIELD} {key_id} is not the id of its public key ({actual}); "
            "it was edited by hand: restart the operator to publish its key again"
        )
        raise SealError(msg)
    return actual


def fetch_cert(connect: secrets.Connector, operator_namespace: str) -> tuple[str, str]:
    """(PEM, key id) of the newest key, from the operator's ConfigMap."""
    session = connect()
    where = f"ConfigMap {operator_namespace}/{CERT_CONFIGMAP}"
    try:
        found = session.client.get(ConfigMap, CERT_CONFIGMAP, namespace=operator_namespace)
    except ApiError as error:
        if kube.is_not_found(error):
            msg = (
                f"{where} not found: is the operator running, with --operator-namespace "
                f"{operator_namespace}? (give another one with --operator-namespace, or seal "
                "offline with --cert FILE)"
            )
            raise SealError(msg) from None
        raise
    data = found.data or {}
    pem = data.get(CERT_FIELD)
    if not pem:
        msg = f"{where} has no {CERT_FIELD}; restart the operator to publish its key"
        raise SealError(msg)
    return pem, check_cert(pem, data.get(KEY_ID_FIELD), where)


def _read_text(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as error:
        msg = f"{what}: cannot read {path}: {getattr(error, 'strerror', None) or error}"
        raise SealError(msg) from None


# --- the commands ----------------------------------------------------------------------------


def _annotations(args: argparse.Namespace, plain: Plain) -> dict[str, str]:
    annotations = dict(plain.annotations)
    if args.grant:
        apps = secrets.parse_apps(plain.namespace, args.grant)
        change = secrets.plan_grant(
            plain.namespace, annotations.get(grants.GRANT_ANNOTATION), apps, revoke=False
        )
        if change.value:
            annotations[grants.GRANT_ANNOTATION] = change.value
    if args.rotate is not None:
        annotations[schedule.ROTATE_ANNOTATION] = secrets.canonical_rotate(args.rotate)
    if args.expire is not None:
        now = datetime.now(UTC)
        annotations[schedule.EXPIRE_ANNOTATION] = secrets.canonical_expire(args.expire, now)
    if args.description:
        annotations[revisions.DESCRIPTION_ANNOTATION] = args.description
    return annotations


def plan_seal(args: argparse.Namespace, read_text: Callable[[str, str], str]) -> Plain:
    """What to seal, from `--from-file` and/or KEY=VALUE arguments; notes go to stderr."""
    content = secrets.parse_content(args.content, args.file_key)
    if args.from_file:
        body = read_manifest(read_text(args.from_file, "--from-file"), args.from_file)
        plain, notes = plain_from_manifest(body, args.from_file, args.name, args.namespace)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        both = sorted(set(content) & set(plain.content))
        if both:
            msg = f"key {both[0]!r} is in {args.from_file} and on the command line; give it once"
            raise SealError(msg)
        plain = Plain(
            plain.namespace,
            plain.name,
            {**plain.content, **content},
            plain.labels,
            plain.annotations,
            plain.type,
        )
    else:
        if not args.name or not args.namespace:
            msg = (
                "give --name NAME and -n NAMESPACE of the Secret to seal for (a sealed value "
                "opens only there), or --from-file SECRET.yaml"
            )
            raise SealError(msg)
        plain = Plain(args.namespace, args.name, content)
    secrets.check_namespace(plain.namespace)
    secrets.check_source_name(plain.name)
    if not plain.content:
        msg = "give the content: KEY=VALUE, KEY#base64=VALUE, KEY#file=PATH or --from-file"
        raise SealError(msg)
    return Plain(
        plain.namespace,
        plain.name,
        plain.content,
        plain.labels,
        _annotations(args, plain),
        plain.type,
    )


@secrets.with_cluster_errors
def run_seal(args: argparse.Namespace, connect: secrets.Connector) -> int:
    plain = plan_seal(args, _read_text)
    if args.cert:
        public_pem = _read_text(args.cert, "--cert")
        key_id = check_cert(public_pem, None, args.cert)
    else:
        public_pem, key_id = fetch_cert(connect, args.operator_namespace)
        print(
            f"note: sealing with key {key_id} of the operator in namespace "
            f"{args.operator_namespace}",
            file=sys.stderr,
        )
    try:
        sealed = seal_values(public_pem, plain.namespace, plain.name, plain.content)
    except sealing.SealingError as error:
        raise SealError(error.message) from None
    sys.stdout.write(render(sealed_manifest(plain, sealed), args.output, key_id))
    return 0


@secrets.with_cluster_errors
def run_cert(args: argparse.Namespace, connect: secrets.Connector) -> int:
    pem, key_id = fetch_cert(connect, args.namespace)
    sys.stdout.write(f"{key_id}\n" if args.key_id else pem if pem.endswith("\n") else pem + "\n")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seal = commands.add_parser(
        "seal",
        help="encrypt secret values for Git with the cluster's public key",
        description="Print a Secret manifest whose values are sealed for Secret NAMESPACE/NAME: "
        "safe to commit, opened only by the operator, only in that Secret. The operator makes "
        "revisions from the opened values as for any source Secret (docs/sealing.md).",
    )
    seal.add_argument("--name", metavar="NAME", help="the Secret's name (or from --from-file)")
    seal.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="the Secret's namespace (or from --from-file); required: values are bound to it",
    )
    seal.add_argument(
        "content",
        nargs="*",
        metavar="KEY=VALUE",
        help="content: KEY=VALUE, KEY#base64=BASE64 or KEY#file=PATH (prefer files: command "
        "lines end up in shell history)",
    )
    seal.add_argument(
        "--file-key",
        action="append",
        default=[],
        metavar="KEY=@PATH",
        help="a key whose value is the content of a file; repeatable",
    )
    seal.add_argument(
        "--from-file",
        "-f",
        metavar="SECRET.yaml",
        help="seal every value of this plain Secret manifest ('-' reads stdin); its labels and "
        "annotations are kept",
    )
    seal.add_argument(
        "--cert",
        metavar="FILE",
        help="the public key to seal with ('webapp-operator cert' prints it); without it, the "
        "key is read from the cluster",
    )
    seal.add_argument(
        "--operator-namespace",
        default=operator_namespace_default(),
        metavar="NS",
        help="where the operator runs, to read its public key (default: "
        "$WEBAPP_OPERATOR_NAMESPACE or webapp-operator)",
    )
    seal.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="APP[,APP]",
        help="WebApps that may read it (NAME, NAMESPACE/NAME, *, NAMESPACE/*); repeatable",
    )
    seal.add_argument("--rotate", metavar="POLICY", help="rotation policy, as for add-secret")
    seal.add_argument("--expire", metavar="TIME", help="expiry of each revision, as for add-secret")
    seal.add_argument("--description", "--info", metavar="TEXT", help="what the secret is for")
    seal.add_argument("-o", "--output", choices=OUTPUTS, default="yaml")
    secrets._intermixed(seal).set_defaults(handler=run_seal)

    cert = commands.add_parser(
        "cert",
        help="print the public key that seal uses",
        description="Print the operator's newest public sealing key (PEM) from ConfigMap "
        f"{CERT_CONFIGMAP} in its namespace; save it to seal offline with --cert.",
    )
    cert.add_argument(
        "-n",
        "--namespace",
        "--operator-namespace",
        dest="namespace",
        default=operator_namespace_default(),
        metavar="OPERATOR_NS",
        help="the operator's namespace (default: $WEBAPP_OPERATOR_NAMESPACE or webapp-operator)",
    )
    cert.add_argument("--key-id", action="store_true", help="print only the key's id")
    cert.set_defaults(handler=run_cert)
