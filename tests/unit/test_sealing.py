"""Sealed values: the scheme (domain/sealing.py), the keys Secret and index hook
(controller/sealing.py, controller/state.py), the failure path of the reconcilers, the `seal` and
`cert` commands, and the committed GitOps example."""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_operator.cli import main
from webapp_operator.cli import sealing as cli
from webapp_operator.controller import reconcile, state
from webapp_operator.controller import sealing as keys
from webapp_operator.domain import grants, model, reasons, render, revisions, sealing

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "gitops"
T0 = datetime(2030, 1, 1, tzinfo=UTC)
CANARY = "canary-sealed-7d1e"


@functools.cache
def key(number: int) -> sealing.SealingKey:
    """Key pairs made once per test run (RSA-4096 generation takes about a second)."""
    return sealing.generate_key(T0 + timedelta(days=30 * number))


def ring(*numbers: int) -> sealing.Keyring:
    return sealing.Keyring(tuple(key(n) for n in numbers))


def counting_random() -> Callable[[int], bytes]:
    """A fixed, reproducible source: 0x00 0x01 ... (never reuse it outside tests)."""
    counter = itertools.count()
    return lambda size: bytes(next(counter) % 256 for _ in range(size))


def seal(namespace: str, name: str, data_key: str, value: bytes, number: int = 1) -> str:
    return sealing.seal(key(number).public_pem(), namespace, name, data_key, value, os.urandom)


def unb64(data: Mapping[str, str]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


# --- the scheme ------------------------------------------------------------------------------


_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_keys = st.from_regex(r"[-._a-zA-Z0-9]{1,30}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(namespace=_names, name=_names, data_key=_keys, value=st.binary(max_size=4096))
def test_round_trip(namespace: str, name: str, data_key: str, value: bytes) -> None:
    text = seal(namespace, name, data_key, value)
    assert text.startswith(f"tfs1:{key(1).id}:")
    assert sealing.is_sealed_text(text)
    assert sealing.sealed_key_id(text) == key(1).id
    assert sealing.unseal(ring(1), namespace, name, data_key, text) == value


def test_every_seal_differs_but_opens_the_same() -> None:
    first, second = (seal("demo", "credentials", "password", CANARY.encode()) for _ in range(2))
    assert first != second
    for text in (first, second):
        assert sealing.unseal(ring(1), "demo", "credentials", "password", text) == CANARY.encode()


def test_randomness_comes_from_the_argument() -> None:
    text = sealing.seal(key(1).public_pem(), "demo", "c", "k", b"v", counting_random())
    payload = base64.b64decode(text.split(":")[2])
    wrapped_size = key(1).private_key.key_size // 8
    # The AES key took bytes 0..31 of the source, the nonce the next 12.
    assert payload[wrapped_size : wrapped_size + 12] == bytes(range(32, 44))
    assert sealing.unseal(ring(1), "demo", "c", "k", text) == b"v"


def test_a_short_random_source_is_refused() -> None:
    with pytest.raises(sealing.SealingError, match="too few bytes"):
        sealing.seal(key(1).public_pem(), "demo", "c", "k", b"v", lambda n: b"\0")


@pytest.mark.parametrize(
    ("namespace", "name", "data_key", "error", "says"),
    [
        pytest.param(
            "other", "credentials", "password", sealing.WrongBindingError, "other/credentials",
            id="other-namespace",
        ),
        pytest.param(
            "demo", "copied", "password", sealing.WrongBindingError, "demo/copied",
            id="other-name",
        ),
        pytest.param(
            "demo", "credentials", "username", sealing.TamperedSealedValueError, "another key",
            id="other-key",
        ),
        pytest.param(
            "demo-credentials", "", "password", sealing.WrongBindingError, "demo-credentials/",
            id="name-moved-into-namespace",
        ),
    ],
)  # fmt: skip
def test_a_value_opens_only_where_it_was_sealed_for(
    namespace: str, name: str, data_key: str, error: type[sealing.SealingError], says: str
) -> None:
    text = seal("demo", "credentials", "password", CANARY.encode())
    with pytest.raises(error) as caught:
        sealing.unseal(ring(1), namespace, name, data_key, text)
    assert says in caught.value.message
    assert caught.value.reason == reasons.INVALID_SECRET_KEY


def _flip(text: str, index: int) -> str:
    """The sealed text with one bit of payload byte `index` (negative: from the end) flipped."""
    version, key_id, encoded = text.split(":")
    payload = bytearray(base64.b64decode(encoded))
    payload[index] ^= 0x01
    return f"{version}:{key_id}:{base64.b64encode(bytes(payload)).decode()}"


@pytest.mark.parametrize(
    ("index", "error"),
    [
        pytest.param(0, sealing.WrongBindingError, id="wrapped-key-first-byte"),
        pytest.param(511, sealing.WrongBindingError, id="wrapped-key-last-byte"),
        pytest.param(512, sealing.TamperedSealedValueError, id="nonce"),
        pytest.param(524, sealing.TamperedSealedValueError, id="ciphertext"),
        pytest.param(-1, sealing.TamperedSealedValueError, id="gcm-tag"),
    ],
)
def test_tampering_fails(index: int, error: type[sealing.SealingError]) -> None:
    text = seal("demo", "credentials", "password", CANARY.encode())
    with pytest.raises(error):
        sealing.unseal(ring(1), "demo", "credentials", "password", _flip(text, index))


def test_another_known_key_id_does_not_open_it() -> None:
    text = seal("demo", "credentials", "password", b"v")
    swapped = text.replace(key(1).id, key(2).id)
    with pytest.raises(sealing.WrongBindingError):
        sealing.unseal(ring(1, 2), "demo", "credentials", "password", swapped)


def test_unknown_key_says_which_key_and_where_to_find_it() -> None:
    text = seal("demo", "credentials", "password", b"v", number=2)
    with pytest.raises(sealing.UnknownSealingKeyError) as caught:
        sealing.unseal(ring(1), "demo", "credentials", "password", text)
    assert caught.value.key_id == key(2).id
    assert f"sealed with key {key(2).id}, which this cluster does not have" in str(caught.value)
    assert "docs/sealing.md" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("", "is not a sealed value", id="empty"),
        pytest.param("hunter2", "is not a sealed value", id="plain"),
        pytest.param("tfs2:0123456789abcdef:AAAA", "format tfs2", id="newer-version"),
        pytest.param("tfs1:xyz:AAAA", "key id", id="bad-key-id"),
        pytest.param("tfs1:0123456789abcdef", "key id", id="no-payload"),
        pytest.param("tfs1:0123456789abcdef:not base64!", "not base64", id="not-base64"),
        pytest.param("tfs1:0123456789abcdef:AAA", "not base64", id="bad-padding"),
    ],
)
def test_malformed_text(text: str, says: str) -> None:
    with pytest.raises(sealing.MalformedSealedValueError, match=says):
        sealing.unseal(ring(1), "demo", "c", "k", text)


