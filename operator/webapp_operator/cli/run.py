"""`webapp-operator run`: the controller, on Kopf.

With no `--namespace`, it watches all namespaces (`--all-namespaces` says so explicitly).
The cluster comes from KUBECONFIG / ~/.kube/config, or the in-cluster ServiceAccount.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Final

from webapp_operator.cli import sealing

# Reconciles at once: 16 measured fastest for a fan-out here (docs/performance.md); each holds
# one app's few requests in flight, so the API server sees at most about 16 x 4 of ours.
CONCURRENCY: Final = 16


def _pod_namespace() -> str | None:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = commands.add_parser(
        "run",
        help="run the controller",
        description="Run the operator: reconcile WebApps and their secrets.",
    )
    scope = cmd.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch only this namespace (repeatable)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (default)"
    )
    cmd.add_argument(
        "--operator-namespace",
        default=os.environ.get("WEBAPP_OPERATOR_NAMESPACE")
        or _pod_namespace()
        or "webapp-operator",
        help="where the operator keeps its keys (default: $WEBAPP_OPERATOR_NAMESPACE, the "
        "pod's namespace in a cluster, else webapp-operator; created if missing and allowed)",
    )
    cmd.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"parallel reconciles ({CONCURRENCY}; docs/performance.md says why)",
    )
    cmd.add_argument(
        "--coalesce-delay",
        type=float,
        default=0.2,
        help="seconds to wait for more secret changes before rolling an app (0.2)",
    )
    cmd.add_argument(
        "--revision-history-limit",
        type=int,
        default=3,
        help="old ReplicaSets (and their snapshots) kept per process as rollout history (3)",
    )
    cmd.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    cmd.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="serve /metrics, /readyz and /healthz on this port (9090; 0 turns it off)",
    )
    cmd.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        help="address to serve metrics on (127.0.0.1; 0.0.0.0 in a pod)",
    )
    cmd.add_argument(
        "--sealing-key-renewal",
        type=sealing.renewal_period,
        default=sealing.renewal_period("30d"),
        metavar="DURATION",
        help="add a new sealing key this long after the newest one, e.g. 30d (default) or 12h; "
        "never turns renewal off; old keys are kept (docs/sealing.md)",
    )
    cmd.add_argument(
        "--leader-elect",
        action="store_true",
        help="run several replicas: only the holder of the Lease webapp-operator reconciles",
    )
    cmd.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="seconds a leader's Lease lasts without renewal (15); failover takes about this",
    )
    cmd.add_argument("--lease-renew", type=float, default=5.0, help="seconds between renewals (5)")
    cmd.add_argument("--log-format", choices=("plain", "full", "json"), default="full")
    cmd.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    cmd.add_argument("--debug", action="store_true", help="log at DEBUG")
    cmd.add_argument("--clock-offset-file", default=None, help=argparse.SUPPRESS)
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    from webapp_operator.controller import handlers  # noqa: F401 (registers the handlers)

    formats = {
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
        "json": kopf.LogFormat.JSON,
    }
    kopf.configure(debug=args.debug, verbose=args.verbose, log_format=formats[args.log_format])
    if not (args.debug or args.verbose):
        logging.getLogger().setLevel(logging.WARNING)
    options: dict[str, Any] = {
        "namespaces": args.namespaces,
        "operator_namespace": args.operator_namespace,
        "concurrency": args.concurrency,
        "coalesce_delay": args.coalesce_delay,
        "revision_history_limit": args.revision_history_limit,
        "clock_offset_file": args.clock_offset_file,
        "metrics_port": args.metrics_port,
        "leader_elect": args.leader_elect,
        "lease_duration": args.lease_duration,
        "lease_renew": args.lease_renew,
        "metrics_address": args.metrics_address,
        "sealing_key_renewal": args.sealing_key_renewal,
    }
    kopf.run(
        clusterwide=not args.namespaces,
        namespaces=args.namespaces or [],
        memo=kopf.Memo(options=options),
        liveness_endpoint=args.liveness,
        standalone=True,
    )
    return 0
