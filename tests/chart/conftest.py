"""Fixtures for the chart tier: the cluster fixtures of tests/cluster, re-exported.

Tests here that need the API server are marked `pytest.mark.cluster` in their own module; the
rest (helm lint and template, RBAC audit, kustomize up to date, Dockerfile lint, skaffold) need
only the tools: helm and kubectl from `.devcluster/bin` (`make cluster-build`) or PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.chart import chartkit
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without helm or kubectl (not built, none on PATH) this tier cannot run: skip it, except in
    CI, where a missing tool must fail loudly rather than pass as skipped."""
    here = Path(__file__).parent
    mine = [item for item in items if here in item.path.parents]
    if not mine or os.environ.get("CI"):
        return
    try:
        for name in ("helm", "kubectl"):
            chartkit.tool(name)
    except chartkit.ToolMissingError as err:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=str(err)))