def test_truncated_payload_is_malformed() -> None:
    text = seal("demo", "c", "k", b"value")
    short = f"tfs1:{key(1).id}:" + base64.b64encode(b"\0" * 100).decode()
    with pytest.raises(sealing.MalformedSealedValueError, match="too short"):
        sealing.unseal(ring(1), "demo", "c", "k", short)
    assert sealing.unseal(ring(1), "demo", "c", "k", text + "\n") == b"value"  # as pasted


@pytest.mark.parametrize(
    ("namespace", "name", "data_key"),
    [("", "c", "k"), ("demo", "", "k"), ("de/mo", "c", "k"), ("demo", "c", "bad key")],
)
def test_seal_refuses_a_bad_target(namespace: str, name: str, data_key: str) -> None:
    with pytest.raises(sealing.SealingError):
        sealing.seal(key(1).public_pem(), namespace, name, data_key, b"v", os.urandom)


# --- keys ------------------------------------------------------------------------------------


def test_key_round_trips_through_pem_and_hides_itself() -> None:
    loaded = sealing.load_key(key(1).private_pem(), T0)
    assert loaded.id == key(1).id == sealing.fingerprint(loaded.public_key)
    assert re.fullmatch(r"[0-9a-f]{16}", loaded.id)
    shown = repr(loaded) + repr(ring(1, 2))
    assert "PRIVATE" not in shown
    assert key(1).private_pem().splitlines()[1] not in shown
    assert key(1).id in shown


