"""kube/informer.py against a scripted API server (a real HTTP server on 127.0.0.1, aiohttp's):
list, watch, 410 Gone and its relist, reconnects. The real API server's side is in
tests/cluster."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from tests.unit.test_gateway import config, serving

from webapp_operator.kube import informer, transport

COLLECTION = informer.Collection("/apis/apps/v1", "deployments", "managed=yes")


def obj(name: str, version: str, replicas: int = 1, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "spec": {"replicas": replicas},
    }


CANARY = "canary-7f3a-not-for-logs"


def parse(body: Mapping[str, Any]) -> tuple[str, int] | None:
    if body["metadata"]["name"].startswith("skip"):
        return None
    if body["metadata"]["name"].startswith("odd"):
        raise ValueError(CANARY)  # what a parser's error may carry: never logged
    return (body["metadata"]["name"], int(body["spec"]["replicas"]))


def lines(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(json.dumps({"type": t, "object": o}).encode() + b"\n" for t, o in events)


Answer = tuple[int, Any]  # (status, a JSON document or the bytes of a body)


class Server:
    """Answers LISTs from `lists` and WATCHes from `watches`, in order; records the queries.
    Once a queue is used up, every request of its kind is answered 503."""

    def __init__(self, lists: list[Answer], watches: list[Answer]) -> None:
        self.lists = lists
        self.watches = watches
        self.requests: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        queue = self.watches if request.query.get("watch") == "true" else self.lists
        code, body = queue.pop(0) if queue else (503, {"kind": "Status", "code": 503})
        if isinstance(body, bytes):
            return web.Response(status=code, body=body, content_type="application/json")
        return web.json_response(body, status=code)


def listing(version: str, *items: dict[str, Any], cont: str = "") -> Answer:
    meta: dict[str, Any] = {"resourceVersion": version}
    if cont:
        meta["continue"] = cont
    return 200, {"metadata": meta, "items": list(items)}


async def run_until(
    server: Server,
    done: Callable[[list[tuple[str, Any, Any]]], bool],
    optional: bool = False,
    watch: Callable[[informer.Informer[Any]], None] | None = None,
    reparse: Callable[[Mapping[str, Any], Any], Any] | None = None,
) -> tuple[list[tuple[str, Any, Any]], informer.Informer[Any]]:
    seen: list[tuple[str, Any, Any]] = []
    async with serving(server.handle) as port:
        http = transport.Transport(config(port, {"token": "t"}))
        one = informer.Informer(
            http, COLLECTION, parse, lambda t, o, n: seen.append((t, o, n)), optional, reparse
        )
        task = asyncio.create_task(one.run())
        try:
            for _ in range(400):
                if watch is not None:
                    watch(one)
                if done(seen):
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await http.close()
    return seen, one


async def _test_lists_in_pages_then_watches_from_the_list_version() -> None:
    server = Server(
        lists=[
            listing("10", obj("a", "5"), cont="page2"),
            listing("10", obj("b", "6"), obj("skip-me", "7")),
        ],
        watches=[
            (
                200,
                lines(
                    ("MODIFIED", obj("a", "11", replicas=2)),
                    ("MODIFIED", obj("a", "12", replicas=2)),  # nothing the entry holds changed
                    ("BOOKMARK", {"metadata": {"resourceVersion": "13"}}),
                    ("DELETED", obj("b", "14")),
                ),
            )
        ],
    )
    seen, one = await run_until(server, lambda s: len(s) >= 4)
    assert seen == [
        ("LISTED", None, ("a", 1)),
        ("LISTED", None, ("b", 1)),
        ("MODIFIED", ("a", 1), ("a", 2)),
        ("DELETED", ("b", 1), None),
    ]
    assert one.synced.is_set()
    assert one.store == {("ns", "a"): ("a", 2)}
    first, second, watch = server.requests[:3]
    assert first["labelSelector"] == "managed=yes"
    assert first["limit"] == str(informer.PAGE)
    assert second["continue"] == "page2"
    assert watch["resourceVersion"] == "10"
    assert watch["allowWatchBookmarks"] == "true"
    # the watch that ended is opened again from the last version seen, the bookmark's
    await asyncio.sleep(0)
    later = [r for r in server.requests[3:] if r.get("watch") == "true"]
    assert all(r["resourceVersion"] == "14" for r in later)


async def _test_gone_relists_and_reports_what_changed_in_the_gap() -> None:
    server = Server(
        lists=[
            listing("10", obj("a", "5"), obj("b", "6")),
            # in the gap: b deleted, a scaled, c created
            listing("30", obj("a", "21", replicas=3), obj("c", "22")),
        ],
        watches=[
            (200, lines(("ERROR", {"kind": "Status", "code": 410, "reason": "Gone"}))),
        ],
    )
    seen, one = await run_until(server, lambda s: len(s) >= 5)
    assert seen[2:] == [
        ("DELETED", ("b", 1), None),
        ("MODIFIED", ("a", 1), ("a", 3)),
        ("ADDED", None, ("c", 1)),
    ]
    assert one.relists == 1
    assert set(one.store) == {("ns", "a"), ("ns", "c")}


async def _test_a_410_answer_to_the_watch_request_relists_too() -> None:
    server = Server(
        lists=[listing("10", obj("a", "5")), listing("20", obj("a", "5"))],
        watches=[(410, {"kind": "Status", "code": 410, "reason": "Gone"})],
    )
    seen, one = await run_until(server, lambda _: not server.lists)
    await asyncio.sleep(0)
    assert one.relists == 1
    assert seen == [("LISTED", None, ("a", 1))]  # the relist found nothing new


async def _test_errors_back_off_and_reconnect_without_losing_the_store() -> None:
    server = Server(
        lists=[listing("10", obj("a", "5"))],
        watches=[
            (500, {"kind": "Status", "code": 500, "reason": "InternalError"}),
            (200, lines(("MODIFIED", obj("a", "11", replicas=4)))),
        ],
    )
    seen, one = await run_until(server, lambda s: len(s) >= 2)
    assert seen[-1] == ("MODIFIED", ("a", 1), ("a", 4))
    assert one.reconnects >= 1
    watches = [r for r in server.requests if r.get("watch") == "true"]
    assert [r["resourceVersion"] for r in watches[:2]] == ["10", "10"]


async def _test_an_object_that_cannot_be_read_is_left_out_not_the_stream() -> None:
    server = Server(
        lists=[listing("10", obj("a", "5"), obj("odd-1", "6"), obj("b", "7"))],
        watches=[
            (200, lines(("MODIFIED", obj("odd-1", "11")), ("ADDED", obj("c", "12")))),
        ],
    )
    seen, one = await run_until(server, lambda s: len(s) >= 3)
    assert seen == [
        ("LISTED", None, ("a", 1)),
        ("LISTED", None, ("b", 1)),
        ("ADDED", None, ("c", 1)),
    ]
    assert one.synced.is_set()
    assert one.left_out == 2  # in the listing, then in the watch, which went on to `c`


def test_an_object_that_cannot_be_read_is_left_out_not_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One object the parser fails on (odd metadata anyone may write) must not stop every
    other object from being seen, nor keep the operator from ever being ready."""
    with caplog.at_level(logging.WARNING, logger="webapp_operator.kube.informer"):
        asyncio.run(_test_an_object_that_cannot_be_read_is_left_out_not_the_stream())
    assert "deployments ns/odd-1 left out: it could not be read (ValueError)" in caplog.text
    assert CANARY not in caplog.text


