"""`spec.migration` on the real API server, Job controller and kwok (which runs a Job's pod to
completion at once, and never a container).

A release's migration Job runs before any process moves to it: a new app gets its
Deployments only once the Job completed, a new revision rolls once its own Job completed. A
migration that cannot run (here the namespace starts enforcing the restricted Pod Security
level, so the Job's pod is refused, and its deadline passes) leaves every process on its
release with Ready=False, MigrationFailed and one Warning Event; deleting the Job once the
cause is fixed runs it again, and the processes move on. A restart writes nothing.
"""

from __future__ import annotations

from typing import Any

from lightkube import ApiError
from lightkube.resources.batch_v1 import Job
from tests.cluster import opkit
from tests.cluster.support import wait_for
from tests.cluster.test_controller import counted

PASSWORD_1 = "canary-migrate-one-3f8e"
PASSWORD_2 = "canary-migrate-two-a950"
PASSWORD_3 = "canary-migrate-three-1d47"

APP: dict[str, Any] = {
    "framework": "django",
    "image": "localhost:32000/shop:1",
    "processes": {"web": {}, "celery-worker": {}},
    "secrets": {"credentials": {"secretName": "credentials"}},
    "migration": {"command": ["python3", "manage.py", "migrate"], "activeDeadlineSeconds": 5},
}


def jobs(kit: opkit.Kit) -> dict[str, dict[str, Any]]:
    found = kit.objects(Job, **{"twelvefactor.dev/webapp": "shop"})
    return {j["metadata"]["name"]: j for j in found}


def job_environment(job: dict[str, Any]) -> str:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return str(container["envFrom"][0]["secretRef"]["name"])


def environments(kit: opkit.Kit) -> set[str]:
    return {
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"]
        for d in kit.deployments("shop").values()
    }


def test_each_release_migrates_before_its_processes_move_to_it(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    (first,) = jobs(kit).values()
    name = first["metadata"]["name"]
    assert [c["type"] for c in first["status"]["conditions"]][-1] == "Complete"
    assert environments(kit) == {job_environment(first)}
    assert kit.status("shop")["migration"] == name
    assert first["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python3",
        "manage.py",
        "migrate",
    ]
    # The Deployments were made after the Job completed.
    completed = first["status"]["completionTime"]
    created = {d["metadata"]["creationTimestamp"] for d in kit.deployments("shop").values()}
    assert all(str(c) >= str(completed) for c in created), (created, completed)

    # A new revision: its own Job, then the rollout; the previous release's Job deleted.
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="tracking 2")
    kit.wait_ready("shop")
    (second,) = jobs(kit).values()
    assert second["metadata"]["name"] != name
    assert environments(kit) == {job_environment(second)}

    # Each release told started and succeeded, once.
    def told(reason: str) -> list[str] | None:
        messages = sorted(e["message"] for e in kit.events(reason))
        return messages if len(messages) == 2 else None

    releases = sorted([name, second["metadata"]["name"]])
    started = wait_for(lambda: told("MigrationStarted"), 30, message="two MigrationStarted")
    assert [m.split()[3] for m in started] == releases  # "Running migration Job <name> ..."
    succeeded = wait_for(lambda: told("MigrationSucceeded"), 30, message="two MigrationSucceeded")
    assert [m.split()[2] for m in succeeded] == releases  # "Migration Job <name> succeeded..."

    # A restart writes nothing, and runs no migration again.
    before = kit.operator_writes()
    kit.stop_operator()
    kit.start_operator()
    kit.wait_ready("shop")
    assert kit.operator_writes() == before
    assert list(jobs(kit)) == [second["metadata"]["name"]]
    assert len(kit.events("MigrationSucceeded")) == 2
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2]) == []


def test_a_migration_that_fails_keeps_every_process_on_its_release(kit: opkit.Kit) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_1}, grant="shop")
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    before = environments(kit)

    # The Job's pod is refused at admission; after its deadline the Job fails.
    kit.enforce_pod_security("restricted")
    kit.secret("credentials", {"username": "admin", "password": PASSWORD_2}, grant="shop")
    wait_for(
        lambda: kit.condition("shop").get("reason") == "MigrationFailed",
        90,
        message=f"MigrationFailed (now {kit.condition('shop')})",
        ignore=(ApiError,),
    )
    (job,) = jobs(kit)
    message = kit.condition("shop")["message"]
    assert f"migration Job {job} for environment" in message
    assert "DeadlineExceeded" in message
    assert environments(kit) == before
    failed = wait_for(lambda: kit.events("MigrationFailed"), 30, message="MigrationFailed Event")
    assert [e["type"] for e in failed] == ["Warning"]
    metric = 'webapp_operator_errors_total{reason="MigrationFailed"}'
    assert counted(kit.metrics_text(), metric) == 1

    # Fixed, and the Job deleted as the message says: it runs again and the processes move.
    kit.enforce_pod_security(None)
    kit.kube.delete(Job, job, namespace=kit.namespace)
    kit.wait_ready("shop", timeout=120)
    assert kit.tracked("shop", "credentials") == 2
    assert environments(kit) != before
    assert len(kit.events("MigrationFailed")) == 1
    assert kit.canary_hits([PASSWORD_1, PASSWORD_2, PASSWORD_3]) == []
