"""How a Secret's watch event queues the apps that observe it (controller/handlers.on_secret):
a source's change waits the coalescing delay, a new revision wakes its observers once that
window has ended (at once if it has)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from webapp_operator.controller import handlers, reconcile, state, workqueue
from webapp_operator.domain import revisions

APP: reconcile.Key = ("webapp", "shop", "web")  # references two Secrets: creds and db
SOLO: reconcile.Key = ("webapp", "shop", "solo")  # references creds alone


def body(kind: str, source: str = "creds") -> dict[str, Any]:
    labels = {revisions.MANAGED_LABEL: kind}
    if kind == revisions.KIND_REVISION:
        labels[revisions.REVISION_OF_LABEL] = source
    return {"metadata": {"labels": labels}}


def runtime_at(now: list[float]) -> handlers.Runtime:
    runtime = handlers.Runtime({"coalesce_delay": 0.2, "coalesce_max": 2.0})
    runtime.queue = workqueue.WorkQueue(clock=lambda: now[0])
    observers = {
        ("shop", "creds"): [("shop", "web"), ("shop", "solo")],
        ("shop", "db"): [("shop", "web")],
    }
    webapps = {
        ("shop", "web"): [state.WebAppEntry("shop", "web", webapp("web", "creds", "db"))],
        ("shop", "solo"): [state.WebAppEntry("shop", "solo", webapp("solo", "creds"))],
    }
    indexes = SimpleNamespace(observers=observers, webapps=webapps)
    runtime.ctx = SimpleNamespace(indexes=indexes)  # type: ignore[assignment]
    return runtime


def webapp(name: str, *secrets: str) -> dict[str, Any]:
    options = {s: {"secretName": s} for s in secrets}
    return {"metadata": {"namespace": "shop", "name": name}, "spec": {"secrets": options}}


async def event(
    runtime: handlers.Runtime, kind: str, name: str, type_: str | None, source: str = "creds"
) -> None:
    memo = SimpleNamespace(runtime=runtime)
    handler: Any = handlers.on_secret  # as Kopf calls it, with the keywords used
    await handler(body=body(kind, source), type=type_, namespace="shop", name=name, memo=memo)


def test_a_source_change_waits_the_coalescing_delay_for_its_siblings() -> None:
    asyncio.run(_a_source_change_waits())


async def _a_source_change_waits() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    await event(runtime, revisions.KIND_SOURCE, "creds", "MODIFIED")
    entry = runtime.queue._entries[APP]
    assert entry.due == 100.2
    assert entry.priority == workqueue.URGENT


def test_a_new_revision_wakes_an_observer_waiting_for_it_at_once() -> None:
    """The observer ran before the revision reached the index and will look again in 2 s;
    the revision's arrival makes it run now, urgently, as the same queued entry."""
    asyncio.run(_a_new_revision_wakes())


async def _a_new_revision_wakes() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    runtime.queue.add(APP, 2.0, priority=workqueue.FOLLOW_UP)  # a pending retry
    now[0] = 100.3
    await event(runtime, revisions.KIND_REVISION, "creds-rev-2", "ADDED")
    entry = runtime.queue._entries[APP]
    assert entry.due == 100.3
    assert entry.priority == workqueue.URGENT
    assert sorted(k for k in runtime.queue._entries if k[0] == "webapp") == [SOLO, APP]


def test_other_revision_events_only_follow_up() -> None:
    """A revision removed or relabelled changes no app's environment: nothing is hurried."""
    asyncio.run(_other_revision_events())


async def _other_revision_events() -> None:
    for type_ in ("MODIFIED", "DELETED", None):
        now = [100.0]
        runtime = runtime_at(now)
        runtime.queue.add(APP, 2.0, priority=workqueue.FOLLOW_UP)
        await event(runtime, revisions.KIND_REVISION, "creds-rev-1", type_)
        entry = runtime.queue._entries[APP]
        assert entry.due == 102.0
        assert entry.priority == workqueue.FOLLOW_UP


def test_a_revision_made_inside_the_window_waits_for_the_siblings_of_its_change() -> None:
    """Secrets changed together roll an app once: the first Secret's revision, made within
    milliseconds, must not start the rollout before the second Secret's change arrives."""
    asyncio.run(_a_revision_inside_the_window())


async def _a_revision_inside_the_window() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    await event(runtime, revisions.KIND_SOURCE, "creds", "MODIFIED")
    now[0] = 100.05
    await event(runtime, revisions.KIND_REVISION, "creds-rev-2", "ADDED")
    assert runtime.queue._entries[APP].due == 100.2  # not 100.05
    now[0] = 100.1
    await event(runtime, revisions.KIND_SOURCE, "db", "MODIFIED")
    assert runtime.queue._entries[APP].due == 100.3  # the sibling moved the window on
    # The window is spent: a later revision of the same source (the retry case) is urgent.
    runtime.queue._entries.clear()
    now[0] = 101.0
    await event(runtime, revisions.KIND_REVISION, "creds-rev-3", "ADDED")
    assert runtime.queue._entries[APP].due == 101.0


def test_an_app_that_references_only_the_changed_secret_does_not_wait() -> None:
    """No sibling change can join a rollout of an app that references one Secret: its new
    revision wakes it at once, inside the window, while an app that references others waits."""
    asyncio.run(_only_the_changed_secret())


async def _only_the_changed_secret() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    await event(runtime, revisions.KIND_SOURCE, "creds", "MODIFIED")
    assert runtime.queue._entries[SOLO].due == 100.2  # nothing to run before the revision
    now[0] = 100.05
    await event(runtime, revisions.KIND_REVISION, "creds-rev-2", "ADDED")
    assert runtime.queue._entries[SOLO].due == 100.05
    assert runtime.queue._entries[SOLO].priority == workqueue.URGENT
    assert runtime.queue._entries[APP].due == 100.2
    # Removals and relabels of revisions still only follow up.
    runtime.queue._entries.clear()
    await event(runtime, revisions.KIND_REVISION, "creds-rev-1", "DELETED")
    assert runtime.queue._entries[SOLO].due == 100.25
    assert runtime.queue._entries[SOLO].priority == workqueue.FOLLOW_UP


def test_ended_windows_are_dropped_so_the_map_stays_small() -> None:
    asyncio.run(_ended_windows_dropped())


async def _ended_windows_dropped() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    for n in range(handlers.SETTLING_SWEEP):
        await event(runtime, revisions.KIND_SOURCE, f"s{n}", "MODIFIED")
    now[0] = 101.0
    await event(runtime, revisions.KIND_SOURCE, "creds", "MODIFIED")
    assert list(runtime.settling) == [("shop", "creds")]


def test_entries_of_different_objects_share_their_metadata_keys() -> None:
    """Every managed Secret has the same label and annotation keys: the index keeps one copy
    of each, not one per object (each watch event is a separate JSON document)."""
    documents = [
        json.dumps(
            {
                "metadata": {
                    "namespace": "demo",
                    "name": f"credentials-{n}",
                    "labels": {revisions.MANAGED_LABEL: revisions.KIND_SOURCE},
                    "annotations": {"twelvefactor.dev/grant": f"app-{n}"},
                },
                "data": {},
            }
        )
        for n in range(2)
    ]
    first, second = (state.secret_entry(json.loads(text)) for text in documents)
    assert first.labels == second.labels
    [(label_a, value_a)] = first.labels.items()
    [(label_b, value_b)] = second.labels.items()
    assert label_a is label_b
    assert value_a is value_b
    assert next(iter(first.annotations)) is next(iter(second.annotations))
    assert first.annotations != second.annotations
