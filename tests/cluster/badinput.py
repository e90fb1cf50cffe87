"""Bad input for test_bad_input.py: hypothesis strategies that build inputs with their oracle.

Every `Case` is one input a user could send: a WebApp spec, the Secrets it uses, or both. Each
carries what must become of it (`Expect`), decided here from the input alone and never from
what the operator did:

- `rejected`: the API server refuses the object of `kind`, with a message holding `mentions`
  (the field, key or limit at fault). `storage` marks the inputs only a real create can refuse
  (etcd's request size limit; a dry run does not reach etcd);
- `condition`: the API server accepts it, and the operator answers `Ready=False` with `reason`
  (one of domain/reasons.py) and a message holding `mentions` (names, never values);
- `ready`: the API server accepts it and the app runs (a documented precedence or leniency, for
  example a secret beating a config option of the same variable name, which
  `ConfigOverridden` then reports, naming both: `overridden`).

Templates: `CASEID` stands for the case's own id (names of the WebApp and its Secrets), and
`APPNAME` for the WebApp the case is applied to (a fresh app, or a running one given bad input).
Every secret value holds SNOW, every plain config value CLUB; no name ever holds either, so
finding one outside a Secret's data is a leak of a value.
"""

from __future__ import annotations

import base64
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hypothesis import strategies as st

from webapp_operator.domain import reasons

SNOW = "\u2603"  # in every secret value
CLUB = "\u2663"  # in every plain config value
TOKEN = "CASEID"
APP = "APPNAME"
GRANT = "twelvefactor.dev/grant"
OPT_IN = "twelvefactor.dev/secret"
ROTATE = "twelvefactor.dev/rotate"
EXPIRE = "twelvefactor.dev/expire"
MIB = 1_048_576
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)

# ------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Expect:
    outcome: Literal["rejected", "condition", "ready"]
    kind: str = ""
    reason: str = ""
    mentions: tuple[str, ...] = ()
    storage: bool = False
    overridden: tuple[str, ...] = ()


def rejected(kind: str, *mentions: str, storage: bool = False) -> Expect:
    return Expect("rejected", kind=kind, mentions=mentions, storage=storage)


def condition(reason: str, *mentions: str) -> Expect:
    return Expect("condition", reason=reason, mentions=mentions)


def ready(*overridden: str) -> Expect:
    return Expect("ready", reason=reasons.AVAILABLE, overridden=overridden)


@dataclass(frozen=True)
class SecretInput:
    """A Secret of a case; `raw` replaces the whole body (for wrongly typed fields)."""

    name: str = f"{TOKEN}-creds"
    data: Mapping[str, bytes] = field(default_factory=dict)
    string_data: Mapping[str, Any] | None = None
    labels: Mapping[str, Any] | None = None  # None: opted in
    annotations: Mapping[str, Any] | None = None  # None: granted to the app
    raw: Mapping[str, Any] | None = None

    def body(self, namespace: str) -> dict[str, Any]:
        if self.raw is not None:
            body = json.loads(json.dumps(self.raw))
            body.setdefault("metadata", {})["namespace"] = namespace
            return dict(body)
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": namespace,
            "labels": dict(self.labels) if self.labels is not None else {OPT_IN: "true"},
            "annotations": (
                dict(self.annotations) if self.annotations is not None else {GRANT: APP}
            ),
        }
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
        body["data"] = {k: base64.b64encode(v).decode() for k, v in self.data.items()}
        if self.string_data is not None:
            body["stringData"] = dict(self.string_data)
        return body


@dataclass(frozen=True)
class Case:
    klass: str
    label: str
    spec: Any
    expect: Expect
    secrets: tuple[SecretInput, ...] = ()
    name: str = TOKEN
    webapp_raw: Mapping[str, Any] | None = None  # replaces the whole WebApp body
    only_fresh: bool = False  # meaningful only for an app of its own (e.g. names its Secrets)

    @property
    def fresh_only(self) -> bool:
        return self.only_fresh or self.name != TOKEN or self.webapp_raw is not None

    @property
    def has_webapp(self) -> bool:
        return self.spec is not None or self.webapp_raw is not None

    def webapp_body(self, namespace: str) -> dict[str, Any]:
        if self.webapp_raw is not None:
            body = json.loads(json.dumps(self.webapp_raw))
            body.setdefault("metadata", {}).setdefault("namespace", namespace)
            return dict(body)
        return {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": self.name, "namespace": namespace},
            "spec": self.spec,
        }

    def fingerprint(self) -> str:
        """The input itself (no id), to count distinct inputs."""
        secrets = [
            {
                "n": s.name,
                "d": {k: v.hex() for k, v in s.data.items()},
                "s": s.string_data,
                "l": s.labels,
                "a": s.annotations,
                "r": s.raw,
            }
            for s in self.secrets
        ]
        return json.dumps(
            [self.klass, self.name, self.spec, self.webapp_raw, secrets], sort_keys=True
        )


def substitute(value: Any, names: Mapping[str, str]) -> Any:
    """`value` with every template word replaced, in keys and strings, recursively."""
    if isinstance(value, str):
        for word, real in names.items():
            value = value.replace(word, real)
        return value
    if isinstance(value, list | tuple):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {substitute(k, names): substitute(v, names) for k, v in value.items()}
    return value


def bind(case: Case, cid: str, app: str | None = None) -> Case:
    """The case with its templates filled in: its id, and the WebApp it is applied to."""
    names = {TOKEN: cid, APP: app or substitute(case.name, {TOKEN: cid})}

    def secret(s: SecretInput) -> SecretInput:
        return SecretInput(
            name=substitute(s.name, names),
            data={substitute(k, names): v for k, v in s.data.items()},
            string_data=substitute(s.string_data, names),
            labels=substitute(s.labels, names),
            annotations=(
                substitute(s.annotations, names)
                if s.annotations is not None
                else {GRANT: names[APP]}
            ),
            raw=substitute(s.raw, names),
        )

    return replace(
        case,
        spec=substitute(case.spec, names),
        name=names[APP],
        secrets=tuple(secret(s) for s in case.secrets),
        webapp_raw=substitute(case.webapp_raw, names),
        expect=replace(case.expect, mentions=tuple(substitute(list(case.expect.mentions), names))),
    )


# ------------------------------------------------------------------------- building blocks

GOOD_IMAGE = "registry.example/shop:1"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(rf"{DNS_LABEL.pattern}(\.{DNS_LABEL.pattern})*")
OPTION_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PROCESS_NAME = re.compile(r"(?i:web|[a-z0-9]([-a-z0-9]*[a-z0-9])?-(worker|scheduler))")
K8S_KEY = re.compile(r"[-._a-zA-Z0-9]+")
FRAMEWORKS = ("flask", "django", "fastapi", "go", "expressjs", "springboot", "generic")
INTEGRATIONS = ("postgresql", "mysql", "mongodb", "redis", "rabbitmq", "s3", "smtp", "tracing")
PREFIX = {"flask": "FLASK_", "django": "DJANGO_"}

words = st.from_regex(r"[a-z][a-z0-9]{1,7}", fullmatch=True)
option_names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
env_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
frameworks = st.sampled_from(FRAMEWORKS)
# Text that is never a name: no template words, markers, surrogates or NULs.
_TEXT = st.characters(
    codec="utf-8", exclude_characters=f"\x00{SNOW}{CLUB}", exclude_categories=SURROGATES
)
secret_values = st.text(_TEXT, max_size=12).map(lambda t: f"{SNOW}{t}{SNOW}")
plain_values = st.text(_TEXT, max_size=8).map(lambda t: f"{CLUB}{t}")


def utf8(value: str) -> bytes:
    return value.encode()


def good_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"framework": "flask", "image": GOOD_IMAGE}
    spec.update(over)
    return spec


def creds(name: str = f"{TOKEN}-creds") -> dict[str, Any]:
    return {"secretName": name}


def granted_secret(data: Mapping[str, bytes], name: str = f"{TOKEN}-creds") -> SecretInput:
    return SecretInput(name=name, data=data)


def is_printable_name(name: str) -> bool:
    """A name a message can quote as it is (repr shows it unchanged)."""
    return repr(name)[1:-1] == name


def quoted(name: str) -> tuple[str, ...]:
    return (name,) if is_printable_name(name) else ()


