"""The operator's sealing keys on the API server: load or create, renew, publish, open.

Two objects in the operator's own namespace (docs/sealing.md):

- Secret `webapp-operator-sealing-keys`: one data key per key pair, named by its key id and
  holding the PKCS #8 PEM private key; an annotation `twelvefactor.dev/sealing-key.<id>` per key
  holds its creation time. Created at start-up when absent; renewal adds a key and never
  removes one, so every value sealed since the first key still opens. Its content is never
  logged.
- ConfigMap `webapp-operator-sealing-cert`: the newest public key (`public.pem`), its id
  (`key-id`) and creation time (`created`), for `webapp-operator cert` and `seal`. Written only
  when it differs, so a restart with nothing changed writes nothing.

`Unsealer` is what the Secret index calls (controller/state.py) to open a sealed source: the
decrypted content is what the revision model sees, so tracking, grants and pruning work as
for any other source, and a re-sealed but unchanged value makes no new revision. A source that
does not open gets no content and an error message (names only) instead.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from webapp_operator.controller import state
from webapp_operator.domain import schedule, sealing
from webapp_operator.domain.errors import InvalidConfig
from webapp_operator.kube import client as kube

logger = logging.getLogger(__name__)

KEYS_SECRET: Final = "webapp-operator-sealing-keys"  # noqa: S105 (a name, not a secret)
CERT_CONFIGMAP: Final = "webapp-operator-sealing-cert"
CERT_FIELD: Final = "public.pem"
KEY_ID_FIELD: Final = "key-id"
CREATED_FIELD: Final = "created"
CREATED_ANNOTATION_PREFIX: Final = "twelvefactor.dev/sealing-key."
LABELS: Final = {
    "app.kubernetes.io/managed-by": "webapp-operator",
    "app.kubernetes.io/component": "sealing-keys",
}
DEFAULT_RENEWAL: Final = timedelta(days=30)
MIN_RENEWAL: Final = timedelta(minutes=1)
CACHE_SIZE: Final = 4096
# How often the renewal task looks at the clock (a shifted test clock can jump at any time).
POLL: Final = 600.0
POLL_SHIFTED: Final = 0.5
# How often the acting replica reads the keys Secret for keys added elsewhere (a restore).
RELOAD: Final = 300.0


class Clock(Protocol):
    def now(self) -> datetime: ...


# --- the keys Secret and the cert ConfigMap, as plain dicts (pure) ---------------------------


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, UTC)


def keyring_from_secret(body: Mapping[str, Any]) -> tuple[sealing.Keyring, list[str]]:
    """The keys of the keys Secret, and a problem line (names only) per unusable entry.

    A key without its creation annotation counts as created at the epoch: the oldest, so it
    never seals while another key exists, and renewal follows at once if it is alone.
    """
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    keys: list[sealing.SealingKey] = []
    problems: list[str] = []
    for key_id, encoded in sorted((body.get("data") or {}).items()):
        where = f"Secret {KEYS_SECRET} key {key_id!r}"
        stamp = annotations.get(f"{CREATED_ANNOTATION_PREFIX}{key_id}")
        try:
            created = schedule.parse_time(stamp) if stamp else _epoch()
            key = sealing.load_key(base64.b64decode(str(encoded)), created, where)
        except (sealing.SealingError, InvalidConfig, ValueError) as error:
            message = getattr(error, "message", None) or type(error).__name__
            problems.append(f"{where} is not usable: {message}")
            continue
        if key.id != key_id:
            problems.append(f"{where} holds key {key.id}; the data key must be its key id")
            continue
        keys.append(key)
    return sealing.Keyring(tuple(keys)), problems


def keys_secret_patch(keys: list[sealing.SealingKey]) -> dict[str, Any]:
    """The data and annotations that add `keys` to the keys Secret (a merge patch's body)."""
    return {
        "metadata": {
            "labels": dict(LABELS),
            "annotations": {
                f"{CREATED_ANNOTATION_PREFIX}{k.id}": schedule.format_time(k.created) for k in keys
            },
        },
        "data": {k.id: base64.b64encode(k.private_pem().encode()).decode() for k in keys},
    }


def keys_secret(namespace: str, keys: list[sealing.SealingKey]) -> dict[str, Any]:
    patch = keys_secret_patch(keys)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEYS_SECRET, "namespace": namespace, **patch["metadata"]},
        "type": "Opaque",
        "data": patch["data"],
    }


