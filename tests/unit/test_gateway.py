"""kube/client.py's Gateway and kube/transport.py's Transport on the wire: a real HTTP server on
127.0.0.1 (aiohttp's) answers as scripted and records what it was sent. The real API server's
side (TLS, client certificates, RBAC) is in tests/cluster."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lightkube import KubeConfig
from lightkube.core.exceptions import ApiError

from webapp_operator.kube import client as kube
from webapp_operator.kube import transport


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """Answers each request with the next scripted (status, body); records what it was sent."""

    answers: list[tuple[int, Any]]
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        code, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(body, bytes):
            return web.Response(status=code, body=body, content_type="text/html")
        return web.json_response(body, status=code)


def status(code: int, reason: str) -> tuple[int, dict[str, Any]]:
    return code, {"kind": "Status", "code": code, "reason": reason, "message": reason}


def config(port: int, user: dict[str, Any]) -> Any:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    ).get()


@asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[int]:
    """A real HTTP server on 127.0.0.1 answering every request with `handle`; yields its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def on_the_wire(
    answers: list[tuple[int, Any]],
    test: Callable[[kube.Gateway, transport.Transport], Awaitable[Any]],
    user: dict[str, Any] | None = None,
    on_event: Callable[[str, bool], None] | None = None,
) -> tuple[Any, Server, kube.RequestCounter]:
    """Run `test` against a Gateway whose Transport talks to a scripted server."""
    server = Server(answers)
    counter = kube.RequestCounter()

    async def main() -> Any:
        async with serving(server.handle) as port:
            http = transport.Transport(config(port, user or {"token": "t0"}), counter)
            try:
                return await test(kube.Gateway(http, on_event), http)
            finally:
                await http.close()

    return asyncio.run(main()), server, counter


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "shop-web", "namespace": "demo"},
}


def test_apply_is_a_forced_server_side_apply_with_our_field_manager() -> None:
    _, server, counter = on_the_wire([(200, DEPLOYMENT)], lambda gw, _: gw.apply(DEPLOYMENT))
    (request,) = server.seen
    assert request.method == "PATCH"
    assert request.path == "/apis/apps/v1/namespaces/demo/deployments/shop-web"
    assert request.headers["Content-Type"] == "application/apply-patch+yaml"
    assert request.query == {"fieldManager": kube.FIELD_MANAGER, "force": "true"}
    assert request.headers["Authorization"] == "Bearer t0"
    assert request.json() == DEPLOYMENT
    assert (counter.writes, counter.reads, counter.by_verb["PATCH"]) == (1, 0, 1)


def test_a_rollout_patch_is_a_strategic_merge_patch_with_our_field_manager() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "envFrom": []}]}}}}
    _, server, counter = on_the_wire(
        [(200, DEPLOYMENT)],
        lambda gw, _: gw.patch_strategic("apps/v1", "Deployment", "demo", "shop-web", patch),
    )
    (request,) = server.seen
    assert request.method == "PATCH"
    assert request.path == "/apis/apps/v1/namespaces/demo/deployments/shop-web"
    assert request.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert request.query == {"fieldManager": kube.FIELD_MANAGER}
    assert request.json() == patch
    assert (counter.writes, counter.reads) == (1, 0)


def test_create_answers_false_when_the_object_exists_and_raises_otherwise() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}}
    made, server, _ = on_the_wire([status(409, "AlreadyExists")], lambda gw, _: gw.create(secret))
    assert made is False
    assert server.seen[0].path == "/api/v1/namespaces/d/secrets"
    with pytest.raises(ApiError) as raised:
        on_the_wire([status(403, "Forbidden")], lambda gw, _: gw.create(secret))
    assert raised.value.status.code == 403
    assert raised.value.status.reason == "Forbidden"


