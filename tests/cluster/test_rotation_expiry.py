"""Juju's secret-rotate and secret-expired, on the real API server, with a shifted clock.

The operator reads its clock as wall time plus the seconds in a file (`--clock-offset-file`),
so a test moves time forward by hours in a moment, and the one scheduler of the operator wakes
on its agenda. Each row of the events table in juju-secrets.md has a scenario here or in
test_controller.py (secret-changed: manual observer; secret-remove: pruning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import Client
from tests.cluster import opkit
from tests.cluster.support import BackgroundProcess, wait_for

APP = {
    "framework": "flask",
    "image": "shop:1",
    "secrets": {"credentials": {"secretName": "credentials"}},
}


class ShiftedClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.write_text("0")

    def advance(self, minutes: float) -> None:
        self.offset += minutes * 60
        self.path.write_text(str(self.offset))


@pytest.fixture
def clock(tmp_path: Path) -> ShiftedClock:
    return ShiftedClock(tmp_path / "clock-offset")


@pytest.fixture
def kit(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    background: Callable[..., BackgroundProcess],
    clock: ShiftedClock,
) -> Iterator[opkit.Kit]:
    for kit in opkit.kit_fixture(kube, namespace, background, kubeconfig):
        kit.extra_args = ["--clock-offset-file", str(clock.path)]
        yield kit


def count(kit: opkit.Kit, reason: str, at_least: int, timeout: float = 30) -> int:
    def enough() -> int | None:
        found = len(kit.events(reason))
        return found if found >= at_least else None

    return wait_for(enough, timeout, message=f"{at_least} {reason} Event(s)")


def test_rotation_is_due_repeats_and_ends_with_a_new_revision(
    kit: opkit.Kit, clock: ShiftedClock
) -> None:
    kit.start_operator()
    kit.secret(
        "credentials",
        {"password": "v1"},
        grant="shop",
        annotations={"twelvefactor.dev/rotate": "hourly"},
    )
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    assert kit.events("RotationDue") == []
    assert kit.condition("shop", "SecretRotationDue")["status"] == "False"

    clock.advance(61)
    count(kit, "RotationDue", 1)
    wait_for(
        lambda: kit.condition("shop", "SecretRotationDue").get("status") == "True",
        30,
        message="SecretRotationDue on the observer",
    )
    clock.advance(2)  # within the 5-minute window: no repeat
    clock.advance(4)  # past it: told again
    assert count(kit, "RotationDue", 2) == 2

    kit.secret(
        "credentials",
        {"password": "v2"},
        grant="shop",
        annotations={"twelvefactor.dev/rotate": "hourly"},
    )
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="revision 2")
    wait_for(
        lambda: kit.condition("shop", "SecretRotationDue").get("status") == "False",
        30,
        message="rotation no longer due",
    )
    clock.advance(10)
    wait_for(lambda: kit.ready("shop"), 30, message="ready")
    assert len(kit.events("RotationDue")) == 2


def test_expiry_is_reported_per_revision_and_repeats(kit: opkit.Kit, clock: ShiftedClock) -> None:
    kit.start_operator()
    kit.secret(
        "credentials",
        {"password": "v1"},
        grant="shop",
        annotations={"twelvefactor.dev/expire": "30m"},
    )
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    clock.advance(31)
    count(kit, "Expired", 1)
    cond = wait_for(
        lambda: (c := kit.condition("shop", "SecretExpired")).get("status") == "True" and c,
        30,
        message="SecretExpired on the observer",
    )
    assert "revision 1" in cond["message"]
    clock.advance(6)
    count(kit, "Expired", 2)
    # A new revision gets its own expiry; revision 1 is pruned once unused, and its notices stop.
    kit.secret(
        "credentials",
        {"password": "v2"},
        grant="shop",
        annotations={"twelvefactor.dev/expire": "30m"},
    )
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")
    wait_for(
        lambda: kit.condition("shop", "SecretExpired").get("status") == "False",
        30,
        message="no expired revision tracked",
    )
    notices = len(kit.events("Expired"))
    clock.advance(6)
    kit.operator_log_wait_idle()
    assert len(kit.events("Expired")) == notices


def test_rotation_comes_early_when_the_latest_revision_expires_first(
    kit: opkit.Kit, clock: ShiftedClock
) -> None:
    kit.start_operator()
    kit.secret(
        "credentials",
        {"password": "v1"},
        grant="shop",
        annotations={"twelvefactor.dev/rotate": "daily", "twelvefactor.dev/expire": "2h"},
    )
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    clock.advance(117)  # 5 minutes before expiry, long before the daily rotation
    count(kit, "RotationDue", 1)
    messages = [e.get("message", "") for e in kit.events("RotationDue")]
    assert any("expires first" in m for m in messages)


def test_schedule_survives_a_restart_without_repeating_notices(
    kit: opkit.Kit, clock: ShiftedClock
) -> None:
    kit.start_operator()
    kit.secret(
        "credentials",
        {"password": "v1"},
        grant="shop",
        annotations={"twelvefactor.dev/rotate": "hourly"},
    )
    kit.webapp("shop", APP)
    kit.wait_ready("shop")
    clock.advance(61)
    count(kit, "RotationDue", 1)
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert len(kit.events("RotationDue")) == 1  # the same 5-minute slot: not told twice


def test_app_owned_secret_is_generated_granted_and_rotated_by_the_operator(
    kit: opkit.Kit, clock: ShiftedClock
) -> None:
    kit.start_operator()
    kit.webapp(
        "issuer",
        {
            "framework": "go",
            "image": "issuer:1",
            "ownedSecrets": {
                "api-token": {"keys": ["token"], "rotate": "hourly", "grant": ["consumer"]}
            },
        },
    )
    kit.webapp(
        "consumer",
        {
            "framework": "fastapi",
            "image": "consumer:1",
            "secrets": {"upstream": {"secretName": "issuer.api-token"}},
        },
    )
    kit.wait_ready("issuer")
    kit.wait_ready("consumer")
    first = kit.env(kit.one_snapshot("consumer"))["APP_UPSTREAM_TOKEN"]
    assert len(first) >= 32
    assert kit.revisions("issuer.api-token") == [1]

    clock.advance(61)  # due: the operator itself makes revision 2
    wait_for(lambda: kit.tracked("consumer", "upstream") == 2, 60, message="consumer on rev 2")
    kit.wait_ready("consumer")
    second = kit.env(kit.one_snapshot("consumer"))["APP_UPSTREAM_TOKEN"]
    assert second != first
    assert kit.canary_hits([first, second]) == []

    # Removing it from the spec removes the Secret; the consumer is told it is gone.
    kit.webapp("issuer", {"framework": "go", "image": "issuer:1"})
    wait_for(
        lambda: kit.condition("consumer").get("reason") == "SecretNotFound",
        60,
        message="SecretNotFound for the consumer",
    )


def test_app_secret_key_rotates_on_request(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from webapp_operator.cli import main

    kit.start_operator()
    kit.webapp("shop", {"framework": "django", "image": "shop:1"})
    kit.wait_ready("shop")
    before = kit.env(kit.one_snapshot("shop"))["DJANGO_SECRET_KEY"]
    monkeypatch.setenv("KUBECONFIG", kit.kubeconfig)
    assert main.main(["rotate-secret", "shop.secret-key", "-n", kit.namespace]) == 0
    assert "rotated" in capsys.readouterr().out
    wait_for(lambda: kit.revisions("shop.secret-key")[-1] == 2, 60, message="key revision 2")
    wait_for(
        lambda: kit.env(kit.one_snapshot("shop"))["DJANGO_SECRET_KEY"] != before,
        60,
        message="a new secret key in the environment",
    )
    kit.wait_ready("shop")
    assert kit.canary_hits([before]) == []
