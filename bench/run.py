"""`python -m bench.run`: the operator's benchmark (docs/performance.md).

    python -m bench.run --profile quick            # make bench-quick (a few minutes)
    python -m bench.run --profile full             # make bench
    python -m bench.run --compare OLD.json         # and print each figure's ratio to OLD
    python -m bench.run --report .bench/results.json --compare OLD.json   # no run: compare only

Writes `.bench/results.json` (the previous one moves to `.bench/results.prev.json`) and
`.bench/results.md`; prints the table. Exits 1 if a target is missed (`--no-check`: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, kube, report, scenarios
from bench.kube import Api, BenchError, PrivateCluster
from bench.scenarios import PROFILES, Bench, log
from webapp_operator.cli.run import CONCURRENCY

SCENARIOS = ("floor", "fanout", "burst", "steady", "restart")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios ({','.join(SCENARIOS)}); restart needs steady",
    )
    parser.add_argument("--fanout", help="override the fan-out sizes, e.g. 10,100")
    parser.add_argument("--burst", help="override the burst sizes, e.g. 100")
    parser.add_argument("--steady-apps", type=int, help="override the steady-state app count")
    parser.add_argument("--out", type=Path, default=kube.BENCH_DIR / "results.json")
    parser.add_argument("--compare", type=Path, help="an earlier results.json to compare with")
    parser.add_argument(
        "--report", type=Path, help="do not run: print this results.json (and --compare)"
    )
    parser.add_argument("--cluster-root", type=Path, default=kube.CLUSTER_ROOT)
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="bench this cluster instead of the private one (needs cluster-admin)",
    )
    parser.add_argument(
        "--keep-cluster", action="store_true", help="leave the private control plane running"
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass to `webapp-operator run` (repeatable), e.g. --operator-arg=--concurrency=16",
    )
    parser.add_argument("--no-check", action="store_true", help="exit 0 even if a target fails")
    return parser.parse_args(argv)


def _concurrency(operator_args: list[str]) -> int:
    for index, arg in enumerate(operator_args):
        if arg.startswith("--concurrency="):
            return int(arg.split("=", 1)[1])
        if arg == "--concurrency" and index + 1 < len(operator_args):
            return int(operator_args[index + 1])
    return CONCURRENCY


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip()


def _meta(args: argparse.Namespace, profile: scenarios.Profile) -> dict[str, Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    dirty = _git("status", "--porcelain", "--untracked-files=no", "operator")
    return {
        "profile": profile.name,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else ""),
        "cpus": os.cpu_count() or 0,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "operator_args": " ".join(args.operator_arg) or "(defaults)",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = PROFILES[args.profile]
    profile = scenarios.Profile(
        **{
            **base.__dict__,
            "fanout": tuple(int(x) for x in args.fanout.split(",")) if args.fanout else base.fanout,
            "burst": tuple(int(x) for x in args.burst.split(",")) if args.burst else base.burst,
            "steady_apps": args.steady_apps or base.steady_apps,
        }
    )
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        raise BenchError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cluster = None if args.kubeconfig else PrivateCluster(args.cluster_root.resolve())
    started = time.monotonic()
    if cluster is not None:
        log(f"starting (or reusing) the bench's control plane in {cluster.root}")
        kubeconfig = cluster.up()
    else:
        kubeconfig = args.kubeconfig
    api = Api.connect(kubeconfig)
    results: dict[str, Any] = {"meta": _meta(args, profile)}
    bench = Bench(
        api=api,
        profile=profile,
        operator_kubeconfig=kubeconfig,
        logs=kube.BENCH_DIR / "logs",
        operator_args=list(args.operator_arg),
        concurrency=_concurrency(args.operator_arg),
    )
    heartbeat = kube.NodeHeartbeat(api) if cluster is not None else None
    try:
        if heartbeat is not None:
            await heartbeat.start()
        leftovers = await kube.bench_namespaces(api)
        if leftovers:
            log(f"deleting {len(leftovers)} namespaces left by an earlier run")
            await kube.delete_namespaces(api, leftovers)
        await kube.install_crd(api)
        bench.operator_kubeconfig = await kube.setup_operator_identity(api, kube.BENCH_DIR)
        await kube.install_flow_schemas(api)
        counts = await kube.server_counts(api)
        durations = await kube.server_durations(api)

        if "floor" in only or only & {"fanout", "burst"}:
            log(f"floor: PATCH round trip at concurrency {bench.concurrency}")
            bench.floor = await scenarios.measure_floor(
                api, bench.concurrency, profile.floor_patches, profile.floor_rounds
            )
            results["floor"] = bench.floor.as_dict()
            log(f"floor: {results['floor']}")
        if "fanout" in only:
            results["fanout"] = {}
            for n in profile.fanout:
                log(f"fan-out N={n}: {profile.fanout_rounds} rounds")
                await _floor_now(bench)
                figures = await scenarios.fanout(bench, n)
                figures.update(_floor_fields(bench))
                results["fanout"][str(n)] = figures
                log(f"fan-out N={n}: p50 {figures['p50_s']} s, p99 {figures['p99_s']} s")
        if "burst" in only:
            results["burst"] = {}
            for m in profile.burst:
                log(f"burst M={m}: {profile.burst_rounds} rounds")
                await _floor_now(bench)
                figures = await scenarios.burst(bench, m)
                figures.update(_floor_fields(bench))
                results["burst"][str(m)] = figures
                log(f"burst M={m}: p50 {figures['p50_s']} s, p99 {figures['p99_s']} s")
        steady = None
        if "steady" in only or "restart" in only:
            log(f"steady: {profile.steady_apps} WebApps")
            steady = await scenarios.steady(bench)
            figures = dict(steady.figures)
            results["idle"] = figures.pop("idle")
            noop = figures.pop("noop")
            results["steady"] = figures
            results.setdefault("per_reconcile", {}).update(noop)
            log(f"steady: {results['steady']}")
            log(f"idle: {results['idle']}")
        if "restart" in only and steady is not None:
            log(f"restart over {len(steady.apps)} WebApps")
            results["restart"] = await scenarios.restart(bench, steady)
            log(f"restart: {results['restart']}")
        if steady is not None:
            await steady.view.stop()
        _per_reconcile(results)
        results["apiserver"] = _server_time(durations, await kube.server_durations(api))
        throttle = await kube.server_counts(api) - counts
        requests = max(1.0, throttle.total)
        results["throttle"] = {
            "server_requests": throttle.total,
            "rejected": throttle.rejected,
            "server_wait_s": round(throttle.wait_s, 3),
            "server_wait_ms_per_request": round(1000 * throttle.wait_s / requests, 3),
            "client_rate_limit": "none (lightkube/httpx and Kopf's aiohttp have no QPS limiter)",
        }
    finally:
        await bench.stop_operators()
        try:
            names = await kube.bench_namespaces(api)
            if names:
                log(f"deleting {len(names)} bench namespaces")
                await kube.delete_namespaces(api, names)
        finally:
            if heartbeat is not None:
                await heartbeat.stop()
            await api.close()
            if cluster is not None and not args.keep_cluster:
                log("stopping the bench's control plane (--keep-cluster keeps it)")
                cluster.down()
    results["meta"]["duration_s"] = round(time.monotonic() - started)
    results["targets"] = report.evaluate_targets(results)
    return results


async def _floor_now(bench: Bench) -> None:
    """The floor again, right before a latency scenario: the machine is shared and its load
    drifts, so each latency is set against the floor of its own minute. The best of the
    profile's rounds, as the first floor: a single round's first requests open the client's
    connections, and one sample of a third of a second is at the mercy of the machine's other
    work."""
    bench.floor = await scenarios.measure_floor(
        bench.api, bench.concurrency, bench.profile.floor_patches, bench.profile.floor_rounds
    )


def _floor_fields(bench: Bench) -> dict[str, float]:
    assert bench.floor is not None
    return {
        "floor_patch_rtt_s": round(bench.floor.rtt_s, 5),
        "floor_patches_per_s": round(bench.floor.patches_per_s, 1),
    }


# The requests the operator's rollouts are made of, as the API server timed them (all clients).
SERVER_KINDS = (
    "APPLY deployments",
    "PATCH deployments",
    "POST secrets",
    "DELETE secrets",
    "POST events",
    "PATCH webapps/status",
    "PATCH configmaps",
)


def _server_time(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    """Mean server-side milliseconds per request kind over the run (ConfigMap PATCH is the
    floor's request): what the same two cores charge for each write the operator makes."""
    figures: dict[str, Any] = {}
    for kind in SERVER_KINDS:
        total = after.get(kind, (0.0, 0.0))[0] - before.get(kind, (0.0, 0.0))[0]
        count = after.get(kind, (0.0, 0.0))[1] - before.get(kind, (0.0, 0.0))[1]
        if count > 0:
            key = kind.replace(" ", "_").replace("/", "_").lower()
            figures[f"{key}_ms"] = round(1000 * total / count, 2)
            figures[f"{key}_count"] = count
    return figures


def _per_reconcile(results: dict[str, Any]) -> None:
    """Requests per WebApp reconcile, from the fan-out of 100 (or the nearest size run)."""
    fanout = results.get("fanout") or {}
    if not fanout:
        return
    size = min(fanout, key=lambda n: abs(int(n) - 100))
    figures = fanout[size]
    results.setdefault("per_reconcile", {}).update(
        {
            "from": f"fanout.{size}",
            "reads": figures["reads_per_webapp_reconcile"],
            "writes": figures["writes_per_webapp_reconcile"],
            "reads_per_change": figures["reads_per_app"],
            "writes_per_change": figures["writes_per_app"],
            "webapp_reconciles_per_change": figures["webapp_reconciles_per_app"],
        }
    )


def write(results: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """Write results.json (keeping the previous one) and results.md; the previous results."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    previous = None
    if out.exists():
        prev_path = out.with_name(out.stem + ".prev.json")
        shutil.copyfile(out, prev_path)
        previous = report.load(prev_path)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(report.table(results, previous))
    return previous


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        results = report.load(args.report)
        print(report.table(results))  # noqa: T201
        if args.compare:
            print(report.compare(report.load(args.compare), results))  # noqa: T201
        return 0
    try:
        results = asyncio.run(run(args))
    except BenchError as error:
        log(f"error: {error}")
        return 2
    previous = write(results, args.out)
    print(report.table(results, previous))  # noqa: T201
    if args.compare:
        print(f"Compared with {args.compare}:\n")  # noqa: T201
        print(report.compare(report.load(args.compare), results))  # noqa: T201
    log(f"results in {args.out} and {args.out.with_suffix('.md')}")
    failed = [name for name, v in results["targets"].items() if not v["ok"]]
    if failed:
        log(f"targets missed: {'; '.join(failed)}")
        return 0 if args.no_check else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
