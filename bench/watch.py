"""What the bench sees of the operator's output: Deployments and environment snapshots, from
two watch streams of its own (raw JSON lines: no model parsing, so the bench stays cheap).

A WebApp has *converged* on revision R of Secret S when every one of its Deployments (as many
as it has processes) references one environment snapshot, and that snapshot's
`twelvefactor.dev/sources` annotation names `S#R`. The time of convergence is when the bench
received the watch event that completed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx2 as httpx

from bench.kube import Api

logger = logging.getLogger(__name__)

APP_LABEL: Final = "twelvefactor.dev/webapp"
ENV_OF_LABEL: Final = "twelvefactor.dev/environment-of"
SOURCES_ANNOTATION: Final = "twelvefactor.dev/sources"
MANAGED: Final = "app.kubernetes.io/managed-by=webapp-operator"
ENVIRONMENTS: Final = "twelvefactor.dev/secret=environment"

AppKey = tuple[str, str]  # (namespace, app)


@dataclass(frozen=True)
class DeploymentState:
    app: str
    snapshot: str | None
    rolled_out: bool


@dataclass(frozen=True)
class Target:
    """What one app should converge on: `ref` is "namespace/name" of the Secret."""

    ref: str
    revision: int
    processes: int


@dataclass
class Round:
    """Apps expected to converge; `since` holds when each one's change was sent."""

    targets: dict[AppKey, Target]
    since: dict[AppKey, float] = field(default_factory=dict)
    done: dict[AppKey, float] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, apps: Iterable[AppKey] | None = None) -> float:
        """Mark the change of `apps` (default: all) as sent now; returns the time."""
        now = time.monotonic()
        for app in self.targets if apps is None else apps:
            self.since[app] = now
        return now


def parse_sources(annotation: str | None) -> dict[str, int]:
    """`secret:creds=ns/creds#2,...` -> {"ns/creds": 2}."""
    result: dict[str, int] = {}
    for item in (annotation or "").split(","):
        _, _, value = item.partition("=")
        ref, _, number = value.rpartition("#")
        if ref and number.isdigit():
            result[ref] = int(number)
    return result


def _deployment_state(obj: Mapping[str, Any]) -> DeploymentState | None:
    meta = obj.get("metadata") or {}
    app = (meta.get("labels") or {}).get(APP_LABEL)
    if not app:
        return None
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    snapshot = None
    for container in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
        for source in container.get("envFrom") or []:
            name = (source.get("secretRef") or {}).get("name")
            if name:
                snapshot = str(name)
    wanted = int(spec.get("replicas") or 0)
    rolled_out = (
        int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(status.get("updatedReplicas") or 0) == wanted
        and int(status.get("availableReplicas") or 0) == wanted
        and int(status.get("replicas") or 0) == wanted
    )
    return DeploymentState(app=str(app), snapshot=snapshot, rolled_out=rolled_out)


