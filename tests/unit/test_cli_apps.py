"""`status --wait` progress logic and the completion script, without a cluster."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from webapp_operator.cli import apps, main


def info(ready: str, reason: str, updated: int, current: bool = True) -> dict[str, Any]:
    return {
        "name": "shop",
        "namespace": "demo",
        "ready": ready,
        "reason": reason,
        "message": "run: kubectl webapp grant-secret credentials shop -n demo",
        "current": current,
        "environment": "shop-env-x",
        "processes": {"web": {"desired": 2, "updated": updated, "available": updated}},
        "secrets": {},
    }


class Fake:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_follow_prints_each_change_once_and_ends_when_ready() -> None:
    states = iter(
        [
            info("False", "RolloutInProgress", 0),
            info("False", "RolloutInProgress", 0),
            info("False", "RolloutInProgress", 1),
            info("True", "Available", 2),
        ]
    )
    lines: list[str] = []
    fake = Fake()
    result = apps.follow(lambda: next(states), 60, lines.append, fake.clock, fake.sleep)
    assert result["ready"] == "True"
    assert len(lines) == 3
    assert lines[-1] == "demo/shop: Ready=True (Available); web 2/2 updated, 2 available"


def test_follow_waits_through_a_migration_and_stops_when_it_failed() -> None:
    # Longer than the 10 s a failure is given: a migration is progress, not a failure.
    states = iter([info("False", "MigrationInProgress", 0)] * 30 + [info("True", "Available", 2)])
    fake = Fake()
    result = apps.follow(lambda: next(states), 60, lambda _: None, fake.clock, fake.sleep)
    assert result["ready"] == "True"
    with pytest.raises(apps.StatusError, match="MigrationFailed"):
        apps.follow(lambda: info("False", "MigrationFailed", 0), 60, print, fake.clock, fake.sleep)


def test_the_summary_names_the_migration_that_last_succeeded() -> None:
    webapp = {
        "metadata": {"name": "shop", "namespace": "demo", "generation": 2},
        "status": {"observedGeneration": 2, "migration": "shop-migrate-0123456789"},
    }
    assert apps.summary(webapp, [])["migration"] == "shop-migrate-0123456789"


def test_follow_stops_on_a_failure_waiting_cannot_fix() -> None:
    fake = Fake()
    with pytest.raises(apps.StatusError, match="SecretNotGranted: run: kubectl webapp grant"):
        apps.follow(lambda: info("False", "SecretNotGranted", 0), 60, print, fake.clock, fake.sleep)


def test_follow_waits_for_the_current_generation_and_times_out() -> None:
    fake = Fake()
    with pytest.raises(apps.StatusError, match="not Ready after 5s"):
        apps.follow(
            lambda: info("True", "Available", 2, current=False),
            5,
            lambda _: None,
            fake.clock,
            fake.sleep,
        )


def test_completion_script_is_valid_bash_and_completes() -> None:
    script = apps.completion_script(main.build_parser("webapp-operator"), "bash", "webapp-operator")
    check = subprocess.run(
        ["bash", "-n"], input=script, text=True, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr
    probe = script + (
        "COMP_WORDS=(kubectl-webapp show-secret --rev); COMP_CWORD=2; _webapp_operator; "
        'echo "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash"], input=probe, text=True, capture_output=True, check=True)
    assert done.stdout.split() == ["--reveal", "--revision", "--revisions"]
    assert "complete -F _webapp_operator kubectl-webapp" in script