def test_delete_of_a_missing_object_is_false_and_a_body_that_is_no_status_still_raises() -> None:
    gone, _, _ = on_the_wire(
        [status(404, "NotFound")], lambda gw, _: gw.delete("v1", "Secret", "d", "x")
    )
    assert gone is False
    with pytest.raises(ApiError) as raised:
        on_the_wire(
            [(502, b"<html>bad gateway</html>")], lambda gw, _: gw.delete("v1", "Secret", "d", "x")
        )
    assert raised.value.status.code == 502
    assert "html" not in str(raised.value)  # a body is never put in an error


def test_get_answers_the_object_none_when_missing_and_raises_otherwise() -> None:
    account = {"kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "d"}}
    got, server, counter = on_the_wire(
        [(200, account)], lambda gw, _: gw.get("v1", "ServiceAccount", "d", "reader")
    )
    assert got == account
    (request,) = server.seen
    assert (request.method, request.path) == ("GET", "/api/v1/namespaces/d/serviceaccounts/reader")
    assert (counter.reads, counter.writes) == (1, 0)
    missing, _, _ = on_the_wire(
        [status(404, "NotFound")], lambda gw, _: gw.get("v1", "Secret", "d", "x")
    )
    assert missing is None
    with pytest.raises(ApiError) as raised:
        on_the_wire([status(403, "Forbidden")], lambda gw, _: gw.get("v1", "Secret", "d", "x"))
    assert raised.value.status.code == 403


def test_status_and_metadata_are_merge_patches() -> None:
    async def both(gw: kube.Gateway, _: transport.Transport) -> None:
        await gw.patch_webapp_status("demo", "shop", {"observedGeneration": 2})
        await gw.patch_metadata("v1", "Secret", "demo", "s", {"annotations": {"a": None}})

    _, server, _ = on_the_wire([(200, {})], both)
    first, second = server.seen
    assert first.path == "/apis/twelvefactor.dev/v1alpha1/namespaces/demo/webapps/shop/status"
    assert first.headers["Content-Type"] == "application/merge-patch+json"
    assert second.json() == {"metadata": {"annotations": {"a": None}}}


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="does not write CronJob"):
        kube.object_path("batch/v1", "CronJob", "d", "x")


def test_a_named_event_is_told_once_and_a_second_post_is_not_an_error() -> None:
    involved = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}}
    now = datetime(2026, 11, 23, tzinfo=UTC)
    _, server, _ = on_the_wire(
        [status(409, "AlreadyExists")],
        lambda gw, _: gw.post_event(involved, "UnsealFailed", "m", now, True, name="s.u.1"),
    )
    assert server.seen[0].json()["metadata"]["name"] == "s.u.1"
    with pytest.raises(ApiError):  # without a name, a conflict is an error as ever
        on_the_wire(
            [status(409, "AlreadyExists")],
            lambda gw, _: gw.post_event(involved, "UnsealFailed", "m", now, True),
        )


def test_a_401_reads_the_token_file_again_and_sends_the_request_once_more(tmp_path: Path) -> None:
    """A rotated ServiceAccount token (kubelet rewrites the file): the request is retried with
    the new token, and later requests keep it."""
    token = tmp_path / "token"
    token.write_text("old\n")

    async def rotate_then_get(gw: kube.Gateway, _: transport.Transport) -> Any:
        await gw.get("v1", "Secret", "d", "a")  # authorized with "old"
        token.write_text("new\n")
        first = await gw.get("v1", "Secret", "d", "b")  # 401, then again with "new"
        second = await gw.get("v1", "Secret", "d", "c")
        return first, second

    answers = [(200, {"n": 1}), status(401, "Unauthorized"), (200, {"n": 2}), (200, {"n": 3})]
    got, server, counter = on_the_wire(answers, rotate_then_get, {"tokenFile": str(token)})
    assert got == ({"n": 2}, {"n": 3})
    sent = [(s.path.rsplit("/", 1)[1], s.headers["Authorization"]) for s in server.seen]
    assert sent == [
        ("a", "Bearer old"),
        ("b", "Bearer old"),
        ("b", "Bearer new"),
        ("c", "Bearer new"),
    ]
    assert counter.reads == 4  # the retry is a request too


