"""Fixtures for the bench's CI run: the cluster fixtures of tests/cluster, re-exported."""

from __future__ import annotations

from tests.cluster.conftest import kube, kubeconfig, namespace

__all__ = ["kube", "kubeconfig", "namespace"]