@st.composite
def secret_data(draw: st.DrawFn, min_keys: int = 1, max_keys: int = 4) -> dict[str, bytes]:
    keys = draw(st.lists(env_keys, min_size=min_keys, max_size=max_keys, unique_by=str.lower))
    return {k: utf8(draw(secret_values)) for k in keys}


# ------------------------------------------------------------------------- invalid names


@st.composite
def invalid_names(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "webapp-name-api",
                "webapp-name-operator",
                "process-name",
                "process-name-too-long",
                "secret-option-name",
                "config-option-name",
                "owned-secret-name",
                "integration-name",
                "secret-ref",
                "secret-ref-too-long",
                "service-account",
            ]
        )
    )
    junk = st.text(
        st.sampled_from("abcXYZ09_-.~ !/:%"), min_size=1, max_size=16
    )  # ASCII junk; unicode has its own class
    if kind == "webapp-name-api":
        name = draw(
            st.one_of(
                junk.filter(lambda s: not DNS_SUBDOMAIN.fullmatch(s) or len(s) > 253),
                st.integers(254, 300).map(lambda n: "n" * n),
                st.sampled_from(["", ".", "..", "-x", "x-", "X"]),
            )
        )
        return Case(
            "invalid names", kind, good_spec(), rejected("WebApp", "metadata.name"), name=name
        )
    if kind == "webapp-name-operator":
        name = draw(
            st.one_of(
                words.map(lambda w: f"{TOKEN}.{w}"),
                st.integers(64 - len(TOKEN), 120).map(lambda n: TOKEN + "-" + "a" * n),
            )
        )
        return Case(
            "invalid names",
            kind,
            good_spec(),
            condition(reasons.INVALID_CONFIG, "metadata.name"),
            name=name,
        )
    if kind == "process-name":
        bad = draw(junk.filter(lambda s: not PROCESS_NAME.fullmatch(s)))
        return Case(
            "invalid names",
            kind,
            good_spec(processes={bad: {}}),
            rejected("WebApp", "spec.processes"),
        )
    if kind == "process-name-too-long":
        stem = draw(st.integers(58, 200).map(lambda n: "p" * n))
        suffix = draw(st.sampled_from(["-worker", "-scheduler"]))
        return Case(
            "invalid names",
            kind,
            good_spec(processes={"web": {}, stem + suffix: {}}),
            rejected("WebApp", "spec.processes"),
        )
    if kind == "secret-option-name":
        bad = draw(junk.filter(lambda s: not OPTION_NAME.fullmatch(s)))
        return Case(
            "invalid names",
            kind,
            good_spec(secrets={bad: creds()}),
            rejected("WebApp", "spec.secrets"),
        )
    if kind == "config-option-name":
        bad = draw(junk.filter(lambda s: not OPTION_NAME.fullmatch(s)))
        return Case(
            "invalid names",
            kind,
            good_spec(config={bad: draw(plain_values)}),
            condition(reasons.INVALID_CONFIG, "spec.config", *quoted(bad)),
        )
    if kind == "owned-secret-name":
        bad = draw(
            st.one_of(
                junk.filter(lambda s: not DNS_LABEL.fullmatch(s)),
                st.integers(64, 80).map(lambda n: "o" * n),
                st.just("secret-key"),  # the app's own key Secret is <app>.secret-key
            )
        )
        return Case(
            "invalid names",
            kind,
            good_spec(ownedSecrets={bad: {"keys": ["token"]}}),
            rejected("WebApp", "spec.ownedSecrets"),
        )
    if kind == "integration-name":
        bad = draw(st.one_of(junk, words).filter(lambda s: s not in INTEGRATIONS))
        return Case(
            "invalid names",
            kind,
            good_spec(integrations={bad: {"secretName": f"{TOKEN}-db"}}),
            rejected("WebApp", "spec.integrations"),
        )
    if kind == "secret-ref":
        bad = draw(
            st.one_of(
                junk.filter(lambda s: not re.fullmatch(r"([a-z0-9-]+/)?[a-z0-9.-]+", s)),
                st.sampled_from(["a/b/c", "/x", "x/", "X", "-x", "x/-y", "a//b", "ns/"]),
            )
        )
        return Case(
            "invalid names",
            kind,
            good_spec(secrets={"creds": {"secretName": bad}}),
            rejected("WebApp", "spec.secrets.creds.secretName"),
        )
    if kind == "secret-ref-too-long":
        bad = draw(
            st.one_of(
                st.integers(64, 120).map(lambda n: "n" * n + "/creds"),
                st.integers(254, 300).map(lambda n: "s" * n),
            )
        )
        return Case(
            "invalid names",
            kind,
            good_spec(secrets={"creds": {"secretName": bad}}),
            rejected("WebApp", "secretName", "creds"),
        )
    bad = draw(junk.filter(lambda s: not DNS_SUBDOMAIN.fullmatch(s)))
    return Case(
        "invalid names",
        kind,
        good_spec(serviceAccountName=bad),
        rejected("WebApp", "spec.serviceAccountName"),
    )


# ------------------------------------------------------------------------- Secret keys


def _valid_k8s_key(key: str) -> bool:
    return (
        bool(K8S_KEY.fullmatch(key))
        and key not in (".", "..")
        and not key.startswith("..")
        and len(key) <= 253
    )


@st.composite
def invalid_secret_keys(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["api-key", "api-string-data-key", "dotted-key", "key-id-keys"]))
    if kind in ("api-key", "api-string-data-key"):
        bad = draw(
            st.one_of(
                st.text(st.sampled_from("ab09 /:@$%=+,;*?#\t"), max_size=10).filter(
                    lambda s: not _valid_k8s_key(s)
                ),
                st.sampled_from([".", "..", "..a", "...", ""]),
                st.integers(254, 300).map(lambda n: "k" * n),
            )
        )
        value = draw(secret_values)
        if kind == "api-key":
            secret = SecretInput(data={bad: utf8(value)})
        else:
            secret = SecretInput(string_data={bad: value})
        return Case("invalid secret keys", kind, None, rejected("Secret", "data["), (secret,))
    if kind == "dotted-key":
        bad = draw(
            st.from_regex(r"[-_a-zA-Z0-9]{0,6}\.[-._a-zA-Z0-9]{0,6}", fullmatch=True).filter(
                _valid_k8s_key
            )
        )
        data = draw(secret_data(max_keys=3))
        data[bad] = utf8(draw(secret_values))
        option = draw(option_names)
        return Case(
            "invalid secret keys",
            kind,
            good_spec(framework=draw(frameworks), secrets={option: creds()}),
            condition(reasons.INVALID_SECRET_KEY, bad, option),
            (granted_secret(data),),
        )
    # A secret key Secret must hold exactly one key, `value`.
    data = draw(secret_data(min_keys=1, max_keys=3).filter(lambda d: list(d) != ["value"]))
    if draw(st.booleans()):
        data["value"] = utf8(draw(secret_values))
    framework, option = draw(
        st.sampled_from(
            [
                ("flask", "app-secret-key-id"),
                ("flask", "flask-secret-key-id"),
                ("django", "django-secret-key"),
                ("go", "app-secret-key-id"),
                ("fastapi", "app-secret-key"),
            ]
        )
    )
    return Case(
        "invalid secret keys",
        kind,
        good_spec(framework=framework, secrets={option: creds()}),
        condition(reasons.INVALID_SECRET_KEY, option, "value"),
        (granted_secret(data),),
    )


# ------------------------------------------------------------------------- over 1 MB