def cert_data(key: sealing.SealingKey) -> dict[str, str]:
    """What the cert ConfigMap holds for the key that seals."""
    return {
        CERT_FIELD: key.public_pem(),
        KEY_ID_FIELD: key.id,
        CREATED_FIELD: schedule.format_time(key.created),
    }


def cert_configmap(namespace: str, key: sealing.SealingKey) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CERT_CONFIGMAP,
            "namespace": namespace,
            "labels": {**LABELS, "app.kubernetes.io/component": "sealing-cert"},
        },
        "data": cert_data(key),
    }


# --- opening sealed Secrets (called by the Secret index) -------------------------------------


class Unsealer:
    """Opens sealed source Secrets with the current keyring; remembers what it opened.

    The cache (namespace, name, key, sealed text) -> value spares an RSA decryption when the
    same Secret is seen again (every annotation change is a watch event). It holds values only
    in memory, as the Secret index does anyway, and is bounded. Failures are not cached as
    values: a source that did not open is tried again once the keyring changes (`reopen`).
    """

    def __init__(self, keyring: sealing.Keyring | None = None, size: int = CACHE_SIZE) -> None:
        self._keyring = keyring or sealing.Keyring()
        self.generation = 0  # bumped whenever the keyring gains a key
        self._size = size
        self._cache: collections.OrderedDict[tuple[str, str, str, bytes], bytes] = (
            collections.OrderedDict()
        )
        # Sources that did not open: (ns, name) -> (generation, sealed text, entry as tried).
        self._failed: dict[
            tuple[str, str], tuple[int, Mapping[str, bytes], state.SecretEntry | None]
        ] = {}

    @property
    def keyring(self) -> sealing.Keyring:
        return self._keyring

    @keyring.setter
    def keyring(self, keyring: sealing.Keyring) -> None:
        if keyring.ids != self._keyring.ids:
            self.generation += 1
        self._keyring = keyring

    @property
    def failed(self) -> list[tuple[str, str]]:
        """Sealed sources that did not open when last seen: worth another try on new keys."""
        return sorted(self._failed)

    def __repr__(self) -> str:
        return f"Unsealer(keys={self.keyring.ids}, cached={len(self._cache)})"

    def __call__(
        self, namespace: str, name: str, data: Mapping[str, bytes]
    ) -> tuple[dict[str, bytes], str | None]:
        """(opened content, None), or ({}, a message naming the Secret, keys and causes)."""
        opened: dict[str, bytes] = {}
        missing: dict[str, bytes] = {}
        for key, raw in data.items():
            hit = self._cache.get((namespace, name, key, raw))
            if hit is None:
                missing[key] = raw
            else:
                self._cache.move_to_end((namespace, name, key, raw))
                opened[key] = hit
        try:
            fresh = sealing.unseal_data(self.keyring, namespace, name, missing)
        except sealing.SealingError as error:
            self._failed[(namespace, name)] = (self.generation, dict(data), None)
            return {}, error.message
        self._failed.pop((namespace, name), None)
        for key, value in fresh.items():
            self._cache[(namespace, name, key, missing[key])] = value
            opened[key] = value
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return opened, None

    def reopen(self, entry: state.SecretEntry) -> state.SecretEntry:
        """`entry`, opened again if it did not open and the keyring changed since it was tried.

        A restored key, or one another replica added, so takes effect without waiting for the
        Secret to change. Each source is tried once per keyring change.
        """
        if entry.unseal_error is None or not entry.sealed:
            return entry
        tried = self._failed.get(entry.key)
        if tried is not None and tried[0] == self.generation and tried[1] == entry.sealed:
            return entry if tried[2] is None else tried[2]
        data, error = self(entry.namespace, entry.name, entry.sealed)
        if error is None:
            return replace(entry, data=data, unseal_error=None, sealed={})
        again = replace(entry, unseal_error=error)
        self._failed[entry.key] = (self.generation, dict(entry.sealed), again)
        return again


class ReopeningStore:
    """The Secret index as the reconcilers read it: sealed sources retried on new keys."""

    def __init__(self, inner: Any, unsealer: Unsealer) -> None:
        self.inner = inner  # the Secret index: key -> collection of entries
        self.unsealer = unsealer

    def get(self, key: Any, default: Any = None) -> Any:
        values = self.inner.get(key)
        if values is None:
            return default
        if not any(getattr(v, "unseal_error", None) for v in values):
            return values
        return [self.unsealer.reopen(v) if isinstance(v, state.SecretEntry) else v for v in values]


