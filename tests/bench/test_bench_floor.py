"""Each latency scenario's floor is measured as the first one is: the best of the profile's
rounds (a single round's first requests open the client's connections)."""

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
