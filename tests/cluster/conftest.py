"""Fixtures for tests against a real Kubernetes API server.

The cluster is `$WEBAPP_TEST_KUBECONFIG` when set (kind, k3d, a real cluster: the tests create
and delete their own namespaces and a few cluster-scoped test CRDs there), otherwise the local
control plane of devcluster/localcluster.py, started on first use and reused afterwards (it is
left running for the next run; `make cluster-down` stops it).

Fixtures:
    kubeconfig          session: Path of the admin kubeconfig
    kube                session: an admin lightkube Client
    namespace           a fresh namespace for the test, deleted afterwards
    tool_env            environment for subprocesses: KUBECONFIG, .devcluster/bin on PATH
    background          start(argv, name=..., env=...) -> BackgroundProcess, stopped at teardown
    service_account     make(name, namespace=None) -> ServiceAccountIdentity (token + client)
    kit                 an opkit.Kit in the test's namespace (the CRD installed; the operator
                        it starts is stopped at teardown)
Helpers (import from tests.cluster.support): wait_for, BackgroundProcess, api_status, ...
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from tests.cluster import opkit, support
from tests.cluster.support import BackgroundProcess, ServiceAccountIdentity

ENV_KUBECONFIG = "WEBAPP_TEST_KUBECONFIG"
TEST_LABEL = "twelvefactor.dev/test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/cluster needs a cluster: mark it so (`-m "not cluster"`)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """The admin kubeconfig of the cluster under test."""
    external = os.environ.get(ENV_KUBECONFIG)
    if external:
        path = Path(external).expanduser().resolve()
        if not path.is_file():
            pytest.fail(f"{ENV_KUBECONFIG}={external}: no such file")
        return path
    import localcluster  # devcluster/ is on pythonpath (pyproject)

    try:
        return localcluster.ensure_up(support.REPO_ROOT)
    except localcluster.ClusterError as err:
        pytest.fail(f"could not start the local control plane: {err}")


@pytest.fixture(scope="session")
def uses_local_cluster() -> bool:
    """True when the tests run against devcluster's own control plane."""
    return not os.environ.get(ENV_KUBECONFIG)


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Iterator[Client]:
    """An admin client (cluster-admin on the local cluster)."""
    client = Client(KubeConfig.from_file(kubeconfig), field_manager="tests")
    yield client
    client.close()


@pytest.fixture
def tool_env(kubeconfig: Path) -> dict[str, str]:
    return support.tool_env(kubeconfig)


def _namespace_name(nodeid: str) -> str:
    """A DNS-1123 label from the test's name, unique per call."""
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.rsplit("::", 1)[-1].lower()).strip("-")
    return f"t-{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(kube: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, deleted (asynchronously: the namespace controller empties it) after."""
    name = _namespace_name(request.node.nodeid)
    kube.create(Namespace(metadata=ObjectMeta(name=name, labels={TEST_LABEL: "true"})))
    yield name
    try:
        kube.delete(Namespace, name)
    except ApiError as err:
        if not support.is_not_found(err):
            raise


BackgroundStarter = Callable[..., BackgroundProcess]


@pytest.fixture
def background(
    kubeconfig: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[BackgroundStarter]:
    """start(argv, name="proc", env=None) -> BackgroundProcess: run a command in the background
    with KUBECONFIG (and .devcluster/bin on PATH); its log is a file under tmp_path, attached to
    the test's report; everything started is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[BackgroundProcess] = []

    def start(
        argv: Sequence[str], name: str = "proc", env: dict[str, str] | None = None
    ) -> BackgroundProcess:
        proc = BackgroundProcess(
            name=name,
            argv=list(argv),
            log_path=tmp_path / f"{name}-{len(started)}.log",
            env=support.tool_env(kubeconfig, env),
        )
        started.append(proc.start())
        return proc

    yield start
    for proc in reversed(started):
        code = proc.stop()
        request.node.add_report_section(
            "teardown", f"{proc.name} (exit {code})", proc.log_text()[-20000:]
        )


ServiceAccountFactory = Callable[..., ServiceAccountIdentity]


@pytest.fixture
def service_account(
    kube: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[ServiceAccountFactory]:
    """make(name, namespace=<the test's namespace>) -> ServiceAccountIdentity: a ServiceAccount
    with a fresh token, as a kubeconfig file and a lightkube client (closed at teardown)."""
    made: list[ServiceAccountIdentity] = []

    def make(name: str, namespace: str = namespace) -> ServiceAccountIdentity:
        identity = support.service_account_identity(kube, kubeconfig, namespace, name, tmp_path)
        made.append(identity)
        return identity

    yield make
    for identity in made:
        identity.client.close()


@pytest.fixture
def kit(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    background: BackgroundStarter,
) -> Iterator[opkit.Kit]:
    yield from opkit.kit_fixture(kube, namespace, background, kubeconfig)
