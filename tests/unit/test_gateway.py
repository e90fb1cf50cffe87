"""kube/client.py's Gateway on the wire (httpx's MockTransport): the requests it sends and how
it reads the API server's answers. The real API server's side is in tests/cluster."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from lightkube.core.exceptions import ApiError

from webapp_operator.kube import client as kube


class FakeLightkube:
    """What the Gateway takes from lightkube's AsyncClient: its httpx client."""

    def __init__(self, answer: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return answer

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://api")
        self._client = type("Generic", (), {"_client": http})()


def status(code: int, reason: str) -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "code": code, "reason": reason})


def gateway(answer: httpx.Response) -> tuple[kube.Gateway, FakeLightkube]:
    fake = FakeLightkube(answer)
    return kube.Gateway(fake, kube.RequestCounter()), fake  # type: ignore[arg-type]


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "shop-web", "namespace": "demo"},
}


def test_apply_is_a_forced_server_side_apply_with_our_field_manager() -> None:
    gw, fake = gateway(httpx.Response(200, json=DEPLOYMENT))
    asyncio.run(gw.apply(DEPLOYMENT))
    (request,) = fake.requests
    assert request.method == "PATCH"
    assert request.url.path == "/apis/apps/v1/namespaces/demo/deployments/shop-web"
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert request.url.params["fieldManager"] == kube.FIELD_MANAGER
    assert request.url.params["force"] == "true"
    assert json.loads(request.content) == DEPLOYMENT


def test_create_answers_false_when_the_object_exists_and_raises_otherwise() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}}
    gw, fake = gateway(status(409, "AlreadyExists"))
    assert asyncio.run(gw.create(secret)) is False
    assert fake.requests[0].url.path == "/api/v1/namespaces/d/secrets"
    gw, _ = gateway(status(403, "Forbidden"))
    with pytest.raises(ApiError) as raised:
        asyncio.run(gw.create(secret))
    assert raised.value.status.code == 403


def test_delete_of_a_missing_object_is_false_and_a_body_that_is_no_status_still_raises() -> None:
    gw, _ = gateway(status(404, "NotFound"))
    assert asyncio.run(gw.delete("v1", "Secret", "d", "gone")) is False
    gw, _ = gateway(httpx.Response(502, content=b"<html>bad gateway</html>"))
    with pytest.raises(ApiError) as raised:
        asyncio.run(gw.delete("v1", "Secret", "d", "x"))
    assert raised.value.status.code == 502


def test_get_answers_the_object_none_when_missing_and_raises_otherwise() -> None:
    account = {"kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "d"}}
    gw, fake = gateway(httpx.Response(200, json=account))
    assert asyncio.run(gw.get("v1", "ServiceAccount", "d", "reader")) == account
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.url.path == "/api/v1/namespaces/d/serviceaccounts/reader"
    gw, _ = gateway(status(404, "NotFound"))
    assert asyncio.run(gw.get("v1", "Secret", "d", "gone")) is None
    gw, _ = gateway(status(403, "Forbidden"))
    with pytest.raises(ApiError) as raised:
        asyncio.run(gw.get("v1", "Secret", "d", "x"))
    assert raised.value.status.code == 403


def test_status_and_metadata_are_merge_patches() -> None:
    gw, fake = gateway(httpx.Response(200, json={}))
    asyncio.run(gw.patch_webapp_status("demo", "shop", {"observedGeneration": 2}))
    asyncio.run(gw.patch_metadata("v1", "Secret", "demo", "s", {"annotations": {"a": None}}))
    first, second = fake.requests
    assert first.url.path == "/apis/twelvefactor.dev/v1alpha1/namespaces/demo/webapps/shop/status"
    assert first.headers["content-type"] == "application/merge-patch+json"
    assert json.loads(second.content) == {"metadata": {"annotations": {"a": None}}}


def test_an_unknown_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="does not write CronJob"):
        kube.object_path("batch/v1", "CronJob", "d", "x")


def test_a_named_event_is_told_once_and_a_second_post_is_not_an_error() -> None:
    involved = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}}
    gw, fake = gateway(status(409, "AlreadyExists"))
    now = datetime(2026, 11, 23, tzinfo=UTC)
    asyncio.run(gw.post_event(involved, "UnsealFailed", "m", now, True, name="s.unseal-failed.1"))
    assert json.loads(fake.requests[0].content)["metadata"]["name"] == "s.unseal-failed.1"
    gw, _ = gateway(status(409, "AlreadyExists"))
    with pytest.raises(ApiError):  # without a name, a conflict is an error as ever
        asyncio.run(gw.post_event(involved, "UnsealFailed", "m", now, True))
