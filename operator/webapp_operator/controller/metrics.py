"""Prometheus metrics and the health endpoints of the operator.

One small aiohttp server (aiohttp comes with Kopf) serves:

- `/metrics`: the Prometheus text format, from the operator's own registry;
- `/readyz`: 200 once Kopf's WebApp index and every informer have their initial listing (or
  there is no WebApp to index) and the workers run, else 503;
- `/healthz`: 200 while the event loop answers.

Label values come from fixed, small sets (reconcile kinds, Event reasons, request kinds), never
from object names or values: the series count does not grow with the cluster, and no secret
value can reach a label.

The lifecycle counters (rollouts, revisions created and removed, rotations due, revisions
expired, errors by reason) are fed where `webapp_operator_events_total` is: by each Event the
operator posts (the gateway's `on_event`), so a counter moves exactly when its Event is told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from webapp_operator.domain import reasons
from webapp_operator.kube import client as kube

logger = logging.getLogger(__name__)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
KNOWN_REASONS: Final = frozenset(
    {
        reasons.REVISION_CREATED,
        reasons.REVISION_REMOVED,
        reasons.ROTATION_DUE,
        reasons.EXPIRED,
        reasons.SECRET_CHANGED,
        reasons.SECRET_REFRESHED,
        reasons.ROLLOUT_STARTED,
        reasons.UNSEAL_FAILED,
        reasons.REVISION_NOT_SIGNED,
        reasons.MIGRATION_STARTED,
        reasons.MIGRATION_SUCCEEDED,
        reasons.ENVIRONMENT_RESTORED,
        reasons.CHANGE_REVERTED,
        reasons.CHANGE_NOT_REVERTED,
        *reasons.FAILURE_REASONS,
    }
)
# The Event reason that each lifecycle counter counts: (metric name, help).
LIFECYCLE: Final = {
    reasons.ROLLOUT_STARTED: (
        "webapp_operator_rollouts",
        "Rollouts started: a WebApp's processes moving to a new environment (RolloutStarted)",
    ),
    reasons.REVISION_CREATED: (
        "webapp_operator_revisions_created",
        "Secret revisions created (RevisionCreated)",
    ),
    reasons.REVISION_REMOVED: (
        "webapp_operator_revisions_removed",
        "Secret revisions removed: not the latest, tracked by no app, used by no pod "
        "(RevisionRemoved)",
    ),
    reasons.ROTATION_DUE: (
        "webapp_operator_rotations_due",
        "Secrets whose rotation fell due, each time it did (RotationDue)",
    ),
    reasons.EXPIRED: (
        "webapp_operator_revisions_expired",
        "Secret revisions that expired (Expired)",
    ),
}


class _Requests(Collector):
    """API requests sent through the gateway, read from its counter at scrape time."""

    def __init__(self, counter: kube.RequestCounter) -> None:
        self.counter = counter

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "webapp_operator_api_requests",
            "Kubernetes API requests sent by the operator's reconcilers (Kopf's watches apart)",
            labels=["kind"],
        )
        family.add_metric(["read"], self.counter.reads)
        family.add_metric(["write"], self.counter.writes)
        yield family


class _Queue(Collector):
    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "webapp_operator_queue_depth", "Keys waiting in the work queue", value=self.depth()
        )


class Metrics:
    """The operator's metrics, in a registry of its own."""

    def __init__(self, counter: kube.RequestCounter, queue_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_seconds = Histogram(
            "webapp_operator_reconcile_duration_seconds",
            "Time spent in one reconcile",
            ["kind"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.reconcile_errors = Counter(
            "webapp_operator_reconcile_errors",
            "Reconciles that failed with an unexpected error and were retried",
            ["kind"],
            registry=self.registry,
        )
        self.events = Counter(
            "webapp_operator_events",
            "Kubernetes Events posted, by reason: rollouts (RolloutStarted), revisions created "
            "and removed, rotations due, revisions expired, failures by reason",
            ["reason", "type"],
            registry=self.registry,
        )
        self.lifecycle = {
            reason: Counter(name, documentation, registry=self.registry)
            for reason, (name, documentation) in LIFECYCLE.items()
        }
        self.errors = Counter(
            "webapp_operator_errors",
            "Failures reported, by condition reason: each new Ready=False failure of a WebApp "
            "(and each Secret holding a revision's name), as its Warning Event is posted",
            ["reason"],
            registry=self.registry,
        )
        for reason in sorted(reasons.FAILURE_REASONS):
            self.errors.labels(reason=reason)  # every series from the start, at 0
        self.ready = Gauge(
            "webapp_operator_ready", "1 once the indexes are populated", registry=self.registry
        )
        self.registry.register(_Requests(counter))
        self.registry.register(_Queue(queue_depth))

    def event(self, reason: str, warning: bool) -> None:
        """Count an Event the operator posted (the gateway's `on_event`)."""
        label = reason if reason in KNOWN_REASONS else "Other"
        self.events.labels(reason=label, type="Warning" if warning else "Normal").inc()
        counter = self.lifecycle.get(reason)
        if counter is not None:
            counter.inc()
        if reason in reasons.FAILURE_REASONS:
            self.errors.labels(reason=reason).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)


async def serve(
    metrics: Metrics, ready: asyncio.Event, host: str, port: int
) -> web.AppRunner | None:
    """Start the metrics and health server; None (and a warning) if the port is taken."""

    async def handle_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.text(), headers={"Content-Type": CONTENT_TYPE})

    async def handle_ready(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="indexes are loading\n")

    async def handle_health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/readyz", handle_ready)
    app.router.add_get("/healthz", handle_health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        logger.warning("metrics server not started on %s:%d: %s", host, port, error.strerror)
        await runner.cleanup()
        return None
    logger.info("metrics and health on http://%s:%d (/metrics, /readyz, /healthz)", host, port)
    return runner
