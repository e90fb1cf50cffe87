"""How a Secret's watch event queues the apps that observe it (controller/handlers.on_secret,
fed by the Secret informer): a source's change waits the coalescing delay, a new revision wakes
its observers once that window has ended (at once if it has). And the Secret index the
informer keeps (state.SecretIndex)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from webapp_operator.controller import handlers, reconcile, state, workqueue
from webapp_operator.domain import revisions

APP: reconcile.Key = ("webapp", "shop", "web")  # references two Secrets: creds and db
SOLO: reconcile.Key = ("webapp", "shop", "solo")  # references creds alone


def entry(kind: str, name: str, source: str = "creds") -> state.SecretEntry:
    labels = {revisions.MANAGED_LABEL: kind}
    if kind == revisions.KIND_REVISION:
        labels[revisions.REVISION_OF_LABEL] = source
    return state.secret_entry({"metadata": {"namespace": "shop", "name": name, "labels": labels}})


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
    runtime: handlers.Runtime, kind: str, name: str, type_: str, source: str = "creds"
) -> None:
    """The Secret informer's report of one event (LISTED: the first listing)."""
    found = entry(kind, name, source)
    old = None if type_ in ("ADDED", "LISTED") else found
    new = None if type_ == "DELETED" else found
    handlers.on_secret(runtime, type_, old, new)


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
    for type_ in ("MODIFIED", "DELETED", "LISTED"):
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


def revision_entry(name: str, source: str, revision: int) -> state.SecretEntry:
    labels = {
        revisions.MANAGED_LABEL: revisions.KIND_REVISION,
        revisions.REVISION_OF_LABEL: source,
        revisions.REVISION_LABEL: str(revision),
    }
    return state.secret_entry({"metadata": {"namespace": "shop", "name": name, "labels": labels}})


def test_the_secret_index_keeps_each_entry_under_its_keys_as_the_informer_reports_it() -> None:
    index = state.SecretIndex(handlers.secret_keys)
    first, second = revision_entry("creds-1", "creds", 1), revision_entry("creds-2", "creds", 2)
    of_creds = (handlers.REVISIONS_OF, "shop", "creds")
    index.put(None, first)
    index.put(None, second)
    assert index.get(("shop", "creds-1")) == (first,)
    assert index.get(of_creds) == (first, second)
    assert index.get(("shop", "missing"), "none") == "none"
    assert index.get((handlers.REVISIONS_OF, "shop", "db")) is None
    # A change keeps the entry's place under a key it stays under.
    relabelled = revision_entry("creds-1", "creds", 7)
    index.put(first, relabelled)
    assert index.get(of_creds) == (relabelled, second)
    assert index.get(("shop", "creds-1")) == (relabelled,)
    # A change of key leaves the old key, and a key left empty is dropped.
    moved = revision_entry("creds-2", "db", 2)
    index.put(second, moved)
    assert index.get(of_creds) == (relabelled,)
    assert index.get((handlers.REVISIONS_OF, "shop", "db")) == (moved,)
    index.put(moved, None)
    index.put(relabelled, None)
    assert len(index) == 0
    assert index.by_key == {}


def test_a_secret_event_reaches_the_index_before_it_wakes_anyone() -> None:
    """An observer woken by a new revision must find it in the index."""
    asyncio.run(_index_before_waking())


async def _index_before_waking() -> None:
    now = [100.0]
    runtime = runtime_at(now)
    found: list[Any] = []
    runtime.queue.add = lambda key, *a, **k: found.append(  # type: ignore[method-assign]
        runtime.secrets.get((handlers.REVISIONS_OF, "shop", "creds"))
    )
    handlers.on_secret(runtime, "ADDED", None, revision_entry("creds-2", "creds", 2))
    assert found
    assert all(f is not None and f[0].name == "creds-2" for f in found)
