"""List-and-watch streams kept as compact entries: the cheap watch path for busy kinds.

A rollout makes many watch events: every Deployment, its ReplicaSets and their status updates.
Through Kopf each one costs its per-event machinery (body wrappers, causes, the indexing and
handler dispatch, ~2.7 ms here); most of them change nothing the reconcilers read. An
`Informer` is what client-go calls by that name, in a few lines: one LIST (paged), then one
WATCH from its resourceVersion, each event's JSON decoded once into the caller's compact entry,
the old and the new entry handed to `on_change`. Its cost per event is the JSON decoding.
The first listing's objects come as `LISTED` (Kopf's event type None): the state the caller
starts from, not a change.

- Reconnects: a watch that ends (the server's timeout, a dropped connection, an API server
  restart) is opened again from the last resourceVersion seen (bookmarks keep it fresh); when
  the server answers 410 Gone, the collection is listed again and the difference is reported
  as events, deletions included, so no change is lost across any gap.
- Errors are retried with exponential backoff; nothing here ends the process. An object the
  caller's `parse` fails on is left out (as if absent, with a warning naming it), never the
  whole stream: one odd object must not keep every other from being seen.
- Server-side label selectors only: objects outside the selector cost nothing.
- Nothing is logged of a body (the operator's managed Secrets come through here): a failure
  is told by its status code and reason, or the error's type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import aiohttp
import orjson

from webapp_operator.kube import transport

logger = logging.getLogger(__name__)

E = TypeVar("E")

PAGE: Final = 500
WATCH_TIMEOUT: Final = 300  # the server ends each watch after this many seconds
BACKOFF_FIRST: Final = 0.5
BACKOFF_CAP: Final = 30.0

# (event type, old entry or None, new entry or None); DELETED has new None. The type is the
# watch's (ADDED, MODIFIED, DELETED), or LISTED for the objects of the first listing.
OnChange = Callable[[str, E | None, E | None], None]


@dataclass(frozen=True)
class Collection:
    """What to list and watch: `/apis/apps/v1` + `deployments`, in `namespace` or all."""

    prefix: str
    plural: str
    label_selector: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        if self.namespace:
            return f"{self.prefix}/namespaces/{self.namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.plural} in {self.namespace or 'all namespaces'}"


class GoneError(Exception):
    """The resourceVersion we watch from is too old (410): list again."""


class Informer(Generic[E]):
    """One collection, listed then watched for ever; entries by (namespace, name)."""

    def __init__(
        self,
        http: transport.Transport,
        collection: Collection,
        parse: Callable[[Mapping[str, Any]], E | None],
        on_change: OnChange[E],
        optional: bool = False,
        reparse: Callable[[Mapping[str, Any], E], E | None] | None = None,
    ) -> None:
        self.http = http
        self.collection = collection
        self.parse = parse
        # Parses an object whose entry is held already, given that entry (which it may reuse
        # parts of, for what the object's unchanged parts gave); `parse` when unset.
        self.reparse = reparse
        self.on_change = on_change
        # A collection the operator may be denied (403: an upgrade whose RBAC is older) without
        # stopping everything else: it counts as synced, empty, and is listed again and again.
        self.optional = optional
        self.store: dict[tuple[str, str], E] = {}
        self.synced = asyncio.Event()
        self.relists = 0
        self.reconnects = 0
        self.left_out = 0  # objects `parse` failed on

    async def run(self) -> None:
        """List, then watch; list again after 410, reconnect after anything else."""
        version: str | None = None
        backoff = BACKOFF_FIRST
        while True:
            try:
                if version is None:
                    version = await self._relist()
                    self.synced.set()
                version = await self._watch(version)
                backoff = BACKOFF_FIRST
            except asyncio.CancelledError:
                raise
            except GoneError:
                version = None
            except (
                ListError,
                aiohttp.ClientError,
                TimeoutError,
                OSError,
                ValueError,
                KeyError,
                TypeError,
            ) as error:
                self.reconnects += 1
                denied = isinstance(error, ListError) and error.code == 403
                if denied and self.optional and not self.synced.is_set():
                    logger.warning(
                        "%s: listing refused (403), taken as empty for now; grant list, watch, "
                        "create, patch and delete on them (the chart's RBAC does)",
                        self.collection,
                    )
                    self.synced.set()
                logger.warning(
                    "watch of %s interrupted (%s); again in %.1f s",
                    self.collection,
                    _describe(error),
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_CAP, backoff * 2)

    def _parse(self, obj: Mapping[str, Any]) -> E | None:
        try:
            held = None if self.reparse is None else self.store.get(_key(obj))
            if held is not None and self.reparse is not None:
                return self.reparse(obj, held)
            return self.parse(obj)
        except Exception as error:  # noqa: BLE001 (one object, not the stream)
            self.left_out += 1
            namespace, name = _key(obj)
            logger.warning(
                "%s %s/%s left out: it could not be read (%s)",
                self.collection.plural,
                namespace,
                name,
                type(error).__name__,
            )
            return None

    def _set(self, kind: str, key: tuple[str, str], entry: E | None) -> None:
        old = self.store.get(key)
        if entry is None:
            if self.store.pop(key, None) is not None:
                self.on_change("DELETED", old, None)
            return
        self.store[key] = entry
        if old != entry:
            self.on_change(kind if old is None else "MODIFIED", old, entry)

    async def _relist(self) -> str:
        """LIST the collection (paged); report what changed since the store was filled."""
        seen: dict[tuple[str, str], E | None] = {}
        params: dict[str, str] = {"labelSelector": self.collection.label_selector}
        params["limit"] = str(PAGE)
        version = ""
        while True:
            reply = await self.http.request("GET", self.collection.path, params=params)
            _raise_for(reply)
            listing = reply.json()
            meta = listing.get("metadata") or {}
            version = str(meta.get("resourceVersion") or "")
            for item in listing.get("items") or []:
                seen[_key(item)] = self._parse(item)
            cont = meta.get("continue")
            if not cont:
                break
            params["continue"] = str(cont)
        added = "ADDED"
        if self.synced.is_set():
            self.relists += 1
        else:
            added = "LISTED"
        for key in [k for k in self.store if k not in seen]:
            self._set("DELETED", key, None)
        for key, entry in seen.items():
            self._set(added, key, entry)
        return version

    async def _watch(self, version: str) -> str:
        """Follow one WATCH until the server ends it; returns the last resourceVersion."""
        params = {
            "labelSelector": self.collection.label_selector,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": str(WATCH_TIMEOUT),
        }
        path = self.collection.path
        async with self.http.stream(path, params, WATCH_TIMEOUT + 30.0) as (reply, lines):
            if reply.status == 410:
                raise GoneError
            _raise_for(reply)
            async for line in lines:
                event = orjson.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise GoneError
                    msg = f"watch error {obj.get('code')} {obj.get('reason')}"
                    raise ValueError(msg)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                key = _key(obj)
                if kind == "DELETED":
                    self._set(kind, key, None)
                else:
                    self._set(str(kind), key, self._parse(obj))
        return version


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class ListError(Exception):
    """A LIST or WATCH answered with an error status (code and reason only, never a body)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


def _raise_for(reply: transport.Reply) -> None:
    if reply.status < 400:
        return
    reason = reply.reason
    with contextlib.suppress(ValueError, AttributeError):
        reason = str(reply.json().get("reason") or reason)
    raise ListError(reply.status, reason)


def _describe(error: BaseException) -> str:
    if isinstance(error, ListError):
        return str(error)
    return type(error).__name__