def _other_pems() -> dict[str, tuple[str, str]]:
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = ec.generate_private_key(ec.SECP256R1())

    def private(k: Any) -> str:
        return str(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )

    def public(k: Any) -> str:
        return str(
            k.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    return {
        "rsa-2048": (private(small), public(small)),
        "ec": (private(curve), public(curve)),
        "garbage": ("not a key", "not a key"),
    }


@pytest.mark.parametrize("kind", ["rsa-2048", "ec", "garbage"])
def test_unusable_keys_are_refused(kind: str) -> None:
    private_pem, public_pem = _other_pems()[kind]
    with pytest.raises(sealing.UnusableKeyError):
        sealing.load_key(private_pem, T0)
    with pytest.raises(sealing.UnusableKeyError):
        sealing.load_public_key(public_pem)
    with pytest.raises(sealing.UnusableKeyError):
        sealing.seal(public_pem, "demo", "c", "k", b"v", os.urandom)


def test_renewal_keeps_old_values_open_and_the_newest_key_seals() -> None:
    old = seal("demo", "c", "k", b"sealed before renewal", number=1)
    renewed = ring(1).with_key(key(2))
    assert renewed.newest == key(2)
    assert renewed.with_key(key(2)) is renewed
    assert sealing.unseal(renewed, "demo", "c", "k", old) == b"sealed before renewal"
    new = sealing.seal(renewed.newest.public_pem(), "demo", "c", "k", b"after", os.urandom)
    assert sealing.sealed_key_id(new) == key(2).id


@pytest.mark.parametrize(
    ("numbers", "now", "due"),
    [
        pytest.param((), T0, True, id="no-key"),
        pytest.param((1,), T0 + timedelta(days=59), False, id="young"),
        pytest.param((1,), T0 + timedelta(days=60), True, id="a-period-old"),
        pytest.param((1, 2), T0 + timedelta(days=61), False, id="newest-counts"),
    ],
)
def test_renewal_schedule(numbers: tuple[int, ...], now: datetime, due: bool) -> None:
    keyring = ring(*numbers)
    assert sealing.renewal_due(keyring, timedelta(days=30), now) is due
    if numbers:
        assert sealing.next_renewal(keyring, timedelta(days=30)) == key(max(numbers)).created + (
            timedelta(days=30)
        )


def test_a_keyring_holds_each_key_once() -> None:
    with pytest.raises(ValueError, match="once"):
        sealing.Keyring((key(1), key(1)))


# --- whole Secrets ---------------------------------------------------------------------------


def test_unseal_data_is_all_or_nothing_and_names_every_bad_key() -> None:
    good = seal("demo", "c", "good", b"fine").encode()
    moved = seal("demo", "other", "moved", CANARY.encode()).encode()
    data = {"good": good, "moved": moved, "plain": CANARY.encode(), "binary": b"\xff\xfe"}
    with pytest.raises(sealing.SealingError) as caught:
        sealing.unseal_data(ring(1), "demo", "c", data)
    message = caught.value.message
    for name in ("'moved'", "'plain'", "'binary'"):
        assert name in message
    assert "'good'" not in message
    assert CANARY not in message
    assert CANARY not in repr(caught.value)
    assert sealing.unseal_data(ring(1), "demo", "c", {"good": good}) == {"good": b"fine"}


def _error_text(call: Callable[[], object]) -> str:
    """str and repr of the SealingError `call` raises ("" if it raises none)."""
    try:
        call()
    except sealing.SealingError as error:
        return f"{error} {error!r}"
    return ""


@settings(max_examples=30, deadline=None)
@given(value=st.text(min_size=8, max_size=64).filter(lambda v: v.strip() == v and ":" not in v))
def test_no_error_or_repr_holds_the_value(value: str) -> None:
    raw = value.encode()
    texts = [
        seal("demo", "c", "k", raw),
        seal("demo", "c", "k", raw, number=2),
        _flip(seal("demo", "c", "k", raw), -1),
    ]
    for target, text in itertools.product([("demo", "c"), ("x", "c"), ("demo", "x")], texts):
        shown = _error_text(lambda: sealing.unseal(ring(1), *target, "k", text))  # noqa: B023
        assert value not in shown
    assert value not in _error_text(lambda: sealing.unseal_data(ring(1), "demo", "c", {"k": raw}))
    unsealer = keys.Unsealer(ring(1))
    opened, _ = unsealer("demo", "c", {"k": texts[0].encode()})
    assert opened == {"k": raw}
    assert value not in repr(unsealer)


def test_sealed_annotation() -> None:
    assert sealing.is_sealed_secret({sealing.SEALED_ANNOTATION: "true"})
    assert sealing.is_sealed_secret({sealing.SEALED_ANNOTATION: "True "})
    assert not sealing.is_sealed_secret({sealing.SEALED_ANNOTATION: "false"})
    assert not sealing.is_sealed_secret({})


# --- the keys Secret, the cert ConfigMap and the unsealer ------------------------------------


def test_keys_secret_round_trip() -> None:
    body = keys.keys_secret("ops", [key(1), key(2)])
    assert body["metadata"]["name"] == keys.KEYS_SECRET
    assert set(body["data"]) == {key(1).id, key(2).id}
    assert "twelvefactor.dev/secret" not in body["metadata"]["labels"]  # never watched
    keyring, problems = keys.keyring_from_secret(body)
    assert problems == []
    assert keyring.ids == sorted([key(1).id, key(2).id])
    assert keyring.newest == key(2)
    assert {k.id: k.created for k in keyring.keys} == {k.id: k.created for k in (key(1), key(2))}


def test_keys_secret_problems_name_keys_never_content() -> None:
    body = keys.keys_secret("ops", [key(1), key(2)])
    body["metadata"]["annotations"].pop(f"{keys.CREATED_ANNOTATION_PREFIX}{key(1).id}")
    body["data"]["0000000000000000"] = body["data"].pop(key(2).id)
    body["data"]["broken"] = base64.b64encode(b"not a key").decode()
    keyring, problems = keys.keyring_from_secret(body)
    assert keyring.ids == [key(1).id]
    assert keyring.keys[0].created == datetime.fromtimestamp(0, UTC)
    assert len(problems) == 2
    assert any("'broken'" in p for p in problems)
    assert any(f"holds key {key(2).id}" in p for p in problems)
    assert not any("PRIVATE" in p for p in problems)


def test_cert_configmap_names_the_newest_key() -> None:
    body = keys.cert_configmap("ops", ring(1, 2).newest or key(1))
    assert body["data"][keys.KEY_ID_FIELD] == key(2).id
    assert body["data"][keys.CERT_FIELD] == key(2).public_pem()
    assert keys.CERT_CONFIGMAP == cli.CERT_CONFIGMAP
    assert (keys.CERT_FIELD, keys.KEY_ID_FIELD) == (cli.CERT_FIELD, cli.KEY_ID_FIELD)


def test_unsealer_opens_caches_and_reports() -> None:
    unsealer = keys.Unsealer(ring(1), size=2)
    data = {"a": seal("demo", "c", "a", b"1").encode(), "b": seal("demo", "c", "b", b"2").encode()}
    assert unsealer("demo", "c", data) == ({"a": b"1", "b": b"2"}, None)
    unsealer.keyring = sealing.Keyring()  # cached values open without the keys
    assert unsealer("demo", "c", data) == ({"a": b"1", "b": b"2"}, None)
    assert unsealer("other", "c", data)[0] == {}  # but the cache is per Secret
    later = {"a": seal("demo", "c", "a", b"1", number=2).encode()}
    opened, error = unsealer("demo", "c", later)
    assert opened == {}
    assert error is not None
    assert key(2).id in error


def test_renewal_period_option() -> None:
    assert keys.renewal_period({}) == keys.DEFAULT_RENEWAL
    assert keys.renewal_period({"sealing_key_renewal": 60.0}) == timedelta(minutes=1)
    assert keys.renewal_period({"sealing_key_renewal": 0.0}) is None
    assert cli.renewal_period("30d") == 30 * 86400
    assert cli.renewal_period("never") == 0.0
    for bad in ("10s", "soon"):
        with pytest.raises(Exception, match=r"minute|duration"):
            cli.renewal_period(bad)


# --- the index hook --------------------------------------------------------------------------


def _source(data: Mapping[str, str], sealed: bool = True, name: str = "c") -> dict[str, Any]:
    annotations = {sealing.SEALED_ANNOTATION: "true"} if sealed else {}
    return {
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": "u1",
            "labels": {revisions.MANAGED_LABEL: revisions.KIND_SOURCE},
            "annotations": annotations,
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_secret_entry_opens_sealed_sources() -> None:
    unsealer = keys.Unsealer(ring(1))
    body = _source({"password": seal("demo", "c", "password", CANARY.encode())})
    entry = state.secret_entry(body, unsealer)
    assert entry.data == {"password": CANARY.encode()}
    assert entry.unseal_error is None
    assert CANARY not in repr(entry)


def test_secret_entry_of_a_source_that_does_not_open() -> None:
    unsealer = keys.Unsealer(ring(1))
    body = _source({"password": seal("demo", "elsewhere", "password", CANARY.encode())})
    entry = state.secret_entry(body, unsealer)
    assert entry.data == {}
    assert entry.unseal_error is not None
    assert "'password'" in entry.unseal_error
    without_keys = state.secret_entry(body)
    assert without_keys.data == {}
    assert without_keys.unseal_error


def test_plain_sources_and_revisions_are_left_alone() -> None:
    unsealer = keys.Unsealer(ring(1))
    plain = state.secret_entry(_source({"password": "tfs1:looks:sealed"}, sealed=False), unsealer)
    assert plain.data == {"password": b"tfs1:looks:sealed"}
    assert plain.unseal_error is None


# --- the reconcilers' failure path (a fake writer, type-checked against Writer) --------------


class Store:
    def __init__(self, items: Mapping[Any, list[Any]] | None = None) -> None:
        self.items: dict[Any, list[Any]] = dict(items or {})

    def get(self, key: Any, default: Any = None) -> Any:
        return self.items.get(key, default)

    def named(self, kind: str, namespace: str, name: str) -> None:
        return None  # no workloads here


class FakeWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def apply(self, obj: Mapping[str, Any], manager: str = "webapp-operator") -> None:
        self.calls.append(("apply", obj))

    async def patch_strategic(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        self.calls.append(("patch", patch))

    async def create(self, obj: Mapping[str, Any]) -> bool:
        self.calls.append(("create", obj))
        return True

    async def name_free(self, obj: Mapping[str, Any]) -> bool:
        self.calls.append(("dry-run create", obj))
        return True

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        return None

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", name))
        return True

    async def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None:
        self.calls.append(("patch_metadata", name))

    async def patch_secret_data(
        self, namespace: str, name: str, data: Mapping[str, str | None]
    ) -> None:
        self.calls.append(("patch_secret_data", name))

    async def patch_webapp_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.calls.append(("status", status))

    async def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
        name: str | None = None,
    ) -> None:
        self.calls.append(("event", (reason, message, warning)))


class FixedClock:
    def now(self) -> datetime:
        return T0


def _context(secrets_store: Store, revisions_store: Store) -> tuple[reconcile.Context, FakeWriter]:
    writer = FakeWriter()
    typed: reconcile.Writer = writer  # the fake has the real interface (mypy checks it)
    ctx = reconcile.Context(
        indexes=reconcile.Indexes(
            secrets=secrets_store,
            revisions=revisions_store,
            webapps=Store(),
            observers=Store(),
            workloads=Store(),
        ),
        writer=typed,
        clock=FixedClock(),
        settings=render.Settings(snapshot_key=b"k" * 32),
        token=lambda size: "t" * size,
    )
    return ctx, writer


def _revision(source: state.SecretEntry, number: int) -> state.SecretEntry:
    return replace(
        source,
        name=revisions.revision_name(source.name, number),
        kind=revisions.KIND_REVISION,
        labels=revisions.revision_labels(source.name, number),
        annotations={revisions.CREATED_ANNOTATION: "2030-01-01T00:00:00Z"},
        data={"password": b"old"},
        unseal_error=None,
        verified=True,  # the operator's (signed; test_revision_ownership.py)
    )


@pytest.mark.parametrize(
    ("latest", "pending"),
    [
        (None, True),  # no revision yet
        ({"user": b"u", "password": b"two"}, False),  # the same content, in another order
        ({"password": b"two"}, True),  # a key added since
        ({"password": b"one", "user": b"u"}, True),  # a value changed
        ({"password": b"two", "user": b"u", "old": b""}, True),  # a key removed
    ],
)
def test_a_revision_is_pending_exactly_when_the_content_differs_from_the_latest(
    latest: dict[str, bytes] | None, pending: bool
) -> None:
    entry = state.secret_entry(_source({"password": "two", "user": "u"}, sealed=False))
    revs = [] if latest is None else [replace(_revision(entry, 1), data=latest)]
    ctx, _ = _context(Store({entry.key: [entry]}), Store({entry.key: revs}))
    assert reconcile.IndexLookup(ctx.indexes).pending("demo", "c") is pending


def test_a_source_that_does_not_open_makes_no_revision_and_one_event() -> None:
    body = _source({"password": seal("demo", "elsewhere", "password", CANARY.encode())})
    entry = state.secret_entry(body, keys.Unsealer(ring(1)))
    rev1 = _revision(entry, 1)
    ctx, writer = _context(Store({entry.key: [entry]}), Store({entry.key: [rev1]}))
    assert not reconcile.IndexLookup(ctx.indexes).pending("demo", "c")
    asyncio.run(reconcile.reconcile_secret(ctx, "demo", "c"))
    asyncio.run(reconcile.reconcile_secret(ctx, "demo", "c"))
    assert [c[0] for c in writer.calls] == ["event"]  # nothing created, deleted or patched
    reason, message, warning = writer.calls[0][1]
    assert (reason, warning) == (sealing.UNSEAL_FAILED, True)
    assert "Secret demo/c does not open" in message
    assert "'password'" in message
    assert CANARY not in message

    fixed = state.secret_entry(
        _source({"password": seal("demo", "c", "password", b"new")}), keys.Unsealer(ring(1))
    )
    ctx.indexes.secrets = Store({entry.key: [fixed]})
    asyncio.run(reconcile.reconcile_secret(ctx, "demo", "c"))
    created = [c[1] for c in writer.calls if c[0] == "create"]
    assert [c["metadata"]["name"] for c in created] == ["c.rev-2"]
    assert created[0]["data"] == {"password": base64.b64encode(b"new").decode()}


def _webapp(name: str = "shop") -> model.WebApp:
    return model.parse_webapp(
        {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {
                "framework": "flask",
                "image": "shop:1",
                "secrets": {"credentials": {"secretName": "c"}},
            },
        }
    )


def test_observers_get_invalid_secret_key_only_when_granted() -> None:
    body = _source({"password": seal("demo", "elsewhere", "password", b"x")})
    body["metadata"]["annotations"][grants.GRANT_ANNOTATION] = "shop"
    entry = state.secret_entry(body, keys.Unsealer(ring(1)))
    ctx, _ = _context(Store({entry.key: [entry]}), Store())
    path = "spec.secrets.credentials"
    granted = reconcile._unseal_failure(ctx, _webapp("shop"), path, "demo", "c")
    assert granted is not None
    assert granted.reason == reasons.INVALID_SECRET_KEY
    assert granted.message.startswith("WebApp demo/shop: spec.secrets.credentials: sealed Secret")
    other = reconcile._unseal_failure(ctx, _webapp("other"), path, "demo", "c")
    assert other is not None
    assert other.reason == reasons.SECRET_NOT_GRANTED
    assert reconcile._unseal_failure(ctx, _webapp("shop"), path, "demo", "missing") is None


# --- the commands ----------------------------------------------------------------------------


@pytest.fixture
def cert_file(tmp_path: Path) -> Path:
    path = tmp_path / "cert.pem"
    path.write_text(key(1).public_pem())
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_seal_prints_a_sealed_secret_that_opens_there(
    cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        [
            "seal", "--cert", str(cert_file), "--name", "credentials", "-n", "demo",
            "username=admin", f"password={CANARY}", "--grant", "shop", "--rotate", "monthly",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert CANARY not in out + err
    assert out.startswith(f"# Sealed for Secret demo/credentials with sealing key {key(1).id}")
    manifest = yaml.safe_load(out)
    meta = manifest["metadata"]
    assert (meta["name"], meta["namespace"]) == ("credentials", "demo")
    assert meta["labels"] == {revisions.MANAGED_LABEL: "true"}
    assert meta["annotations"] == {
        sealing.SEALED_ANNOTATION: "true",
        grants.GRANT_ANNOTATION: "shop",
        "twelvefactor.dev/rotate": "monthly",
    }
    assert "stringData" not in manifest
    opened = {
        k: sealing.unseal(ring(1), "demo", "credentials", k, v)
        for k, v in unb64(manifest["data"]).items()
    }
    assert opened == {"username": b"admin", "password": CANARY.encode()}


def test_seal_from_a_plain_manifest_keeps_metadata_and_drops_last_applied(
    cert_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "labels": {"team": "a"},
            "annotations": {
                "twelvefactor.dev/grant": "api",
                cli.LAST_APPLIED: json.dumps({"stringData": {"password": CANARY}}),
            },
            "uid": "drop-me",
        },
        "type": "Opaque",
        "data": {"password": base64.b64encode(CANARY.encode()).decode()},
        "stringData": {"user": "app"},
    }
    path = tmp_path / "db.yaml"
    path.write_text(yaml.safe_dump(plain))
    code, out, err = run_cli(
        ["seal", "--cert", str(cert_file), "--from-file", str(path), "-o", "json"], capsys
    )
    assert code == 0, err
    assert "dropped the kubectl.kubernetes.io/last-applied-configuration" in err
    assert CANARY not in out + err
    manifest = json.loads(out)
    assert manifest["metadata"] == {
        "name": "db",
        "namespace": "shop",
        "labels": {"team": "a", revisions.MANAGED_LABEL: "true"},
        "annotations": {grants.GRANT_ANNOTATION: "api", sealing.SEALED_ANNOTATION: "true"},
    }
    assert {
        k: sealing.unseal(ring(1), "shop", "db", k, v) for k, v in unb64(manifest["data"]).items()
    } == {"password": CANARY.encode(), "user": b"app"}

    sealed_path = tmp_path / "sealed.json"
    sealed_path.write_text(out)
    code, _, err = run_cli(["seal", "--cert", str(cert_file), "-f", str(sealed_path)], capsys)
    assert code == 1
    assert "already sealed" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["--name", "c", "k=v"], "-n NAMESPACE", id="no-namespace"),
        pytest.param(["-n", "demo", "k=v"], "--name NAME", id="no-name"),
        pytest.param(["--name", "c", "-n", "demo"], "give the content", id="no-content"),
        pytest.param(["--name", "C!", "-n", "demo", "k=v"], "not a Secret name", id="bad-name"),
        pytest.param(["--name", "c", "-n", "demo", CANARY], "not KEY=VALUE", id="no-key"),
    ],
)
def test_seal_errors(
    argv: list[str], says: str, cert_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["seal", "--cert", str(cert_file), *argv], capsys)
    assert code == 1
    assert says in err
    assert out == ""
    assert CANARY not in err


