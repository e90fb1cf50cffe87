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


# The opted-in Secret `credentials` in `demo`, up to its annotations (SECRET, SEALED_SECRET).
SECRET_HEAD = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: credentials
      namespace: demo
      labels: {twelvefactor.dev/secret: "true"}
"""
SECRET = (
    SECRET_HEAD
    + """      annotations: {twelvefactor.dev/grant: %s}
    stringData: {username: admin, %s: hunter2-canary}
"""
)
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


def app_and_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: str, secret: str
) -> list[str]:
    """`-f app.yaml -f secret.yaml`, written in the working directory (as a user types them)."""
    monkeypatch.chdir(tmp_path)
    files = {"app.yaml": app, "secret.yaml": secret}
    return [
        arg
        for name, text in files.items()
        for arg in ("-f", Path(write(tmp_path, name, text)).name)
    ]


SECRET_KEY_SECRET = """
    apiVersion: v1
    kind: Secret
    metadata:
      name: app-key
      namespace: demo
      labels: {twelvefactor.dev/secret: "true"}
      annotations: {twelvefactor.dev/grant: shop}
    stringData: %s
"""
SHOP = "app.yaml document 1: WebApp demo/shop"
KEY_ID_APP = APP.replace(
    "credentials: {secretName: credentials}", "app-secret-key-id: {secretName: app-key}"
)


@pytest.mark.parametrize(
    ("app", "secret", "expected"),
    [
        pytest.param(
            APP,
            SECRET % ("shop", "foo.bar"),
            f"{SHOP}: spec.secrets.credentials: Secret demo/credentials: key 'foo.bar' cannot "
            "form an environment variable name;",
            id="dotted-key",
        ),
        pytest.param(
            APP,
            SECRET % ("shop", '""'),
            f"{SHOP}: spec.secrets.credentials: Secret demo/credentials: an empty key cannot "
            "form an environment variable name;",
            id="empty-key",
        ),
        pytest.param(
            APP + "      config: {app-secret-key-id: app-key}\n",
            SECRET % ("shop", "password"),
            f"{SHOP}: spec.config.app-secret-key-id: an option of type secret: reference a "
            "Secret holding one key, value, under spec.secrets.app-secret-key-id instead",
            id="secret-key-id-in-config",
        ),
        pytest.param(
            KEY_ID_APP,
            SECRET_KEY_SECRET % "{value: hunter2-canary, other: hunter2-canary}",
            f"{SHOP}: spec.secrets.app-secret-key-id: Secret demo/app-key: must hold exactly "
            "one key, 'value' (the app's secret key); it holds 'other', 'value'",
            id="secret-key-id-two-keys",
        ),
        pytest.param(
            KEY_ID_APP,
            SECRET_KEY_SECRET % '{value: ""}',
            f"{SHOP}: spec.secrets.app-secret-key-id: Secret demo/app-key: key 'value' is empty",
            id="secret-key-id-empty",
        ),
        pytest.param(
            APP + "      integrations: {s3: {secretName: credentials}}\n",
            SECRET % ("shop", "password"),
            f"{SHOP}: spec.integrations.s3: Secret demo/credentials: its Secret lacks "
            "access-key, secret-key, bucket",
            id="integration-lacks-keys",
        ),
    ],
)
def test_errors_of_the_env_rules_name_the_file_webapp_field_and_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    app: str,
    secret: str,
    expected: str,
) -> None:
    status, out, err = run(capsys, "render", *app_and_secret(tmp_path, monkeypatch, app, secret))
    assert (status, out) == (1, "")
    assert err.startswith(f"error: {expected}"), err
    assert len(err.splitlines()) == 1, err
    assert "hunter2-canary" not in err


def test_a_secret_read_into_another_namespace_is_hinted_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = SECRET.replace("      namespace: demo\n", "") % ("shop", "password")
    files = app_and_secret(tmp_path, monkeypatch, APP, secret)
    status, _, err = run(capsys, "render", *files)
    assert status == 1
    assert err.startswith(
        f"error: {SHOP}: spec.secrets.credentials: Secret demo/credentials not found"
    ), err
    assert (
        "note: a Secret without metadata.namespace is read into namespace default (the "
        "-n/--namespace value, 'default' unless given), not demo, as the one of "
        "secret.yaml document 1 was: set its metadata.namespace to demo, or run render with "
        "-n demo"
    ) in err
    status, _, err = run(capsys, "render", *files, "-n", "demo")
    assert status == 0, err


def test_no_namespace_hint_when_every_secret_names_its_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = SECRET.replace("name: credentials", "name: other") % ("shop", "password")
    status, _, err = run(capsys, "render", *app_and_secret(tmp_path, monkeypatch, APP, secret))
    assert status == 1
    assert "Secret demo/credentials not found" in err
    assert "metadata.namespace" not in err


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


@pytest.mark.parametrize("number", ["²", "\u0661", "0", "-1", "+1", " 1", "1.0", ""])
def test_a_revision_file_whose_number_is_not_one_is_no_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], number: str
) -> None:
    """A label `str.isdigit` accepts but `int` refuses (`²`) crashed `render` with a traceback;
    any number that is not 1, 2, ... makes the file a plain Secret, not a revision."""
    revision = f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: credentials.rev-1
          namespace: demo
          labels:
            twelvefactor.dev/secret: revision
            twelvefactor.dev/revision-of: credentials
            twelvefactor.dev/revision: {json.dumps(number)}
        stringData: {{password: from-the-revision-file}}
    """
    status, out, err = run(
        capsys,
        "render",
        "--reveal",
        "-f",
        write(tmp_path, "a.yaml", APP),
        "-f",
        write(tmp_path, "s.yaml", SECRET % ("shop", "password")),
        "-f",
        write(tmp_path, "r.yaml", revision),
    )
    assert status == 0, err
    env = next(yaml.safe_load_all(out))["stringData"]
    assert env["DJANGO_CREDENTIALS_PASSWORD"] == "hunter2-canary"


