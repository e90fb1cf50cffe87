"""spec.migration: a Job per release (image, environment, command) that succeeds before any
process moves to that release.

- A new app: the Job runs first, no Deployment exists until it succeeded; the app says
  Ready=False, MigrationInProgress meanwhile.
- A new revision: the processes stay on the previous environment while its migration runs,
  then roll; the previous release's Job is deleted.
- A failed migration: Ready=False, MigrationFailed naming the Job and the Job controller's
  reason, one Warning Event, the processes and their environment kept; a restart writes
  nothing; deleting the failed Job runs it again.
- A release whose Job succeeded is never migrated again (the status records it), even when the
  Job is gone; a change that is no new release (replicas) does not wait.
- A revision a running migration reads is not pruned.

The reconcilers run against the fake API server of test_reconcile_crash, whose Job controller
ends a new Job as `FakeCluster.jobs` says.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from tests.unit.test_reconcile_crash import (
    NS,
    FakeCluster,
    FakeIndexes,
    crashed_at_each_write,
    credentials,
    new_context,
    outcome,
    reconcile_rounds,
    settle,
    webapp,
)

from webapp_operator.controller import reconcile, state
from webapp_operator.domain import model, reasons, render

CANARY = "migration-canary-7e21"
MIGRATE = {"command": ["python3", "manage.py", "migrate"]}


def app(**spec: Any) -> dict[str, Any]:
    body = webapp("shop", "auto", ("web", "queue-worker"))
    body["spec"]["migration"] = dict(MIGRATE)
    body["spec"].update(spec)
    return body


def ready(cluster: FakeCluster) -> dict[str, Any]:
    status = cluster.objects[("WebApp", NS, "shop")].get("status") or {}
    return next(c for c in status.get("conditions") or [] if c["type"] == "Ready")


def named(cluster: FakeCluster, kind: str) -> list[str]:
    return sorted(name for (k, _, name) in cluster.objects if k == kind)


def environments(cluster: FakeCluster) -> set[str]:
    """The snapshots the Deployments' pods read."""
    return {
        obj["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"]
        for (kind, _, _), obj in cluster.objects.items()
        if kind == "Deployment"
    }


def job_environment(cluster: FakeCluster, name: str) -> str:
    spec = cluster.objects[("Job", NS, name)]["spec"]["template"]["spec"]
    return str(spec["containers"][0]["envFrom"][0]["secretRef"]["name"])


def settled(jobs: str = "succeed") -> FakeCluster:
    cluster = FakeCluster(jobs=jobs)
    cluster.put(credentials("one"))
    cluster.put(app())
    asyncio.run(settle(cluster))
    return cluster


# ----------------------------------------------------------------------------- rendering


def rendered(**spec: Any) -> render.Rendered:
    body = app(**spec)
    body["metadata"]["uid"] = "uid-shop"
    return render.render(
        render.RenderInputs(
            webapp=model.parse_webapp(body),
            secrets={},
            integrations={},
            generated_secret_key="k" * 50,
        ),
        render.Settings(snapshot_key=b"s" * 32),
    )


def test_without_migration_nothing_more_is_rendered() -> None:
    body = app()
    del body["spec"]["migration"]
    result = render.render(
        render.RenderInputs(model.parse_webapp(body), {}, {}, "k" * 50),
        render.Settings(snapshot_key=b"s" * 32),
    )
    assert result.migration is None
    kinds = [o["kind"] for o in result.objects()]
    assert kinds == ["Secret", "Deployment", "Deployment", "Service"]


