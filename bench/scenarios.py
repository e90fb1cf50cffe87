"""The scenarios of docs/performance.md: floor, fan-out, burst, steady state (idle, no-op
reconciles, unrelated Secrets), restart.

Each returns plain dicts of figures (seconds `_s`, MiB `_mib`, counts) for results.json.
Nothing here asserts a time: the targets are checked by report.py, after the fact.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench import kube, workload
from bench.kube import Api, BenchError
from bench.operator import OperatorProcess, Sample
from bench.watch import AppKey, ClusterView, Target
from webapp_operator.cli.run import CONCURRENCY
from webapp_operator.controller import state
from webapp_operator.kube import transport

PROCESS_COUNT: Final = len(workload.PROCESSES)
MERGE_PATCH: Final = "application/merge-patch+json"


def writes_per_app(processes: int) -> int:
    """The writes that must happen before one app's Deployments reference a new revision: the
    environment snapshot and one apply per Deployment (the status write comes after)."""
    return 1 + processes


# Dependent round trips on the way: the Secret's update, the revision, the snapshot, the apply.
CHAIN: Final = 4
APPS_PER_NAMESPACE: Final = 100


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float, digits: int = 4) -> float:
    return float(round(value, digits))


@dataclass(frozen=True)
class Profile:
    """The sizes of one bench run."""

    name: str
    fanout: tuple[int, ...]
    fanout_rounds: int
    burst: tuple[int, ...]
    burst_rounds: int
    steady_apps: int
    secrets_per_app: int
    unrelated: int
    idle_s: float
    floor_patches: int
    floor_rounds: int


PROFILES: Final = {
    "quick": Profile(
        name="quick",
        fanout=(10, 100),
        fanout_rounds=5,
        burst=(50,),
        burst_rounds=3,
        steady_apps=100,
        secrets_per_app=2,
        unrelated=1000,
        idle_s=30,
        floor_patches=400,
        floor_rounds=3,
    ),
    "full": Profile(
        name="full",
        fanout=(10, 100, 500),
        fanout_rounds=5,
        burst=(100, 1000),
        burst_rounds=3,
        steady_apps=1000,
        secrets_per_app=2,
        unrelated=5000,
        idle_s=60,
        floor_patches=1000,
        floor_rounds=3,
    ),
}


@dataclass(frozen=True)
class Floor:
    """This machine's PATCH round trip and throughput at the operator's concurrency."""

    concurrency: int
    rtt_s: float
    rtt_p99_s: float
    patches_per_s: float

    def writes(self, count: int, chain: int = CHAIN) -> float:
        """The least time `count` writes can take here, at least `chain` dependent trips."""
        return max(chain * self.rtt_s, count / self.patches_per_s)

    def as_dict(self) -> dict[str, float]:
        return {
            "concurrency": self.concurrency,
            "patch_rtt_s": rounded(self.rtt_s, 5),
            "patch_rtt_p99_s": rounded(self.rtt_p99_s, 5),
            "patches_per_s": rounded(self.patches_per_s, 1),
        }


@dataclass
class Bench:
    """One run: the cluster, the sizes, where the operator's logs go, and its arguments."""

    api: Api
    profile: Profile
    operator_kubeconfig: Path
    logs: Path
    operator_args: list[str] = field(default_factory=list)
    concurrency: int = CONCURRENCY
    floor: Floor | None = None
    operators: list[OperatorProcess] = field(default_factory=list)
    # Pods in the fan-out and burst apps (default: none, see workload.PODLESS).
    pods: bool = False

    @property
    def processes(self) -> int:
        return workload.process_count(self.pods)

    def operator(self, name: str) -> OperatorProcess:
        proc = OperatorProcess(
            kubeconfig=self.operator_kubeconfig,
            log_path=self.logs / f"operator-{name}.log",
            args=self.operator_args,
        )
        self.operators.append(proc)
        return proc

    async def stop_operators(self) -> None:
        for proc in self.operators:
            await proc.stop()
        self.operators.clear()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201