SEALED_SECRET = (
    SECRET_HEAD
    + """      annotations: {twelvefactor.dev/grant: shop, twelvefactor.dev/sealed: "true"}
    stringData: {username: "tfs1:k1:c2VhbGVk", password: %s}
"""
)


@pytest.mark.parametrize("reveal", [True, False], ids=["reveal", "redacted"])
def test_a_sealed_secret_renders_with_placeholders_never_its_sealed_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reveal: bool
) -> None:
    """Offline there is no private key: the variables are named as in the cluster, and their
    values say where they open, instead of the sealed text no app would ever see."""
    files = ["-f", write(tmp_path, "a.yaml", APP)]
    files += ["-f", write(tmp_path, "s.yaml", SEALED_SECRET % '"tfs1:k1:aHVudGVyMg=="')]
    status, out, err = run(capsys, "render", *files, *(["--reveal"] if reveal else []))
    assert status == 0, err
    env = next(yaml.safe_load_all(out))["stringData"]
    shown = "<sealed: opened by the operator in the cluster>" if reveal else "<redacted>"
    assert env["DJANGO_CREDENTIALS_USERNAME"] == shown
    assert env["DJANGO_CREDENTIALS_PASSWORD"] == shown
    assert "tfs1:" not in out


def test_a_plain_value_in_a_sealed_secret_is_refused_offline_as_in_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = ["-f", write(tmp_path, "a.yaml", APP)]
    files += ["-f", write(tmp_path, "s.yaml", SEALED_SECRET % "hunter2-canary")]
    status, out, err = run(capsys, "render", *files)
    assert status == 1
    assert out == ""
    assert "Secret demo/credentials is sealed, but 'password' is not sealed" in err
    assert "hunter2-canary" not in err


def test_an_integration_reading_a_sealed_secret_is_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = APP.replace("secrets:\n        credentials:", "integrations:\n        postgresql:")
    assert "postgresql" in app
    sealed = SEALED_SECRET.replace("password: %s", 'uri: "tfs1:k1:dXJp"')
    files = ["-f", write(tmp_path, "a.yaml", app), "-f", write(tmp_path, "s.yaml", sealed)]
    status, out, err = run(capsys, "render", *files)
    assert status == 0, err
    assert "integration postgresql reads the sealed Secret demo/credentials" in err
    assert "tfs1:" not in out


def test_a_framework_option_of_thousands_of_digits_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """int() refuses over 4,300 digits with a ValueError: it was a traceback, not an answer."""
    digits = "1" * 5000
    app = APP.replace("secrets:\n", f'config: {{webserver-timeout: "{digits}"}}\n      secrets:\n')
    assert "webserver-timeout" in app
    files = ["-f", write(tmp_path, "a.yaml", app)]
    files += ["-f", write(tmp_path, "s.yaml", SECRET % ("shop", "password"))]
    status, out, err = run(capsys, "render", *files)
    assert (status, out) == (1, "")
    assert "webserver-timeout" in err
    assert "must be an integer at least 0" in err


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("kind: Secret\nmetadata: x", "metadata must be a mapping"),
        ("kind: Secret\nmetadata: {name: s, labels: x}", "metadata.labels must map strings"),
        ("kind: Secret\nmetadata: {name: s, annotations: [1]}", "metadata.annotations must map"),
        ("kind: Secret\nmetadata: {name: s, labels: {a: 5}}", "metadata.labels must map strings"),
        ("kind: Secret\nmetadata: {name: s, namespace: 5}", "metadata.namespace must be a string"),
        ("kind: Secret\nmetadata: {name: s}\ndata: [1]", "data must be a mapping"),
        ("kind: Secret\nmetadata: {name: s}\nstringData: x", "stringData must be a mapping"),
        ("kind: WebApp\nmetadata: x\nspec: {framework: flask, image: a}", "metadata must be a"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, expected: str
) -> None:
    """Most of these printed a traceback (dict() of a string, .items() of a list); a number
    where the API server wants a string was taken as it was."""
    version = "twelvefactor.dev/v1alpha1" if "WebApp" in document else "v1"
    odd = f"apiVersion: {version}\n{document}\n"
    files = ["-f", write(tmp_path, "a.yaml", APP), "-f", write(tmp_path, "odd.yaml", odd)]
    status, out, err = run(capsys, "render", *files)
    assert (status, out) == (1, "")
    assert err.startswith("error: ")
    assert expected in err


def test_render_prints_every_kind_the_operator_would_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The migration Job, the Ingress and the autoscalers too, in the operator's order."""
    document = yaml.safe_load((EXAMPLE / "webapp.yaml").read_text())
    spec = document["spec"]
    spec["baseUrl"] = "https://shop.example.com/"
    spec["ingress"] = {"className": "nginx"}
    spec["resources"] = {"requests": {"cpu": "100m"}}
    spec["processes"]["web"] = {"autoscale": {"maxReplicas": 4}}
    spec["migration"] = {"command": ["flask", "db", "upgrade"]}
    status, out, err = run(
        capsys,
        "render",
        "-f",
        write(tmp_path, "app.yaml", yaml.safe_dump(document)),
        "-f",
        str(EXAMPLE / "secrets.yaml"),
    )
    assert status == 0, err
    kinds = [o["kind"] for o in yaml.safe_load_all(out) if o]
    assert kinds == [
        "Secret",
        "Job",
        "Deployment",
        "Deployment",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
    ]
    assert PASSWORD not in out
