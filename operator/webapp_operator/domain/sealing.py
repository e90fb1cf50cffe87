"""Sealed values: secret content that is safe to commit to Git, opened only by the operator.

The scheme (docs/sealing.md explains it for users):

- The operator holds RSA-4096 key pairs; anyone may have the newest public key.
- `seal` encrypts one value of one Secret key: a fresh AES-256 key and a fresh 96-bit nonce per
  value, AES-GCM over the value, and the AES key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256).
- Binding: the OAEP label is `namespace/name` of the Secret the value is sealed for, so the
  wrapped key opens only there; the GCM associated data holds the format version, the key id,
  the namespace, the name and the Secret key, so a value moved to another key of the same
  Secret, or with its key id edited, fails the tag check too.
- The text is self-describing and versioned: `tfs1:<key-id>:<base64>`, where the key id is the
  first 16 hex digits of the SHA-256 of the public key (DER SubjectPublicKeyInfo) and the base64
  holds `wrapped key (key size / 8 bytes) | nonce (12) | ciphertext | GCM tag (16)`.

Pure: no I/O, no clock (`created` and `now` are arguments), and the randomness of the AES key
and nonce comes from the `random` argument (`os.urandom` in production, a fixed source in
tests). Two things draw from OpenSSL's own generator and cannot be injected: RSA key generation
and the OAEP padding. Errors name Secrets, keys and key ids, never a value; `repr` of a key shows
its id and creation time only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webapp_operator.domain import reasons
from webapp_operator.domain.errors import WebAppError

# The annotation that marks a source Secret whose values are sealed.
SEALED_ANNOTATION: Final = "twelvefactor.dev/sealed"
# Event reason on a source Secret whose values do not open (the WebApp condition reason is
# InvalidSecretKey; this belongs in reasons.py once that module is free to edit).
UNSEAL_FAILED: Final = reasons.UNSEAL_FAILED
DOCS: Final = "docs/sealing.md"

VERSION: Final = "tfs1"
KEY_BITS: Final = 4096
PUBLIC_EXPONENT: Final = 65537
AES_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
KEY_ID_HEX: Final = 16
_KEY_ID: Final = re.compile(r"[0-9a-f]{16}")
_VERSION: Final = re.compile(r"tfs[0-9]+")
# Secret data keys (Kubernetes' own rule for Secret and ConfigMap keys).
_DATA_KEY: Final = re.compile(r"[-._a-zA-Z0-9]+")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")

Random = Callable[[int], bytes]


# --- errors ----------------------------------------------------------------------------------


class SealingError(WebAppError):
    """A value cannot be sealed or opened, or a key is unusable. Never holds a value.

    The reason is InvalidSecretKey: on a WebApp, a source Secret whose values do not open is
    reported like any other unusable key of that Secret.
    """

    reason = reasons.INVALID_SECRET_KEY


class MalformedSealedValueError(SealingError):
    """The text is not `tfs1:<key-id>:<base64>` of the right length (raised by `unseal`)."""


class UnknownSealingKeyError(SealingError):
    """The value was sealed with a key this cluster does not hold (raised by `unseal`)."""

    def __init__(self, message: str, key_id: str) -> None:
        super().__init__(message)
        self.key_id = key_id


class WrongBindingError(SealingError):
    """The wrapped key does not open for this namespace/name (raised by `unseal`)."""


class TamperedSealedValueError(SealingError):
    """The GCM tag check failed: the value was altered, or moved to another key (`unseal`)."""


class UnusableKeyError(SealingError):
    """A PEM key that is not an RSA key of the scheme's size (raised by the key loaders)."""


# --- keys ------------------------------------------------------------------------------------


