"""How a WebApp's watch event queues it (controller/handlers.on_webapp): someone's change (a new
generation, a refresh request not yet handled) is urgent and due at once; the echo of the
operator's own status write is a follow-up that waits FOLLOW_UP_DELAY for more of its kind."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from webapp_operator.controller import handlers, reconcile, workqueue
from webapp_operator.domain import observe

APP: reconcile.Key = ("webapp", "shop", "web")
NOW = 100.0


def webapp(generation: int, observed: int | None, refresh: str | None, handled: str | None) -> Any:
    annotations = {} if refresh is None else {observe.REFRESH_ANNOTATION: refresh}
    status: dict[str, Any] = {} if observed is None else {"observedGeneration": observed}
    if handled is not None:
        status[observe.REFRESHED_STATUS_FIELD] = handled
    return {
        "metadata": {
            "namespace": "shop",
            "name": "web",
            "generation": generation,
            "annotations": annotations,
        },
        "spec": {"secrets": {"creds": {"secretName": "creds"}}},
        "status": status,
    }


def queued(body: Any) -> tuple[handlers.Runtime, workqueue._Entry]:
    return asyncio.run(_queued(body))


async def _queued(body: Any) -> tuple[handlers.Runtime, workqueue._Entry]:
    runtime = handlers.Runtime({"coalesce_delay": 0.2, "coalesce_max": 2.0})
    runtime.queue = workqueue.WorkQueue(clock=lambda: NOW)
    handler: Any = handlers.on_webapp  # as Kopf calls it, with the keywords used
    await handler(body=body, namespace="shop", name="web", memo=SimpleNamespace(runtime=runtime))
    return runtime, runtime.queue._entries[APP]


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("created, never reconciled", webapp(1, None, None, None)),
        ("a new spec", webapp(3, 2, None, None)),
        ("a refresh request", webapp(2, 2, "creds@7", "creds@6")),
        ("a first refresh request", webapp(2, 2, "*@1", None)),
    ],
)
def test_someones_change_is_urgent_and_due_at_once(what: str, body: Any) -> None:
    _, entry = queued(body)
    assert (entry.priority, entry.due) == (workqueue.URGENT, NOW), what


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("the operator's status write", webapp(2, 2, None, None)),
        ("a refresh already handled", webapp(2, 2, "creds@7", "creds@7")),
    ],
)
def test_an_echo_of_the_operators_own_write_follows_up(what: str, body: Any) -> None:
    runtime, entry = queued(body)
    assert (entry.priority, entry.due) == (workqueue.FOLLOW_UP, NOW + handlers.FOLLOW_UP_DELAY)
    # The Secrets it references are looked at again too (revisions may now be prunable).
    source = runtime.queue._entries[("secret", "shop", "creds")]
    assert (source.priority, source.due) == (workqueue.FOLLOW_UP, NOW + runtime.coalesce)
