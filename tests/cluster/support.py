"""Helpers for tests that run against a real API server (not fixtures: see conftest.py).

- `wait_for(predicate, timeout, interval, message)`: poll with a deadline instead of sleeping.
- `BackgroundProcess`: a command (the operator, later) running with KUBECONFIG set, its output
  captured to a log file, stopped by process group at the end.
- `ServiceAccountIdentity` / `service_account_identity(...)`: a ServiceAccount's bearer token
  (TokenRequest), as a kubeconfig file and a lightkube client, to test RBAC for real.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccount

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVCLUSTER_BIN = REPO_ROOT / ".devcluster" / "bin"

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """wait_for() ran out of time (an AssertionError, so pytest reports it as a failure)."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    message: str | Callable[[], str] = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call predicate() until it returns something truthy, and return that.

    Exceptions of the types in `ignore` count as "not yet" (e.g. `ApiError` while an object is
    still being created). At the deadline, fail with `message` (a callable is called then, so
    it can tell the state at the deadline, not at the start), the last value and last error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as err:
            last_error = err
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            detail = f"; last value {last!r}"
            if last_error is not None:
                detail += f"; last error {last_error!r}"
            what = message() if callable(message) else message
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def api_status(err: ApiError) -> int:
    """The HTTP status code of a lightkube ApiError."""
    code = err.status.code
    return int(code) if code is not None else 0


def is_not_found(err: ApiError) -> bool:
    return api_status(err) == 404


def tool_env(kubeconfig: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a subprocess talking to the cluster: KUBECONFIG set,
    .devcluster/bin first on PATH, and helm's state kept out of the user's home."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{DEVCLUSTER_BIN}{os.pathsep}{env.get('PATH', '')}"
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Background processes


@dataclass
class BackgroundProcess:
    """A command running in its own process group, output appended to `log_path`."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str]
    cwd: Path = REPO_ROOT
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> BackgroundProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.name} was never started"
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the log matches the regular expression `pattern` (fails if it exits)."""
        regex = re.compile(pattern)

        def check() -> re.Match[str] | None:
            found = regex.search(self.log_text())
            if found is None and not self.running():
                raise AssertionError(
                    f"{self.name} exited ({self.returncode}) before logging {pattern!r}:\n"
                    + self.log_text()[-4000:]
                )
            return found

        return wait_for(check, timeout, message=f"{self.name} to log {pattern!r}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout`; return the exit code."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._popen.pid, signal.SIGKILL)
                self._popen.wait(10)
        # Children that outlived the leader would keep the group alive: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        return self._popen.returncode


# --------------------------------------------------------------------------------------------
# Acting as a ServiceAccount


def _current_cluster(kubeconfig: Path) -> dict[str, Any]:
    """The `cluster` entry of the kubeconfig's current context, file paths made absolute."""
    config = yaml.safe_load(kubeconfig.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster: dict[str, Any] = dict(
        next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    )
    if "certificate-authority" in cluster:
        cluster["certificate-authority"] = str(
            (kubeconfig.parent / cluster["certificate-authority"]).resolve()
        )
    return cluster


def token_kubeconfig(kubeconfig: Path, token: str, user: str, namespace: str) -> dict[str, Any]:
    """A kubeconfig for the same cluster as `kubeconfig`, authenticating with a bearer token."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": _current_cluster(kubeconfig)}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "cluster", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }


@dataclass
class ServiceAccountIdentity:
    """Credentials of a ServiceAccount: its token, a kubeconfig file, and a lightkube client."""

    namespace: str
    name: str
    token: str
    kubeconfig: Path
    client: Client

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def service_account_identity(
    admin: Client,
    admin_kubeconfig: Path,
    namespace: str,
    name: str,
    directory: Path,
    expiration_seconds: int = 3600,
) -> ServiceAccountIdentity:
    """Create the ServiceAccount if needed, request a token for it (TokenRequest API) and
    write a kubeconfig that uses it. The caller closes `.client`."""
    try:
        admin.create(ServiceAccount(metadata=ObjectMeta(name=name)), namespace=namespace)
    except ApiError as err:
        if api_status(err) != 409:
            raise
    request = ServiceAccount.Token(
        # lightkube needs metadata on anything it POSTs
        metadata=ObjectMeta(),
        spec=TokenRequestSpec(audiences=[], expirationSeconds=expiration_seconds),
    )
    created = admin.create(request, name=name, namespace=namespace)
    assert created.status is not None
    assert created.status.token, "TokenRequest returned no token"
    token = created.status.token
    config = token_kubeconfig(admin_kubeconfig, token, f"{namespace}-{name}", namespace)
    path = directory / f"kubeconfig-{namespace}-{name}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    client = Client(KubeConfig.from_dict(config), namespace=namespace, field_manager="tests")
    return ServiceAccountIdentity(namespace, name, token, path, client)
