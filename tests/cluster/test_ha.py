"""Two replicas with Lease leader election: one acts, the other waits warm and takes over.

The failover time (SIGKILL of the leader until the standby leads) is measured and reported in
the test's output; the bound is the deadline of the poll (lease duration + a few renewals), not
a timing assertion.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator

import pytest
from lightkube import Client
from tests.cluster import opkit
from tests.cluster.support import BackgroundProcess, wait_for

LEASE = ["--leader-elect", "--lease-duration", "4", "--lease-renew", "1"]
SEED = {
    "framework": "flask",
    "image": "shop:1",
    "processes": {"web": {}, "queue-worker": {}, "cron-scheduler": {}},
    "secrets": {"credentials": {"secretName": "credentials"}},
}


@pytest.fixture
def kit(
    kube: Client, namespace: str, background: Callable[..., BackgroundProcess]
) -> Iterator[opkit.Kit]:
    yield from opkit.kit_fixture(kube, namespace, background)


def writes(metrics_text: str) -> float:
    found = re.search(
        r'webapp_operator_api_requests_total\{kind="write"\} ([0-9.e+]+)', metrics_text
    )
    return float(found.group(1)) if found else -1.0


def test_one_leader_acts_and_a_standby_takes_over(
    kit: opkit.Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    first = kit.start_operator(*LEASE)
    first.wait_for_log(r"became the leader", timeout=30)
    first_metrics = kit.metrics_port
    standby = kit.start_operator(*LEASE)  # the kit now talks to the second replica's metrics
    standby.wait_for_log(r"webapp-operator started", timeout=30)

    kit.secret("credentials", {"password": "canary-ha-1"}, grant="shop")
    kit.webapp("shop", SEED)
    kit.wait_ready("shop")
    assert "became the leader" not in standby.log_text()
    assert writes(kit.metrics_text()) == 0.0, "a standby writes nothing"
    assert "work queue idle" not in standby.log_text()

    os.killpg(first.pid, signal.SIGKILL)
    killed = time.monotonic()
    standby.wait_for_log(r"became the leader", timeout=30)
    failover = time.monotonic() - killed
    with capsys.disabled():
        print(f"\nfailover after SIGKILL of the leader: {failover:.1f} s (lease 4 s, renew 1 s)")  # noqa: T201

    kit.secret("credentials", {"password": "canary-ha-2"}, grant="shop")
    wait_for(lambda: kit.tracked("shop", "credentials") == 2, 60, message="the new leader acts")
    kit.wait_ready("shop")
    assert len(kit.events("RolloutStarted")) == 1, "one rollout for one change"
    # pruning waits for the old ReplicaSets to be gone, which may be just after Ready
    wait_for(lambda: kit.revisions("credentials") == [2], 60, message="revision 1 pruned")
    assert first_metrics != kit.metrics_port
    assert kit.canary_hits(["canary-ha-1", "canary-ha-2"]) == []
