"""The API gateway: the only module that talks to the Kubernetes API server.

It builds lightkube clients from the current kubeconfig (or the in-cluster ServiceAccount),
counts every request it sends (reads and writes apart, for metrics and benchmarks), and offers
the few operations the operator and the CLI need, on plain dicts:

- server-side apply with one field manager (`webapp-operator`),
- create (409 AlreadyExists is an answer, not an error, for create-only objects),
- merge patches of metadata and of the status subresource,
- delete,
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
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from webapp_operator import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER: Final = "webapp-operator"
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
    """An async client whose every request is counted."""
    client = AsyncClient(
        config or load_config(), field_manager=FIELD_MANAGER, timeout=httpx.Timeout(timeout)
    )
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


class Gateway:
    """The operations the controller performs, counted, on plain dicts."""

    def __init__(
        self,
        client: AsyncClient,
        counter: RequestCounter,
        on_event: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.client = client
        self.counter = counter
        self.on_event = on_event

    async def apply(self, obj: Mapping[str, Any]) -> None:
        """Server-side apply with our field manager; we own what we apply (force)."""
        meta = obj["metadata"]
        await self.client.patch(
            resource_of(obj),
            meta["name"],
            dict(obj),
            namespace=meta.get("namespace"),
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )

    async def create(self, obj: Mapping[str, Any]) -> bool:
        """Create a create-only object; False when it already existed."""
        res = resource_of(obj)
        instance: Any = res.from_dict(dict(obj))
        try:
            await self.client.create(instance, field_manager=FIELD_MANAGER)
        except ApiError as error:
            if is_already_exists(error):
                return False
            raise
        return True

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete an object; False when it was already gone."""
        res = resource_of({"apiVersion": api_version, "kind": kind})
        try:
            await self.client.delete(res, name, namespace=namespace)
        except ApiError as error:
            if is_not_found(error):
                return False
            raise
        return True

    async def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None:
        """A JSON merge patch of labels/annotations (None values remove keys)."""
        res = resource_of({"apiVersion": api_version, "kind": kind})
        await self.client.patch(
            res,
            name,
            {"metadata": dict(metadata)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def patch_secret_data(
        self, namespace: str, name: str, data: Mapping[str, str | None]
    ) -> None:
        """A merge patch of a Secret's data: plain values in, base64 on the wire; None removes."""
        import base64

        encoded = {
            k: None if v is None else base64.b64encode(v.encode()).decode() for k, v in data.items()
        }
        from lightkube.resources.core_v1 import Secret

        await self.client.patch(
            Secret, name, {"data": encoded}, namespace=namespace, patch_type=PatchType.MERGE
        )

    async def patch_webapp_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Replace the WebApp's status lists and fields by a merge patch of the subresource."""
        await self.client.patch(
            WebAppStatusResource,
            name,
            {"status": dict(status)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def post_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        warning: bool = False,
    ) -> None:
        """A core/v1 Event about `involved` (its apiVersion, kind, metadata). Names only."""
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        micro = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta['name']}.",
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
        from lightkube.resources.core_v1 import Event

        instance: Any = Event.from_dict(event)
        await self.client.create(instance)
        if self.on_event is not None:
            self.on_event(reason, warning)


def items_of(listing: Iterator[Any]) -> list[dict[str, Any]]:
    """Plain dicts from a lightkube list iterator."""
    return [item.to_dict() for item in listing]
