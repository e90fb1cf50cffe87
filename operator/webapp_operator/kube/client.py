"""The API gateway: with `transport.py`, the only modules that talk to the Kubernetes API server.

It reads the current kubeconfig (or the in-cluster ServiceAccount), builds lightkube clients
for the CLI and the few typed calls, counts every request it sends (reads and writes apart, for
metrics and benchmarks), and offers the few operations the operator and the CLI need, on plain
dicts:

- server-side apply with one field manager (`webapp-operator`),
- create (409 AlreadyExists is an answer, not an error, for create-only objects),
- merge patches of metadata and of the status subresource,
- delete,
- get of one object (a ServiceAccount checked for a grant, a Secret holding a name the operator
  wanted to create), as a plain dict or None,
- Events in the core/v1 shape `kubectl describe` shows.

Nothing here logs a request or response body: bodies can hold Secret data.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx2 as httpx
import orjson
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource

from webapp_operator import GROUP, KIND, PLURAL, VERSION
from webapp_operator.kube import transport

FIELD_MANAGER: Final = "webapp-operator"
# Holds a process's replica count while it passes to its autoscaler (reconcile._handoff).
HANDOFF_MANAGER: Final = "webapp-operator-handoff"
COMPONENT: Final = "webapp-operator"
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

WebAppResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)
WebAppStatusResource = WebAppResource.Status


@dataclass
class RequestCounter:
    """Requests sent through the gateway, by kind (`read`/`write`) and by verb."""

    reads: int = 0
    writes: int = 0
    by_verb: collections.Counter[str] = field(default_factory=collections.Counter)

    def record(self, method: str, path: str) -> None:
        watch = "watch=" in path
        verb = "WATCH" if watch else method
        self.by_verb[verb] += 1
        if method in WRITE_METHODS:
            self.writes += 1
        elif not watch:
            self.reads += 1


def load_config(kubeconfig: str | None = None) -> SingleConfig:
    """The cluster to talk to: KUBECONFIG / ~/.kube/config, else the in-cluster account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        config = KubeConfig.from_file(path).get() if path else KubeConfig.from_env().get()
    except Exception as error:  # noqa: BLE001 (lightkube raises several kinds here)
        msg = (
            f"no cluster configured: set KUBECONFIG, use ~/.kube/config, or run in a pod ({error})"
        )
        raise ConfigurationError(msg) from None
    if config is None:
        msg = "the kubeconfig has no current context"
        raise ConfigurationError(msg)
    return config


class ConfigurationError(Exception):
    """No usable kubeconfig or in-cluster credentials."""


def _counting_hook(counter: RequestCounter) -> Any:  # noqa: ANN401 (an httpx hook)
    async def hook(request: httpx.Request) -> None:
        counter.record(request.method, str(request.url))

    return hook


def _sync_counting_hook(counter: RequestCounter) -> Any:  # noqa: ANN401 (an httpx hook)
    def hook(request: httpx.Request) -> None:
        counter.record(request.method, str(request.url))

    return hook


def async_client(
    counter: RequestCounter, config: SingleConfig | None = None, timeout: float = 30.0
) -> AsyncClient:
    """An async lightkube client whose every request is counted, for the few typed calls
    (the leader Lease, the sealing keys, the operator's namespace); the hot path, the Gateway
    and the informers, goes through `transport.Transport`."""
    config = config or load_config()
    client = AsyncClient(config, field_manager=FIELD_MANAGER, timeout=httpx.Timeout(timeout))
    # lightkube keeps its httpx client private; the hook is the one supported way in.
    client._client._client.event_hooks["request"].append(_counting_hook(counter))
    return client


def sync_client(
    counter: RequestCounter | None = None,
    config: SingleConfig | None = None,
    namespace: str | None = None,
) -> Client:
    """A blocking client for the CLI."""
    client = Client(config or load_config(), namespace=namespace, field_manager=FIELD_MANAGER)
    if counter is not None:
        client._client._client.event_hooks["request"].append(_sync_counting_hook(counter))
    return client


def is_conflict(error: ApiError) -> bool:
    return error.status.code == 409


def is_forbidden(error: ApiError) -> bool:
    return error.status.code == 403


def is_not_found(error: ApiError) -> bool:
    return error.status.code == 404


def is_already_exists(error: ApiError) -> bool:
    return error.status.code == 409 and error.status.reason == "AlreadyExists"


def resource_of(obj: Mapping[str, Any]) -> Any:  # noqa: ANN401 (a lightkube resource class)
    """The lightkube resource class of a dict object (core kinds and WebApp)."""
    from lightkube.core.resource_registry import resource_registry

    if obj["apiVersion"] == f"{GROUP}/{VERSION}" and obj["kind"] == KIND:
        return WebAppResource
    return resource_registry.load(obj["apiVersion"], obj["kind"])


# (apiVersion, kind) -> (URL prefix, plural) of every kind the Gateway writes (or reads).
_PATHS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts"),
    ("v1", "Secret"): ("/api/v1", "secrets"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("v1", "Event"): ("/api/v1", "events"),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps"),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("apps/v1", "ReplicaSet"): ("/apis/apps/v1", "replicasets"),
    ("networking.k8s.io/v1", "Ingress"): ("/apis/networking.k8s.io/v1", "ingresses"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (
        "/apis/autoscaling/v2",
        "horizontalpodautoscalers",
    ),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),
    ("policy/v1", "PodDisruptionBudget"): ("/apis/policy/v1", "poddisruptionbudgets"),
    (f"{GROUP}/{VERSION}", KIND): (f"/apis/{GROUP}/{VERSION}", PLURAL),
}

