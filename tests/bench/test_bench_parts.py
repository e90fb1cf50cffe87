"""The bench's parts that need no cluster: each latency scenario's floor is measured as the first
one is (the best of the profile's rounds: a single round's first requests open the client's
connections), and the API server's time per request kind is reported per write the operator
makes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import bench.run as run
import bench.scenarios as scenarios
import pytest


@pytest.mark.parametrize("profile", sorted(scenarios.PROFILES))
def test_each_sizes_floor_is_the_best_of_the_profiles_rounds(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[int, int, int]] = []

    async def measure_floor(api: Any, concurrency: int, patches: int, rounds: int) -> Any:
        asked.append((concurrency, patches, rounds))
        return scenarios.Floor(concurrency, 0.01, 0.02, 1000.0)

    monkeypatch.setattr(scenarios, "measure_floor", measure_floor)
    chosen = scenarios.PROFILES[profile]
    bench: Any = SimpleNamespace(api=None, concurrency=16, profile=chosen, floor=None)
    asyncio.run(run._floor_now(bench))
    assert chosen.floor_rounds > 1
    assert asked == [(16, chosen.floor_patches, chosen.floor_rounds)]
    assert bench.floor.patches_per_s == 1000.0


def test_the_server_time_per_request_kind_is_the_runs_mean_for_each_write_the_operator_makes() -> (
    None
):
    before = {"PATCH deployments": (1.0, 10.0), "POST secrets": (0.5, 5.0)}
    after = {
        "PATCH deployments": (1.6, 30.0),  # 20 patches in 0.6 s
        "POST secrets": (0.5, 5.0),  # none during the run
        "DELETE secrets": (0.03, 4.0),
        "PATCH webapps/status": (0.2, 25.0),
        "GET pods": (9.0, 900.0),  # not a write the operator makes
    }
    assert run._server_time(before, after) == {
        "patch_deployments_ms": 30.0,
        "patch_deployments_count": 20.0,
        "delete_secrets_ms": 7.5,
        "delete_secrets_count": 4.0,
        "patch_webapps_status_ms": 8.0,
        "patch_webapps_status_count": 25.0,
    }
