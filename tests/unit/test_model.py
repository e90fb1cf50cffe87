"""The WebApp models: what is accepted, what is refused, and how refusals read."""

from __future__ import annotations

from typing import Any

import pytest

from webapp_operator.domain import model
from webapp_operator.domain.errors import InvalidConfig


def webapp(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"framework": "flask", "image": "example/app:1"}
    base.update(spec)
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": "demo"},
        "spec": base,
    }


def test_minimal_webapp_has_one_web_process() -> None:
    app = model.parse_webapp(webapp())
    assert app.spec.replicas == 1
    assert list(app.spec.process_specs()) == ["web"]


def test_camel_case_fields_parse() -> None:
    app = model.parse_webapp(
        webapp(secrets={"credentials": {"secretName": "other/creds", "refresh": "manual"}})
    )
    option = (app.spec.secrets or {})["credentials"]
    assert option.secret_name == "other/creds"
    assert option.refresh_mode == "manual"


def test_a_pin_implies_manual_refresh() -> None:
    app = model.parse_webapp(webapp(secrets={"c": {"secretName": "c", "revision": 3}}))
    assert (app.spec.secrets or {})["c"].refresh_mode == "manual"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"framework": "rails"}, "spec.framework", id="unknown-framework"),
        pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
        pytest.param({"port": 70000}, "spec.port", id="port-out-of-range"),
        pytest.param({"processes": {"cron": {}}}, "must be 'web' or end in", id="bad-process"),
        pytest.param(
            {"processes": {"beat-scheduler": {"replicas": 2}}},
            "exactly one pod",
            id="scheduler-replicas",
        ),
        pytest.param({"config": {"Bad_Name": "x"}}, "option name", id="bad-option-name"),
        pytest.param(
            {"secrets": {"c": {"secretName": "a/b/c"}}}, "spec.secrets.c.secretName", id="bad-ref"
        ),
        pytest.param(
            {"secrets": {"c": {"secretName": "c", "refresh": "auto", "revision": 2}}},
            "refresh: auto cannot be combined",
            id="pin-with-auto",
        ),
        pytest.param(
            {
                "config": {"app-secret-key": "k"},
                "secrets": {"app-secret-key-id": {"secretName": "k"}},
            },
            "not both",
            id="both-secret-keys",
        ),
        pytest.param(
            {"config": {"creds": "x"}, "secrets": {"creds": {"secretName": "c"}}},
            "both config and secrets",
            id="option-in-both",
        ),
        pytest.param(
            {"integrations": {"oracle": {"secretName": "db"}}},
            "unknown integration 'oracle'",
            id="unknown-integration",
        ),
        pytest.param({"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy", id="pull-policy"),
        pytest.param({"replica": 2}, "spec.replica", id="typo-is-refused"),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        model.parse_webapp(webapp(**spec))
    assert raised.value.message.startswith("WebApp demo/shop: ")
    assert expected in raised.value.message


def test_missing_image_is_reported() -> None:
    body = webapp()
    del body["spec"]["image"]
    with pytest.raises(InvalidConfig, match=r"spec\.image: Field required"):
        model.parse_webapp(body)


def test_wrong_kind_is_reported() -> None:
    body = webapp()
    body["kind"] = "App"
    with pytest.raises(InvalidConfig, match="kind WebApp"):
        model.parse_webapp(body)


def test_validation_messages_never_echo_values() -> None:
    canary = "canary-value-7f3a"
    with pytest.raises(InvalidConfig) as raised:
        model.parse_webapp(webapp(replicas=canary, secrets={"c": {"secretName": canary.upper()}}))
    assert canary not in raised.value.message
    assert canary.upper() not in raised.value.message


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("web", "web"),
        ("WEB", "web"),
        ("celery-worker", "worker"),
        ("Celery-Worker", "worker"),
        ("celery-beat-scheduler", "scheduler"),
    ],
)
def test_process_kind_is_case_insensitive(name: str, kind: str) -> None:
    assert model.process_kind(name) == kind