def test_paths() -> None:
    assert COLLECTION.path == "/apis/apps/v1/deployments"
    scoped = informer.Collection("/api/v1", "services", "x", namespace="team")
    assert scoped.path == "/api/v1/namespaces/team/services"
    assert str(scoped) == "services in team"


def test_lists_in_pages_then_watches_from_the_list_version() -> None:
    asyncio.run(_test_lists_in_pages_then_watches_from_the_list_version())


def test_gone_relists_and_reports_what_changed_in_the_gap() -> None:
    asyncio.run(_test_gone_relists_and_reports_what_changed_in_the_gap())


def test_a_410_answer_to_the_watch_request_relists_too() -> None:
    asyncio.run(_test_a_410_answer_to_the_watch_request_relists_too())


def test_errors_back_off_and_reconnect_without_losing_the_store() -> None:
    asyncio.run(_test_errors_back_off_and_reconnect_without_losing_the_store())


def test_kopf_retries_api_errors_for_ever_with_a_fresh_sequence_per_request() -> None:
    from webapp_operator.controller.handlers import ForeverBackoffs

    backoffs = ForeverBackoffs()
    first = list(itertools.islice(backoffs, 12))
    assert first[:8] == [1, 1, 2, 3, 5, 8, 13, 21]
    assert first[8:] == [30.0] * 4
    assert list(itertools.islice(backoffs, 3)) == [1, 1, 2]  # not used up by the first request


FORBIDDEN: Answer = (403, {"kind": "Status", "code": 403, "reason": "Forbidden"})


@pytest.mark.parametrize("optional", [True, False], ids=["optional", "required"])
def test_a_denied_collection_is_empty_if_optional_and_listed_again(optional: bool) -> None:
    """An optional collection (Ingresses, which an upgrade may not have granted yet) that the
    API server refuses counts as synced and empty, so the operator gets ready and everything
    else works; a required one keeps the operator waiting. Both are listed again, and a grant
    brings their objects in."""
    server = Server(lists=[FORBIDDEN, listing("10", obj("a", "5"))], watches=[])
    synced_while_denied: list[bool] = []

    def look(one: informer.Informer[Any]) -> None:
        if len(server.requests) == 1:
            synced_while_denied.append(one.synced.is_set() and not one.store)

    seen, one = asyncio.run(run_until(server, lambda s: bool(s), optional, look))
    assert any(synced_while_denied) is optional
    # Once granted: a relist's difference to the empty store (as after a 410) or the first list.
    assert seen == [("ADDED" if optional else "LISTED", None, ("a", 1))]
    assert one.synced.is_set()


def test_an_object_held_already_is_parsed_with_its_entry() -> None:
    """`reparse` is given the entry held for the same object (so it may reuse what an unchanged
    spec gave); an object seen for the first time goes to `parse`."""
    given: list[Any] = []

    def reparse(body: Mapping[str, Any], held: tuple[str, int]) -> tuple[str, int] | None:
        given.append(held)
        return parse(body)

    async def run() -> list[tuple[str, Any, Any]]:
        modified = lines(("MODIFIED", obj("a", "6", 2)))
        server = Server([listing("5", obj("a", "4", 1))], [(200, modified)])
        seen, _ = await run_until(server, lambda s: len(s) == 2, reparse=reparse)
        return seen

    seen = asyncio.run(run())
    assert [(t, n) for t, _, n in seen] == [("LISTED", ("a", 1)), ("MODIFIED", ("a", 2))]
    assert given == [("a", 1)]
