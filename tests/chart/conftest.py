"""Fixtures for the chart tier: the cluster fixtures of tests/cluster, re-exported.

Tests here that need the API server are marked `pytest.mark.cluster` in their own module; the
rest (helm lint and template, RBAC audit, kustomize up to date, Dockerfile lint, skaffold) need
only the tools: helm and kubectl from `.devcluster/bin` (`make cluster-build`) or PATH.
"""

from __future__ import annotations

from tests.cluster.conftest import (
    background,
    kube,
    kubeconfig,
    namespace,
    service_account,
    tool_env,
    uses_local_cluster,
)

__all__ = [
    "background",
    "kube",
    "kubeconfig",
    "namespace",
    "service_account",
    "tool_env",
    "uses_local_cluster",
]
