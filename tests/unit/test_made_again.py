"""What someone deletes is made again by the process that made it, at once.

The operator remembers what it wrote moments ago (`reconcile.Context.recent`), so that a
reconcile racing its own watch does not write the same object again. That memory must end as
soon as the watch shows the object as written: else an object deleted in the next 30 s is
taken for one the watch has not shown yet, and stays missing until something else wakes its
app (a Deployment, a Service, the environment snapshot every pod reads).

The reconcilers run against the fake API server of test_reconcile_crash, with one process's
memory kept across rounds and its clock stopped (the memory never expires by itself here).
"""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.test_reconcile_crash import (
    NS,
    FakeCluster,
    FakeIndexes,
    credentials,
    new_context,
    reconcile_rounds,
    webapp,
)

from webapp_operator.controller import handlers, reconcile, state, workqueue


def running() -> tuple[FakeCluster, FakeIndexes, reconcile.Context]:
    """One operator that made shop's objects and keeps running."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    body = webapp("shop", "auto", ("web", "queue-worker"))
    body["spec"]["framework"] = "flask"
    cluster.put(body)
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    return cluster, indexes, ctx


def snapshot_of(cluster: FakeCluster) -> str:
    deployment = cluster.objects[("Deployment", NS, "shop")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return str(container["envFrom"][0]["secretRef"]["name"])


@pytest.mark.parametrize(
    "key",
    [("Deployment", NS, "shop"), ("Deployment", NS, "shop-queue-worker"), ("Service", NS, "shop")],
)
def test_a_workload_deleted_moments_after_it_was_made_is_made_again(
    key: tuple[str, str, str],
) -> None:
    cluster, indexes, ctx = running()
    made = cluster.objects[key]
    del cluster.objects[key]
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    again = cluster.objects[key]
    assert again["spec"] == made["spec"]
    assert again["metadata"]["uid"] != made["metadata"]["uid"]


def test_the_environment_snapshot_deleted_moments_after_it_was_made_is_made_again() -> None:
    cluster, indexes, ctx = running()
    name = snapshot_of(cluster)
    made = cluster.objects[("Secret", NS, name)]
    del cluster.objects[("Secret", NS, name)]
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    assert cluster.objects[("Secret", NS, name)]["data"] == made["data"]
    assert snapshot_of(cluster) == name  # the same content: the same name, no rollout


def test_the_memory_ends_when_the_watch_shows_what_was_written_and_not_before() -> None:
    _, _, ctx = running()
    key = ("Deployment", NS, "elsewhere")
    ctx.remember(key, "digest-b")
    ctx.caught_up(key, "digest-a")  # the watch still shows the write before
    assert ctx.wrote_recently(key, "digest-b")
    ctx.caught_up(key, "digest-b")
    assert not ctx.made_recently(key)


def _runtime(ctx: reconcile.Context) -> handlers.Runtime:
    async def made() -> handlers.Runtime:  # its queue takes the running loop's clock
        return handlers.Runtime({})

    runtime = asyncio.run(made())
    runtime.queue = workqueue.WorkQueue(clock=lambda: 0.0)
    runtime.ctx = ctx
    return runtime


def test_the_workload_watch_ends_the_memory_of_the_write_it_shows() -> None:
    """The informer, not a later reconcile, ends it: a deletion that comes before any
    reconcile of the app still finds no memory."""
    cluster, indexes, ctx = running()
    asyncio.run(cluster.fill(indexes))
    entry = indexes.workloads.named("Deployment", NS, "shop")
    assert entry is not None
    key = ("Deployment", NS, "shop")
    ctx.remember(key, entry.applied or "")
    handlers.on_workload(_runtime(ctx), entry, entry)
    assert not ctx.made_recently(key)


def test_the_snapshot_watch_ends_the_memory_and_wakes_the_app_when_its_snapshot_goes() -> None:
    cluster, indexes, ctx = running()
    asyncio.run(cluster.fill(indexes))
    name = snapshot_of(cluster)
    entry = reconcile._one(indexes.secrets, (NS, name))
    assert isinstance(entry, state.SecretEntry)
    runtime = _runtime(ctx)
    ctx.remember(("Secret", NS, name))
    handlers.on_secret(runtime, "MODIFIED", entry, entry)
    assert not ctx.made_recently(("Secret", NS, name))
    assert len(runtime.queue) == 0  # nothing the app reads changed
    handlers.on_secret(runtime, "DELETED", entry, None)
    assert len(runtime.queue) == 1  # the app, whose pods read it


def test_an_object_its_watch_never_showed_wakes_its_app_when_the_memory_ends() -> None:
    """Made, then deleted while the watch was down (a relist misses both): a reconcile takes
    the missing object for a watch behind its write, and nothing else would wake the app.
    When the memory of the write ends, the app is queued, and the object made again."""
    cluster, indexes, ctx = running()
    key = ("Deployment", NS, "shop")
    cluster.objects[("WebApp", NS, "shop")]["spec"]["image"] = "shop:2"

    async def write_then_lose() -> None:
        await cluster.fill(indexes)
        await reconcile.reconcile_webapp(ctx, NS, "shop")  # applies shop:2
        del cluster.objects[key]  # gone before its watch event ever came

    asyncio.run(write_then_lose())
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    assert key not in cluster.objects  # taken for a watch behind the write
    woken: list[tuple[str, str]] = []
    ctx.enqueue_webapp = lambda namespace, name: woken.append((namespace, name))
    ctx.forget_expired()
    assert woken == []  # not yet
    ctx.monotonic = lambda: ctx.memory_seconds + 1.0
    ctx.forget_expired()
    assert woken == [(NS, "shop")]
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    assert cluster.objects[key]["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:2"
    ctx.monotonic = lambda: 3 * ctx.memory_seconds
    ctx.forget_expired()  # what the watch showed wakes nobody when its memory ends
    assert woken == [(NS, "shop")]