def _public_der(public_key: rsa.RSAPublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """The key id: the first 16 hex digits of SHA-256 over the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_public_der(public_key)).hexdigest()[:KEY_ID_HEX]


@dataclass(frozen=True)
class SealingKey:
    """One key pair of the operator. `repr` shows the id and creation time, never the key."""

    id: str
    created: datetime
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> str:
        """The public key as PEM (`-----BEGIN PUBLIC KEY-----`): what `seal` needs."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def private_pem(self) -> str:
        """The private key as unencrypted PKCS #8 PEM: only for the operator's keys Secret."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


def generate_key(created: datetime) -> SealingKey:
    """A new RSA-4096 key pair (drawn from OpenSSL's generator), created at `created`."""
    private_key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS)
    return SealingKey(fingerprint(private_key.public_key()), created, private_key)


def _check_size(key: rsa.RSAPrivateKey | rsa.RSAPublicKey, what: str) -> None:
    if key.key_size < KEY_BITS:
        msg = f"{what} is an RSA key of {key.key_size} bits; sealing needs {KEY_BITS} bits"
        raise UnusableKeyError(msg)


def load_key(private_pem: str | bytes, created: datetime, what: str = "the key") -> SealingKey:
    """A SealingKey from its PKCS #8 (or PKCS #1) PEM private key."""
    raw = private_pem.encode() if isinstance(private_pem, str) else private_pem
    try:
        private_key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        msg = f"{what} is not an unencrypted PEM private key"
        raise UnusableKeyError(msg) from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        msg = f"{what} is not an RSA private key"
        raise UnusableKeyError(msg)
    _check_size(private_key, what)
    return SealingKey(fingerprint(private_key.public_key()), created, private_key)


def load_public_key(public_pem: str | bytes, what: str = "the public key") -> rsa.RSAPublicKey:
    """The RSA public key of a PEM `PUBLIC KEY` (what `webapp-operator cert` prints)."""
    raw = public_pem.encode() if isinstance(public_pem, str) else public_pem
    try:
        public_key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError):
        msg = (
            f"{what} is not a PEM public key (-----BEGIN PUBLIC KEY-----); get one with: "
            "webapp-operator cert > sealing-cert.pem"
        )
        raise UnusableKeyError(msg) from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        msg = f"{what} is not an RSA public key"
        raise UnusableKeyError(msg)
    _check_size(public_key, what)
    return public_key


@dataclass(frozen=True)
class Keyring:
    """Every key pair the operator holds: the newest seals, all of them open."""

    keys: tuple[SealingKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [k.id for k in self.keys]
        if len(ids) != len(set(ids)):
            msg = "a keyring holds each key once"
            raise ValueError(msg)

    @property
    def ids(self) -> list[str]:
        return sorted(k.id for k in self.keys)

    @property
    def newest(self) -> SealingKey | None:
        """The key that seals: the latest created (ties broken by id, so all replicas agree)."""
        return max(self.keys, key=lambda k: (k.created, k.id), default=None)

    def get(self, key_id: str) -> SealingKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    def with_key(self, key: SealingKey) -> Keyring:
        """This keyring plus `key` (a key already held is kept as it is)."""
        if self.get(key.id) is not None:
            return self
        return Keyring((*self.keys, key))

    def merged(self, other: Iterable[SealingKey]) -> Keyring:
        ring = self
        for key in other:
            ring = ring.with_key(key)
        return ring


def next_renewal(keyring: Keyring, period: timedelta) -> datetime | None:
    """When the next key is due: one period after the newest key's creation (None: no key)."""
    newest = keyring.newest
    return None if newest is None else newest.created + period


def renewal_due(keyring: Keyring, period: timedelta, now: datetime) -> bool:
    """True when the keyring has no key, or its newest key is at least `period` old."""
    due = next_renewal(keyring, period)
    return due is None or due <= now


# --- sealing and opening ---------------------------------------------------------------------


def _check_target(namespace: str, name: str, key: str) -> None:
    if not namespace or not name or "/" in namespace or "/" in name:
        msg = f"seal for a Secret NAMESPACE/NAME: got namespace {namespace!r}, name {name!r}"
        raise SealingError(msg)
    if not _DATA_KEY.fullmatch(key):
        msg = f"{key!r} is not a valid Secret key (letters, digits, '-', '_' and '.')"
        raise SealingError(msg)


def _label(namespace: str, name: str) -> bytes:
    return f"{namespace}/{name}".encode()


def _associated(version: str, key_id: str, namespace: str, name: str, key: str) -> bytes:
    # NUL cannot occur in any of the parts, so the encoding is unambiguous.
    return "\0".join((version, key_id, namespace, name, key)).encode()


def _oaep(namespace: str, name: str) -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=_label(namespace, name),
    )


def seal(
    public_pem: str | bytes,
    namespace: str,
    name: str,
    key: str,
    plaintext: bytes,
    random: Random,
) -> str:
    """Seal `plaintext` as the value of `key` in Secret `namespace/name`: `tfs1:<id>:<b64>`."""
    _check_target(namespace, name, key)
    public_key = load_public_key(public_pem)
    key_id = fingerprint(public_key)
    session_key = random(AES_KEY_BYTES)
    nonce = random(NONCE_BYTES)
    if len(session_key) != AES_KEY_BYTES or len(nonce) != NONCE_BYTES:
        msg = "the random source returned too few bytes"
        raise SealingError(msg)
    wrapped = public_key.encrypt(session_key, _oaep(namespace, name))
    sealed = AESGCM(session_key).encrypt(
        nonce, plaintext, _associated(VERSION, key_id, namespace, name, key)
    )
    payload = base64.b64encode(wrapped + nonce + sealed).decode()
    return f"{VERSION}:{key_id}:{payload}"


@dataclass(frozen=True)
class _Parsed:
    version: str
    key_id: str
    payload: bytes = field(repr=False)


