"""A real local Kubernetes control plane for tests and `make run`, built from Go modules.

Components (binaries from devcluster/build.sh, linked into .devcluster/bin/): etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which plays the kubelet of one
fake Node, so that scheduled pods become Running). Everything listens on 127.0.0.1, on free ports.

    python devcluster/localcluster.py up|down|status|env

`up` is idempotent: a healthy recorded cluster is reused; a dead or half-dead one is stopped and
started afresh. The processes run detached (their own session), so they outlive the command that
started them; `down` stops exactly the processes recorded in .devcluster/state.json, by pid.

Library use: `ensure_up(repo_root) -> Path` (the admin kubeconfig), `down(repo_root)`,
`status(repo_root)`; for fault tests, one component at a time: `stop_component(repo_root,
name, sig)`, `start_component(repo_root, name)` and `restart(repo_root, name, sig)`, which
bring it back with its recorded command line (same ports, data and certificates). Only the
standard library and `cryptography` are needed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import functools
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIRNAME = ".devcluster"
# The virtualenv of the top Makefile (its VENV, which `make cluster-env` passes as --venv): its
# bin holds webapp-operator and the kubectl plugin kubectl-webapp.
VENV_DIRNAME = ".venv"
LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: first address of SERVICE_CIDR
POD_CIDR = "10.244.0.1/16"  # kwok hands pod IPs out of this range
NODE_NAME = "kwok-node-0"
CONTEXT = "webapp-devcluster"
DEFAULT_TIMEOUT = float(os.environ.get("DEVCLUSTER_TIMEOUT", "180"))
STOP_GRACE = 10.0

# The controllers that make Deployments -> ReplicaSets -> Pods, Jobs, Services and namespace
# deletion work like on a real cluster. Left out: node IPAM, taint eviction, volumes, CSR signing,
# autoscaling (nothing here has real kubelets, disks or metrics).
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "replicationcontroller-controller",
    "garbage-collector-controller",
    "pod-garbage-collector-controller",
    "namespace-controller",
    # Lifts the node.kubernetes.io/not-ready taint that admission puts on every new Node once
    # kwok reports it Ready (nothing is evicted: the taint-eviction controller is not run).
    "node-lifecycle-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "service-cidr-controller",
    "resourcequota-controller",
    "disruption-controller",
)

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """The local control plane could not be built, started, reached or stopped."""


def log(message: str) -> None:
    print(f"[devcluster] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Paths and recorded state


@dataclass(frozen=True)
class Layout:
    """Where everything lives, under <repo>/.devcluster/."""

    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIRNAME

    @property
    def bin_dir(self) -> Path:
        return self.state_dir / "bin"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd-data"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "lock"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


@dataclass
class Proc:
    """A process this module started: pid plus its kernel start time, so that a recycled pid
    is never mistaken for ours."""

    name: str
    pid: int
    start_ticks: int
    exe: str


@dataclass
class State:
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    # The command lines: a cluster started by an older version of this module (other flags,
    # other binaries) is not reused.
    argv: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        procs = {name: Proc(**p) for name, p in raw.get("procs", {}).items()}
        return cls(ports=dict(raw.get("ports", {})), procs=procs, argv=dict(raw.get("argv", {})))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """Serialise up/down across processes (parallel make targets, pytest workers)."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Processes


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (avoids zombies)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(proc: Proc) -> bool:
    _reap(proc.pid)
    return _start_ticks(proc.pid) == proc.start_ticks