def test_a_static_token_that_is_refused_is_an_error_not_a_loop() -> None:
    with pytest.raises(ApiError) as raised:
        on_the_wire([status(401, "Unauthorized")], lambda gw, _: gw.get("v1", "Secret", "d", "x"))
    assert raised.value.status.code == 401


def test_watch_lines_of_any_length_arrive_whole() -> None:
    """A WATCH event of a large object is one long line, split across many reads."""
    big = {"type": "ADDED", "object": {"metadata": {"name": "x" * 300_000}}}
    small = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    body = (json.dumps(big) + "\n\n" + json.dumps(small) + "\n").encode()

    async def follow(_: kube.Gateway, http: transport.Transport) -> list[Any]:
        async with http.stream("/api/v1/pods", {"watch": "true"}, 5.0) as (reply, lines):
            assert reply.status == 200
            return [json.loads(line) async for line in lines]

    got, server, counter = on_the_wire([(200, body)], follow)
    assert got == [big, small]
    assert server.seen[0].query == {"watch": "true"}
    assert counter.by_verb["WATCH"] == 1
    assert counter.reads == 0


def test_the_proxy_comes_from_the_environment_once_and_no_proxy_exempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", "internal.example")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert transport._env_proxy("https://api.example:6443") == "http://proxy.corp:3128"
    assert transport._env_proxy("https://k8s.internal.example:6443") is None
    assert transport._env_proxy("http://127.0.0.1:8080") is None  # no http_proxy set


def test_every_request_is_logged_at_debug_in_httpx_words(caplog: pytest.LogCaptureFixture) -> None:
    """The chart's RBAC tests read the operator's requests from its --debug log, whichever
    client sent them: one line per request, with the query and the answer's status."""

    async def both(gw: kube.Gateway, http: transport.Transport) -> None:
        await gw.apply(DEPLOYMENT)
        async with http.stream("/api/v1/pods", {"watch": "true"}, 5.0) as (_, lines):
            assert [line async for line in lines] == []

    with caplog.at_level("DEBUG", logger=transport.__name__):
        on_the_wire([(201, DEPLOYMENT), (200, b"")], both)
    lines = [r.getMessage() for r in caplog.records if r.name == transport.__name__]
    base = lines[0].split("/apis/")[0].removeprefix("HTTP Request: PATCH ")
    assert lines == [
        f"HTTP Request: PATCH {base}/apis/apps/v1/namespaces/demo/deployments/shop-web"
        f'?fieldManager={kube.FIELD_MANAGER}&force=true "HTTP/1.1 201 Created"',
        f'HTTP Request: GET {base}/api/v1/pods?watch=true "HTTP/1.1 200 OK"',
    ]
    assert base.startswith(("https://127.0.0.1:", "http://127.0.0.1:"))


def test_watches_never_take_the_places_of_requests() -> None:
    """More open WATCHes than the requests' pool holds (a namespaced install watching many
    namespaces): a request still goes through at once."""
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "true":
            return web.json_response({"kind": "Status", "code": 200})
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type": "BOOKMARK", "object": {}}\n')
        await release.wait()
        return response

    async def main() -> Any:
        async with serving(handle) as port:
            http = transport.Transport(config(port, {"token": "t0"}), kube.RequestCounter())
            opened = asyncio.Event()
            count = 0

            async def watch(index: int) -> None:
                nonlocal count
                async with http.stream(
                    f"/api/v1/namespaces/ns-{index}/pods", {"watch": "true"}, 30.0
                ) as (_, lines):
                    async for _line in lines:
                        count += 1
                        if count == transport.CONNECTIONS + 8:
                            opened.set()
                        await release.wait()
                        return

            watches = [asyncio.create_task(watch(i)) for i in range(transport.CONNECTIONS + 8)]
            try:
                await asyncio.wait_for(opened.wait(), 20.0)
                reply = await asyncio.wait_for(http.request("GET", "/api/v1/namespaces"), 5.0)
                return reply.status
            finally:
                release.set()
                await asyncio.gather(*watches, return_exceptions=True)
                await http.close()

    assert asyncio.run(main()) == 200