def test_the_job_runs_the_command_in_the_web_containers_image_environment_and_user() -> None:
    result = rendered(
        resources={"requests": {"cpu": "100m"}},
        podSecurity="restricted",
        runAsUser=1000,
        migration={**MIGRATE, "args": ["--noinput"], "activeDeadlineSeconds": 120},
    )
    job = result.migration
    assert job is not None
    assert [o["kind"] for o in result.objects()][:2] == ["Secret", "Job"]
    assert job["metadata"]["name"].startswith("shop-migrate-")
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 120
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 1000,
    }
    (container,) = pod["containers"]
    assert container == {
        "name": "migrate",
        "image": "shop:1",
        "command": ["python3", "manage.py", "migrate"],
        "args": ["--noinput"],
        "envFrom": [{"secretRef": {"name": result.snapshot_name}}],
        "resources": {"requests": {"cpu": "100m"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    # Not a pod of any process: the Service does not send it traffic.
    labels = job["spec"]["template"]["metadata"]["labels"]
    selector = result.service["spec"]["selector"]
    assert not all(labels.get(k) == v for k, v in selector.items())


def test_a_new_release_is_a_new_job_and_the_same_release_the_same_job() -> None:
    name = rendered().migration["metadata"]["name"]  # type: ignore[index]
    assert rendered(replicas=5).migration["metadata"]["name"] == name  # type: ignore[index]
    assert rendered(image="shop:2").migration["metadata"]["name"] != name  # type: ignore[index]
    assert rendered(config={"greeting": "hi"}).migration["metadata"]["name"] != name  # type: ignore[index]
    other = rendered(migration={"command": ["./migrate.sh"]}).migration
    assert other["metadata"]["name"] != name  # type: ignore[index]


def test_a_long_app_name_keeps_the_job_name_a_label_value() -> None:
    app_name = "a" * 50 + "-" + "b" * 12
    name = render.migration_job_name(app_name, "0123456789")
    assert len(name) <= 63
    assert name.endswith("-migrate-0123456789")
    assert "--" not in name


@pytest.mark.parametrize(
    "bad",
    [
        {"command": []},
        {"args": ["x"]},
        {**MIGRATE, "activeDeadlineSeconds": 0},
        {**MIGRATE, "backoffLimit": 11},
        {**MIGRATE, "retries": 1},
    ],
)
def test_a_migration_without_a_command_or_out_of_bounds_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="migration"):
        model.parse_webapp(app(migration=bad))


# ----------------------------------------------------------------------------- reconciling


def test_a_new_app_runs_its_migration_before_any_process() -> None:
    cluster = settled(jobs="run")
    (job,) = named(cluster, "Job")
    assert named(cluster, "Deployment") == []
    condition = ready(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "MigrationInProgress")
    assert job in condition["message"]
    assert cluster.warnings == []

    cluster.end_jobs("succeed")
    asyncio.run(settle(cluster))
    assert named(cluster, "Deployment") == ["shop", "shop-queue-worker"]
    assert environments(cluster) == {job_environment(cluster, job)}
    assert ready(cluster)["reason"] == "Available"
    assert cluster.objects[("WebApp", NS, "shop")]["status"]["migration"] == job
    assert named(cluster, "Job") == [job]  # kept, for its logs


def test_the_migration_is_told_by_events_once_each() -> None:
    cluster = settled(jobs="run")
    (job,) = named(cluster, "Job")
    started = [e for e in cluster.events if e[0] == "MigrationStarted"]
    assert started == [
        (
            "MigrationStarted",
            "shop",
            f"Running migration Job {job} for environment {job_environment(cluster, job)}",
        )
    ]
    asyncio.run(settle(cluster))  # a restart: nothing told again
    cluster.end_jobs("succeed")
    asyncio.run(settle(cluster))
    asyncio.run(settle(cluster))
    reasons_told = [e[0] for e in cluster.events if e[0].startswith("Migration")]
    assert reasons_told == ["MigrationStarted", "MigrationSucceeded"]
    assert CANARY not in str(cluster.events)


def test_a_new_revision_rolls_out_only_after_its_migration_succeeded() -> None:
    cluster = settled()
    (first,) = named(cluster, "Job")
    before = environments(cluster)
    cluster.jobs = "run"
    cluster.put(credentials(CANARY))
    asyncio.run(settle(cluster))
    (second,) = named(cluster, "Job")  # the previous release's Job deleted
    assert second != first
    assert environments(cluster) == before  # the processes wait
    assert ready(cluster)["reason"] == "MigrationInProgress"
    assert job_environment(cluster, second) not in before

    cluster.end_jobs("succeed")
    asyncio.run(settle(cluster))
    assert environments(cluster) == {job_environment(cluster, second)}
    assert ready(cluster)["reason"] == "Available"
    assert CANARY not in str(cluster.objects[("Job", NS, second)])
    assert CANARY not in str(cluster.events)


def failed() -> tuple[FakeCluster, set[str]]:
    cluster = settled()
    before = environments(cluster)
    cluster.jobs = "fail"
    cluster.events.clear()
    cluster.put(credentials(CANARY))
    asyncio.run(settle(cluster))
    return cluster, before


def test_a_failed_migration_keeps_every_process_on_its_release_and_says_why() -> None:
    cluster, before = failed()
    (job,) = named(cluster, "Job")
    assert environments(cluster) == before
    condition = ready(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "MigrationFailed")
    assert f"migration Job {job} for environment" in condition["message"]
    assert (
        "BackoffLimitExceeded: Job has reached the specified backoff limit"
        in (condition["message"])
    )
    assert f"kubectl delete job {job} -n {NS}" in condition["message"]
    assert cluster.warnings == ["MigrationFailed"]  # told once
    assert CANARY not in str(cluster.events)
    assert CANARY not in str(cluster.objects[("WebApp", NS, "shop")])
    # The environment the processes run on is kept, and the new one the Job read.
    snapshots = {n for n in named(cluster, "Secret") if n.startswith("shop-env-")}
    assert before | {job_environment(cluster, job)} == snapshots
    assert reasons.MIGRATION_FAILED in reasons.FAILURE_REASONS


def test_a_restart_after_a_failed_migration_writes_nothing() -> None:
    cluster, _ = failed()
    cluster.writes.clear()
    asyncio.run(settle(cluster))
    assert cluster.writes == []


def test_deleting_the_failed_job_runs_the_migration_again() -> None:
    cluster, before = failed()
    (job,) = named(cluster, "Job")
    cluster.jobs = "succeed"
    del cluster.objects[("Job", NS, job)]
    asyncio.run(settle(cluster))
    assert named(cluster, "Job") == [job]
    assert environments(cluster) == {job_environment(cluster, job)} != before
    assert ready(cluster)["reason"] == "Available"


def test_the_same_process_runs_a_failed_job_again_once_it_is_deleted() -> None:
    """Moments after it made the Job (its memory of recent writes would take the Job's
    absence for a watch that is behind)."""
    cluster = settled()
    before = environments(cluster)
    cluster.jobs = "fail"
    cluster.put(credentials(CANARY))
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)
    asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    assert ready(cluster)["reason"] == "MigrationFailed"
    (job,) = named(cluster, "Job")
    cluster.jobs = "succeed"
    del cluster.objects[("Job", NS, job)]
    assert asyncio.run(reconcile_rounds(cluster, indexes, ctx, 12))
    assert named(cluster, "Job") == [job]
    assert environments(cluster) == {job_environment(cluster, job)} != before
    assert ready(cluster)["reason"] == "Available"


def test_a_release_that_migrated_is_not_migrated_again_even_without_its_job() -> None:
    cluster = settled()
    (job,) = named(cluster, "Job")
    del cluster.objects[("Job", NS, job)]  # someone cleaned up
    cluster.writes.clear()
    asyncio.run(settle(cluster))
    assert cluster.writes == []
    body = app(replicas=3)  # no new release: the processes do not wait
    body["metadata"]["generation"] = 2
    body["status"] = cluster.objects[("WebApp", NS, "shop")]["status"]  # a spec change keeps it
    cluster.put(body)
    asyncio.run(settle(cluster))
    assert not [w for w in cluster.writes if "Job" in w]
    assert cluster.objects[("Deployment", NS, "shop")]["spec"]["replicas"] == 3


def test_a_restart_with_nothing_changed_writes_nothing() -> None:
    cluster = settled()
    cluster.writes.clear()
    asyncio.run(settle(cluster))
    assert cluster.writes == []


def test_taking_the_migration_out_deletes_its_job() -> None:
    cluster = settled()
    body = app()
    del body["spec"]["migration"]
    body["metadata"]["generation"] = 2
    body["status"] = cluster.objects[("WebApp", NS, "shop")]["status"]
    cluster.put(body)
    asyncio.run(settle(cluster))
    assert named(cluster, "Job") == []
    assert ready(cluster)["reason"] == "Available"


def test_a_migration_the_operator_may_not_run_names_the_grant() -> None:
    cluster = FakeCluster()
    cluster.denied.add("Job")
    cluster.put(credentials("one"))
    cluster.put(app())
    asyncio.run(settle(cluster))
    condition = ready(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidConfig")
    assert "spec.migration: the operator may not write jobs (403)" in condition["message"]
    assert "on jobs (batch)" in condition["message"]
    assert named(cluster, "Deployment") == []


def test_a_revision_a_running_migration_reads_is_not_pruned() -> None:
    cluster = settled()
    cluster.jobs = "run"
    cluster.put(credentials("two"))
    asyncio.run(settle(cluster))  # revision 2's migration runs; the processes are on 1
    cluster.put(credentials("three"))
    indexes = FakeIndexes()
    ctx = new_context(cluster, indexes)

    async def secret_first() -> None:  # revision 3 made (and looked at) before the app moves
        for _ in range(3):
            await cluster.fill(indexes)
            await reconcile.reconcile_secret(ctx, NS, "credentials")

    asyncio.run(secret_first())
    revisions = {n for n in named(cluster, "Secret") if n.startswith("credentials.rev-")}
    assert revisions == {"credentials.rev-1", "credentials.rev-2", "credentials.rev-3"}
    asyncio.run(settle(cluster))  # the app moves to revision 3: revision 2's Job is deleted
    revisions = {n for n in named(cluster, "Secret") if n.startswith("credentials.rev-")}
    assert revisions == {"credentials.rev-1", "credentials.rev-3"}


def test_a_job_entry_says_how_the_job_ended() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "shop-migrate-x", "namespace": NS, "labels": {}},
        "spec": {},
        "status": {"active": 1},
    }
    body["metadata"]["labels"][render.LABEL_WEBAPP] = "shop"
    running = state.workload_entry("Job", body)
    assert running is not None
    assert running.running
    body["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    done = state.workload_entry("Job", body)
    assert done is not None
    assert done.succeeded
    assert not done.running
    body["status"] = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    }
    gone = state.workload_entry("Job", body)
    assert gone is not None
    assert gone.failed == "DeadlineExceeded"
    assert not gone.running