class ClusterView:
    """Deployments and environment snapshots (cluster-wide, or of one namespace)."""

    def __init__(self, api: Api, namespace: str | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.deployments: dict[tuple[str, str], DeploymentState] = {}
        self.by_app: dict[AppKey, set[str]] = {}
        self.snapshots: dict[tuple[str, str], dict[str, int]] = {}
        self.rounds: list[Round] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.events = 0
        self._synced: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------ streams

    def _path(self, group_version: str, plural: str) -> str:
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        if self.namespace:
            return f"{base}/namespaces/{self.namespace}/{plural}"
        return f"{base}/{plural}"

    async def start(self) -> None:
        streams = (
            ("deployments", self._path("apps/v1", "deployments"), MANAGED),
            ("snapshots", self._path("v1", "secrets"), ENVIRONMENTS),
        )
        for name, path, selector in streams:
            self._synced[name] = asyncio.Event()
            self.tasks.append(asyncio.create_task(self._stream(name, path, selector)))
        await asyncio.wait_for(
            asyncio.gather(*(e.wait() for e in self._synced.values())), timeout=120
        )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def _stream(self, name: str, path: str, selector: str) -> None:
        while True:
            try:
                listing = await self.api.get_json(path, labelSelector=selector)
                self._reset(name, listing.get("items") or [])
                self._synced[name].set()
                version = str(listing["metadata"]["resourceVersion"])
                await self._watch(name, path, selector, version)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError) as error:
                logger.debug("watch %s: %s; listing again", name, error)
                await asyncio.sleep(0.5)

    async def _watch(self, name: str, path: str, selector: str, version: str) -> None:
        params = {
            "watch": "1",
            "labelSelector": selector,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "600",
        }
        timeout = httpx.Timeout(connect=30.0, read=None, write=30.0, pool=30.0)
        async with self.api.raw.stream("GET", path, params=params, timeout=timeout) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return  # e.g. 410 Gone: list again
                self._handle(name, str(kind), obj)

    def _reset(self, name: str, items: Iterable[Mapping[str, Any]]) -> None:
        if name == "deployments":
            self.deployments.clear()
            self.by_app.clear()
        else:
            self.snapshots.clear()
        for obj in items:
            self._handle(name, "ADDED", obj)

    def _handle(self, name: str, kind: str, obj: Mapping[str, Any]) -> None:
        if kind == "BOOKMARK":
            return
        self.events += 1
        meta = obj.get("metadata") or {}
        namespace, object_name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        touched: set[AppKey] = set()
        if name == "deployments":
            state = None if kind == "DELETED" else _deployment_state(obj)
            old = self.deployments.pop((namespace, object_name), None)
            if old is not None:
                self.by_app.get((namespace, old.app), set()).discard(object_name)
                touched.add((namespace, old.app))
            if state is not None:
                self.deployments[(namespace, object_name)] = state
                self.by_app.setdefault((namespace, state.app), set()).add(object_name)
                touched.add((namespace, state.app))
        else:
            if kind == "DELETED":
                self.snapshots.pop((namespace, object_name), None)
            else:
                annotations = meta.get("annotations") or {}
                sources = parse_sources(annotations.get(SOURCES_ANNOTATION))
                self.snapshots[(namespace, object_name)] = sources
            app = (meta.get("labels") or {}).get(ENV_OF_LABEL)
            if app:
                touched.add((namespace, str(app)))
        if self.rounds and touched:
            now = time.monotonic()
            for app_key in touched:
                self._check(app_key, now)

    # ------------------------------------------------------------------ convergence

    def snapshot_of(self, app: AppKey) -> str | None:
        """The one snapshot all Deployments of `app` reference, else None."""
        names = {self.deployments[(app[0], d)].snapshot for d in self.by_app.get(app, ())}
        return next(iter(names)) if len(names) == 1 else None

    def converged(self, app: AppKey, target: Target) -> bool:
        deployments = self.by_app.get(app, set())
        if len(deployments) != target.processes:
            return False
        snapshot = self.snapshot_of(app)
        if snapshot is None:
            return False
        return self.snapshots.get((app[0], snapshot), {}).get(target.ref) == target.revision

    def rolled_out(self, apps: Iterable[AppKey]) -> bool:
        """Every Deployment of these apps runs its newest template on every wanted pod."""
        for app in apps:
            for name in self.by_app.get(app, ()):
                if not self.deployments[(app[0], name)].rolled_out:
                    return False
        return True

    def _check(self, app: AppKey, now: float) -> None:
        for round_ in self.rounds:
            target = round_.targets.get(app)
            if target is None or app in round_.done or app not in round_.since:
                continue
            if self.converged(app, target):
                round_.done[app] = now - round_.since[app]
                if len(round_.done) == len(round_.targets):
                    round_.finished.set()

    def expect(self, targets: Mapping[AppKey, Target]) -> Round:
        """Register a round before sending its changes, so no event can be missed."""
        round_ = Round(targets=dict(targets))
        self.rounds.append(round_)
        return round_

    async def wait(self, round_: Round, timeout: float) -> dict[AppKey, float]:
        """Seconds from each app's `since` until it converged (watch event time)."""
        try:
            now = time.monotonic()
            for app in round_.targets:
                self._check(app, now)
            if len(round_.done) < len(round_.targets):
                try:
                    await asyncio.wait_for(round_.finished.wait(), timeout)
                except TimeoutError:
                    missing = sorted(set(round_.targets) - set(round_.done))
                    msg = (
                        f"{len(missing)} of {len(round_.targets)} apps did not converge within "
                        f"{timeout:.0f} s, e.g. {missing[:3]}"
                    )
                    raise ConvergenceError(msg, dict(round_.done), missing) from None
            return dict(round_.done)
        finally:
            self.rounds.remove(round_)

    async def converge(
        self, targets: Mapping[AppKey, Target], timeout: float
    ) -> dict[AppKey, float]:
        """Wait for apps whose change was already sent (latency counted from now)."""
        round_ = self.expect(targets)
        round_.start()
        return await self.wait(round_, timeout)


class ConvergenceError(AssertionError):
    """Some apps did not converge in time (an AssertionError: tests report it as a failure)."""

    def __init__(self, message: str, done: dict[AppKey, float], missing: list[AppKey]) -> None:
        super().__init__(message)
        self.done = done
        self.missing = missing
