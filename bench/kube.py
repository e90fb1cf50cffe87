"""The cluster side of the bench: a private control plane, admin clients, the operator's own
identity, and the API server's own count of that identity's requests.

- `PrivateCluster`: devcluster/localcluster.py run under `.bench/cluster/` (own ports, data,
  certificates), so 1,000 WebApps never land on the shared cluster of `.devcluster/`.
- `Api`: a lightkube `AsyncClient` for objects and a raw httpx client (the one lightkube
  builds) for watch streams and `/metrics`, where parsing every event into models would cost
  the bench more CPU than the operator it measures.
- `setup_operator_identity`: the operator runs as the ServiceAccount
  `webapp-operator/webapp-operator` (bound to cluster-admin), with a token from the
  TokenRequest API, so the API server can tell its requests apart from the bench's.
- `install_flow_schemas` / `server_counts`: three API Priority and Fairness FlowSchemas match
  that ServiceAccount's writes, watches and other reads. The API server counts every request it
  dispatches per FlowSchema (`apiserver_flowcontrol_dispatched_requests_total`), so the bench
  reads the operator's requests, Kopf's lists and watches included, from the server's side.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx
import yaml
from lightkube import AsyncClient, KubeConfig
from lightkube.config.client_adapter import AsyncClient as RawAsyncClient
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Namespace, Secret, ServiceAccount
from lightkube.resources.flowcontrol_apiserver_v1 import FlowSchema
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding

import localcluster
from bench import REPO_ROOT

BENCH_DIR: Final = REPO_ROOT / ".bench"
CLUSTER_ROOT: Final = BENCH_DIR / "cluster"
SHARED_BIN: Final = REPO_ROOT / ".devcluster" / "bin"
CRD_FILE: Final = REPO_ROOT / "crds" / "webapps.twelvefactor.dev.yaml"

FIELD_MANAGER: Final = "bench"
BENCH_LABEL: Final = "twelvefactor.dev/bench"
OPERATOR_NAMESPACE: Final = "webapp-operator"
OPERATOR_ACCOUNT: Final = "webapp-operator"
# The operator's requests by class, as APF verbs (request-info verbs, not HTTP methods).
FLOWS: Final = {
    "write": ("create", "update", "patch", "delete", "deletecollection"),
    "watch": ("watch",),
    "read": ("get", "list"),
}
FLOW_PREFIX: Final = "bench-webapp-operator-"

logger = logging.getLogger(__name__)

WebApp = create_namespaced_resource("twelvefactor.dev", "v1alpha1", "WebApp", "webapps")


class BenchError(RuntimeError):
    """The bench could not set up, measure or clean up."""


# --------------------------------------------------------------------------------------------
# The private control plane


@dataclass(frozen=True)
class PrivateCluster:
    """A second local control plane under `root` (default `.bench/cluster/`)."""

    root: Path = CLUSTER_ROOT

    def up(self) -> Path:
        """Start it (or reuse a healthy one); the binaries are the shared build's."""
        if not (SHARED_BIN / "kube-apiserver").exists():
            msg = f"no control plane binaries in {SHARED_BIN}: run `make cluster-build` first"
            raise BenchError(msg)
        state_dir = self.root / localcluster.STATE_DIRNAME
        state_dir.mkdir(parents=True, exist_ok=True)
        link = state_dir / "bin"
        if not link.is_symlink():
            link.symlink_to(SHARED_BIN)
        try:
            return localcluster.ensure_up(self.root)
        except localcluster.ClusterError as error:
            raise BenchError(f"the bench's control plane did not start: {error}") from None

    def down(self) -> None:
        localcluster.down(self.root)


# --------------------------------------------------------------------------------------------
# Clients