_JSON: Final = "application/json"
_MERGE: Final = "application/merge-patch+json"
_APPLY: Final = "application/apply-patch+yaml"  # JSON is YAML: the API server takes either
_STRATEGIC: Final = "application/strategic-merge-patch+json"


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """The URL path of a namespaced collection, or of one object in it."""
    try:
        prefix, plural = _PATHS[(api_version, kind)]
    except KeyError:
        msg = f"the gateway does not write {kind} ({api_version})"
        raise ValueError(msg) from None
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class Gateway:
    """The operations the controller performs, counted, on plain dicts.

    Requests go through `transport.Transport` (aiohttp, with lightkube's TLS and authentication
    settings) as plain JSON: no response is decoded into lightkube's models, which cost more
    CPU than the request itself for a Deployment (docs/performance.md). Failures raise
    lightkube's `ApiError`, so callers test `status.code` as everywhere else.
    """

    def __init__(
        self,
        http: transport.Http,
        on_event: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.http = http
        self.on_event = on_event

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str = _JSON,
        params: Mapping[str, str] | None = None,
    ) -> None:
        content = None if body is None else orjson.dumps(body)
        reply = await self.http.request(
            method, path, content, content_type if content is not None else None, params
        )
        if reply.status >= 400:
            raise api_error(reply)

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """One object as a plain dict; None when it does not exist (a read, counted as one)."""
        reply = await self.http.request("GET", object_path(api_version, kind, namespace, name))
        if reply.status == 404:
            return None
        if reply.status >= 400:
            raise api_error(reply)
        body: dict[str, Any] = reply.json()
        return body

    async def apply(self, obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> None:
        """Server-side apply with our field manager (or `manager`); we own what we apply
        (force)."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        params = {"fieldManager": manager, "force": "true"}
        await self._send("PATCH", path, obj, _APPLY, params)

    async def patch_strategic(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> None:
        """A strategic merge patch of a built-in kind (lists merged by their keys, such as
        containers by name), recorded under our field manager."""
        path = object_path(api_version, kind, namespace, name)
        await self._send("PATCH", path, patch, _STRATEGIC, {"fieldManager": FIELD_MANAGER})

    async def create(self, obj: Mapping[str, Any]) -> bool:
        """Create a create-only object; False when it already existed."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace", ""))
        try:
            await self._send("POST", path, obj, params={"fieldManager": FIELD_MANAGER})
        except ApiError as error:
            if is_already_exists(error):
                return False
            raise
        return True

    async def name_free(self, obj: Mapping[str, Any]) -> bool:
        """Whether `obj` could be created: a dry-run create (nothing is stored), False when an
        object of its name exists (409). It needs only `create`, where a GET needs `get`."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace", ""))
        params = {"fieldManager": FIELD_MANAGER, "dryRun": "All"}
        try:
            await self._send("POST", path, obj, params=params)
        except ApiError as error:
            if is_already_exists(error):
                return False
            raise
        return True

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete an object, and in the background what it owns (a Job's pods: the API
        server's default for a Job orphans them); False when it was already gone."""
        try:
            path = object_path(api_version, kind, namespace, name)
            await self._send("DELETE", path, params={"propagationPolicy": "Background"})
        except ApiError as error:
            if is_not_found(error):
                return False
            raise
        return True

    async def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None:
        """A JSON merge patch of labels/annotations (None values remove keys)."""
        path = object_path(api_version, kind, namespace, name)
        await self._send("PATCH", path, {"metadata": dict(metadata)}, _MERGE)

    async def patch_secret_data(
        self, namespace: str, name: str, data: Mapping[str, str | None]
    ) -> None:
        """A merge patch of a Secret's data: plain values in, base64 on the wire; None removes."""
        import base64

        encoded = {
            k: None if v is None else base64.b64encode(v.encode()).decode() for k, v in data.items()
        }
        path = object_path("v1", "Secret", namespace, name)
        await self._send("PATCH", path, {"data": encoded}, _MERGE)

    async def patch_webapp_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Replace the WebApp's status lists and fields by a merge patch of the subresource."""
        path = object_path(f"{GROUP}/{VERSION}", KIND, namespace, name) + "/status"
        params = {"fieldManager": FIELD_MANAGER}
        await self._send("PATCH", path, {"status": dict(status)}, _MERGE, params)

    async def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
        name: str | None = None,
    ) -> None:
        """A core/v1 Event about `involved` (its apiVersion, kind, metadata). Names only.

        With `name`, the Event is told at most once for as long as the API server keeps it
        (one hour by default): a second post of that name is refused (AlreadyExists) and is
        taken as "already told", even by another process after a restart.
        """
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        micro = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                **({"name": name} if name else {"generateName": f"{meta['name']}."}),
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": os.environ.get("HOSTNAME", COMPONENT),
            "action": reason,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": micro,
            "count": 1,
        }
        try:
            await self._send("POST", object_path("v1", "Event", meta["namespace"]), event)
        except ApiError as error:
            if name and is_already_exists(error):
                return
            raise
        if self.on_event is not None:
            self.on_event(reason, warning)


def api_error(reply: transport.Reply) -> ApiError:
    """lightkube's error for a failed reply; a body that is no Status becomes one (its code and
    reason phrase only: a body is never put in an error, it may hold Secret data)."""
    from lightkube.models.meta_v1 import Status

    status: Status | None = None
    try:
        body = reply.json()
        if body.get("kind") == "Status":
            status = Status(**{k: body.get(k) for k in ("code", "reason", "message")})
    except (ValueError, TypeError, AttributeError):
        status = None
    if status is None or status.code is None:
        status = Status(code=reply.status, reason=reply.reason, message=reply.reason)
    return ApiError(status=status)


def items_of(listing: Iterator[Any]) -> list[dict[str, Any]]:
    """Plain dicts from a lightkube list iterator."""
    return [item.to_dict() for item in listing]
