"""The operator's metrics: the lifecycle counters and errors by reason, fed by each Event the
gateway posts (its `on_event`), with bounded labels and no value anywhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.test_gateway import on_the_wire, status

from webapp_operator.controller import metrics
from webapp_operator.domain import reasons
from webapp_operator.kube import client as kube

CANARY = "hunter2-metrics-canary"
LIFECYCLE = {
    reasons.ROLLOUT_STARTED: "webapp_operator_rollouts_total",
    reasons.REVISION_CREATED: "webapp_operator_revisions_created_total",
    reasons.REVISION_REMOVED: "webapp_operator_revisions_removed_total",
    reasons.ROTATION_DUE: "webapp_operator_rotations_due_total",
    reasons.EXPIRED: "webapp_operator_revisions_expired_total",
}


def new_metrics() -> metrics.Metrics:
    return metrics.Metrics(kube.RequestCounter(), lambda: 0)


def value(m: metrics.Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def series(m: metrics.Metrics, family: str) -> list[dict[str, str]]:
    """The label sets of every sample of a metric family in the /metrics text."""
    for found in text_string_to_metric_families(m.text().decode()):
        if found.name == family:
            return [dict(s.labels) for s in found.samples if s.name.endswith("_total")]
    raise AssertionError(f"{family} not exposed")


@pytest.mark.parametrize(("reason", "name"), list(LIFECYCLE.items()), ids=list(LIFECYCLE))
def test_each_lifecycle_event_moves_its_own_counter(reason: str, name: str) -> None:
    m = new_metrics()
    assert all(value(m, other) == 0.0 for other in LIFECYCLE.values())

    m.event(reason, warning=reason == reasons.EXPIRED)
    m.event(reason, warning=reason == reasons.EXPIRED)

    assert value(m, name) == 2.0
    assert all(value(m, other) == 0.0 for other in LIFECYCLE.values() if other != name)
    kind = "Warning" if reason == reasons.EXPIRED else "Normal"
    assert value(m, "webapp_operator_events_total", reason=reason, type=kind) == 2.0
    assert (
        sum(
            value(m, "webapp_operator_errors_total", reason=r) or 0 for r in reasons.FAILURE_REASONS
        )
        == 0
    )


def test_errors_are_counted_by_condition_reason_with_every_series_from_the_start() -> None:
    m = new_metrics()
    assert sorted(s["reason"] for s in series(m, "webapp_operator_errors")) == sorted(
        reasons.FAILURE_REASONS
    )

    m.event(reasons.SECRET_NOT_GRANTED, warning=True)
    m.event(reasons.INVALID_SECRET_KEY, warning=True)
    m.event(reasons.INVALID_SECRET_KEY, warning=True)
    m.event(reasons.SNAPSHOT_NAME_TAKEN, warning=True)

    assert value(m, "webapp_operator_errors_total", reason="SecretNotGranted") == 1.0
    assert value(m, "webapp_operator_errors_total", reason="InvalidSecretKey") == 2.0
    assert value(m, "webapp_operator_errors_total", reason="SnapshotNameTaken") == 1.0
    assert value(m, "webapp_operator_errors_total", reason="SecretNotFound") == 0.0
    assert (
        value(m, "webapp_operator_events_total", reason="SnapshotNameTaken", type="Warning") == 1.0
    )


@pytest.mark.parametrize(
    "reason",
    [reasons.ROLLOUT_IN_PROGRESS, reasons.UNSEAL_FAILED, reasons.EXPIRED, "shop", CANARY],
    ids=["progress", "unseal-event", "expired", "a-name", "a-value"],
)
def test_only_failure_reasons_are_error_labels(reason: str) -> None:
    m = new_metrics()

    m.event(reason, warning=True)

    labels = {s["reason"] for s in series(m, "webapp_operator_errors")}
    assert labels == set(reasons.FAILURE_REASONS)
    assert all(
        s["reason"] in metrics.KNOWN_REASONS | {"Other"}
        for s in series(m, "webapp_operator_events")
    )
    assert CANARY not in m.text().decode()


INVOLVED = {
    "apiVersion": "twelvefactor.dev/v1alpha1",
    "kind": "WebApp",
    "metadata": {"name": "shop", "namespace": "demo", "uid": "u-1"},
}
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_posted_events_feed_the_counters() -> None:
    m = new_metrics()

    async def post(gw: kube.Gateway, _: object) -> None:
        await gw.post_event(INVOLVED, reasons.ROLLOUT_STARTED, f"rolling {CANARY}", NOW)
        await gw.post_event(INVOLVED, reasons.SECRET_NOT_FOUND, f"missing {CANARY}", NOW, True)

    on_the_wire([(201, {"kind": "Event"})], post, on_event=m.event)

    assert value(m, "webapp_operator_rollouts_total") == 1.0
    assert value(m, "webapp_operator_errors_total", reason="SecretNotFound") == 1.0
    assert CANARY not in m.text().decode()


def test_an_event_the_api_server_already_has_is_not_counted_again() -> None:
    """A restarted operator posting a named notice again gets AlreadyExists: told once,
    counted once."""
    m = new_metrics()
    on_the_wire(
        [status(409, "AlreadyExists")],
        lambda gw, _: gw.post_event(INVOLVED, reasons.REVISION_CREATED, "again", NOW, name="r2"),
        on_event=m.event,
    )

    assert value(m, "webapp_operator_revisions_created_total") == 0.0
    assert series(m, "webapp_operator_events") == []


def test_every_event_reason_is_a_label_of_its_own() -> None:
    """A new Event reason must not be counted as "Other": each reason the operator can post
    (every constant of `reasons` but condition types and progress reasons) is a known label."""
    not_events = {
        reasons.READY,
        reasons.SECRET_UPDATE_AVAILABLE,
        reasons.SECRET_ROTATION_DUE,
        reasons.SECRET_EXPIRED,
        reasons.CONFIG_OVERRIDDEN,
        reasons.AVAILABLE,
        reasons.ROLLOUT_IN_PROGRESS,
        reasons.MIGRATION_IN_PROGRESS,
    }
    constants = {
        value for name, value in vars(reasons).items() if name.isupper() and isinstance(value, str)
    }
    assert constants - not_events - metrics.KNOWN_REASONS == set()
