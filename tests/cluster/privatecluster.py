"""A second local control plane for tests that break one: restart its API server, stop etcd.

The shared cluster of `.devcluster/` serves every other test of the session, so a fault test
runs its own (devcluster/localcluster.py under a temporary directory: own ports, data and
certificates; the binaries are the shared build's), as bench/kube.py's PrivateCluster does.
Start-up takes a few seconds; share one per module:

    @pytest.fixture(scope="module")
    def private(tmp_path_factory) -> Iterator[PrivateCluster]:
        yield from privatecluster.fixture(tmp_path_factory)
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig
from tests.cluster.support import DEVCLUSTER_BIN

import localcluster


@dataclass(frozen=True)
class PrivateCluster:
    """A running private control plane under `root`."""

    root: Path
    kubeconfig: Path

    @classmethod
    def up(cls, root: Path) -> PrivateCluster:
        state_dir = root / localcluster.STATE_DIRNAME
        state_dir.mkdir(parents=True, exist_ok=True)
        link = state_dir / "bin"
        if not link.is_symlink():
            link.symlink_to(DEVCLUSTER_BIN)
        return cls(root, localcluster.ensure_up(root))

    def down(self) -> None:
        localcluster.down(self.root)

    def client(self) -> Client:
        """An admin client (the caller closes it)."""
        return Client(KubeConfig.from_file(self.kubeconfig), field_manager="tests")

    def pid(self, component: str) -> int:
        state = localcluster.State.load(localcluster.Layout(self.root).state_file)
        assert state is not None, f"no private cluster recorded under {self.root}"
        return state.procs[component].pid

    def stop(self, component: str, sig: int = signal.SIGTERM) -> float:
        """Stop one component (the others keep running); returns the monotonic time it was gone."""
        localcluster.stop_component(self.root, component, sig)
        return time.monotonic()

    def start(self, component: str) -> float:
        """Start it again with the same arguments and ports; returns the monotonic time it
        answered its health check (for kube-apiserver: /readyz)."""
        localcluster.start_component(self.root, component)
        return time.monotonic()


def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCluster]:
    """Body of a fixture that starts a private cluster and always stops it."""
    if not (DEVCLUSTER_BIN / "kube-apiserver").exists():
        pytest.skip("the local control plane is not built (make cluster-build)")
    root = tmp_path_factory.mktemp("private-cluster")
    try:
        cluster = PrivateCluster.up(root)
    except localcluster.ClusterError as error:
        localcluster.down(root)
        pytest.fail(f"the private control plane did not start: {error}")
    try:
        yield cluster
    finally:
        cluster.down()