@dataclass
class Api:
    """Admin access to one cluster."""

    kubeconfig: Path
    config: SingleConfig
    client: AsyncClient
    raw: httpx.AsyncClient

    @classmethod
    def connect(cls, kubeconfig: Path) -> Api:
        config = KubeConfig.from_file(kubeconfig).get()
        if config is None:
            raise BenchError(f"{kubeconfig} has no current context")
        client = AsyncClient(config, field_manager=FIELD_MANAGER, timeout=httpx.Timeout(60.0))
        params = ConnectionParams(timeout=httpx.Timeout(60.0), trust_env=False)
        return cls(kubeconfig, config, client, RawAsyncClient(config, params))

    async def close(self) -> None:
        await self.client.close()
        await self.raw.aclose()

    async def get_json(self, path: str, **params: str) -> dict[str, Any]:
        response = await self.raw.get(path, params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def text(self, path: str) -> str:
        response = await self.raw.get(path)
        response.raise_for_status()
        return response.text


async def apply(api: Api, resource: Any, body: Mapping[str, Any]) -> None:  # noqa: ANN401
    """Server-side apply of a plain dict as the bench."""
    obj: Any = resource.from_dict(dict(body))
    await api.client.apply(obj, field_manager=FIELD_MANAGER, force=True)


async def install_crd(api: Api) -> None:
    body = yaml.safe_load(CRD_FILE.read_text())
    await apply(api, CustomResourceDefinition, body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = (await api.client.get(CustomResourceDefinition, body["metadata"]["name"])).to_dict()
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        await _sleep(0.2)
    raise BenchError("the WebApp CRD was not established within 60 s")


async def ensure_namespace(api: Api, name: str) -> None:
    try:
        await api.client.create(
            Namespace(metadata=ObjectMeta(name=name, labels={BENCH_LABEL: "1"}))
        )
    except ApiError as error:
        if error.status.code != 409:
            raise


async def delete_namespaces(api: Api, names: list[str], timeout: float = 600) -> None:
    """Delete namespaces and wait until they are gone (their objects with them)."""
    for name in names:
        try:
            await api.client.delete(Namespace, name)
        except ApiError as error:
            if error.status.code != 404:
                raise
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            try:
                await api.client.get(Namespace, name)
            except ApiError as error:
                if error.status.code == 404:
                    break
                raise
            if time.monotonic() > deadline:
                raise BenchError(f"namespace {name} still terminating after {timeout:.0f} s")
            await _sleep(0.5)


async def bench_namespaces(api: Api) -> list[str]:
    """Namespaces a bench run created (and a crashed one may have left behind)."""
    return [
        ns.metadata.name
        async for ns in api.client.list(Namespace, labels={BENCH_LABEL: "1"})
        if ns.metadata and ns.metadata.name
    ]


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class NodeHeartbeat:
    """Posts the fake Node's Ready heartbeat every few seconds while the bench runs.

    kwok (as configured by devcluster) posts the Node's status only every ~55 s and keeps no
    Lease; the node-lifecycle controller's grace period is 50 s, so the Node turns Unknown for
    a few seconds each minute and every pod on it is marked NotReady, for good (kwok does not
    mark them Ready again). Deployments then never finish rolling out, and neither do the
    operator's rollouts. A fresh `lastHeartbeatTime` on the Ready condition is a heartbeat the
    controller accepts. (Not a Lease: kwok takes a Lease held by another identity as a sign
    that another kwok manages the Node, and stops running its pods.)
    """

    def __init__(self, api: Api, node: str = localcluster.NODE_NAME, every: float = 10.0) -> None:
        self.api = api
        self.node = node
        self.every = every
        self.task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        from datetime import UTC, datetime

        from lightkube.resources.core_v1 import Node
        from lightkube.types import PatchType

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now,
        }
        await self.api.client.patch(
            Node.Status,
            self.node,
            {"status": {"conditions": [ready]}},
            patch_type=PatchType.STRATEGIC,
        )

    async def start(self) -> None:
        await self.beat()

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.every)
                try:
                    await self.beat()
                except (ApiError, httpx.HTTPError) as error:
                    logger.warning("node heartbeat failed: %s", error)

        self.task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


# --------------------------------------------------------------------------------------------
# The operator's identity and the API server's count of its requests


