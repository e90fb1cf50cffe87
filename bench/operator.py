"""The operator under test: `webapp-operator run` as a separate process, and what it reports.

- memory: VmRSS from /proc/<pid>/status; CPU: utime + stime from /proc/<pid>/stat;
- requests: `webapp_operator_api_requests_total{kind}` from its own /metrics (every request
  its reconcilers send; Kopf's own lists and watches are not in it: see kube.server_counts);
- progress: reconcile counts per kind and the work queue's depth, from the same page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx2 as httpx

from bench import REPO_ROOT
from bench.kube import OPERATOR_NAMESPACE, BenchError, parse_metrics

OPERATOR_CLI: Final = str(Path(sys.executable).parent / "webapp-operator")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    """One look at the operator: its counters, the time, its CPU and memory."""

    at: float
    reads: float
    writes: float
    webapp_reconciles: float
    secret_reconciles: float
    errors: float
    queue: float
    cpu_s: float
    rss_mib: float

    @property
    def reconciles(self) -> float:
        return self.webapp_reconciles + self.secret_reconciles


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def proc_cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the file
    return (utime + stime) / CLOCK_TICKS


@dataclass
class OperatorProcess:
    """`webapp-operator run` against the bench cluster, its own process group and log file."""

    kubeconfig: Path
    log_path: Path
    args: Sequence[str] = ()
    namespaces: Sequence[str] = ()
    operator_namespace: str = OPERATOR_NAMESPACE
    metrics_port: int = 0
    started_at: float = 0.0
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise BenchError("the operator is not running")
        return self._popen.pid

    def argv(self) -> list[str]:
        argv = [OPERATOR_CLI, "run", "--operator-namespace", self.operator_namespace]
        argv += ["--metrics-port", str(self.metrics_port), "--log-format", "plain"]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        return [*argv, *self.args]

    def start(self) -> None:
        self.metrics_port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        with self.log_path.open("ab") as log:
            log.write(f"\n==== {' '.join(self.argv())}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self._http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.metrics_port}", trust_env=False, timeout=10.0
        )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def _check_alive(self) -> None:
        if not self.running():
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"the operator exited ({self._returncode()}):\n{tail}")

    def _returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    async def stop(self, timeout: float = 20.0) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)
        self._popen = None

    async def fetch(self, path: str) -> tuple[int, str]:
        if self._http is None:
            raise BenchError("the operator is not running")
        try:
            response = await self._http.get(path)
        except httpx.TransportError:
            return 0, ""
        return response.status_code, response.text

    async def wait_ready(self, timeout: float = 600) -> float:
        """Wait for /readyz (every index listed, workers running); seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            code, _ = await self.fetch("/readyz")
            if code == 200:
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.1)
        raise BenchError(f"the operator was not ready within {timeout:.0f} s")

    async def sample(self) -> Sample:
        self._check_alive()
        code, text = await self.fetch("/metrics")
        if code != 200:
            raise BenchError(f"/metrics answered {code}")
        at = time.monotonic()
        values: dict[str, float] = {}
        for name, labels, value in parse_metrics(text):
            if name == "webapp_operator_api_requests_total":
                values[labels.get("kind", "")] = value
            elif name == "webapp_operator_reconcile_duration_seconds_count":
                values[f"reconcile:{labels.get('kind', '')}"] = value
            elif name == "webapp_operator_reconcile_errors_total":
                values["errors"] = values.get("errors", 0.0) + value
            elif name == "webapp_operator_queue_depth":
                values["queue"] = value
        return Sample(
            at=at,
            reads=values.get("read", 0.0),
            writes=values.get("write", 0.0),
            webapp_reconciles=values.get("reconcile:webapp", 0.0),
            secret_reconciles=values.get("reconcile:secret", 0.0),
            errors=values.get("errors", 0.0),
            queue=values.get("queue", 0.0),
            cpu_s=proc_cpu_s(self.pid),
            rss_mib=proc_rss_mib(self.pid),
        )

    async def wait_quiet(
        self, quiet: float = 2.0, timeout: float = 600, interval: float = 0.1
    ) -> Sample:
        """Wait until the queue is empty and no reconcile ran for `quiet` seconds.

        Returns the sample taken at the last change: its `at` is when the work stopped.
        """
        deadline = time.monotonic() + timeout
        last = await self.sample()
        changed = last
        while True:
            await asyncio.sleep(interval)
            now = await self.sample()
            if now.reconciles != last.reconciles or now.queue > 0:
                changed = now
            last = now
            if now.queue == 0 and now.at - changed.at >= quiet:
                return changed
            if now.at > deadline:
                raise BenchError(
                    f"the operator did not settle within {timeout:.0f} s "
                    f"(queue {now.queue:.0f}, {now.reconciles:.0f} reconciles)"
                )

    async def rss_median(self, samples: int = 5, interval: float = 1.0) -> float:
        values = []
        for index in range(samples):
            if index:
                await asyncio.sleep(interval)
            values.append(proc_rss_mib(self.pid))
        return sorted(values)[len(values) // 2]
