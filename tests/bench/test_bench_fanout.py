"""The bench's fan-out, tiny (N = 10), in CI: every observer converges. No timing is asserted.

It runs the bench's own code (bench/: the operator as a separate process, the watch streams
that detect convergence, the rounds) against the cluster of the other cluster tests, in the
test's namespace, so `make bench` cannot rot unnoticed. The figures are printed, not checked:
timings on a shared CI machine say nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import bench.scenarios as scenarios
import bench.workload as workload
import pytest
from bench.kube import Api, install_crd
from bench.operator import OperatorProcess
from bench.watch import ClusterView, Target, parse_sources
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Secret

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

APPS = 10
ROUNDS = 2
PROCESSES = workload.process_count(pods=False)  # web and worker, scaled to zero: no pods


async def _fanout(kubeconfig: Path, namespace: str, log_path: Path) -> scenarios.Rounds:
    api = Api.connect(kubeconfig)
    view = ClusterView(api, namespace)
    operator = OperatorProcess(
        kubeconfig=kubeconfig,
        log_path=log_path,
        namespaces=[namespace],
        operator_namespace=namespace,
    )
    apps = [f"app-{i:02d}" for i in range(APPS)]
    try:
        await install_crd(api)
        await view.start()
        await workload.create_all(api, [workload.source_body(namespace, "shared", "*", "one")])
        await workload.create_all(
            api,
            [
                workload.webapp_body(namespace, app, {"shared": "shared"}, pods=False)
                for app in apps
            ],
        )
        operator.start()
        await operator.wait_ready(timeout=60)
        first = Target(f"{namespace}/shared", 1, PROCESSES)
        await view.converge(dict.fromkeys(((namespace, app) for app in apps), first), 60)
        return await scenarios.fanout_rounds(
            api, view, operator, namespace, apps, "shared", ROUNDS, 2, processes=PROCESSES
        )
    finally:
        await operator.stop()
        await view.stop()
        await api.close()


async def _writes_floor(kubeconfig: Path, namespace: str) -> float:
    api = Api.connect(kubeconfig)
    try:
        return await scenarios.measure_writes_floor(api, namespace, concurrency=4, rounds=1)
    finally:
        await api.close()


def test_fanout_of_ten_converges_every_observer(
    kube: Client, kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    log_path = tmp_path / "operator.log"
    try:
        result = asyncio.run(_fanout(kubeconfig, namespace, log_path))
    finally:
        if log_path.exists():
            request.node.add_report_section("call", "operator log", log_path.read_text()[-20000:])

    assert len(result.latencies) == APPS * ROUNDS, "a round ended before every app converged"
    # Checked again from the API server, independently of the bench's watch streams.
    last = 1 + ROUNDS
    sources_of: dict[str, dict[str, int]] = {}
    for secret in kube.list(
        Secret, namespace=namespace, labels={"twelvefactor.dev/secret": "environment"}
    ):
        if secret.metadata and secret.metadata.name:
            annotations = secret.metadata.annotations or {}
            sources_of[secret.metadata.name] = parse_sources(
                annotations.get("twelvefactor.dev/sources")
            )
    snapshots: dict[str, str] = {}
    for app in (f"app-{i:02d}" for i in range(APPS)):
        deployments = list(
            kube.list(Deployment, namespace=namespace, labels={"twelvefactor.dev/webapp": app})
        )
        assert len(deployments) == PROCESSES, app
        names = {
            ref.secretRef.name
            for d in deployments
            if d.spec and d.spec.template.spec
            for c in d.spec.template.spec.containers
            for ref in c.envFrom or []
            if ref.secretRef
        }
        assert len(names) == 1, f"{app}: Deployments on different snapshots {names}"
        snapshots[app] = str(names.pop())
        assert sources_of.get(snapshots[app]) == {f"{namespace}/shared": last}, app

    # The floor of the same writes (the operator stopped): every app's snapshot copied, every
    # Deployment's pod template changed, nothing else.
    floor_s = asyncio.run(_writes_floor(kubeconfig, namespace))
    assert floor_s > 0
    for app, snapshot in snapshots.items():
        original = kube.get(Secret, snapshot, namespace=namespace)
        copy = kube.get(Secret, f"{snapshot}-floor-0", namespace=namespace)
        assert copy.data == original.data, app
        for d in kube.list(
            Deployment, namespace=namespace, labels={"twelvefactor.dev/webapp": app}
        ):
            assert d.spec is not None
            assert d.spec.template.metadata is not None
            assert (d.spec.template.metadata.annotations or {}).get("bench/floor") == "0", app
    print(  # noqa: T201 (figures for the log, not assertions)
        f"fan-out N={APPS}: p50 {scenarios.percentile(result.latencies, 50):.3f} s, "
        f"max {max(result.latencies):.3f} s, {result.writes / result.changes:.1f} writes per app"
    )