def is_sealed_text(value: str) -> bool:
    """True when `value` looks like a sealed value of any version (`tfs<n>:`)."""
    version, sep, _ = value.partition(":")
    return bool(sep) and _VERSION.fullmatch(version) is not None


def _parse(subject: str, sealed: str) -> _Parsed:
    text = sealed.strip()
    version, sep, rest = text.partition(":")
    if not sep or _VERSION.fullmatch(version) is None:
        msg = (
            f"{subject} is not a sealed value (expected {VERSION}:<key-id>:<base64>); seal it "
            "with: kubectl webapp seal"
        )
        raise MalformedSealedValueError(msg)
    if version != VERSION:
        msg = (
            f"{subject} is sealed in format {version}, which this operator does not know (it "
            f"reads {VERSION}); upgrade the operator"
        )
        raise MalformedSealedValueError(msg)
    key_id, sep, encoded = rest.partition(":")
    if not sep or _KEY_ID.fullmatch(key_id) is None:
        msg = f"{subject}: the key id is missing or not {KEY_ID_HEX} hex digits"
        raise MalformedSealedValueError(msg)
    if _BASE64.fullmatch(encoded) is None:
        msg = f"{subject}: the sealed payload is not base64"
        raise MalformedSealedValueError(msg)
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        msg = f"{subject}: the sealed payload is not base64"
        raise MalformedSealedValueError(msg) from None
    return _Parsed(version, key_id, payload)


def sealed_key_id(sealed: str) -> str:
    """The id of the key a sealed value was sealed with (MalformedSealedValueError if malformed)."""
    return _parse("the value", sealed).key_id


def unseal(keyring: Keyring, namespace: str, name: str, key: str, sealed: str) -> bytes:
    """Open the value of `key` in Secret `namespace/name`; each failure has its own error."""
    subject = f"key {key!r} of Secret {namespace}/{name}"
    parsed = _parse(subject, sealed)
    found = keyring.get(parsed.key_id)
    if found is None:
        msg = (
            f"{subject} was sealed with key {parsed.key_id}, which this cluster does not have; "
            f"restore that key from a backup ({DOCS}), or seal the value again with the "
            "current key (kubectl webapp seal)"
        )
        raise UnknownSealingKeyError(msg, parsed.key_id)
    wrapped_size = found.private_key.key_size // 8
    if len(parsed.payload) < wrapped_size + NONCE_BYTES + TAG_BYTES:
        msg = f"{subject}: the sealed payload is too short (truncated?)"
        raise MalformedSealedValueError(msg)
    wrapped = parsed.payload[:wrapped_size]
    nonce = parsed.payload[wrapped_size : wrapped_size + NONCE_BYTES]
    sealed_bytes = parsed.payload[wrapped_size + NONCE_BYTES :]
    try:
        session_key = found.private_key.decrypt(wrapped, _oaep(namespace, name))
    except ValueError:
        msg = (
            f"{subject} was sealed for another Secret: a sealed value opens only in the "
            "namespace and Secret it was sealed for (or its wrapped key was altered); seal it "
            f"for {namespace}/{name}: kubectl webapp seal --name {name} -n {namespace}"
        )
        raise WrongBindingError(msg) from None
    if len(session_key) != AES_KEY_BYTES:
        msg = f"{subject}: the wrapped key has the wrong size"
        raise MalformedSealedValueError(msg)
    associated = _associated(parsed.version, parsed.key_id, namespace, name, key)
    try:
        return AESGCM(session_key).decrypt(nonce, sealed_bytes, associated)
    except InvalidTag:
        msg = (
            f"{subject} failed its integrity check (AES-GCM tag): the sealed text was altered, "
            f"or it was sealed for another key than {key!r}; seal it again"
        )
        raise TamperedSealedValueError(msg) from None


def is_sealed_secret(annotations: Mapping[str, str]) -> bool:
    """True when a source Secret says its values are sealed."""
    return str(annotations.get(SEALED_ANNOTATION, "")).strip().lower() == "true"


def unseal_data(
    keyring: Keyring, namespace: str, name: str, data: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Open every value of a sealed Secret, or raise one SealingError naming every bad key.

    All or nothing: a Secret with one bad value yields no content at all, so a revision never
    holds part of an update.
    """
    opened: dict[str, bytes] = {}
    problems: list[SealingError] = []
    for key in sorted(data):
        raw = data[key]
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            problems.append(
                MalformedSealedValueError(
                    f"key {key!r} of Secret {namespace}/{name} is not a sealed value (it is "
                    "binary); seal it with: kubectl webapp seal"
                )
            )
            continue
        try:
            opened[key] = unseal(keyring, namespace, name, key, text)
        except SealingError as error:
            problems.append(error)
    if not problems:
        return opened
    if len(problems) == 1:
        raise problems[0]
    raise SealingError("; ".join(p.message for p in problems))
