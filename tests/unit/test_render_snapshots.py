"""Snapshot files of whole rendered outputs, one per framework.

Each case renders a realistic app (web, worker, scheduler, user and framework options, a secret
option, an integration) and compares the YAML with `tests/unit/snapshots/<case>.yaml`. After an
intended change, regenerate with `UPDATE_SNAPSHOTS=1 make test-unit` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from webapp_operator.cli import offline

SNAPSHOTS = Path(__file__).parent / "snapshots"


def secret(name: str, data: dict[str, str], grant: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "labels": {"twelvefactor.dev/secret": "true"},
            "annotations": {"twelvefactor.dev/grant": grant},
        },
        "stringData": data,
    }


def webapp(framework: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": "demo", "uid": "0000-test-uid"},
        "spec": {"framework": framework, "image": f"registry.example/shop-{framework}:1", **spec},
    }


PROCESSES = {
    "web": {"command": ["/bin/app", "serve"]},
    "queue-worker": {"command": ["/bin/app", "work"], "replicas": 2},
    "cron-scheduler": {"command": ["/bin/app", "cron"]},
}
CREDS = secret("credentials", {"username": "admin", "password": "pw-1"})
DB = secret("shop-db-app", {"uri": "postgresql://shop:db%20pw@db.demo:5432/shop?sslmode=require"})

CASES: dict[str, list[dict[str, Any]]] = {
    "flask": [
        webapp(
            "flask",
            {
                "replicas": 2,
                "processes": PROCESSES,
                "config": {"flask-preferred-url-scheme": "http", "greeting": "hello", "items": 3},
                "secrets": {"credentials": {"secretName": "credentials"}},
                "integrations": {"postgresql": {"secretName": "shop-db-app"}},
            },
        ),
        CREDS,
        DB,
    ],
    "django": [
        webapp(
            "django",
            {
                "processes": PROCESSES,
                "config": {"django-debug": False, "django-allowed-hosts": ["shop.example"]},
                "secrets": {"credentials": {"secretName": "credentials"}},
                "integrations": {"postgresql": {"secretName": "shop-db-app"}},
            },
        ),
        CREDS,
        DB,
    ],
    "fastapi": [
        webapp(
            "fastapi",
            {
                "port": 9000,
                "config": {"feature-flags": {"beta": True}},
                "secrets": {"app-secret-key-id": {"secretName": "key"}},
            },
        ),
        secret("key", {"value": "user-supplied-key"}),
    ],
    "go": [
        webapp("go", {"processes": PROCESSES, "config": {"log-level": "debug"}}),
    ],
    "expressjs": [
        webapp(
            "expressjs",
            {
                "config": {"app-secret-key": "plain-key"},
                "secrets": {"credentials": {"secretName": "credentials"}},
            },
        ),
        CREDS,
    ],
    "springboot": [
        webapp("springboot", {"replicas": 3, "baseUrl": "https://shop.example.com"}),
    ],
    "generic": [
        webapp("generic", {"processes": {"web": {}, "mail-worker": {}}}),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_output_matches_snapshot(case: str, tmp_path: Path) -> None:
    source = tmp_path / "input.yaml"
    source.write_text(yaml.safe_dump_all(CASES[case], sort_keys=False))
    objects = offline.rendered_objects([str(source)], "default", reveal=True)
    text = yaml.safe_dump_all(objects, sort_keys=False, width=10_000)
    path = SNAPSHOTS / f"{case}.yaml"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path.name}: run UPDATE_SNAPSHOTS=1 make test-unit"
    assert text == path.read_text(), f"{path.name} differs: review, then UPDATE_SNAPSHOTS=1"


def test_no_stale_snapshot_files() -> None:
    assert {p.stem for p in SNAPSHOTS.glob("*.yaml")} <= set(CASES)