def test_seal_with_a_bad_cert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text(_other_pems()["rsa-2048"][1])
    code, _, err = run_cli(["seal", "--cert", str(bad), "--name", "c", "-n", "d", "k=v"], capsys)
    assert code == 1
    assert "4096" in err
    code, _, err = run_cli(
        ["seal", "--cert", str(tmp_path / "none.pem"), "--name", "c", "-n", "d", "k=v"], capsys
    )
    assert code == 1
    assert "cannot read" in err


def test_check_cert_catches_an_edited_key_id() -> None:
    assert cli.check_cert(key(1).public_pem(), key(1).id, "cm") == key(1).id
    with pytest.raises(cli.SealError, match="edited by hand"):
        cli.check_cert(key(1).public_pem(), key(2).id, "cm")


# --- the GitOps example ----------------------------------------------------------------------


def _example_manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_example_commits_no_private_key_and_no_plain_secret() -> None:
    for path in EXAMPLE.rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY" not in path.read_text(), path
    secrets_found = [d for d in _example_manifests() if d.get("kind") == "Secret"]
    assert secrets_found
    for secret in secrets_found:
        assert sealing.is_sealed_secret(secret["metadata"]["annotations"])
        assert "stringData" not in secret


def test_example_values_are_sealed_with_the_committed_cert() -> None:
    cert = (EXAMPLE / "sealing-cert.pem").read_text()
    key_id = sealing.fingerprint(sealing.load_public_key(cert))
    secret = next(d for d in _example_manifests() if d.get("kind") == "Secret")
    assert set(secret["data"]) == {"username", "password"}
    for value in unb64(secret["data"]).values():
        assert sealing.sealed_key_id(value) == key_id
    webapp = next(d for d in _example_manifests() if d.get("kind") == "WebApp")
    model.parse_webapp(webapp)
    assert webapp["spec"]["secrets"]["credentials"]["secretName"] == secret["metadata"]["name"]


