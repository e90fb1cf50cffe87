"""manifests/kustomize: generated from the chart, equal to it, and accepted by the API server.

- base/: the cluster-wide install (`kubectl apply -k manifests/kustomize/base`, or of
  `manifests/` itself, whose kustomization is that base: the path the docs give);
- overlays/namespaced/: the namespaced install for ci/namespaced-values.yaml (team-a, team-b).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from tests.chart import chartkit
from tests.cluster import support

BASE = chartkit.KUSTOMIZE_DIR / "base"
ROOT = chartkit.KUSTOMIZE_DIR.parent  # manifests/
NAMESPACED = chartkit.KUSTOMIZE_DIR / "overlays" / "namespaced"


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [chartkit.tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return chartkit.parse(done.stdout)


def test_kustomize_tree_is_up_to_date() -> None:
    expected = chartkit.kustomize_files()
    on_disk = {
        path.relative_to(chartkit.KUSTOMIZE_DIR).as_posix(): path.read_text()
        for path in chartkit.KUSTOMIZE_DIR.rglob("*.yaml")
    }
    stale = sorted(name for name in expected if on_disk.get(name) != expected[name])
    extra = sorted(
        name for name in on_disk if name not in expected and on_disk[name].startswith("# Gen")
    )
    assert (stale, extra) == ([], []), "manifests/kustomize is stale: run `make manifests`"


@pytest.mark.parametrize(
    ("directory", "objects"),
    [
        (BASE, chartkit.cluster_wide_objects),
        (ROOT, chartkit.cluster_wide_objects),
        (NAMESPACED, chartkit.namespaced_objects),
    ],
    ids=["base", "manifests", "namespaced"],
)
def test_kustomize_build_equals_the_chart(directory: Path, objects: Any) -> None:
    built = chartkit.by_key(_kustomize(directory))
    chart = chartkit.by_key(chartkit.with_kustomize_labels(objects()))
    assert sorted(built) == sorted(chart)
    for key, obj in chart.items():
        assert built[key] == obj, key


def test_base_installs_every_piece_of_the_operator() -> None:
    kinds = {obj["kind"] for obj in _kustomize(BASE)}
    assert kinds == {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
    }


def _ensure_namespace(kube: Client, name: str) -> bool:
    """Create the namespace unless it is there; True if made here. A namespace still being
    deleted is waited for (new content in it would be refused)."""

    def created() -> bool | None:
        try:
            kube.create(
                Namespace(metadata=ObjectMeta(name=name, labels={"twelvefactor.dev/test": "true"}))
            )
        except ApiError as err:
            if support.api_status(err) != 409:
                raise
            found = kube.get(Namespace, name)
            terminating = found.status is not None and found.status.phase == "Terminating"
            return None if terminating else False
        return True

    def settled() -> tuple[bool] | None:
        result = created()
        return None if result is None else (result,)

    (made,) = support.wait_for(settled, 120, message=f"namespace {name} to be usable")
    return made


@pytest.fixture(scope="module")
def install_namespaces(kube: Client) -> Iterator[None]:
    """The namespaces the manifests name exist (a server-side dry run creates nothing, so the
    objects inside a new Namespace would be refused); those made here are removed after."""
    made = [
        name for name in (chartkit.NAMESPACE, "team-a", "team-b") if _ensure_namespace(kube, name)
    ]
    yield
    for name in made:
        with contextlib.suppress(ApiError):
            kube.delete(Namespace, name)


@pytest.mark.cluster
@pytest.mark.usefixtures("install_namespaces")
@pytest.mark.parametrize(
    "directory", [BASE, ROOT, NAMESPACED], ids=["base", "manifests", "namespaced"]
)
def test_server_side_dry_run_accepts_it(directory: Path, kubeconfig: Path) -> None:
    flags = ["--server-side", "--dry-run=server", "--field-manager=webapp-operator-install"]
    done = subprocess.run(
        [chartkit.tool("kubectl"), "apply", "-k", str(directory), *flags],
        capture_output=True,
        text=True,
        env=support.tool_env(kubeconfig),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(_kustomize(directory)), done.stdout