@st.composite
def huge_values(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "secret-value-over-1MiB",
                "secret-total-over-1MiB",
                "environment-over-1MB-one-secret",
                "environment-over-1MB-two-secrets",
                "config-value-over-1MB",
                "webapp-over-etcd-limit",
                "webapp-over-request-limit",
            ]
        )
    )
    if kind == "secret-value-over-1MiB":
        size = draw(st.integers(MIB + 1, MIB + 100_000))
        secret = SecretInput(data={"blob": utf8(SNOW + "x" * size)})
        return Case(
            "values over 1 MB", kind, None, rejected("Secret", "data", "1048576"), (secret,)
        )
    if kind == "secret-total-over-1MiB":
        size = draw(st.integers(MIB // 2 + 1, MIB // 2 + 50_000))
        secret = SecretInput(data={"a": utf8(SNOW + "a" * size), "b": utf8(SNOW + "b" * size)})
        return Case(
            "values over 1 MB", kind, None, rejected("Secret", "data", "1048576"), (secret,)
        )
    if kind == "environment-over-1MB-one-secret":
        size = draw(st.integers(1_000_001, MIB - 2_000))
        data = {"blob": utf8(SNOW + "x" * size)}
        return Case(
            "values over 1 MB",
            kind,
            good_spec(secrets={"big": creds()}),
            condition(reasons.INVALID_CONFIG, "environment", "big", "blob"),
            (granted_secret(data),),
        )
    if kind == "environment-over-1MB-two-secrets":
        size = draw(st.integers(500_001, 600_000))
        one = granted_secret({"part": utf8(SNOW + "x" * size)}, f"{TOKEN}-one")
        two = granted_secret({"part": utf8(SNOW + "y" * size)}, f"{TOKEN}-two")
        spec = good_spec(secrets={"one": creds(f"{TOKEN}-one"), "two": creds(f"{TOKEN}-two")})
        return Case(
            "values over 1 MB",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "environment"),
            (one, two),
        )
    if kind == "config-value-over-1MB":
        size = draw(st.integers(1_000_001, 1_300_000))
        return Case(
            "values over 1 MB",
            kind,
            good_spec(config={"blob": CLUB + "c" * size}),
            condition(reasons.INVALID_CONFIG, "environment", "blob"),
        )
    if kind == "webapp-over-etcd-limit":
        # Within the API server's 3 MiB request limit, beyond etcd's 1.5 MiB: a dry run passes.
        size = draw(st.integers(1_700_000, 2_500_000))
        return Case(
            "values over 1 MB",
            kind,
            good_spec(config={"blob": CLUB + "c" * size}),
            rejected("WebApp", "too large", storage=True),
        )
    size = draw(st.integers(3_200_000, 3_400_000))
    return Case(
        "values over 1 MB",
        kind,
        good_spec(config={"blob": CLUB + "c" * size}),
        rejected("WebApp", "too large"),
    )


# ------------------------------------------------------------------------- binary values

binary_values = st.one_of(
    st.binary(max_size=12).map(lambda b: b"\xff" + SNOW.encode() + b),
    secret_values.map(lambda s: s.encode("utf-16")),
    st.text(st.sampled_from("caf\u00e9\u00fc\u00df"), max_size=6).map(
        lambda s: (SNOW + s).encode("utf-8") + "\u00e9".encode("latin-1")
    ),
)
nul_values = secret_values.map(lambda s: (s + "\x00" + s).encode())


@st.composite
def binary_secret_values(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            ["binary-in-secret-option", "nul-in-secret-option", "binary-in-integration", "key-id"]
        )
    )
    key = draw(env_keys)
    if kind in ("binary-in-secret-option", "nul-in-secret-option"):
        data = draw(secret_data(max_keys=3))
        data[key] = draw(binary_values if kind.startswith("binary") else nul_values)
        option = draw(option_names)
        return Case(
            "binary and non-UTF-8 values",
            kind,
            good_spec(framework=draw(frameworks), secrets={option: creds()}),
            condition(reasons.INVALID_SECRET_KEY, key, f"spec.secrets.{option}"),
            (granted_secret(data),),
        )
    if kind == "binary-in-integration":
        integration = draw(st.sampled_from(INTEGRATIONS))
        data = {"uri": utf8(f"postgresql://u:{draw(secret_values)}@db:5432/d"), key: b""}
        data[key] = draw(st.one_of(binary_values, nul_values))
        return Case(
            "binary and non-UTF-8 values",
            kind,
            good_spec(integrations={integration: {"secretName": f"{TOKEN}-db"}}),
            condition(reasons.INVALID_SECRET_KEY, key, f"spec.integrations.{integration}"),
            (granted_secret(data, f"{TOKEN}-db"),),
        )
    data = {"value": draw(st.one_of(binary_values, nul_values))}
    return Case(
        "binary and non-UTF-8 values",
        kind,
        good_spec(secrets={"app-secret-key-id": creds()}),
        condition(reasons.INVALID_SECRET_KEY, "value", "spec.secrets.app-secret-key-id"),
        (granted_secret(data),),
    )


# ------------------------------------------------------------------------- unicode

unicode_names = st.text(
    st.characters(
        codec="utf-8",
        min_codepoint=0x80,
        exclude_characters=f"{SNOW}{CLUB}",
        exclude_categories=SURROGATES,
    ),
    min_size=1,
    max_size=4,
).flatmap(lambda u: st.sampled_from([u, f"a{u}", f"{u}-x", f"key-{u}"]))


@st.composite
def unicode_keys(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "secret-data-key",
                "secret-string-data-key",
                "config-option",
                "secret-option",
                "process",
                "integration",
                "owned-secret-key",
                "annotation-key",
                "label-value",
            ]
        )
    )
    name = draw(unicode_names)
    value = draw(secret_values)
    if kind == "secret-data-key":
        secret = SecretInput(data={name: utf8(value), "ok": utf8(value)})
        return Case("unicode keys", kind, None, rejected("Secret", "data["), (secret,))
    if kind == "secret-string-data-key":
        secret = SecretInput(string_data={name: value})
        return Case("unicode keys", kind, None, rejected("Secret", "data["), (secret,))
    if kind == "config-option":
        return Case(
            "unicode keys",
            kind,
            good_spec(config={name: draw(plain_values)}),
            condition(reasons.INVALID_CONFIG, "spec.config", *quoted(name)),
        )
    if kind == "secret-option":
        spec = good_spec(secrets={name: creds()})
        return Case("unicode keys", kind, spec, rejected("WebApp", "spec.secrets"))
    if kind == "process":
        spec = good_spec(processes={f"{name}-worker": {}})
        return Case("unicode keys", kind, spec, rejected("WebApp", "spec.processes"))
    if kind == "integration":
        spec = good_spec(integrations={name: {"secretName": "db"}})
        return Case("unicode keys", kind, spec, rejected("WebApp", "spec.integrations"))
    if kind == "owned-secret-key":
        spec = good_spec(ownedSecrets={"token": {"keys": [name]}})
        return Case("unicode keys", kind, spec, rejected("WebApp", "spec.ownedSecrets.token.keys"))
    if kind == "annotation-key":
        secret = SecretInput(
            data={"ok": utf8(value)}, annotations={f"twelvefactor.dev/{name}": "x"}
        )
        return Case(
            "unicode keys", kind, None, rejected("Secret", "metadata.annotations"), (secret,)
        )
    secret = SecretInput(data={"ok": utf8(value)}, labels={OPT_IN: name})
    return Case("unicode keys", kind, None, rejected("Secret", "metadata.labels"), (secret,))


# ------------------------------------------------------------------------- collisions