@pytest.mark.skipif(
    not (REPO / ".devcluster" / "bin" / "kubectl").exists() and shutil.which("kubectl") is None,
    reason="kubectl (for its built-in kustomize) is not installed",
)
def test_example_kustomization_builds() -> None:
    kubectl = REPO / ".devcluster" / "bin" / "kubectl"
    binary = str(kubectl) if kubectl.exists() else "kubectl"
    built = subprocess.run(
        [binary, "kustomize", str(EXAMPLE / "app")], capture_output=True, text=True, check=True
    )
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
    assert kinds == ["Namespace", "Secret", "WebApp"]


# --- new keys open what did not open (a restored backup, another replica's renewal) ----------


def test_a_source_opens_once_its_key_is_back() -> None:
    unsealer = keys.Unsealer(ring(1))
    body = _source({"password": seal("demo", "c", "password", CANARY.encode(), number=2)})
    entry = state.secret_entry(body, unsealer)
    assert entry.unseal_error is not None
    assert entry.sealed  # the sealed text, kept to try again
    assert CANARY not in repr(entry)
    assert unsealer.failed == [("demo", "c")]
    store = keys.ReopeningStore(Store({entry.key: [entry]}), unsealer)
    assert store.get(entry.key) == [entry]  # same keys: not tried again
    assert store.get(("demo", "missing"), "default") == "default"

    unsealer.keyring = ring(1, 2)
    (reopened,) = store.get(entry.key)
    assert reopened.data == {"password": CANARY.encode()}
    assert reopened.unseal_error is None
    assert unsealer.failed == []