async def setup_operator_identity(api: Api, directory: Path) -> Path:
    """A kubeconfig for the ServiceAccount the operator runs as (a 24 h token)."""
    await ensure_namespace(api, OPERATOR_NAMESPACE)
    try:
        account = ServiceAccount(
            metadata=ObjectMeta(name=OPERATOR_ACCOUNT, namespace=OPERATOR_NAMESPACE)
        )
        await api.client.create(account)
    except ApiError as error:
        if error.status.code != 409:
            raise
    await apply(
        api,
        ClusterRoleBinding,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "bench-webapp-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": OPERATOR_ACCOUNT,
                    "namespace": OPERATOR_NAMESPACE,
                }
            ],
        },
    )
    request = ServiceAccount.Token(
        metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=86400)
    )
    created = await api.client.create(request, name=OPERATOR_ACCOUNT, namespace=OPERATOR_NAMESPACE)
    token = created.status.token if created.status else None
    if not token:
        raise BenchError("TokenRequest returned no token")
    admin = yaml.safe_load(api.kubeconfig.read_text())
    cluster = next(
        c["cluster"]
        for c in admin["clusters"]
        if c["name"]
        == next(
            x["context"]["cluster"]
            for x in admin["contexts"]
            if x["name"] == admin["current-context"]
        )
    )
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "bench", "user": user}}],
        "current-context": "operator",
    }
    # The operator reports ready from its first watch event on: give it one on an empty
    # cluster (an opted-in Secret of its own namespace, granted to nobody).
    sentinel = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "bench-sentinel",
            "namespace": OPERATOR_NAMESPACE,
            "labels": {"twelvefactor.dev/secret": "true"},
        },
        "type": "Opaque",
        "data": {"note": b64("bench")},
    }
    await apply(api, Secret, sentinel)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "operator.kubeconfig"
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _flow_schema(kind: str, verbs: tuple[str, ...]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "subjects": [
            {
                "kind": "ServiceAccount",
                "serviceAccount": {"name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
            }
        ],
        "resourceRules": [
            {
                "verbs": list(verbs),
                "apiGroups": ["*"],
                "resources": ["*"],
                "namespaces": ["*"],
                "clusterScope": True,
            }
        ],
    }
    if kind == "read":
        rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": f"{FLOW_PREFIX}{kind}"},
        "spec": {
            # Before `service-accounts` (9000), which would otherwise match: same priority
            # level as there (workload-low), so the operator is queued as on a real cluster.
            "matchingPrecedence": 1000,
            "priorityLevelConfiguration": {"name": "workload-low"},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [rule],
        },
    }


async def install_flow_schemas(api: Api) -> None:
    for kind, verbs in FLOWS.items():
        await apply(api, FlowSchema, _flow_schema(kind, verbs))


_SERIES = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format -> (name, labels, value) per sample."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = _SERIES.match(line)
        if found is None:
            continue
        labels = dict(_LABEL.findall(found.group("labels") or ""))
        try:
            value = float(found.group("value"))
        except ValueError:
            continue
        samples.append((found.group("name"), labels, value))
    return samples


@dataclass(frozen=True)
class ServerCounts:
    """The operator's requests as the API server dispatched them, by class; plus the time
    they waited in APF queues (throttling on the server's side) and how many it rejected."""

    write: float = 0.0
    watch: float = 0.0
    read: float = 0.0
    wait_s: float = 0.0
    rejected: float = 0.0

    def __sub__(self, other: ServerCounts) -> ServerCounts:
        return ServerCounts(
            self.write - other.write,
            self.watch - other.watch,
            self.read - other.read,
            self.wait_s - other.wait_s,
            self.rejected - other.rejected,
        )

    @property
    def total(self) -> float:
        return self.write + self.watch + self.read


async def server_durations(api: Api) -> dict[str, tuple[float, float]]:
    """(seconds, count) the API server spent per verb and resource, all clients together:
    `apiserver_request_duration_seconds` (e.g. "APPLY deployments", "POST secrets")."""
    found: dict[str, tuple[float, float]] = {}
    for name, labels, value in parse_metrics(await api.text("/metrics")):
        if name not in (
            "apiserver_request_duration_seconds_sum",
            "apiserver_request_duration_seconds_count",
        ):
            continue
        key = f"{labels.get('verb')} {labels.get('resource')}"
        if labels.get("subresource"):
            key += f"/{labels['subresource']}"
        total, count = found.get(key, (0.0, 0.0))
        if name.endswith("_sum"):
            total += value
        else:
            count += value
        found[key] = (total, count)
    return found


async def server_counts(api: Api) -> ServerCounts:
    counts: dict[str, float] = {"write": 0.0, "watch": 0.0, "read": 0.0, "wait_s": 0.0}
    rejected = 0.0
    for name, labels, value in parse_metrics(await api.text("/metrics")):
        schema = labels.get("flow_schema", "")
        if not schema.startswith(FLOW_PREFIX):
            continue
        kind = schema[len(FLOW_PREFIX) :]
        if name == "apiserver_flowcontrol_dispatched_requests_total" and kind in counts:
            counts[kind] += value
        elif name == "apiserver_flowcontrol_request_wait_duration_seconds_sum":
            counts["wait_s"] += value
        elif name == "apiserver_flowcontrol_rejected_requests_total":
            rejected += value
    return ServerCounts(
        counts["write"], counts["watch"], counts["read"], counts["wait_s"], rejected
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
