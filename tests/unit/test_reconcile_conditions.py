"""The Ready condition and Warning Event of a WebApp the env rules refuse: they name the WebApp,
the field and the Secret, as `render` does offline, and keep the fixed reasons.

The reconcilers run against the fake API server of test_reconcile_crash (below the level under
test: it implements the reconcilers' `Writer` and feeds objects back through the real indexes).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import NS, FakeCluster, credentials, settle, webapp

CANARY = "hunter2-canary"


def ready(cluster: FakeCluster, name: str) -> dict[str, Any]:
    status = cluster.objects[("WebApp", NS, name)]["status"]
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def bad_key_app() -> dict[str, Any]:
    app = webapp("shop", "auto")
    app["spec"]["secrets"] = {"secret-test": {"secretName": "credentials"}}
    return app


def bad_key_secret(key: str) -> dict[str, Any]:
    secret = credentials(CANARY)
    secret["metadata"]["annotations"]["twelvefactor.dev/grant"] = "shop"
    secret["stringData"] = {"username": "admin", key: CANARY}
    return secret


@pytest.mark.parametrize(
    ("key", "shown"), [("foo.bar", "key 'foo.bar'"), ("", "an empty key")], ids=["dot", "empty"]
)
def test_a_key_that_cannot_name_a_variable_names_the_webapp_field_and_secret(
    key: str, shown: str
) -> None:
    cluster = FakeCluster()
    cluster.put(bad_key_secret(key))
    cluster.put(bad_key_app())
    asyncio.run(settle(cluster))

    condition = ready(cluster, "shop")
    expected = (
        f"WebApp {NS}/shop: spec.secrets.secret-test: Secret {NS}/credentials: {shown} cannot "
        "form an environment variable name; Secret keys must be ASCII letters, digits, '-' or "
        "'_' (no dots, spaces or other characters)"
    )
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "InvalidSecretKey",
        expected,
    )
    assert ("InvalidSecretKey", "shop", expected) in cluster.events
    assert not any(kind == "Deployment" for kind, _, _ in cluster.objects)
    assert CANARY not in repr(cluster.events) + repr(condition)


def test_a_secret_key_option_in_config_names_its_field() -> None:
    cluster = FakeCluster()
    app = webapp("shop", "auto")
    app["spec"].pop("secrets")
    app["spec"]["config"] = {"app-secret-key-id": "app-key"}
    cluster.put(copy.deepcopy(app))
    asyncio.run(settle(cluster))

    condition = ready(cluster, "shop")
    assert condition["reason"] == "InvalidConfig"
    assert condition["message"] == (
        f"WebApp {NS}/shop: spec.config.app-secret-key-id: an option of type secret: reference "
        "a Secret holding one key, value, under spec.secrets.app-secret-key-id instead"
    )


def conditions(cluster: FakeCluster, name: str) -> dict[str, dict[str, Any]]:
    status = cluster.objects[("WebApp", NS, name)]["status"]
    return {c["type"]: c for c in status["conditions"]}


def test_a_failure_keeps_the_conditions_it_could_not_decide_again() -> None:
    """A manual observer behind its Secret, then a spec the operator refuses: Ready says why,
    and SecretUpdateAvailable stays as last decided (its generation says when), not dropped;
    the spec fixed, every condition is decided again."""
    cluster = FakeCluster()
    cluster.put(credentials("one"))
    app = webapp("shop", "manual")
    cluster.put(copy.deepcopy(app))
    asyncio.run(settle(cluster))
    cluster.put(credentials("two"))
    asyncio.run(settle(cluster))
    behind = conditions(cluster, "shop")["SecretUpdateAvailable"]
    assert (behind["status"], behind["observedGeneration"]) == ("True", 1)

    stored = cluster.objects[("WebApp", NS, "shop")]  # `kubectl apply`: the status stays
    stored["metadata"]["generation"] = 2
    stored["spec"]["config"] = {"app-secret-key-id": "app-key"}
    asyncio.run(settle(cluster))
    now = conditions(cluster, "shop")
    assert (now["Ready"]["reason"], now["Ready"]["observedGeneration"]) == ("InvalidConfig", 2)
    assert now["SecretUpdateAvailable"] == behind

    stored["metadata"]["generation"] = 3
    del stored["spec"]["config"]
    asyncio.run(settle(cluster))
    now = conditions(cluster, "shop")
    assert now["Ready"]["reason"] == "Available"
    assert now["SecretUpdateAvailable"]["status"] == "True"
    assert {c["observedGeneration"] for c in now.values()} == {3}