def spawn(name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
    """Start argv detached (new session, stdin from /dev/null, output appended to log_path)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as handle:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        handle.write(f"\n==== {stamp} {' '.join(argv)}\n".encode())
    pid = os.posix_spawn(
        argv[0],
        argv,
        env if env is not None else dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    ticks = _start_ticks(pid)
    if ticks is None:
        raise ClusterError(f"{name} exited at once: see {log_path}")
    return Proc(name=name, pid=pid, start_ticks=ticks, exe=argv[0])


def stop(procs: list[Proc], grace: float = STOP_GRACE) -> None:
    """SIGTERM each recorded process that is still ours, SIGKILL whatever is left after grace."""
    live = [p for p in procs if alive(p)]
    for proc in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        live = [p for p in live if alive(p)]
    for proc in live:
        log(f"{proc.name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [p for p in live if alive(p)]
    if live:
        raise ClusterError(f"could not stop {[p.name for p in live]}")


# Stop order: clients first, then the API server, then its storage (an API server whose etcd
# is gone first can hang in its shutdown).
STOP_ORDER = (("kwok", "kube-scheduler", "kube-controller-manager"), ("kube-apiserver",), ("etcd",))


def stop_cluster(procs: dict[str, Proc]) -> None:
    remaining = dict(procs)
    for group in STOP_ORDER:
        stop([remaining.pop(name) for name in group if name in remaining])
    stop(list(remaining.values()))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """Distinct free loopback ports (held open together so that none is handed out twice)."""
    socks: list[socket.socket] = []
    try:
        for _ in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
        return {name: s.getsockname()[1] for name, s in zip(names, socks, strict=True)}
    finally:
        for sock in socks:
            sock.close()


# --------------------------------------------------------------------------------------------
# Certificates and kubeconfigs


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


@dataclass(frozen=True)
class Pki:
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    def issue(
        self,
        subject: x509.Name,
        *,
        server: bool,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256()), key


def new_ca() -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name("webapp-devcluster-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pki(cert, key)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def kubeconfig_text(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> str:
    """A one-context kubeconfig, credentials embedded (JSON is valid YAML)."""
    credentials: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        credentials["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        credentials["client-key-data"] = base64.b64encode(key_pem).decode()
    if token is not None:
        credentials["token"] = token
    context: dict[str, str] = {"cluster": CONTEXT, "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": context}],
        "current-context": CONTEXT,
    }
    return json.dumps(config, indent=2) + "\n"


def write_pki(layout: Layout, apiserver_url: str) -> None:
    """CA, serving cert, client certs, service-account key and the kubeconfigs."""
    pki = new_ca()
    ca_pem = _pem_cert(pki.ca_cert)
    d = layout.pki
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.crt").write_bytes(ca_pem)
    _write_private(d / "ca.key", _pem_key(pki.ca_key))

    serving, serving_key = pki.issue(
        _name("kube-apiserver"),
        server=True,
        dns=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ips=(LOOPBACK, SERVICE_IP),
    )
    (d / "apiserver.crt").write_bytes(_pem_cert(serving))
    _write_private(d / "apiserver.key", _pem_key(serving_key))

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(d / "sa.key", _pem_key(sa_key))
    (d / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    clients = {
        # file stem: (user name in RBAC, group)
        "admin": ("kubernetes-admin", "system:masters"),
        "controller-manager": ("system:kube-controller-manager", None),
        "scheduler": ("system:kube-scheduler", None),
        "kwok": ("kwok", "system:masters"),
    }
    for stem, (user, group) in clients.items():
        cert, key = pki.issue(_name(user, group), server=False)
        text = kubeconfig_text(
            apiserver_url, ca_pem, user, cert_pem=_pem_cert(cert), key_pem=_pem_key(key)
        )
        if stem == "admin":
            _write_private(layout.kubeconfig, text.encode())
            (d / "admin.crt").write_bytes(_pem_cert(cert))
            _write_private(d / "admin.key", _pem_key(key))
        else:
            _write_private(d / f"{stem}.kubeconfig", text.encode())


# --------------------------------------------------------------------------------------------
# Talking to the API server (standard library only: this module runs before any venv exists)


# Never send loopback traffic through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _urlopen(
    req: urllib.request.Request | str, timeout: float, context: ssl.SSLContext | None = None
) -> http.client.HTTPResponse:
    opener = _OPENER
    if context is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
    response: http.client.HTTPResponse = opener.open(req, timeout=timeout)
    return response


class Api:
    """A tiny admin client for readiness checks and bootstrap objects."""

    def __init__(self, layout: Layout, port: int) -> None:
        self.base = f"https://{LOOPBACK}:{port}"
        self.ctx = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        self.ctx.load_cert_chain(layout.pki / "admin.crt", layout.pki / "admin.key")

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5
    ) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 (https URL built here)
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with _urlopen(req, timeout, self.ctx) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (OSError, ssl.SSLError) as err:
            return 0, str(err)

    def get_json(self, path: str) -> dict[str, Any] | None:
        code, text = self.request("GET", path)
        if code != 200:
            return None
        result: dict[str, Any] = json.loads(text)
        return result


def _http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with _urlopen(url, timeout) as resp:
            return int(resp.status) == 200
    except (OSError, ValueError):
        return False


def _https_ok(url: str, timeout: float = 2) -> bool:
    """Health of the controller-manager/scheduler (self-signed serving certs: not verified;
    /healthz is open to anonymous callers there)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with _urlopen(url, timeout, ctx) as resp:
            return int(resp.status) == 200
    except (OSError, ValueError):
        return False


def wait_until(
    what: str, check: Callable[[], bool], deadline: float, procs: list[Proc], layout: Layout
) -> None:
    """Poll check() until true; fail early if one of procs died, or at the deadline."""
    while True:
        if check():
            return
        for proc in procs:
            if not alive(proc):
                tail = _tail(layout.logs / f"{proc.name}.log")
                raise ClusterError(f"{proc.name} exited while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what} (logs in {layout.logs})")
        time.sleep(0.25)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def node_manifest(name: str) -> dict[str, Any]:
    """A Node that kwok manages (it selects nodes by the kwok.x-k8s.io/node annotation)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
    }


def _node_ready(api: Api, name: str) -> bool:
    """Ready, and schedulable: the not-ready taint (set at creation) has been lifted."""
    node = api.get_json(f"/api/v1/nodes/{name}")
    if node is None:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key") == "node.kubernetes.io/not-ready" for t in taints)


# --------------------------------------------------------------------------------------------
# The cluster


def _argv(layout: Layout, ports: dict[str, int]) -> dict[str, list[str]]:
    b, p = layout.binary, layout.pki
    etcd_url = f"http://{LOOPBACK}:{ports['etcd']}"
    peer_url = f"http://{LOOPBACK}:{ports['etcd-peer']}"
    scheduler_config = layout.state_dir / "scheduler-config.yaml"
    return {
        "etcd": [
            str(b("etcd")),
            "--name=devcluster",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=devcluster={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(b("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={ports['kube-apiserver']}",
            f"--cert-dir={p}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # A loopback address cannot be an Endpoints address: do not publish one for the
            # `kubernetes` Service (nothing runs in pods here anyway).
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ],
        "kube-controller-manager": [
            str(b("kube-controller-manager")),
            f"--kubeconfig={p / 'controller-manager.kubeconfig'}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports['kube-controller-manager']}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--controllers={','.join(CONTROLLERS)}",
            # kwok's node heartbeat is slow; a generous grace period keeps a loaded machine's
            # fake node from being marked NotReady (which would make every pod NotReady).
            "--node-monitor-grace-period=10m",
            # Each controller's client at 100 requests/s (the stock 20 is raised by most large
            # clusters): a rollout of 200 Deployments costs the Deployment and ReplicaSet
            # controllers ~800 requests, which took ~40 s at 20/s and held every bench round
            # and test waiting on rollouts (docs/performance.md).
            "--kube-api-qps=100",
            "--kube-api-burst=150",
            "--profiling=false",
        ],
        "kube-scheduler": [
            str(b("kube-scheduler")),
            f"--config={scheduler_config}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={ports['kube-scheduler']}",
            "--profiling=false",
        ],
        "kwok": [
            str(b("kwok")),
            f"--kubeconfig={p / 'kwok.kubeconfig'}",
            f"--config={b('kwok-stages.yaml')}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            f"--node-ip={LOOPBACK}",
            f"--server-address={LOOPBACK}:{ports['kwok']}",
            # Renew the node's Lease in kube-node-lease, as a kubelet does: without it the node
            # lifecycle controller marks the node NotReady and its pods lose readiness.
            "--node-lease-duration-seconds=40",
        ],
    }


def _write_scheduler_config(layout: Layout) -> None:
    kubeconfig = layout.pki / "scheduler.kubeconfig"
    (layout.state_dir / "scheduler-config.yaml").write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        f"clientConnection:\n  kubeconfig: {json.dumps(str(kubeconfig))}\n"
        "leaderElection:\n  leaderElect: false\n"
    )


def _check_binaries(layout: Layout) -> None:
    missing = [n for n in COMPONENTS if not os.access(layout.binary(n), os.X_OK)]
    if not layout.binary("kwok-stages.yaml").is_file():
        missing.append("kwok-stages.yaml")
    if missing:
        raise ClusterError(
            f"missing binaries in {layout.bin_dir}: {', '.join(missing)}; "
            "run `make cluster-build` (devcluster/build.sh) first"
        )


def healthy(layout: Layout, state: State | None, wait: float = 0.0) -> bool:
    """Every recorded process is alive, runs with today's settings, and the API server answers
    /readyz (given up to `wait` seconds: a loaded API server may be slow, not dead)."""
    if state is None or set(state.procs) != set(COMPONENTS) or not layout.kubeconfig.exists():
        return False
    if not all(alive(p) for p in state.procs.values()):
        return False
    if state.argv != _argv(layout, state.ports):
        log("the recorded cluster was started with other settings")
        return False
    api = Api(layout, state.ports["kube-apiserver"])
    deadline = time.monotonic() + wait
    while True:
        if api.request("GET", "/readyz")[0] == 200:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _wipe(layout: Layout) -> None:
    """Forget a stopped cluster: data, certificates, kubeconfig (binaries and logs stay)."""
    import shutil

    for path in (layout.etcd_data, layout.pki):
        shutil.rmtree(path, ignore_errors=True)
    for path in (layout.kubeconfig, layout.state_file, layout.state_dir / "scheduler-config.yaml"):
        path.unlink(missing_ok=True)
    # Keep the previous logs for post-mortems, one generation deep.
    if layout.logs.exists():
        for log_file in layout.logs.glob("*.log"):
            log_file.replace(log_file.with_suffix(".log.prev"))


def _start(layout: Layout, timeout: float) -> State:
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    ports = free_ports(("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager",
                        "kube-scheduler", "kwok"))  # fmt: skip
    argv = _argv(layout, ports)
    state = State(ports=ports, argv=argv)
    url = f"https://{LOOPBACK}:{ports['kube-apiserver']}"
    write_pki(layout, url)
    _write_scheduler_config(layout)
    logs = layout.logs

    def launch(name: str) -> Proc:
        proc = spawn(name, argv[name], logs / f"{name}.log")
        state.procs[name] = proc
        state.save(layout.state_file)  # record at once, so `down` can always find it
        return proc

    try:
        etcd = launch("etcd")
        wait_until(
            "etcd /health",
            lambda: _http_ok(f"http://{LOOPBACK}:{ports['etcd']}/health"),
            deadline,
            [etcd],
            layout,
        )
        apiserver = launch("kube-apiserver")
        api = Api(layout, ports["kube-apiserver"])
        wait_until(
            "kube-apiserver /readyz",
            lambda: api.request("GET", "/readyz")[0] == 200,
            deadline,
            [etcd, apiserver],
            layout,
        )
        log(f"kube-apiserver ready at {url} ({time.monotonic() - started:.1f}s)")
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            launch(name)
        code, text = api.request("POST", "/api/v1/nodes", node_manifest(NODE_NAME))
        if code not in (201, 409):
            raise ClusterError(f"creating Node {NODE_NAME}: HTTP {code}: {text}")
        everything = list(state.procs.values())
        for name in ("kube-controller-manager", "kube-scheduler"):
            port = ports[name]
            wait_until(
                f"{name} /healthz",
                functools.partial(_https_ok, f"https://{LOOPBACK}:{port}/healthz"),
                deadline,
                everything,
                layout,
            )
        wait_until(
            f"Node {NODE_NAME} Ready", lambda: _node_ready(api, NODE_NAME), deadline,
            everything, layout,
        )  # fmt: skip
        wait_until(
            "the default ServiceAccount",
            lambda: api.get_json("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            deadline,
            everything,
            layout,
        )
    except BaseException:
        stop_cluster(state.procs)
        raise
    log(f"control plane up in {time.monotonic() - started:.1f}s")
    return state


def ensure_up(repo_root: Path = REPO_ROOT, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Start the local control plane unless a healthy one is running; return the kubeconfig."""
    layout = Layout(repo_root.resolve())
    with _locked(layout):
        state = State.load(layout.state_file)
        if healthy(layout, state, wait=30):
            return layout.kubeconfig
        _check_binaries(layout)
        if state is not None:
            log("recorded cluster is not healthy: stopping what is left and starting afresh")
            stop_cluster(state.procs)
        _wipe(layout)
        _start(layout, timeout)
        return layout.kubeconfig


def down(repo_root: Path = REPO_ROOT) -> None:
    """Stop the processes recorded in state.json (and only those), then forget the cluster."""
    layout = Layout(repo_root.resolve())
    with _locked(layout):
        state = State.load(layout.state_file)
        if state is not None:
            stop_cluster(state.procs)
        _wipe(layout)


# --------------------------------------------------------------------------------------------
# One component at a time (fault tests: what do the clients do while the API server is gone?)


def _answers(layout: Layout, state: State, name: str) -> Callable[[], bool]:
    """The health check of one component: how `_start` waits for it."""
    ports = state.ports
    if name == "etcd":
        return lambda: _http_ok(f"http://{LOOPBACK}:{ports['etcd']}/health")
    if name == "kube-apiserver":
        api = Api(layout, ports["kube-apiserver"])
        return lambda: api.request("GET", "/readyz")[0] == 200
    if name in ("kube-controller-manager", "kube-scheduler"):
        return functools.partial(_https_ok, f"https://{LOOPBACK}:{ports[name]}/healthz")
    return lambda: True  # kwok: alive is all we can tell


def _port_free(port: int) -> bool:
    """Whether a server could listen on the port now (with SO_REUSEADDR, as Go's servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _recorded(layout: Layout, name: str) -> State:
    if name not in COMPONENTS:
        raise ClusterError(f"no component {name!r}; one of {', '.join(COMPONENTS)}")
    state = State.load(layout.state_file)
    if state is None or name not in state.procs:
        raise ClusterError(f"no recorded cluster with {name} under {layout.state_dir}")
    return state


def stop_component(
    repo_root: Path = REPO_ROOT, name: str = "kube-apiserver", sig: int = signal.SIGTERM
) -> None:
    """Stop one recorded component and leave it stopped (the others keep running).

    SIGTERM: a clean stop (SIGKILL after the usual grace); SIGKILL: a crash. `start_component`
    brings it back; `down` stops everything as before. Until then the cluster is not `healthy`.
    """
    layout = Layout(repo_root.resolve())
    with _locked(layout):
        proc = _recorded(layout, name).procs[name]
        if sig != signal.SIGKILL:
            stop([proc])
            return
        if alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(proc):
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} (pid {proc.pid}) outlived SIGKILL")
            time.sleep(0.05)


def start_component(
    repo_root: Path = REPO_ROOT, name: str = "kube-apiserver", timeout: float = DEFAULT_TIMEOUT
) -> Proc:
    """Start a stopped component again with its recorded command line (same ports, data and
    certificates), record its new pid, and wait until it answers its health check."""
    layout = Layout(repo_root.resolve())
    with _locked(layout):
        state = _recorded(layout, name)
        if alive(state.procs[name]):
            raise ClusterError(f"{name} is still running (pid {state.procs[name].pid})")
        # A killed multi-threaded process is a zombie (not `alive`) while its other threads
        # still exit, and holds its listening sockets until the last one is gone.
        ports = [state.ports[n] for n in (name, f"{name}-peer") if n in state.ports]
        deadline = time.monotonic() + 10
        while not all(_port_free(port) for port in ports):
            if time.monotonic() > deadline:
                raise ClusterError(f"the ports of {name} ({ports}) are still taken")
            time.sleep(0.1)
        proc = spawn(name, state.argv[name], layout.logs / f"{name}.log")
        state.procs[name] = proc
        state.save(layout.state_file)
        wait_until(
            f"{name} to answer again",
            _answers(layout, state, name),
            time.monotonic() + timeout,
            [proc],
            layout,
        )
        return proc


def restart(
    repo_root: Path = REPO_ROOT,
    name: str = "kube-apiserver",
    sig: int = signal.SIGTERM,
    timeout: float = DEFAULT_TIMEOUT,
) -> Proc:
    """`stop_component` then `start_component`: the component is back, on the same ports."""
    stop_component(repo_root, name, sig)
    return start_component(repo_root, name, timeout)


def status(repo_root: Path = REPO_ROOT) -> bool:
    """Print each component's state; True if the cluster is healthy."""
    layout = Layout(repo_root.resolve())
    state = State.load(layout.state_file)
    if state is None:
        print("no local cluster recorded (make cluster-up starts one)")
        return False
    for name in COMPONENTS:
        proc = state.procs.get(name)
        port = state.ports.get(name)
        where = f"{LOOPBACK}:{port}" if port else "-"
        if proc is None:
            print(f"{name:24} not started")
        else:
            print(f"{name:24} pid {proc.pid:<8} {'running' if alive(proc) else 'DEAD':8} {where}")
    ok = healthy(layout, state)
    print(f"{'cluster':24} {'healthy' if ok else 'NOT healthy'}; KUBECONFIG={layout.kubeconfig}")
    return ok


def env_lines(repo_root: Path = REPO_ROOT, venv: Path | None = None) -> list[str]:
    """The exports that make the local control plane the current cluster: KUBECONFIG, and on
    PATH the cluster's tools (kubectl, helm) and the venv's bin, where `kubectl webapp` finds
    its plugin kubectl-webapp (and webapp-operator is)."""
    layout = Layout(repo_root.resolve())
    venv_bin = (venv if venv is not None else layout.root / VENV_DIRNAME).resolve() / "bin"
    return [
        f"export KUBECONFIG={layout.kubeconfig}",
        f"export PATH={layout.bin_dir}:{venv_bin}:$PATH",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status", "env"))
    parser.add_argument("--repo-root", type=Path, default=REPO_ROOT)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument(
        "--venv", type=Path, default=None, help=f"env: the virtualenv (default: {VENV_DIRNAME})"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            kubeconfig = ensure_up(args.repo_root, args.timeout)
            print(f"export KUBECONFIG={kubeconfig}")
        elif args.command == "down":
            down(args.repo_root)
            log("stopped")
        elif args.command == "status":
            return 0 if status(args.repo_root) else 1
        else:
            print("\n".join(env_lines(args.repo_root, args.venv)))
    except ClusterError as err:
        log(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