@st.composite
def collisions(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "keys-dash-underscore",
                "keys-case",
                "options-and-keys",
                "config-dash-underscore",
                "config-vs-secret-key",
                "option-in-config-and-secrets",
                "reserved-option",
                "two-app-secret-keys",
                "springboot-two-databases",
            ]
        )
    )
    framework = draw(frameworks)
    head, tail = draw(words), draw(words)
    option = draw(option_names)
    if kind == "keys-dash-underscore":
        data = draw(secret_data(max_keys=2))
        a, b = f"{head}-{tail}", f"{head}_{tail}"
        data.update({a: utf8(draw(secret_values)), b: utf8(draw(secret_values))})
        return Case(
            "variable-name collisions",
            kind,
            good_spec(framework=framework, secrets={option: creds()}),
            condition(reasons.INVALID_SECRET_KEY, a, b),
            (granted_secret(data),),
        )
    if kind == "keys-case":
        a, b = head, head.upper()
        data = {a: utf8(draw(secret_values)), b: utf8(draw(secret_values))}
        return Case(
            "variable-name collisions",
            kind,
            good_spec(framework=framework, secrets={option: creds()}),
            condition(reasons.INVALID_SECRET_KEY, a, b),
            (granted_secret(data),),
        )
    if kind == "options-and-keys":
        # option `a-b` key `c` and option `a` key `b-c` both give <PREFIX>A_B_C.
        longer, shorter = f"{head}-{tail}", head
        key = draw(words)
        one = granted_secret({key: utf8(draw(secret_values))}, f"{TOKEN}-one")
        two = granted_secret({f"{tail}-{key}": utf8(draw(secret_values))}, f"{TOKEN}-two")
        spec = good_spec(
            framework=framework,
            secrets={longer: creds(f"{TOKEN}-one"), shorter: creds(f"{TOKEN}-two")},
        )
        return Case(
            "variable-name collisions",
            kind,
            spec,
            condition(reasons.INVALID_SECRET_KEY, longer, shorter),
            (one, two),
        )
    if kind == "config-dash-underscore":
        spec = good_spec(
            framework=framework,
            config={f"{head}-{tail}": draw(plain_values), f"{head}_{tail}": draw(plain_values)},
        )
        return Case(
            "variable-name collisions",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "spec.config", f"{head}_{tail}"),
        )
    if kind == "config-vs-secret-key":
        # Documented precedence: the secret wins, and ConfigOverridden names both sources.
        secret_option, key = f"x{head}", tail
        spec = good_spec(
            framework="flask",
            config={f"{secret_option}-{key}": draw(plain_values)},
            secrets={secret_option: creds()},
        )
        data = {key: utf8(draw(secret_values))}
        return Case(
            "variable-name collisions",
            kind,
            spec,
            ready(f"config option {secret_option}-{key}", f"secret option {secret_option}"),
            (granted_secret(data),),
        )
    if kind == "option-in-config-and-secrets":
        spec = good_spec(
            framework=framework, config={option: draw(plain_values)}, secrets={option: creds()}
        )
        return Case(
            "variable-name collisions",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, option),
            (granted_secret(draw(secret_data())),),
        )
    if kind == "reserved-option":
        # paas-charm drops a user option named like a framework setting; a note says so.
        framework, reserved = draw(
            st.sampled_from(
                [
                    ("flask", "debug"),
                    ("flask", "env"),
                    ("flask", "secret-key"),
                    ("django", "allowed-hosts"),
                    ("fastapi", "uvicorn-port"),
                    ("springboot", "server-port"),
                ]
            )
        )
        spec = good_spec(framework=framework, config={reserved: draw(plain_values)})
        return Case("variable-name collisions", kind, spec, ready(f"config option {reserved}"))
    if kind == "two-app-secret-keys":
        spec = good_spec(
            framework="flask",
            config={"flask-secret-key": draw(plain_values)},
            secrets={"app-secret-key-id": creds()},
        )
        data = {"value": utf8(draw(secret_values))}
        return Case(
            "variable-name collisions",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "flask-secret-key", "app-secret-key-id"),
            (granted_secret(data),),
        )
    uri = f"postgresql://u:{draw(secret_values)}@db:5432/d"
    one = granted_secret({"uri": utf8(uri)}, f"{TOKEN}-pg")
    two = granted_secret({"uri": utf8(uri.replace("postgresql", "mysql"))}, f"{TOKEN}-my")
    spec = good_spec(
        framework="springboot",
        integrations={
            "postgresql": {"secretName": f"{TOKEN}-pg"},
            "mysql": {"secretName": f"{TOKEN}-my"},
        },
    )
    return Case(
        "variable-name collisions",
        kind,
        spec,
        condition(reasons.INVALID_CONFIG, "postgresql", "mysql"),
        (one, two),
    )


# ------------------------------------------------------------------------- wrong types

DELETE = object()
not_string = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.dictionaries(words, st.integers(), min_size=1, max_size=2),
)
not_integer = st.one_of(
    st.text(string.ascii_letters, min_size=1, max_size=4),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.lists(st.integers(), min_size=1, max_size=2),
)
not_object = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=3), st.lists(st.integers(), max_size=2)
)
not_list = st.one_of(st.integers(), st.booleans(), st.text(min_size=1, max_size=3))

# (path from spec, value strategy or DELETE, what the message must name)
_MUTATIONS: list[tuple[tuple[str, ...], Any, str]] = [
    (("framework",), DELETE, "spec.framework"),
    (("framework",), not_string, "spec.framework"),
    (("image",), DELETE, "spec.image"),
    (("image",), not_string, "spec.image"),
    (("image",), st.just(""), "spec.image"),
    (("replicas",), not_integer, "spec.replicas"),
    (("replicas",), st.integers(max_value=-1), "spec.replicas"),
    (("replicas",), st.integers(min_value=1001), "spec.replicas"),
    (("port",), not_integer, "spec.port"),
    (("port",), st.one_of(st.integers(max_value=0), st.integers(min_value=65536)), "spec.port"),
    (("processes",), not_object, "spec.processes"),
    (("processes", "web"), not_object, "spec.processes.web"),
    (("processes", "web", "command"), not_list, "spec.processes.web.command"),
    (("processes", "web", "command"), st.lists(not_string, min_size=1, max_size=2), "command"),
    (("processes", "web", "args"), not_list, "spec.processes.web.args"),
    (("processes", "jobs-worker", "replicas"), not_integer, "spec.processes.jobs-worker.replicas"),
    (
        ("processes", "jobs-worker", "replicas"),
        st.integers(max_value=-1),
        "spec.processes.jobs-worker.replicas",
    ),
    (("config",), not_object, "spec.config"),
    (("secrets",), not_object, "spec.secrets"),
    (("secrets", "creds"), not_object, "spec.secrets.creds"),
    (("secrets", "creds", "secretName"), DELETE, "spec.secrets.creds.secretName"),
    (("secrets", "creds", "secretName"), not_string, "spec.secrets.creds.secretName"),
    (("secrets", "creds", "refresh"), st.sampled_from(["sometimes", "AUTO", "", 1]), "refresh"),
    (
        ("secrets", "creds", "revision"),
        st.one_of(st.integers(max_value=0), not_integer),
        "revision",
    ),
    (("integrations", "redis"), not_object, "spec.integrations.redis"),
    (("integrations", "redis", "secretName"), DELETE, "spec.integrations.redis.secretName"),
    (("ownedSecrets", "token", "keys"), st.just([]), "spec.ownedSecrets.token.keys"),
    (("ownedSecrets", "token", "keys"), not_list, "spec.ownedSecrets.token.keys"),
    (
        ("ownedSecrets", "token", "length"),
        st.one_of(st.integers(max_value=15), st.integers(min_value=513)),
        "spec.ownedSecrets.token.length",
    ),
    (("ownedSecrets", "token", "rotate"), not_string, "spec.ownedSecrets.token.rotate"),
    (("imagePullPolicy",), st.sampled_from(["Sometimes", "always", ""]), "spec.imagePullPolicy"),
    (("resources", "limits"), not_object, "spec.resources.limits"),
    (("baseUrl",), not_string, "spec.baseUrl"),
]
_TYPOS = [
    ("replica", "spec.replica"),
    ("framwork", "spec.framwork"),
    ("secret", "spec.secret"),
    ("configs", "spec.configs"),
    ("Image", "spec.Image"),
]


def _full_spec() -> dict[str, Any]:
    return {
        "framework": "flask",
        "image": GOOD_IMAGE,
        "replicas": 1,
        "port": 8000,
        "processes": {"web": {"command": ["run"], "args": ["a"]}, "jobs-worker": {"replicas": 1}},
        "config": {"greeting": CLUB},
        "secrets": {"creds": {"secretName": f"{TOKEN}-creds", "refresh": "manual", "revision": 1}},
        "integrations": {"redis": {"secretName": f"{TOKEN}-db"}},
        "ownedSecrets": {"token": {"keys": ["token"], "length": 32, "rotate": "monthly"}},
        "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "128Mi"}},
        "baseUrl": "https://shop.example",
    }


