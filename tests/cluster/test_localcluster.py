"""The local control plane's life cycle: up reuses a healthy cluster, restarts a broken one,
and down stops every process it started and nothing else.

Runs a second, private cluster under tmp_path (its own ports, certificates and data), so the
shared one that the other tests use is left alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Node
from tests.cluster.support import DEVCLUSTER_BIN, wait_for

import localcluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture
def private_root(tmp_path: Path) -> Path:
    if not (DEVCLUSTER_BIN / "kube-apiserver").exists():
        pytest.skip("the local control plane is not built (make cluster-build)")
    (tmp_path / ".devcluster").mkdir()
    (tmp_path / ".devcluster" / "bin").symlink_to(DEVCLUSTER_BIN)
    return tmp_path


def _pids(root: Path) -> dict[str, int]:
    state = localcluster.State.load(localcluster.Layout(root).state_file)
    assert state is not None
    return {name: proc.pid for name, proc in state.procs.items()}


def _gone(pid: int) -> bool:
    """No such process, or only a zombie left (reaped by whoever its parent is)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))


def test_up_reuses_restarts_and_down_leaves_nothing(private_root: Path) -> None:
    seen: list[int] = []
    try:
        kubeconfig = localcluster.ensure_up(private_root)
        first = _pids(private_root)
        seen += first.values()

        assert kubeconfig == private_root / ".devcluster" / "kubeconfig"
        with Client(KubeConfig.from_file(kubeconfig)) as client:
            assert [n.metadata.name for n in client.list(Node) if n.metadata] == ["kwok-node-0"]
        assert localcluster.ensure_up(private_root) == kubeconfig
        assert _pids(private_root) == first, "a healthy cluster was not reused"

        os.kill(first["kube-scheduler"], signal.SIGKILL)
        wait_for(lambda: _gone(first["kube-scheduler"]), timeout=10, message="scheduler killed")
        localcluster.ensure_up(private_root)
        second = _pids(private_root)
        seen += second.values()

        assert set(second.values()).isdisjoint(first.values()), "a broken cluster was reused"
        assert all(_gone(pid) for pid in first.values()), "the broken cluster was not stopped"

        # One component restarted alone: same ports, a new pid, and the cluster healthy again.
        localcluster.restart(private_root, "kube-apiserver", signal.SIGKILL)
        third = _pids(private_root)
        seen += third.values()
        assert third["kube-apiserver"] != second["kube-apiserver"]
        assert {k: v for k, v in third.items() if k != "kube-apiserver"} == {
            k: v for k, v in second.items() if k != "kube-apiserver"
        }
        assert localcluster.ensure_up(private_root) == kubeconfig
        assert _pids(private_root) == third, "the restarted cluster was not reused"
    finally:
        localcluster.down(private_root)

    assert all(_gone(pid) for pid in seen), "down left processes behind"
    assert not (private_root / ".devcluster" / "kubeconfig").exists()
