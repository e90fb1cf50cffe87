"""The objects the bench creates and changes: WebApps, source Secrets, unrelated Secrets."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType

from bench.kube import Api, WebApp, b64

T = TypeVar("T")

# web, a worker and a scheduler: three Deployments per app, one pod each.
PROCESSES: Final = {
    "web": {"command": ["gunicorn", "app:app"]},
    "celery-worker": {"command": ["celery", "worker"]},
    "celery-beat-scheduler": {"command": ["celery", "beat"]},
}
# Without pods: web and a worker scaled to zero (a scheduler always runs one pod). The
# latency scenarios use these, so that they time the operator, not kwok, the scheduler and
# the controller-manager rolling pods on the same two cores.
PODLESS: Final = {
    "web": {"command": ["gunicorn", "app:app"]},
    "celery-worker": {"command": ["celery", "worker"], "replicas": 0},
}


def process_count(pods: bool) -> int:
    return len(PROCESSES if pods else PODLESS)


SOURCE_LABEL: Final = {"twelvefactor.dev/secret": "true"}
TOUCH_ANNOTATION: Final = "bench.twelvefactor.dev/touch"


def webapp_body(
    namespace: str, name: str, options: Mapping[str, str], pods: bool = True
) -> dict[str, Any]:
    """A flask WebApp reading the Secrets `options` names: web, worker and scheduler with one
    pod each, or (`pods` False) web and worker scaled to zero."""
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "framework": "flask",
            "image": "localhost:32000/bench-app:0.1",
            "replicas": 1 if pods else 0,
            "processes": PROCESSES if pods else PODLESS,
            "config": {"greeting": "hello"},
            "secrets": {option: {"secretName": secret} for option, secret in options.items()},
        },
    }


def source_body(namespace: str, name: str, grant: str, value: str) -> dict[str, Any]:
    """An opted-in source Secret granted to `grant` ("*" for every app of the namespace)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(SOURCE_LABEL),
            "annotations": {"twelvefactor.dev/grant": grant},
        },
        "type": "Opaque",
        "data": {"username": b64("bench"), "password": b64(value)},
    }


def unrelated_body(namespace: str, name: str, size: int = 2048) -> dict[str, Any]:
    """A Secret the operator must not care about: no label, a couple of KiB of data."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "unrelated"}},
        "type": "Opaque",
        "data": {"blob": b64(secrets.token_hex(size // 2))},
    }


async def bounded(
    items: Iterable[T], action: Callable[[T], Awaitable[Any]], concurrency: int = 16
) -> None:
    """Run action(item) for every item, at most `concurrency` at once."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with semaphore:
            await action(item)

    await asyncio.gather(*(one(item) for item in items))


async def create(api: Api, body: Mapping[str, Any]) -> None:
    """Create one object (an existing one is left as it is)."""
    resource: Any = WebApp if body["kind"] == "WebApp" else Secret
    if body["kind"] == "ConfigMap":
        resource = ConfigMap
    try:
        await api.client.create(resource.from_dict(dict(body)))
    except ApiError as error:
        if error.status.code != 409:
            raise


async def create_all(api: Api, bodies: Iterable[Mapping[str, Any]], concurrency: int = 16) -> None:
    await bounded(list(bodies), lambda body: create(api, body), concurrency)


async def update_secret(api: Api, namespace: str, name: str, value: str) -> float:
    """Give a source Secret new content (a merge patch); returns the monotonic send time."""
    sent = time.monotonic()
    await api.client.patch(
        Secret,
        name,
        {"data": {"password": b64(value)}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    return sent


async def touch_webapp(api: Api, namespace: str, name: str, token: str) -> None:
    """An annotation change: a watch event and a reconcile that should find nothing to do."""
    await api.client.patch(
        WebApp,
        name,
        {"metadata": {"annotations": {TOUCH_ANNOTATION: token}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