@st.composite
def wrong_types(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(["field", "field", "field", "unknown-field", "top-level", "secret-field"])
    )
    if kind == "field":
        path, values, mention = draw(st.sampled_from(_MUTATIONS))
        spec = _full_spec()
        parent = spec
        for part in path[:-1]:
            parent = parent[part]
        if values is DELETE:
            del parent[path[-1]]
            label = f"missing {'.'.join(path)}"
        else:
            parent[path[-1]] = draw(values)
            label = f"wrong {'.'.join(path)}"
        return Case("missing and wrongly typed fields", label, spec, rejected("WebApp", mention))
    if kind == "unknown-field":
        typo, mention = draw(st.sampled_from(_TYPOS))
        spec = good_spec(**{typo: draw(st.one_of(words, st.integers()))})
        return Case(
            "missing and wrongly typed fields", "unknown field", spec, rejected("WebApp", mention)
        )
    if kind == "top-level":
        variant = draw(st.sampled_from(["spec-missing", "spec-wrong", "no-name", "kind"]))
        body: dict[str, Any] = {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": TOKEN},
        }
        mention = "spec"
        if variant == "spec-wrong":
            body["spec"] = draw(st.one_of(st.integers(), st.text(max_size=3), st.lists(words)))
        elif variant == "no-name":
            body["spec"] = good_spec()
            body["metadata"] = {}
            mention = "metadata.name"
        elif variant == "kind":
            body["spec"] = good_spec()
            body["kind"] = draw(st.sampled_from(["Webapp", "WebApps", "webapp"]))
            mention = "kind"
        return Case(
            "missing and wrongly typed fields",
            f"top-level {variant}",
            good_spec(),
            rejected("WebApp", mention),
            webapp_raw=body,
        )
    variant, value, mention = draw(
        st.sampled_from(
            [
                ("data-not-object", st.lists(st.integers(), max_size=2), "Secret.data"),
                ("data-value-not-string", st.integers(), "Secret.data"),
                ("data-not-base64", st.sampled_from(["!!", "a", "%%%%", "ab=c"]), "base64"),
                ("string-data-not-string", st.one_of(st.integers(), st.booleans()), "stringData"),
                ("labels-not-strings", st.integers(), "labels"),
                ("annotations-not-strings", st.booleans(), "annotations"),
                ("type-not-string", st.integers(), "Secret.type"),
                ("immutable-not-bool", st.sampled_from(["yes", "true", 1]), "Secret.immutable"),
            ]
        )
    )
    raw: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{TOKEN}-creds", "labels": {OPT_IN: "true"}},
    }
    drawn = draw(value)
    if variant == "data-not-object":
        raw["data"] = drawn
    elif variant in ("data-value-not-string", "data-not-base64"):
        raw["data"] = {"key": drawn}
    elif variant == "string-data-not-string":
        raw["stringData"] = {"key": drawn}
    elif variant == "labels-not-strings":
        raw["metadata"]["labels"] = {OPT_IN: drawn}
    elif variant == "annotations-not-strings":
        raw["metadata"]["annotations"] = {GRANT: drawn}
    elif variant == "type-not-string":
        raw["type"] = drawn
    else:
        raw["immutable"] = drawn
    return Case(
        "missing and wrongly typed fields",
        f"secret {variant}",
        None,
        rejected("Secret", mention),
        (SecretInput(raw=raw),),
    )


# ------------------------------------------------------------------------- many keys


@st.composite
def many_keys(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "config-over-256",
                "secrets-over-64",
                "processes-over-20",
                "owned-over-32",
                "owned-keys-over-32",
                "secret-thousands-of-keys",
                "secret-thousands-of-keys-one-bad",
                "sixty-four-missing-secrets",
                "annotations-over-256KiB",
            ]
        )
    )
    if kind == "config-over-256":
        count = draw(st.integers(257, 600))
        spec = good_spec(config={f"o{i}": CLUB for i in range(count)})
        return Case("huge numbers of keys", kind, spec, rejected("WebApp", "spec.config", "256"))
    if kind == "secrets-over-64":
        count = draw(st.integers(65, 200))
        spec = good_spec(secrets={f"s{i}": creds() for i in range(count)})
        return Case("huge numbers of keys", kind, spec, rejected("WebApp", "spec.secrets", "64"))
    if kind == "processes-over-20":
        count = draw(st.integers(21, 100))
        spec = good_spec(processes={f"p{i}-worker": {} for i in range(count)})
        return Case("huge numbers of keys", kind, spec, rejected("WebApp", "spec.processes", "20"))
    if kind == "owned-over-32":
        count = draw(st.integers(33, 80))
        spec = good_spec(ownedSecrets={f"o{i}": {"keys": ["k"]} for i in range(count)})
        return Case(
            "huge numbers of keys", kind, spec, rejected("WebApp", "spec.ownedSecrets", "32")
        )
    if kind == "owned-keys-over-32":
        count = draw(st.integers(33, 200))
        spec = good_spec(ownedSecrets={"o": {"keys": [f"k{i}" for i in range(count)]}})
        return Case(
            "huge numbers of keys", kind, spec, rejected("WebApp", "spec.ownedSecrets.o.keys")
        )
    if kind == "secret-thousands-of-keys":
        count = draw(st.integers(1_000, 3_000))
        data = {f"k{i}": utf8(f"{SNOW}{i}") for i in range(count)}
        return Case(
            "huge numbers of keys",
            kind,
            good_spec(secrets={"many": creds()}),
            ready(),
            (granted_secret(data),),
        )
    if kind == "secret-thousands-of-keys-one-bad":
        count = draw(st.integers(1_000, 3_000))
        data = {f"k{i}": utf8(f"{SNOW}{i}") for i in range(count)}
        bad = f"k{draw(st.integers(0, count - 1))}.bad"
        data[bad] = utf8(SNOW)
        return Case(
            "huge numbers of keys",
            kind,
            good_spec(secrets={"many": creds()}),
            condition(reasons.INVALID_SECRET_KEY, bad),
            (granted_secret(data),),
        )
    if kind == "sixty-four-missing-secrets":
        spec = good_spec(secrets={f"s{i}": creds(f"{TOKEN}-missing-{i}") for i in range(64)})
        return Case(
            "huge numbers of keys",
            kind,
            spec,
            condition(reasons.SECRET_NOT_FOUND, "spec.secrets.s0", "spec.secrets.s63"),
        )
    count = draw(st.integers(30_000, 40_000))
    grant = ",".join(f"app-{i}" for i in range(count))
    secret = SecretInput(data={"k": utf8(SNOW)}, annotations={GRANT: grant})
    return Case(
        "huge numbers of keys", kind, None, rejected("Secret", "metadata.annotations"), (secret,)
    )


# ------------------------------------------------------------------------- framework etc.


@st.composite
def framework_process_replicas(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "unknown-framework",
                "process-name",
                "process-names-differ-in-case",
                "scheduler-replicas",
                "negative-replicas",
                "negative-process-replicas",
            ]
        )
    )
    if kind == "unknown-framework":
        bad = draw(
            st.one_of(
                st.sampled_from(["Flask", "FLASK", "rails", "", "flask ", "node", "spring-boot"]),
                words.filter(lambda w: w not in FRAMEWORKS),
            )
        )
        return Case(
            "bad framework, processes, replicas",
            kind,
            good_spec(framework=bad),
            rejected("WebApp", "spec.framework"),
        )
    if kind == "process-name":
        bad = draw(
            st.one_of(
                st.sampled_from(["cron", "worker", "scheduler", "-worker", "web-", "Web-Worker-"]),
                words.filter(lambda w: w != "web"),
                words.map(lambda w: f"{w}_worker"),
                words.map(lambda w: f"{w}-workers"),
            )
        )
        return Case(
            "bad framework, processes, replicas",
            kind,
            good_spec(processes={bad: {}}),
            rejected("WebApp", "spec.processes"),
        )
    if kind == "process-names-differ-in-case":
        base = draw(st.sampled_from(["web", "celery-worker", "beat-scheduler"]))
        other = draw(
            st.sampled_from([base.upper(), base.capitalize(), base.swapcase()]).filter(
                lambda o: o != base
            )
        )
        return Case(
            "bad framework, processes, replicas",
            kind,
            good_spec(processes={base: {}, other: {}}),
            condition(reasons.INVALID_CONFIG, base, other),
        )
    if kind == "scheduler-replicas":
        replicas = draw(st.one_of(st.just(0), st.integers(2, 1000)))
        name = draw(st.sampled_from(["beat-scheduler", "Cron-Scheduler", "x-SCHEDULER"]))
        return Case(
            "bad framework, processes, replicas",
            kind,
            good_spec(processes={name: {"replicas": replicas}}),
            rejected("WebApp", "spec.processes", "exactly one pod"),
        )
    if kind == "negative-replicas":
        return Case(
            "bad framework, processes, replicas",
            kind,
            good_spec(replicas=draw(st.integers(max_value=-1))),
            rejected("WebApp", "spec.replicas"),
        )
    return Case(
        "bad framework, processes, replicas",
        kind,
        good_spec(processes={"jobs-worker": {"replicas": draw(st.integers(max_value=-1))}}),
        rejected("WebApp", "spec.processes.jobs-worker.replicas"),
    )


# ------------------------------------------------------------------------- references