# --------------------------------------------------------------------------------------------
# The floor


async def measure_floor(api: Api, concurrency: int, patches: int, rounds: int) -> Floor:
    """`patches` merge PATCHes of small ConfigMaps by `concurrency` workers, through the client
    the operator's gateway writes with (kube/transport.py over aiohttp, plain JSON); best
    throughput of `rounds`."""
    namespace = "bench-floor"
    await kube.ensure_namespace(api, namespace)
    names = [f"floor-{i}" for i in range(concurrency)]
    await workload.create_all(
        api,
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": n, "namespace": namespace},
            }
            for n in names
        ],
    )
    rtts: list[float] = []
    rates: list[float] = []
    per_worker = max(1, patches // concurrency)

    http = transport.Transport(api.config)
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    async def worker(name: str, tag: int) -> None:
        for index in range(per_worker):
            started = time.monotonic()
            body = {"metadata": {"annotations": {"bench/n": f"{tag}-{index}"}}}
            await _json(http, "PATCH", f"{path}/{name}", body, MERGE_PATCH)
            rtts.append(time.monotonic() - started)

    try:
        for tag in range(rounds):
            started = time.monotonic()
            await asyncio.gather(*(worker(name, tag) for name in names))
            rates.append(per_worker * concurrency / (time.monotonic() - started))
    finally:
        await http.close()
        await kube.delete_namespaces(api, [namespace])
    return Floor(
        concurrency=concurrency,
        rtt_s=statistics.median(rtts),
        rtt_p99_s=percentile(rtts, 99),
        patches_per_s=max(rates),
    )


async def measure_writes_floor(
    api: Api, namespace: str, concurrency: int, rounds: int = 2
) -> float:
    """The fan-out's critical writes sent by a bare client, on the fan-out's own objects with
    the operator stopped: per app, a copy of its environment snapshot created, then its
    Deployments' pod templates changed by a JSON merge PATCH each (a rollout, as the operator's
    apply starts), `concurrency` apps at once. The best of `rounds`, each after the
    controller-manager caught up with the one before. What the floor's ConfigMap PATCHes leave
    out: that this API server charges a Deployment write several times a small PATCH."""
    http = transport.Transport(api.config)
    try:
        found = await _json(http, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")
        apps: dict[str, list[state.WorkloadEntry]] = {}
        for body in found["items"]:
            entry = state.workload_entry("Deployment", body)
            if entry is not None:
                apps.setdefault(entry.app, []).append(entry)
        snapshots: dict[str, dict[str, Any]] = {}
        for app, entries in apps.items():
            name = entries[0].snapshot
            if name:
                path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
                snapshots[app] = await _json(http, "GET", path)
        best = math.inf
        for index in range(rounds):
            await _rolled(http, namespace)

            async def write(app: str, index: int = index) -> None:
                snapshot = snapshots[app]
                copy = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"{snapshot['metadata']['name']}-floor-{index}"},
                    "type": snapshot.get("type", "Opaque"),
                    "data": snapshot.get("data") or {},
                }
                path = f"/api/v1/namespaces/{namespace}/secrets"
                await _json(http, "POST", path, copy)
                template = {"metadata": {"annotations": {"bench/floor": str(index)}}}
                await asyncio.gather(
                    *(
                        _json(
                            http,
                            "PATCH",
                            f"/apis/apps/v1/namespaces/{namespace}/deployments/{entry.name}",
                            {"spec": {"template": template}},
                            MERGE_PATCH,
                        )
                        for entry in apps[app]
                    )
                )

            started = time.monotonic()
            await workload.bounded(list(snapshots), write, concurrency)
            best = min(best, time.monotonic() - started)
        return best
    finally:
        await http.close()