# --- the keys on the API server --------------------------------------------------------------


class KeyManager:
    """Loads, creates, renews and publishes the operator's sealing keys."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        clock: Clock,
        renewal: timedelta | None = DEFAULT_RENEWAL,
        unsealer: Unsealer | None = None,
    ) -> None:
        self.api = api  # a lightkube AsyncClient (kube.async_client)
        self.namespace = namespace
        self.clock = clock
        self.renewal = renewal
        self.unsealer = unsealer or Unsealer()
        # Called with the sources that did not open whenever the keyring gains a key, so
        # that they are reconciled again (set by the handlers).
        self.on_change: Callable[[list[tuple[str, str]]], None] | None = None

    @property
    def keyring(self) -> sealing.Keyring:
        return self.unsealer.keyring

    def _adopt(self, keyring: sealing.Keyring) -> None:
        before = self.unsealer.generation
        self.unsealer.keyring = keyring
        if self.unsealer.generation != before and self.on_change is not None:
            self.on_change(self.unsealer.failed)

    async def reload(self) -> None:
        """Add the keys the keys Secret holds now (restored from a backup, or added by another
        replica) to the keyring; never removes one, writes nothing."""
        _, stored = await self._read_keys()
        merged = self.keyring.merged(stored.keys)
        if merged.ids != self.keyring.ids:
            logger.info("sealing: keys %s loaded from the keys Secret", sorted(stored.ids))
            self._adopt(merged)

    async def _get(self, resource: Any, name: str) -> dict[str, Any] | None:
        from lightkube.core.exceptions import ApiError

        try:
            found = await self.api.get(resource, name, namespace=self.namespace)
        except ApiError as error:
            if kube.is_not_found(error):
                return None
            raise
        result: dict[str, Any] = found.to_dict()
        return result

    async def _read_keys(self) -> tuple[dict[str, Any] | None, sealing.Keyring]:
        from lightkube.resources.core_v1 import Secret

        body = await self._get(Secret, KEYS_SECRET)
        if body is None:
            return None, sealing.Keyring()
        # Loading checks each RSA key (about 0.3 s for 4096 bits): off the event loop.
        keyring, problems = await asyncio.to_thread(keyring_from_secret, body)
        for problem in problems:
            logger.warning("sealing keys: %s", problem)
        return body, keyring

    async def _new_key(self) -> sealing.SealingKey:
        # RSA-4096 generation takes about a second: off the event loop.
        return await asyncio.to_thread(sealing.generate_key, self.clock.now())

    async def load(self) -> sealing.Keyring:
        """Load the keys there are, writing nothing (a standby replica's start-up)."""
        _, keyring = await self._read_keys()
        self.unsealer.keyring = keyring
        logger.info("sealing: keys %s loaded; %s seals", keyring.ids, _newest_id(keyring))
        return keyring

    async def start(self) -> sealing.Keyring:
        """Load the keys (creating the first one if there is none) and publish the newest."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Secret

        body, keyring = await self._read_keys()
        if body is None:
            key = await self._new_key()
            try:
                await self.api.create(Secret.from_dict(keys_secret(self.namespace, [key])))
            except ApiError as error:
                if not kube.is_already_exists(error):
                    raise
                return await self.start()  # another replica was first: use its key
            logger.warning(
                "sealing: Secret %s/%s did not exist; created it with key %s. Values sealed "
                "with earlier keys open only once those keys are restored (docs/sealing.md)",
                self.namespace,
                KEYS_SECRET,
                key.id,
            )
            keyring = sealing.Keyring((key,))
        self.unsealer.keyring = keyring
        if not keyring.keys:
            await self.renew()
            return self.keyring
        logger.info("sealing: keys %s loaded; %s seals", keyring.ids, _newest_id(keyring))
        await self.publish()
        return keyring

    async def renew(self) -> bool:
        """Add a new key when the newest is a renewal period old (or there is none).

        The patch carries the Secret's resourceVersion: if another replica renewed at the same
        moment, the API server answers 409, and the keys are read again (and its key adopted).
        Returns True when this call added a key.
        """
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Secret
        from lightkube.types import PatchType

        for _ in range(5):
            body, stored = await self._read_keys()
            keyring = self.keyring.merged(stored.keys)
            self._adopt(keyring)
            if body is not None and not self._due(keyring):
                await self.publish()
                return False
            key = await self._new_key()
            try:
                if body is None:
                    await self.api.create(Secret.from_dict(keys_secret(self.namespace, [key])))
                else:
                    patch = keys_secret_patch([key])
                    patch["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"]
                    await self.api.patch(
                        Secret,
                        KEYS_SECRET,
                        patch,
                        namespace=self.namespace,
                        patch_type=PatchType.MERGE,
                    )
            except ApiError as error:
                if kube.is_conflict(error):
                    continue
                raise
            self._adopt(keyring.with_key(key))
            logger.warning(
                "sealing: added key %s; it seals from now on, keys %s still open older values; "
                "back up Secret %s/%s now (docs/sealing.md)",
                key.id,
                keyring.ids,
                self.namespace,
                KEYS_SECRET,
            )
            await self.publish()
            return True
        msg = f"Secret {self.namespace}/{KEYS_SECRET} kept changing; renewal tries again later"
        raise RuntimeError(msg)

    def _due(self, keyring: sealing.Keyring) -> bool:
        if not keyring.keys:
            return True
        if self.renewal is None:
            return False
        return sealing.renewal_due(keyring, self.renewal, self.clock.now())

    async def publish(self) -> None:
        """Make the cert ConfigMap name the newest key; write only when it differs."""
        from lightkube.resources.core_v1 import ConfigMap
        from lightkube.types import PatchType

        newest = self.keyring.newest
        if newest is None:
            return
        wanted = cert_configmap(self.namespace, newest)
        current = await self._get(ConfigMap, CERT_CONFIGMAP)
        if current is None:
            from lightkube.core.exceptions import ApiError

            try:
                await self.api.create(ConfigMap.from_dict(wanted))
                return
            except ApiError as error:
                if not kube.is_already_exists(error):
                    raise
            current = await self._get(ConfigMap, CERT_CONFIGMAP) or {}
        labels = (current.get("metadata") or {}).get("labels") or {}
        if current.get("data") == wanted["data"] and all(
            labels.get(k) == v for k, v in wanted["metadata"]["labels"].items()
        ):
            return
        await self.api.patch(
            ConfigMap,
            CERT_CONFIGMAP,
            {"metadata": {"labels": wanted["metadata"]["labels"]}, "data": wanted["data"]},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    def next_wake(self, poll: float) -> float:
        """Seconds until the renewal task should look again (at most `poll`)."""
        if self.renewal is None:
            return poll
        due = sealing.next_renewal(self.keyring, self.renewal)
        if due is None:
            return 0.05
        return min(poll, max(0.05, (due - self.clock.now()).total_seconds()))

    async def run(self, poll: float = POLL, reload_every: float = RELOAD) -> None:
        """The key task of the replica that acts: load keys others added (at once, then every
        `reload_every` seconds), and renew when the newest key is a period old."""
        reloaded: float | None = None
        while True:
            try:
                first = reloaded is None
                if reloaded is None or time.monotonic() - reloaded >= reload_every:
                    await self.reload()
                    reloaded = time.monotonic()
                if self._due(self.keyring):
                    await self.renew()  # also the first key of a replica that loaded none
                elif first:
                    await self.publish()  # a no-op unless the ConfigMap is missing or stale
            except Exception as error:  # noqa: BLE001 (the task must outlive API errors)
                logger.warning("sealing: loading or renewing keys failed: %s", _safe(error))
                await asyncio.sleep(min(poll, 30.0))
            await asyncio.sleep(min(self.next_wake(poll), reload_every))


def _newest_id(keyring: sealing.Keyring) -> str:
    newest = keyring.newest
    return newest.id if newest else "-"


def _safe(error: BaseException) -> str:
    """An error's description without a request or response body."""
    status = getattr(error, "status", None)
    if status is not None and getattr(status, "code", None):
        return f"{status.code} {status.reason}"
    return type(error).__name__


def renewal_period(options: Mapping[str, Any]) -> timedelta | None:
    """The renewal period from the run options (seconds; 0 or None: never renew)."""
    seconds = options.get("sealing_key_renewal", DEFAULT_RENEWAL.total_seconds())
    if not seconds:
        return None
    return timedelta(seconds=float(seconds))
