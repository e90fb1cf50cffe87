"""The generated CRD on the real API server: it installs, explains, accepts and refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from tests.cluster import opkit, support


def apply_dry_run(kube: Client, namespace: str, spec: dict[str, Any]) -> str:
    """'' when the API server accepts the WebApp, else its message."""
    body = {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": spec,
    }
    obj: Any = opkit.WebApp.from_dict(body)
    try:
        kube.create(obj, dry_run=True)
    except ApiError as error:
        return str(error.status.message)
    return ""


GOOD: dict[str, Any] = {
    "framework": "flask",
    "image": "shop:1",
    "replicas": 2,
    "processes": {"web": {}, "celery-worker": {"replicas": 3}, "Beat-Scheduler": {}},
    "config": {"greeting": "hi", "flask-debug": True, "items": [1, 2], "limits": {"a": 1}},
    "secrets": {"credentials": {"secretName": "shared/credentials", "refresh": "manual"}},
    "integrations": {"postgresql": {"secretName": "db"}},
    "ownedSecrets": {"api-token": {"keys": ["token"], "rotate": "monthly", "grant": ["b"]}},
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"processes": {"cron": {}}}, "must be 'web' or end in", id="process-name"),
        pytest.param(
            {"processes": {"beat-scheduler": {"replicas": 2}}}, "exactly one pod", id="scheduler"
        ),
        pytest.param({"framework": "rails"}, "spec.framework: Unsupported value", id="framework"),
        pytest.param(
            {"replicas": "three"},
            "spec.replicas in body must be of type integer",
            id="replicas-type",
        ),
        pytest.param({"replicas": -1}, "spec.replicas", id="replicas-negative"),
        pytest.param({"image": None}, "spec.image: Required value", id="no-image"),
        pytest.param(
            {"secrets": {"Bad_Name": {"secretName": "c"}}}, "option names", id="option-name"
        ),
        pytest.param(
            {"secrets": {"c": {"secretName": "a/b/c"}}},
            "spec.secrets.c.secretName",
            id="secret-ref",
        ),
        pytest.param(
            {"secrets": {"c": {"secretName": "c", "refresh": "auto", "revision": 2}}},
            "refresh: auto cannot be combined",
            id="pin-and-auto",
        ),
        pytest.param(
            {"integrations": {"oracle": {"secretName": "db"}}},
            "known integrations",
            id="integration",
        ),
        pytest.param({"ownedSecrets": {"Token": {"keys": ["t"]}}}, "DNS labels", id="owned-name"),
        pytest.param({"port": 70000}, "spec.port", id="port"),
    ],
)
def test_the_api_server_refuses_bad_specs_clearly(
    kube: Client, namespace: str, change: dict[str, Any], expected: str
) -> None:
    opkit.install_crd(kube)
    spec = {**GOOD, **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    message = apply_dry_run(kube, namespace, spec)
    assert expected in message, message


def test_a_full_spec_is_accepted_and_explained(
    kube: Client, namespace: str, kubeconfig: Path
) -> None:
    opkit.install_crd(kube)
    assert apply_dry_run(kube, namespace, GOOD) == ""
    explained = subprocess.run(
        ["kubectl", "explain", "webapp.spec.secrets"],
        env=support.tool_env(kubeconfig),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "FLASK_CREDENTIALS_USERNAME" in explained
    assert "refresh" in explained
