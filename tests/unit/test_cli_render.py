"""`webapp-operator render` and `crd`, run as a user would: through the entry point."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from webapp_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flask"
PASSWORD = "s3cr3t-Pa55w0rd"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def render_seed(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    status, out, err = run(
        capsys,
        "render",
        "-f",
        str(EXAMPLE / "webapp.yaml"),
        "-f",
        str(EXAMPLE / "secrets.yaml"),
        *extra,
    )
    assert status == 0, err
    return [d for d in yaml.safe_load_all(out) if d]


def test_seed_reaches_web_worker_and_scheduler_from_one_snapshot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    objects = render_seed(capsys)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    snapshot = objects[0]
    assert kinds[0][0] == "Secret"
    assert snapshot["metadata"]["name"].startswith("juju-secret-app-env-")
    assert kinds[1:] == [
        ("Deployment", "juju-secret-app"),
        ("Deployment", "juju-secret-app-celery-beat-scheduler"),
        ("Deployment", "juju-secret-app-celery-worker"),
        ("Service", "juju-secret-app"),
    ]
    for deployment in objects[1:4]:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": snapshot["metadata"]["name"]}}]
    env = snapshot["stringData"]
    assert env["FLASK_CREDENTIALS_USERNAME"] == "<redacted>"
    assert env["FLASK_CREDENTIALS_PASSWORD"] == "<redacted>"
    assert env["FLASK_GREETING"] == "hello"


def test_password_absent_unless_revealed(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "render", "-f", str(EXAMPLE / "webapp.yaml"), "-f", str(EXAMPLE / "secrets.yaml")
    )
    assert status == 0
    assert PASSWORD not in out
    assert base64.b64encode(PASSWORD.encode()).decode() not in out
    revealed = render_seed(capsys, "--reveal")
    assert revealed[0]["stringData"]["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD


def test_json_output_is_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "render",
        "-o",
        "json",
        "-f",
        str(EXAMPLE / "webapp.yaml"),
        "-f",
        str(EXAMPLE / "secrets.yaml"),
    )
    assert status == 0
    listing = json.loads(out)
    assert listing["kind"] == "List"
    assert len(listing["items"]) == 5


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


SECRET = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: credentials
      namespace: demo
      labels: {twelvefactor.dev/secret: "true"}
      annotations: {twelvefactor.dev/grant: %s}
    stringData: {username: admin, %s: hunter2-canary}
"""
APP = """
    apiVersion: twelvefactor.dev/v1alpha1
    kind: WebApp
    metadata: {name: shop, namespace: demo}
    spec:
      framework: django
      image: shop:1
      secrets:
        credentials: {secretName: credentials}
"""


@pytest.mark.parametrize(
    ("app", "secret", "expected"),
    [
        pytest.param(
            APP,
            SECRET % ("other-app", "password"),
            "SecretNotGranted|grant-secret",
            id="not-granted",
        ),
        pytest.param(APP, "", "Secret demo/credentials not found", id="missing-secret"),
        pytest.param(APP, SECRET % ("shop", "pass.word"), "pass.word", id="bad-key"),
        pytest.param(
            APP,
            SECRET.replace('labels: {twelvefactor.dev/secret: "true"}', "labels: {}")
            % ("shop", "password"),
            "twelvefactor.dev/secret=true",
            id="not-opted-in",
        ),
        pytest.param(
            APP.replace("django", "rails"),
            SECRET % ("shop", "password"),
            "spec.framework",
            id="bad-framework",
        ),
        pytest.param("kind: WebApp\n", "", "apiVersion and kind are required", id="no-api-version"),
        pytest.param("a: [1, 2\n", "", "not valid YAML", id="broken-yaml"),
        pytest.param(
            APP.replace("      image: shop:1\n", ""),
            SECRET % ("shop", "password"),
            "spec.image: Field required",
            id="missing-image",
        ),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], app: str, secret: str, expected: str
) -> None:
    files = ["-f", write(tmp_path, "app.yaml", app)]
    if secret:
        files += ["-f", write(tmp_path, "secret.yaml", secret)]
    status, out, err = run(capsys, "render", *files)
    assert status == 1
    assert out == ""
    assert err.startswith("error: ")
    assert any(part in err for part in expected.split("|")), err
    assert "hunter2-canary" not in err


def test_cross_namespace_grant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = SECRET.replace("namespace: demo", "namespace: shared") % ("demo/shop", "password")
    app = APP.replace("secretName: credentials", "secretName: shared/credentials")
    status, out, err = run(
        capsys,
        "render",
        "-f",
        write(tmp_path, "a.yaml", app),
        "-f",
        write(tmp_path, "s.yaml", secret),
    )
    assert status == 0, err
    env = next(yaml.safe_load_all(out))["stringData"]
    assert env["DJANGO_CREDENTIALS_PASSWORD"] == "<redacted>"


def test_a_same_namespace_grant_does_not_cover_other_namespaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = SECRET.replace("namespace: demo", "namespace: shared") % ("shop", "password")
    app = APP.replace("secretName: credentials", "secretName: shared/credentials")
    status, _, err = run(
        capsys,
        "render",
        "-f",
        write(tmp_path, "a.yaml", app),
        "-f",
        write(tmp_path, "s.yaml", secret),
    )
    assert status == 1
    assert "demo/shop" in err


def test_crd_command_prints_the_committed_crd(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "crd")
    assert status == 0
    assert out == (ROOT / "crds" / "webapps.twelvefactor.dev.yaml").read_text()


def test_entry_points_are_installed() -> None:
    bindir = Path(sys.executable).parent
    for name in ("webapp-operator", "kubectl-webapp"):
        done = subprocess.run(
            [str(bindir / name), "--help"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "render" in done.stdout
    plugin = subprocess.run(
        [str(bindir / "kubectl-webapp"), "--help"], capture_output=True, text=True, check=False
    )
    assert plugin.stdout.startswith("usage: kubectl webapp")