@pytest.mark.parametrize("jobs", ["succeed", "fail"])
def test_a_crash_at_any_write_of_a_migrating_release_changes_nothing_of_the_outcome(
    jobs: str,
) -> None:
    """The operator dies before each write of a release with a migration (the snapshot, the
    Job, the status, the rollout, the notices) and starts again: the same objects, the same
    status, one Job, and no notice told twice."""
    changed = settled()
    changed.jobs = jobs
    changed.put(credentials(CANARY))
    changed.writes.clear()
    changed.events.clear()
    changed.warnings.clear()
    reference = copy.deepcopy(changed)
    asyncio.run(settle(reference))
    assert any(w.startswith("apply Job/") for w in reference.writes)
    for _, cluster, where in crashed_at_each_write(changed, reference):
        assert outcome(cluster) == outcome(reference), where
        assert named(cluster, "Job") == named(reference, "Job"), where
        status = cluster.objects[("WebApp", NS, "shop")]["status"]
        assert status == reference.objects[("WebApp", NS, "shop")]["status"], where
        assert len(cluster.events) == len(set(cluster.events)), where  # nothing told twice
        assert cluster.warnings.count("MigrationFailed") <= 1, where
        # The WebApp's notices of the migration are told exactly once, wherever it died.
        for reason in ("MigrationStarted", "MigrationSucceeded", "MigrationFailed"):
            told = [e for e in reference.events if e[0] == reason]
            assert [e for e in cluster.events if e[0] == reason] == told, where