async def _json(
    http: transport.Transport,
    method: str,
    path: str,
    body: Any = None,  # noqa: ANN401 (a JSON document)
    content_type: str = "application/json",
) -> Any:  # noqa: ANN401 (a JSON document)
    data = None if body is None else json.dumps(body).encode()
    reply = await http.request(method, path, data, content_type if data else None)
    if reply.status >= 400:
        raise BenchError(f"{method} {path}: {reply.status} {reply.reason}")
    return reply.json()


async def _rolled(http: transport.Transport, namespace: str, timeout: float = 300) -> None:
    """Wait until the controller-manager has seen every Deployment's last change."""
    deadline = time.monotonic() + timeout
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    while time.monotonic() < deadline:
        items = (await _json(http, "GET", path))["items"]
        if all(
            (d.get("status") or {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
            for d in items
        ):
            return
        await asyncio.sleep(0.5)
    raise BenchError(f"the Deployments of {namespace} did not catch up in {timeout:.0f} s")


# --------------------------------------------------------------------------------------------
# Helpers shared by the scenarios (and by the CI test in tests/bench)


async def settle(
    view: ClusterView,
    operator: OperatorProcess,
    apps: Iterable[AppKey],
    timeout: float = 600,
    rollout: bool = True,
) -> Sample:
    """Every Deployment rolled out (unless `rollout` is False), then the operator idle (queue
    empty, no reconcile) for 1.5 s."""
    keys = list(apps)
    deadline = time.monotonic() + timeout
    while rollout and not view.rolled_out(keys):
        if time.monotonic() > deadline:
            raise BenchError(f"Deployments not rolled out within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return await operator.wait_quiet(quiet=1.5, timeout=max(30.0, deadline - time.monotonic()))


def _timeout(apps: int) -> float:
    return 120 + apps * 0.5


@dataclass
class Rounds:
    """Per-app latencies of repeated changes, and what the operator spent on them."""

    latencies: list[float] = field(default_factory=list)
    all_s: list[float] = field(default_factory=list)
    writes: float = 0.0
    reads: float = 0.0
    webapp_reconciles: float = 0.0
    secret_reconciles: float = 0.0
    cpu_s: float = 0.0
    changes: int = 0  # app x change pairs

    def add(self, before: Sample, after: Sample, apps: int) -> None:
        self.writes += after.writes - before.writes
        self.reads += after.reads - before.reads
        self.webapp_reconciles += after.webapp_reconciles - before.webapp_reconciles
        self.secret_reconciles += after.secret_reconciles - before.secret_reconciles
        self.cpu_s += after.cpu_s - before.cpu_s
        self.changes += apps

    def summary(self, floor_s: float | None) -> dict[str, Any]:
        lat = self.latencies
        out: dict[str, Any] = {
            "rounds": len(self.all_s),
            "samples": len(lat),
            "p50_s": rounded(percentile(lat, 50)),
            "p95_s": rounded(percentile(lat, 95)),
            "p99_s": rounded(percentile(lat, 99)),
            "max_s": rounded(max(lat)),
            "all_p50_s": rounded(statistics.median(self.all_s)),
            "writes_per_app": rounded(self.writes / self.changes, 2),
            "reads_per_app": rounded(self.reads / self.changes, 2),
            "webapp_reconciles_per_app": rounded(self.webapp_reconciles / self.changes, 2),
            "cpu_ms_per_app": rounded(1000 * self.cpu_s / self.changes, 2),
        }
        if floor_s is not None:
            out["floor_s"] = rounded(floor_s)
            out["p99_floor_ratio"] = rounded(percentile(lat, 99) / floor_s, 2)
        return out


async def fanout_rounds(
    api: Api,
    view: ClusterView,
    operator: OperatorProcess,
    namespace: str,
    apps: Sequence[str],
    secret: str,
    rounds: int,
    first_revision: int,
    rollout: bool = True,
    processes: int = PROCESS_COUNT,
) -> Rounds:
    """Update `secret` `rounds` times; each time, wait for every app to converge on it, then
    for the rollout to finish (unless `rollout` is False) and the operator to go idle."""
    keys = [(namespace, app) for app in apps]
    result = Rounds()
    before = await settle(view, operator, keys, rollout=rollout)
    for index in range(rounds):
        target = Target(f"{namespace}/{secret}", first_revision + index, processes)
        round_ = view.expect(dict.fromkeys(keys, target))
        log(f"{namespace}: round {index + 1} of {rounds}")
        round_.start()
        await workload.update_secret(api, namespace, secret, secrets.token_hex(8))
        done = await view.wait(round_, _timeout(len(apps)))
        last = max(done.values())
        log(f"{namespace}: round {index + 1}: the last app converged after {last:.2f} s")
        result.latencies += done.values()
        result.all_s.append(last)
        after = await settle(view, operator, keys, rollout=rollout)
        result.add(before, after, len(apps))
        before = after
    return result


async def start_operator(bench: Bench, name: str) -> OperatorProcess:
    proc = bench.operator(name)
    proc.start()
    await proc.wait_ready()
    return proc


async def _populate(
    api: Api,
    view: ClusterView,
    sources: list[dict[str, Any]],
    webapps: list[dict[str, Any]],
    first_ref: dict[AppKey, str],
    processes: int,
) -> float:
    """Create Secrets, then WebApps; wait until every app runs revision 1; seconds taken."""
    started = time.monotonic()
    await workload.create_all(api, sources)
    await workload.create_all(api, webapps)
    targets = {app: Target(ref, 1, processes) for app, ref in first_ref.items()}
    await view.converge(targets, _timeout(len(targets)) + 2 * len(targets))
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# Fan-out and burst


async def fanout(bench: Bench, n: int) -> dict[str, Any]:
    """One Secret observed by n WebApps, updated `fanout_rounds` times."""
    api = bench.api
    namespace = f"bench-fanout-{n}"
    await kube.ensure_namespace(api, namespace)
    view = ClusterView(api, namespace)
    await view.start()
    try:
        operator = await start_operator(bench, f"fanout-{n}")
        apps = [f"app-{i:04d}" for i in range(n)]
        setup_s = await _populate(
            api,
            view,
            [workload.source_body(namespace, "shared", "*", "initial")],
            [
                workload.webapp_body(namespace, app, {"shared": "shared"}, pods=bench.pods)
                for app in apps
            ],
            {(namespace, app): f"{namespace}/shared" for app in apps},
            bench.processes,
        )
        result = await fanout_rounds(
            api,
            view,
            operator,
            namespace,
            apps,
            "shared",
            bench.profile.fanout_rounds,
            2,
            processes=bench.processes,
        )
        writes = 1 + writes_per_app(bench.processes) * n
        floor_s = bench.floor.writes(writes) if bench.floor else None
        summary = result.summary(floor_s)
        await bench.stop_operators()
        writes_floor = await measure_writes_floor(api, namespace, bench.concurrency)
        summary["writes_floor_s"] = rounded(writes_floor)
        summary["p99_writes_floor_ratio"] = rounded(
            percentile(result.latencies, 99) / writes_floor, 2
        )
        summary["setup_s"] = rounded(setup_s, 1)
        summary["all_s"] = [rounded(v) for v in result.all_s]
        summary["reads_per_webapp_reconcile"] = rounded(
            result.reads / max(1.0, result.webapp_reconciles), 3
        )
        summary["writes_per_webapp_reconcile"] = rounded(
            result.writes / max(1.0, result.webapp_reconciles), 3
        )
        return summary
    finally:
        await view.stop()
        await bench.stop_operators()
        await kube.delete_namespaces(api, [namespace])


async def burst(bench: Bench, m: int) -> dict[str, Any]:
    """m Secrets, each observed by one WebApp, all updated at once, `burst_rounds` times."""
    api = bench.api
    namespace = f"bench-burst-{m}"
    await kube.ensure_namespace(api, namespace)
    view = ClusterView(api, namespace)
    await view.start()
    try:
        operator = await start_operator(bench, f"burst-{m}")
        apps = [f"app-{i:04d}" for i in range(m)]
        keys = [(namespace, app) for app in apps]
        setup_s = await _populate(
            api,
            view,
            [workload.source_body(namespace, f"{app}-db", app, "initial") for app in apps],
            [
                workload.webapp_body(namespace, app, {"db": f"{app}-db"}, pods=bench.pods)
                for app in apps
            ],
            {(namespace, app): f"{namespace}/{app}-db" for app in apps},
            bench.processes,
        )
        result = Rounds()
        before = await settle(view, operator, keys)
        send_s: list[float] = []
        for index in range(bench.profile.burst_rounds):
            revision = 2 + index
            round_ = view.expect(
                {
                    (namespace, app): Target(f"{namespace}/{app}-db", revision, bench.processes)
                    for app in apps
                }
            )
            started = time.monotonic()

            async def send(app: str, round_: Any = round_) -> None:  # noqa: ANN401
                round_.start([(namespace, app)])
                await workload.update_secret(api, namespace, f"{app}-db", secrets.token_hex(8))

            # "At once": as fast as one client sends them (32 in flight).
            await workload.bounded(apps, send, concurrency=32)
            send_s.append(time.monotonic() - started)
            done = await view.wait(round_, _timeout(m))
            result.latencies += done.values()
            result.all_s.append(max(round_.since[k] + v for k, v in done.items()) - started)
            after = await settle(view, operator, keys)
            result.add(before, after, m)
            before = after
        # Per app: its revision, its snapshot and one apply per Deployment.
        floor_s = (
            bench.floor.writes(m * (1 + writes_per_app(bench.processes))) if bench.floor else None
        )
        summary = result.summary(floor_s)
        summary["setup_s"] = rounded(setup_s, 1)
        summary["send_s"] = rounded(statistics.median(send_s), 3)
        summary["all_s"] = [rounded(v) for v in result.all_s]
        if floor_s is not None:
            summary["all_floor_ratio"] = rounded(statistics.median(result.all_s) / floor_s, 2)
        return summary
    finally:
        await view.stop()
        await bench.stop_operators()
        await kube.delete_namespaces(api, [namespace])


# --------------------------------------------------------------------------------------------
# Steady state, idle, no-op reconciles, unrelated Secrets; then restart


def steady_namespaces(apps: int) -> list[str]:
    return [f"bench-steady-{i:02d}" for i in range(max(1, math.ceil(apps / APPS_PER_NAMESPACE)))]


@dataclass
class Steady:
    """The state the steady-state scenario leaves for the restart scenario."""

    operator: OperatorProcess
    view: ClusterView
    namespaces: list[str]
    apps: list[AppKey]
    figures: dict[str, Any]


async def steady(bench: Bench) -> Steady:
    api = bench.api
    profile = bench.profile
    namespaces = steady_namespaces(profile.steady_apps)
    for namespace in namespaces:
        await kube.ensure_namespace(api, namespace)
    apps = [
        (namespaces[i // APPS_PER_NAMESPACE], f"app-{i:04d}") for i in range(profile.steady_apps)
    ]
    view = ClusterView(api)
    await view.start()
    operator = await start_operator(bench, "steady")
    sources = [
        workload.source_body(ns, f"{app}-s{j}", app, "initial")
        for ns, app in apps
        for j in range(profile.secrets_per_app)
    ]
    webapps = [
        workload.webapp_body(
            ns, app, {f"option{j}": f"{app}-s{j}" for j in range(profile.secrets_per_app)}
        )
        for ns, app in apps
    ]
    log(f"steady: creating {len(sources)} Secrets and {len(webapps)} WebApps")
    setup_s = await _populate(
        api,
        view,
        sources,
        webapps,
        {(ns, app): f"{ns}/{app}-s0" for ns, app in apps},
        PROCESS_COUNT,
    )
    await settle(view, operator, apps, timeout=1800)
    ready = await ready_count(api)
    log(f"steady: {ready} of {len(apps)} WebApps Ready after {setup_s:.0f} s")
    figures: dict[str, Any] = {
        "apps": len(apps),
        "deployments": len(view.deployments),
        "opted_in_secrets": len(sources),
        "ready_apps": ready,
        "setup_s": rounded(setup_s, 1),
    }

    # Idle: nothing changes; what does the operator still do?
    await asyncio.sleep(5)
    s0, c0 = await operator.sample(), await kube.server_counts(api)
    await asyncio.sleep(profile.idle_s)
    s1, c1 = await operator.sample(), await kube.server_counts(api)
    minutes = (s1.at - s0.at) / 60
    server = c1 - c0
    idle = {
        "window_s": rounded(s1.at - s0.at, 1),
        "requests_per_min": rounded((s1.reads + s1.writes - s0.reads - s0.writes) / minutes, 2),
        "server_requests_per_min": rounded(server.total / minutes, 2),
        "server_watch_requests_per_min": rounded(server.watch / minutes, 2),
        "server_other_requests_per_min": rounded((server.read + server.write) / minutes, 2),
        "reconciles_per_min": rounded((s1.reconciles - s0.reconciles) / minutes, 2),
        "cpu_s_per_min": rounded((s1.cpu_s - s0.cpu_s) / minutes, 3),
    }

    # No-op reconciles: an annotation changes, nothing else; nothing should be written.
    touched = apps[: min(100, len(apps))]
    before = await operator.wait_quiet(quiet=1.5)
    token = secrets.token_hex(4)
    await workload.bounded(
        touched, lambda app: workload.touch_webapp(api, app[0], app[1], token), concurrency=16
    )
    after = await operator.wait_quiet(quiet=1.5)
    reconciles = max(1.0, after.webapp_reconciles - before.webapp_reconciles)
    noop = {
        "touched": len(touched),
        "noop_webapp_reconciles": after.webapp_reconciles - before.webapp_reconciles,
        "noop_reads": rounded((after.reads - before.reads) / reconciles, 3),
        "noop_writes": rounded((after.writes - before.writes) / reconciles, 3),
    }

    # Memory, then again with unrelated Secrets (which the server-side selector hides).
    rss_before = await operator.rss_median()
    unrelated = [
        workload.unrelated_body(namespaces[i % len(namespaces)], f"unrelated-{i:05d}")
        for i in range(profile.unrelated)
    ]
    log(f"steady: adding {len(unrelated)} unrelated Secrets")
    await workload.create_all(api, unrelated)
    await operator.wait_quiet(quiet=3.0)
    await asyncio.sleep(5)
    rss_after = await operator.rss_median()
    figures.update(
        {
            "unrelated_secrets": len(unrelated),
            "rss_mib_before": rounded(rss_before, 1),
            "rss_mib_after": rounded(rss_after, 1),
            "rss_growth_pct": rounded(100 * (rss_after - rss_before) / rss_before, 2),
        }
    )
    figures["idle"] = idle
    figures["noop"] = noop
    return Steady(operator, view, namespaces, apps, figures)


async def ready_count(api: Api) -> int:
    listing = await api.get_json("/apis/twelvefactor.dev/v1alpha1/webapps")
    count = 0
    for item in listing.get("items") or []:
        for condition in (item.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                count += 1
    return count


async def operator_writes(api: Api, namespaces: Iterable[str]) -> dict[str, str]:
    """What the operator wrote, as the API server records it: its managedFields entries
    (their `time` moves on every write) on every object of these namespaces it could write."""
    collections = (
        ("/apis/twelvefactor.dev/v1alpha1", "webapps", None),
        ("/api/v1", "secrets", "twelvefactor.dev/secret"),
        ("/apis/apps/v1", "deployments", None),
        ("/api/v1", "services", None),
        ("/api/v1", "configmaps", None),
    )
    writes: dict[str, str] = {}
    for namespace in namespaces:
        for base, plural, selector in collections:
            params = {"labelSelector": selector} if selector else {}
            listing = await api.get_json(f"{base}/namespaces/{namespace}/{plural}", **params)
            for obj in listing.get("items") or []:
                meta = obj["metadata"]
                for entry in meta.get("managedFields") or []:
                    if entry.get("manager") == "webapp-operator":
                        key = f"{plural}/{namespace}/{meta['name']}/{entry.get('subresource', '')}"
                        writes[key] = f"{entry.get('operation')}@{entry.get('time')}"
    return writes


async def operator_events(api: Api, namespaces: Iterable[str]) -> int:
    count = 0
    for namespace in namespaces:
        listing = await api.get_json(f"/api/v1/namespaces/{namespace}/events")
        count += sum(
            1
            for e in listing.get("items") or []
            if e.get("reportingComponent") == "webapp-operator"
            or (e.get("source") or {}).get("component") == "webapp-operator"
        )
    return count


async def list_floor(api: Api) -> float:
    """The least time any controller needs to read this state: one concurrent LIST of each
    collection the operator watches (its selectors), JSON-decoded, as Kopf does at start-up."""
    collections = (
        ("/api/v1/secrets", "twelvefactor.dev/secret"),
        ("/apis/twelvefactor.dev/v1alpha1/webapps", None),
        ("/apis/apps/v1/deployments", "app.kubernetes.io/managed-by=webapp-operator"),
        ("/apis/apps/v1/replicasets", "app.kubernetes.io/managed-by=webapp-operator"),
        ("/api/v1/services", "app.kubernetes.io/managed-by=webapp-operator"),
    )

    async def one(path: str, selector: str | None) -> None:
        params = {"labelSelector": selector} if selector else {}
        await api.get_json(path, **params)

    best = math.inf
    for _ in range(3):
        started = time.monotonic()
        await asyncio.gather(*(one(p, s) for p, s in collections))
        best = min(best, time.monotonic() - started)
    return best


async def restart(bench: Bench, state: Steady) -> dict[str, Any]:
    """Stop the operator over the steady state and start it again, nothing changed."""
    api = bench.api
    await state.operator.wait_quiet(quiet=2.0)
    written = await operator_writes(api, state.namespaces)
    events = await operator_events(api, state.namespaces)
    await state.operator.stop()
    counts = await kube.server_counts(api)
    operator = await start_operator(bench, "restart")
    ready_s = time.monotonic() - operator.started_at
    quiet = await operator.wait_quiet(quiet=5.0, timeout=1800)
    settle_s = quiet.at - operator.started_at
    await asyncio.sleep(5)
    final = await operator.sample()
    server = await kube.server_counts(api) - counts
    rewritten = await operator_writes(api, state.namespaces)
    changed = sorted(k for k in set(written) | set(rewritten) if written.get(k) != rewritten.get(k))
    events_after = await operator_events(api, state.namespaces)
    floor_s = await list_floor(api)
    if changed:
        log(f"restart: changed managedFields entries, e.g. {changed[:5]}")
    return {
        "apps": len(state.apps),
        "ready_s": rounded(ready_s, 2),
        "settle_s": rounded(settle_s, 2),
        "floor_s": rounded(floor_s, 3),
        "settle_floor_ratio": rounded(settle_s / floor_s, 1),
        "writes": server.write,
        "server_reads": server.read,
        "server_watches": server.watch,
        "operator_writes": final.writes,
        "operator_reads": final.reads,
        "reconciles": final.reconciles,
        "changed_objects": len(changed),
        "events_posted": events_after - events,
        "rss_mib": rounded(final.rss_mib, 1),
        "cpu_s": rounded(final.cpu_s, 2),
    }