@st.composite
def missing_references(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "missing-secret",
                "missing-integration",
                "not-opted-in",
                "opt-in-label-wrong-value",
                "other-namespace",
                "missing-revision",
                "revision-snapshot-as-source",
                "another-apps-secret-key",
                "integration-missing-keys",
                "integration-malformed-uri",
                "secret-key-name-taken",
            ]
        )
    )
    option = draw(option_names)
    value = draw(secret_values)
    if kind == "missing-secret":
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(secrets={option: creds(f"{TOKEN}-nowhere")}),
            condition(reasons.SECRET_NOT_FOUND, f"spec.secrets.{option}", f"{TOKEN}-nowhere"),
        )
    if kind == "missing-integration":
        integration = draw(st.sampled_from(INTEGRATIONS))
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(integrations={integration: {"secretName": f"{TOKEN}-nowhere"}}),
            condition(reasons.SECRET_NOT_FOUND, f"spec.integrations.{integration}"),
        )
    if kind in ("not-opted-in", "opt-in-label-wrong-value"):
        labels: dict[str, str] = (
            {}
            if kind == "not-opted-in"
            else {OPT_IN: draw(st.sampled_from(["false", "TRUE", "yes", "1", ""]))}
        )
        secret = SecretInput(data={"password": utf8(value)}, labels=labels)
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(secrets={option: creds()}),
            condition(reasons.SECRET_NOT_FOUND, f"spec.secrets.{option}", OPT_IN),
            (secret,),
        )
    if kind == "other-namespace":
        ref = f"{draw(words)}-elsewhere/{TOKEN}-creds"
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(secrets={option: creds(ref)}),
            condition(reasons.SECRET_NOT_FOUND, f"spec.secrets.{option}"),
        )
    if kind == "missing-revision":
        pin = draw(st.integers(2, 10_000))
        spec = good_spec(secrets={option: {"secretName": f"{TOKEN}-creds", "revision": pin}})
        return Case(
            "missing Secrets and revisions",
            kind,
            spec,
            condition(reasons.REVISION_NOT_FOUND, f"revision {pin}", f"spec.secrets.{option}"),
            (granted_secret({"password": utf8(value)}),),
        )
    if kind == "revision-snapshot-as-source":
        # The operator's own revision snapshot is not a source Secret.
        spec = good_spec(secrets={option: creds(f"{TOKEN}-creds.rev-1")})
        return Case(
            "missing Secrets and revisions",
            kind,
            spec,
            condition(reasons.SECRET_NOT_FOUND, f"spec.secrets.{option}"),
            (granted_secret({"password": utf8(value)}),),
        )
    if kind == "another-apps-secret-key":
        spec = good_spec(secrets={option: creds("canary.secret-key")})
        return Case(
            "missing Secrets and revisions",
            kind,
            spec,
            condition(reasons.SECRET_NOT_GRANTED, f"spec.secrets.{option}", "canary.secret-key"),
        )
    if kind == "integration-missing-keys":
        integration, parts = draw(
            st.sampled_from(
                [
                    ("postgresql", {"username": "u", "password": "p"}),
                    ("mysql", {"dbname": "d"}),
                    ("s3", {"access-key": "a", "secret-key": "s"}),
                    ("s3", {"bucket": "b"}),
                    ("smtp", {"host": "mail"}),
                    ("smtp", {"port": "25"}),
                    ("tracing", {"service-name": "x"}),
                ]
            )
        )
        marked = {k: utf8(v + SNOW) for k, v in parts.items()}
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(integrations={integration: {"secretName": f"{TOKEN}-db"}}),
            condition(reasons.INVALID_CONFIG, f"spec.integrations.{integration}"),
            (granted_secret(marked, f"{TOKEN}-db"),),
        )
    if kind == "integration-malformed-uri":
        integration = draw(st.sampled_from(["postgresql", "mysql", "mongodb", "redis"]))
        port = draw(st.sampled_from(["99999", "x", "-1", "65536", "1e3"]))
        uri = f"{integration}://u:{value}@db:{port}/d"
        uri_data: dict[str, bytes] = draw(
            st.sampled_from(
                [
                    {"uri": utf8(uri)},
                    {"host": b"db", "port": port.encode(), "password": utf8(value)},
                ]
            )
        )
        return Case(
            "missing Secrets and revisions",
            kind,
            good_spec(integrations={integration: {"secretName": f"{TOKEN}-db"}}),
            condition(reasons.INVALID_CONFIG, f"spec.integrations.{integration}"),
            (granted_secret(uri_data, f"{TOKEN}-db"),),
        )
    # A Secret of the app's own key name that the operator does not own.
    secret = granted_secret({"value": utf8(value)}, f"{TOKEN}.secret-key")
    return Case(
        "missing Secrets and revisions",
        kind,
        good_spec(),
        condition(reasons.INVALID_CONFIG, f"{TOKEN}.secret-key", "not owned"),
        (secret,),
        only_fresh=True,
    )


# ------------------------------------------------------------------------- grants

_BAD_GRANT_ITEMS = st.one_of(
    st.sampled_from(["Bad_Name", "*/*", "*/shop", "a/b/c", "APP", "shop app", "-x", "x-", "/"]),
    st.text(st.sampled_from("aZ_/*:@ .é"), min_size=1, max_size=8).filter(
        lambda s: s.strip() and not re.fullmatch(r"(\*|[a-z0-9-]+(/(\*|[a-z0-9-]+))?)", s.strip())
    ),
    st.integers(64, 90).map(lambda n: "g" * n),
)


@st.composite
def bad_grants(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "malformed-items-only",
                "other-apps",
                "empty",
                "other-namespace-wildcard",
                "wrong-annotation-key",
                "malformed-and-valid",
            ]
        )
    )
    option = draw(option_names)
    data = {"password": utf8(draw(secret_values))}
    spec = good_spec(secrets={option: creds()})
    if kind == "malformed-items-only":
        items = draw(st.lists(_BAD_GRANT_ITEMS, min_size=1, max_size=4))
        grant = draw(st.sampled_from([", ", ",", " , "])).join(items)
    elif kind == "other-apps":
        grant = ",".join(draw(st.lists(words.map(lambda w: f"{w}-app"), min_size=1, max_size=3)))
    elif kind == "empty":
        grant = draw(st.sampled_from(["", ",", " , ,", " "]))
    elif kind == "other-namespace-wildcard":
        grant = f"{draw(words)}-ns/*"
    elif kind == "wrong-annotation-key":
        secret = SecretInput(
            data=data,
            annotations={draw(st.sampled_from(["twelvefactor.dev/grants", "grant"])): APP},
        )
        return Case(
            "bad grant annotations",
            kind,
            spec,
            condition(reasons.SECRET_NOT_GRANTED, f"spec.secrets.{option}", "grant-secret"),
            (secret,),
        )
    else:
        # A malformed item never grants and never stops a valid one from granting (documented).
        items = [*draw(st.lists(_BAD_GRANT_ITEMS, min_size=1, max_size=2)), APP]
        grant = ",".join(draw(st.permutations(items)))
        return Case(
            "bad grant annotations",
            kind,
            spec,
            ready(),
            (SecretInput(data=data, annotations={GRANT: grant}),),
        )
    return Case(
        "bad grant annotations",
        kind,
        spec,
        condition(reasons.SECRET_NOT_GRANTED, f"spec.secrets.{option}", "grant-secret"),
        (SecretInput(data=data, annotations={GRANT: grant}),),
    )


# ------------------------------------------------------------------------- rotation, expiry

_NEVER_A_DURATION = "!@#%^&*(){}[]<>?;~|"
bad_rotate = st.one_of(
    st.sampled_from(
        [
            "sometimes",
            "Hourly!",
            "0s",
            "30s",
            "59s",
            "-1h",
            "1.5h",
            "1y",
            "30m1h",
            "1h1h",
            "h",
            "10",
            "every day",
            "P1D",
            "1 h",
            "biweekly",
            "1000000000000w",
        ]
    ),
    st.text(st.sampled_from(f"ab1hm{_NEVER_A_DURATION}"), min_size=1, max_size=8).filter(
        lambda s: any(c in _NEVER_A_DURATION for c in s)
    ),
)
bad_expire = st.one_of(
    st.sampled_from(
        [
            "tomorrow",
            "2030-13-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01",
            "2030-01-01T00:00:00",
            "01/01/2030",
            "0s",
            "30s",
            "-5m",
            "1.5d",
            "1y",
            "never",
        ]
    ),
    st.text(st.sampled_from(f"20T:Z-1{_NEVER_A_DURATION}"), min_size=1, max_size=10).filter(
        lambda s: any(c in _NEVER_A_DURATION for c in s)
    ),
)


