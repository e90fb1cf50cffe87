"""`kubectl webapp` as a user runs it after `eval "$(make -s cluster-env)"`: the real kubectl of
.devcluster/bin finds the plugin kubectl-webapp in the venv's bin through PATH alone.

The shell starts from a PATH without the venv (as a user's login shell has), so only the exports
of `make cluster-env` can put the plugin there. The last test drives the real operator with
`kubectl webapp update-secret --wait`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from lightkube import Client
from tests.cluster import opkit
from tests.cluster.support import DEVCLUSTER_BIN, REPO_ROOT

from webapp_operator.cli import secrets as cli

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`argv` in the repository with exactly `env`, its output captured as text."""
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def cluster_env() -> str:
    """What `make -s cluster-env` prints."""
    if not (DEVCLUSTER_BIN / "kubectl").exists():
        pytest.skip("no .devcluster/bin/kubectl (make cluster-build)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = run(["make", "-s", "--no-print-directory", "cluster-env"], env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def shell(cluster_env: str, kubeconfig: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a bash that evaluated the exports (KUBECONFIG then pointed at the cluster
    under test, which is the same file unless WEBAPP_TEST_KUBECONFIG names another)."""
    script = f"{cluster_env}\nexport KUBECONFIG={shlex.quote(str(kubeconfig))}\n{command}"
    return run(["bash", "-c", script], {"PATH": BARE_PATH, "HOME": os.environ.get("HOME", "/tmp")})


def ok(cluster_env: str, kubeconfig: Path, command: str) -> str:
    done = shell(cluster_env, kubeconfig, command)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def test_the_exports_put_kubectl_and_the_plugin_on_path(cluster_env: str, kubeconfig: Path) -> None:
    found = ok(cluster_env, kubeconfig, "command -v kubectl kubectl-webapp").split()
    assert found == [str(DEVCLUSTER_BIN / "kubectl"), str(VENV_BIN / "kubectl-webapp")]
    plugins = ok(cluster_env, kubeconfig, "kubectl plugin list")
    assert str(VENV_BIN / "kubectl-webapp") in plugins.splitlines()
    usage = ok(cluster_env, kubeconfig, "kubectl webapp --help")
    assert usage.startswith("usage: kubectl webapp")
    assert "show-secret" in usage


def test_kubectl_webapp_lists_secrets_of_the_cluster(
    cluster_env: str, kubeconfig: Path, kube: Client, namespace: str
) -> None:
    opkit.install_crd(kube)  # `secrets` lists the WebApps observing each Secret
    added = ok(
        cluster_env, kubeconfig, f"kubectl webapp add-secret creds user=admin -n {namespace}"
    )
    assert added.strip() == f"{namespace}/creds"

    table = ok(cluster_env, kubeconfig, f"kubectl webapp secrets -n {namespace}")
    header, *rows = table.splitlines()
    assert re.split(r"\s{3,}", header) == list(cli.SECRETS_HEADERS)
    assert [re.split(r"\s{3,}", row)[:4] for row in rows] == [["creds", "-", "-", "never"]]
    listing = json.loads(
        ok(cluster_env, kubeconfig, f"kubectl webapp secrets -n {namespace} -o json")
    )
    assert list(listing) == [f"{namespace}/creds"]
    assert "admin" not in table + json.dumps(listing)


def test_without_the_venv_on_path_kubectl_has_no_webapp_command(
    cluster_env: str, kubeconfig: Path
) -> None:
    """What the exports fix: kubectl alone does not know the command."""
    only_tools = "\n".join(
        line for line in cluster_env.splitlines() if not line.startswith("export PATH=")
    )
    done = shell(only_tools, kubeconfig, f"{DEVCLUSTER_BIN / 'kubectl'} webapp --help")
    assert done.returncode != 0
    assert 'unknown command "webapp"' in done.stderr


def test_update_secret_wait_follows_the_automatic_observers_until_ready(
    cluster_env: str, kubeconfig: Path, kit: opkit.Kit
) -> None:
    new_value = "n3w-Pa55w0rd-wait"
    kit.start_operator()
    kit.secret("creds", {"password": "0ld-Pa55w0rd-wait"}, grant="shop,audit")
    for app, refresh in (("shop", "auto"), ("audit", "manual")):
        kit.webapp(
            app,
            {
                "framework": "go",
                "image": f"{app}:1",
                "processes": {"web": {}, "queue-worker": {}},
                "secrets": {"credentials": {"secretName": "creds", "refresh": refresh}},
            },
        )
    for app in ("shop", "audit"):
        kit.wait_ready(app)
    assert kit.tracked("shop", "credentials") == 1

    out = ok(
        cluster_env,
        kubeconfig,
        f"kubectl webapp update-secret creds password={new_value} --wait --timeout 120 "
        f"-n {kit.namespace}",
    )

    ns = kit.namespace
    lines = out.splitlines()
    assert lines[0] == f"{ns}/creds updated: changed password"
    assert lines[1] == f"waiting for {ns}/shop (credentials) to run a revision after 1"
    assert lines[-1] == f"{ns}/shop: Ready on revision 2 (credentials)"
    assert all("audit" not in line for line in lines)  # a manual observer is not waited for
    assert new_value not in out
    # What it printed is what the cluster holds: shop on revision 2 and Ready, audit behind.
    assert (kit.tracked("shop", "credentials"), kit.ready("shop")) == (2, True)
    assert kit.tracked("audit", "credentials") == 1