def test_a_source_that_still_does_not_open_is_tried_once_per_keyring() -> None:
    unsealer = keys.Unsealer(ring(1))
    entry = state.secret_entry(
        _source({"password": seal("demo", "elsewhere", "password", b"x")}), unsealer
    )
    store = keys.ReopeningStore(Store({entry.key: [entry]}), unsealer)
    unsealer.keyring = ring(1, 2)
    (first,) = store.get(entry.key)
    (second,) = store.get(entry.key)
    assert first is second  # the second read did not decrypt again
    assert first.unseal_error is not None
    assert "was sealed for another Secret" in first.unseal_error


class FakeApi:
    """The two calls KeyManager.reload makes of lightkube's AsyncClient."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.writes = 0

    async def get(self, resource: Any, name: str, namespace: str) -> Any:
        body = self.body

        class Found:
            def to_dict(self) -> dict[str, Any]:
                return body

        return Found()

    async def patch(self, *args: Any, **kwargs: Any) -> None:
        self.writes += 1

    async def create(self, *args: Any, **kwargs: Any) -> None:
        self.writes += 1


def test_reload_adopts_restored_keys_and_asks_for_a_retry() -> None:
    unsealer = keys.Unsealer(ring(1))
    state.secret_entry(_source({"k": seal("demo", "c", "k", b"v", number=2)}), unsealer)
    api = FakeApi(keys.keys_secret("ops", [key(1), key(2)]))
    manager = keys.KeyManager(api, "ops", FixedClock(), timedelta(days=30), unsealer)
    retried: list[list[tuple[str, str]]] = []
    manager.on_change = retried.append
    asyncio.run(manager.reload())
    assert manager.keyring.ids == sorted([key(1).id, key(2).id])
    assert retried == [[("demo", "c")]]
    asyncio.run(manager.reload())  # nothing new: no retry, and never a write
    assert retried == [[("demo", "c")]]
    assert api.writes == 0


def test_a_standby_loads_keys_and_writes_nothing() -> None:
    api = FakeApi(keys.keys_secret("ops", [key(1), key(2)]))
    manager = keys.KeyManager(api, "ops", FixedClock(), timedelta(days=30), keys.Unsealer())
    keyring = asyncio.run(manager.load())
    assert keyring.newest == key(2)
    assert manager.unsealer.keyring.ids == keyring.ids
    assert api.writes == 0