@st.composite
def bad_schedule(draw: st.DrawFn) -> Case:
    which = draw(st.sampled_from([ROTATE, EXPIRE, "both"]))
    annotations: dict[str, str] = {GRANT: APP}
    mentions: list[str] = []
    if which in (ROTATE, "both"):
        annotations[ROTATE] = draw(bad_rotate)
        mentions.append(ROTATE)
    if which in (EXPIRE, "both"):
        annotations[EXPIRE] = draw(bad_expire)
        mentions.append(EXPIRE)
    option = draw(option_names)
    secret = SecretInput(data={"password": utf8(draw(secret_values))}, annotations=annotations)
    label = "rotate and expire" if which == "both" else which.rsplit("/", 1)[-1]
    return Case(
        "bad rotation and expiry annotations",
        label,
        good_spec(secrets={option: creds()}),
        condition(reasons.INVALID_CONFIG, f"spec.secrets.{option}", f"{TOKEN}-creds", *mentions),
        (secret,),
    )


# ------------------------------------------------------------------------- framework options

bad_bool = st.one_of(
    st.sampled_from(["maybe", "2", "tru", "", "yes please", "null"]),
    st.integers(2, 1000),
    st.integers(max_value=-1),
    st.lists(st.booleans(), min_size=1, max_size=2),
)
bad_positive = st.one_of(
    st.integers(max_value=0),
    st.sampled_from(["x", "1.5", "-3", "", "0", True, False]),
    st.floats(0.1, 99.9).filter(lambda f: not f.is_integer()),
)
bad_non_negative = st.one_of(st.integers(max_value=-1), st.sampled_from(["x", "-3", "", True, [1]]))
bad_port = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=65536, max_value=10**9),
    st.sampled_from(["http", "", "80a", True, [8080]]),
)
bad_string = st.one_of(st.just(""), st.integers(), st.booleans(), st.lists(words, max_size=2))

_FRAMEWORK_OPTIONS: list[tuple[str, str, Any]] = [
    ("flask", "flask-debug", bad_bool),
    ("flask", "flask-session-cookie-secure", bad_bool),
    ("flask", "flask-permanent-session-lifetime", bad_positive),
    ("flask", "flask-preferred-url-scheme", st.sampled_from(["ftp", "", "HTTPX", 5, "ws"])),
    ("flask", "flask-env", bad_string),
    ("flask", "flask-application-root", bad_string),
    ("flask", "webserver-workers", bad_positive),
    ("flask", "webserver-threads", bad_positive),
    ("django", "webserver-keepalive", bad_non_negative),
    ("django", "webserver-timeout", bad_non_negative),
    ("django", "webserver-worker-class", st.sampled_from(["eventlet", "", "threads", 3])),
    ("django", "django-debug", bad_bool),
    ("django", "django-allowed-hosts", st.sampled_from([5, True, {"a": 1}, 1.5])),
    ("fastapi", "webserver-port", bad_port),
    ("fastapi", "webserver-host", bad_string),
    ("fastapi", "webserver-workers", bad_positive),
    ("fastapi", "webserver-log-level", st.sampled_from(["loud", "", 5, "verbose"])),
    ("fastapi", "metrics-port", bad_port),
    ("fastapi", "metrics-path", bad_string),
    ("go", "port", bad_port),
    ("go", "app-port", bad_port),
    ("go", "metrics-port", bad_port),
    ("generic", "port", bad_port),
    ("expressjs", "node-env", bad_string),
    ("expressjs", "metrics-port", bad_port),
    ("expressjs", "metrics-path", bad_string),
    ("springboot", "app-port", bad_port),
    ("springboot", "app-profiles", bad_string),
    ("springboot", "metrics-path", st.sampled_from(["/", "", 5])),
    ("springboot", "metrics-port", bad_port),
]


@st.composite
def bad_framework_options(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "bad-value",
                "bad-value",
                "bad-value",
                "unknown-option",
                "port-disagrees",
                "two-port-options",
                "key-id-in-config",
                "plain-option-in-secrets",
                "base-url",
                "base-url-syntax",
            ]
        )
    )
    if kind == "bad-value":
        framework, option, values = draw(st.sampled_from(_FRAMEWORK_OPTIONS))
        value = draw(values)
        return Case(
            "bad framework option values",
            f"{framework} {option}",
            good_spec(framework=framework, config={option: value}),
            condition(reasons.INVALID_CONFIG, option),
        )
    if kind == "unknown-option":
        framework = draw(frameworks)
        prefix = draw(st.sampled_from([f"{framework}-", "webserver-", "app-"]))
        option = prefix + draw(words.filter(lambda w: w not in ("port", "profiles", "env")))
        return Case(
            "bad framework option values",
            kind,
            good_spec(framework=framework, config={option: draw(plain_values)}),
            condition(reasons.INVALID_CONFIG, option),
        )
    if kind == "port-disagrees":
        framework, option = draw(
            st.sampled_from(
                [("go", "port"), ("expressjs", "app-port"), ("fastapi", "webserver-port")]
            )
        )
        port = draw(st.integers(1, 65534))
        spec = good_spec(framework=framework, port=port, config={option: port + 1})
        return Case(
            "bad framework option values",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "spec.port", option),
        )
    if kind == "two-port-options":
        framework = draw(st.sampled_from(["go", "expressjs", "generic"]))
        spec = good_spec(framework=framework, config={"port": 8081, "app-port": 8082})
        return Case(
            "bad framework option values",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "port", "app-port"),
        )
    if kind == "key-id-in-config":
        option = draw(st.sampled_from(["app-secret-key-id", "flask-secret-key-id"]))
        spec = good_spec(framework="flask", config={option: "x"})
        return Case(
            "bad framework option values", kind, spec, condition(reasons.INVALID_CONFIG, option)
        )
    if kind == "plain-option-in-secrets":
        option = draw(st.sampled_from(["flask-debug", "webserver-workers", "flask-env"]))
        spec = good_spec(framework="flask", secrets={option: creds()})
        return Case(
            "bad framework option values",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, option),
            (granted_secret({"value": utf8(draw(secret_values))}),),
        )
    if kind == "base-url-syntax":
        url = draw(
            st.sampled_from(["shop.example", "ftp://shop", "http:// x", "", "//shop", "http:/x"])
        )
        return Case(
            "bad framework option values",
            kind,
            good_spec(baseUrl=url),
            rejected("WebApp", "spec.baseUrl"),
        )
    url = draw(
        st.sampled_from(
            ["http://[::1", "http://[x]/", "https://a:b:c]/", "http://shop:99999/", "http://:80/"]
        )
    )
    return Case(
        "bad framework option values",
        kind,
        good_spec(framework=draw(frameworks), baseUrl=url),
        condition(reasons.INVALID_CONFIG, "spec.baseUrl"),
    )


# ------------------------------------------------------------------------- workloads

# Kubernetes' syntax of a resource.Quantity (the pattern its own OpenAPI schema states).
K8S_QUANTITY = re.compile(
    r"(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)
bad_quantity = st.one_of(
    st.sampled_from(["lots", "1.5.5", "1 Gi", "one", "--1", "1Gb", "", "1e", "0x10", "1,5"]),
    st.text(st.sampled_from("ab1.G "), min_size=1, max_size=5).filter(
        lambda s: not K8S_QUANTITY.fullmatch(s)
    ),
)


@st.composite
def bad_workload_fields(draw: st.DrawFn) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "image-whitespace",
                "quantity-syntax",
                "quantity-negative",
                "requests-over-limits",
                "unknown-resource",
                "process-quantity",
                "migration-no-command",
                "migration-deadline",
                "budget-both",
                "budget-scheduler",
                "toleration-exists-value",
                "node-selector-value",
            ]
        )
    )
    if kind.startswith(("migration-", "budget-", "toleration-", "node-")):
        return _bad_release_or_placement(draw, kind)
    if kind == "image-whitespace":
        image = draw(
            st.sampled_from(
                [f" {GOOD_IMAGE}", f"{GOOD_IMAGE} ", f"{GOOD_IMAGE}\n", "a b", "\t", " "]
            )
        )
        return Case(
            "bad workload fields", kind, good_spec(image=image), rejected("WebApp", "spec.image")
        )
    section = draw(st.sampled_from(["requests", "limits"]))
    resource = draw(st.sampled_from(["cpu", "memory", "ephemeral-storage"]))
    if kind == "quantity-syntax":
        spec = good_spec(resources={section: {resource: draw(bad_quantity)}})
        return Case(
            "bad workload fields",
            kind,
            spec,
            rejected("WebApp", f"spec.resources.{section}.{resource}"),
        )
    if kind == "quantity-negative":
        value = draw(st.one_of(st.integers(max_value=-1), st.sampled_from(["-1", "-100m", "-1Gi"])))
        spec = good_spec(resources={section: {resource: value}})
        return Case(
            "bad workload fields",
            kind,
            spec,
            rejected("WebApp", f"spec.resources.{section}.{resource}"),
        )
    if kind == "requests-over-limits":
        low = draw(st.integers(1, 1000))
        high = low + draw(st.integers(1, 1000))
        unit = "m" if resource == "cpu" else "Mi"
        spec = good_spec(
            resources={
                "requests": {resource: f"{high}{unit}"},
                "limits": {resource: f"{low}{unit}"},
            }
        )
        return Case(
            "bad workload fields",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, "spec.resources", resource),
        )
    if kind == "unknown-resource":
        name = draw(st.sampled_from(["cpus", "mem", "gpu", "CPU", "storage", "pods"]))
        spec = good_spec(resources={section: {name: 1}})
        return Case(
            "bad workload fields",
            kind,
            spec,
            condition(reasons.INVALID_CONFIG, f"spec.resources: {section}.{name}"),
        )
    spec = good_spec(
        processes={"web": {}, "jobs-worker": {"resources": {section: {resource: "x"}}}}
    )
    return Case(
        "bad workload fields",
        kind,
        spec,
        rejected("WebApp", f"spec.processes.jobs-worker.resources.{section}.{resource}"),
    )


def _bad_release_or_placement(draw: st.DrawFn, kind: str) -> Case:
    """spec.migration, a disruption budget, tolerations and node selectors Kubernetes would
    refuse: by the CRD where it can say so, else by the operator before anything is applied."""
    if kind == "migration-no-command":
        spec = good_spec(migration={"command": []})
        return Case("bad workload fields", kind, spec, rejected("WebApp", "spec.migration"))
    if kind == "migration-deadline":
        deadline = draw(st.sampled_from([0, -5, 86401]))
        spec = good_spec(migration={"command": ["migrate"], "activeDeadlineSeconds": deadline})
        return Case(
            "bad workload fields",
            kind,
            spec,
            rejected("WebApp", "spec.migration.activeDeadlineSeconds"),
        )
    if kind == "budget-both":
        budget = {"maxUnavailable": 1, "minAvailable": draw(st.sampled_from([1, "50%"]))}
        spec = good_spec(processes={"web": {"disruptionBudget": budget}})
        return Case(
            "bad workload fields",
            kind,
            spec,
            rejected("WebApp", "spec.processes[web].disruptionBudget"),
        )
    if kind == "budget-scheduler":
        budget = {"maxUnavailable": draw(st.sampled_from([0, 1, "25%"]))}
        spec = good_spec(processes={"web": {}, "beat-scheduler": {"disruptionBudget": budget}})
        return Case(
            "bad workload fields", kind, spec, condition(reasons.INVALID_CONFIG, "is a scheduler")
        )
    if kind == "toleration-exists-value":
        toleration = {"key": "dedicated", "operator": "Exists", "value": "shop"}
        spec = good_spec(tolerations=[toleration])
        return Case(
            "bad workload fields", kind, spec, condition(reasons.INVALID_CONFIG, "no value")
        )
    value = draw(st.sampled_from(["a b", "-edge", "x" * 64, "ümlaut"]))
    spec = good_spec(nodeSelector={"pool": value})
    return Case("bad workload fields", kind, spec, rejected("WebApp", "spec.nodeSelector"))


# ------------------------------------------------------------------------- bookkeeping


@st.composite
def tampered_bookkeeping(draw: st.DrawFn) -> Case:
    """Operator-owned annotations and snapshots, forged or edited by hand: ignored, not fatal."""
    kind = draw(st.sampled_from(["forged-revision", "rotation-state"]))
    option = draw(option_names)
    value = draw(secret_values)
    source = granted_secret({"password": utf8(value)})
    spec = good_spec(secrets={option: {"secretName": f"{TOKEN}-creds", "refresh": "manual"}})
    garbage = draw(st.sampled_from(["yesterday", "2030-13-01T00:00:00Z", "", "1", "now!"]))
    if kind == "forged-revision":
        number = draw(st.integers(50, 99))
        forged = SecretInput(
            name=f"{TOKEN}-creds.rev-{number}",
            data={"password": utf8(draw(secret_values))},
            labels={
                OPT_IN: "revision",
                "twelvefactor.dev/revision-of": f"{TOKEN}-creds",
                "twelvefactor.dev/revision": str(number),
            },
            annotations={
                draw(
                    st.sampled_from(
                        ["twelvefactor.dev/created", "twelvefactor.dev/revision-expires"]
                    )
                ): garbage
            },
        )
        return Case("tampered operator bookkeeping", kind, spec, ready(), (source, forged))
    key = draw(
        st.sampled_from(
            [
                "twelvefactor.dev/next-rotation",
                "twelvefactor.dev/rotation-anchor",
                "twelvefactor.dev/rotation-notified-revision",
            ]
        )
    )
    tampered = SecretInput(
        data={"password": utf8(value)}, annotations={GRANT: APP, ROTATE: "daily", key: garbage}
    )
    return Case("tampered operator bookkeeping", kind, spec, ready(), (tampered,))


# ------------------------------------------------------------------------- the classes

CLASSES: list[tuple[str, st.SearchStrategy[Case], int]] = [
    ("invalid names", invalid_names(), 140),
    ("invalid secret keys", invalid_secret_keys(), 90),
    ("values over 1 MB", huge_values(), 16),
    ("binary and non-UTF-8 values", binary_secret_values(), 70),
    ("unicode keys", unicode_keys(), 120),
    ("variable-name collisions", collisions(), 130),
    ("missing and wrongly typed fields", wrong_types(), 160),
    ("huge numbers of keys", many_keys(), 24),
    ("bad framework, processes, replicas", framework_process_replicas(), 90),
    ("missing Secrets and revisions", missing_references(), 140),
    ("bad grant annotations", bad_grants(), 70),
    ("bad rotation and expiry annotations", bad_schedule(), 60),
    ("bad framework option values", bad_framework_options(), 80),
    ("bad workload fields", bad_workload_fields(), 60),
    ("tampered operator bookkeeping", tampered_bookkeeping(), 16),
]


def running_app_updates() -> list[tuple[str, Callable[[str], SecretInput], Expect]]:
    """Bad content for the Secret a running app uses: (label, new Secret for a name, expect)."""
    value = f"{SNOW}update{SNOW}".encode()

    def content(data: Mapping[str, bytes], **meta: Any) -> Callable[[str], SecretInput]:
        return lambda name: SecretInput(name=name, data={"username": value, **data}, **meta)

    return [
        (
            "binary value",
            content({"password": b"\xff\xfe" + value}),
            condition(reasons.INVALID_SECRET_KEY, "password"),
        ),
        (
            "NUL in a value",
            content({"password": value + b"\x00"}),
            condition(reasons.INVALID_SECRET_KEY, "password"),
        ),
        (
            "dotted key",
            content({"pass.word": value}),
            condition(reasons.INVALID_SECRET_KEY, "pass.word"),
        ),
        (
            "keys a-b and a_b",
            content({"pass-word": value, "pass_word": value}),
            condition(reasons.INVALID_SECRET_KEY, "pass-word", "pass_word"),
        ),
        (
            "grant revoked",
            content({"password": value}, annotations={GRANT: ""}),
            condition(reasons.SECRET_NOT_GRANTED, "grant-secret"),
        ),
        (
            "opt-in label removed",
            content({"password": value}, labels={}),
            condition(reasons.SECRET_NOT_FOUND, OPT_IN),
        ),
        (
            "bad rotate",
            content({"password": value}, annotations={GRANT: APP, ROTATE: "often"}),
            condition(reasons.INVALID_CONFIG, ROTATE),
        ),
        (
            "environment over 1 MB",
            content({"password": value + b"x" * 1_000_100}),
            condition(reasons.INVALID_CONFIG, "environment"),
        ),
    ]


def summarize(cases: Sequence[Case]) -> dict[str, dict[str, int]]:
    """class -> label -> count."""
    table: dict[str, dict[str, int]] = {}
    for case in cases:
        row = table.setdefault(case.klass, {})
        row[case.label] = row.get(case.label, 0) + 1
    return table
