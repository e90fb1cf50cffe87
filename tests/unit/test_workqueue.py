"""The coalescing work queue, on a fake clock (no sleeps, no timing assertions)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from webapp_operator.controller.workqueue import FOLLOW_UP, URGENT, Again, WorkQueue, run_workers


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per test, as the operator has one."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


def drain(queue: WorkQueue[str], loop: asyncio.AbstractEventLoop) -> list[str]:
    """Keys due now, taking and finishing each."""

    async def take() -> list[str]:
        taken: list[str] = []
        while True:
            try:
                key = await asyncio.wait_for(queue.get(), 0.01)
            except TimeoutError:
                return taken
            taken.append(key)
            queue.done(key)

    return loop.run_until_complete(take())


def test_duplicate_adds_coalesce(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    assert sorted(drain(queue, loop)) == ["a", "b"]


def test_delayed_key_waits_for_its_time(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("later", delay=5)
    assert drain(queue, loop) == []
    clock.now += 5
    assert drain(queue, loop) == ["later"]


def test_debounce_moves_due_time_but_not_past_max_wait(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("app", delay=1, max_wait=3)
    clock.now += 0.9
    queue.add("app", delay=1, max_wait=3)  # due moves to 101.9
    clock.now += 0.2
    assert drain(queue, loop) == []
    clock.now += 1.0  # 102.1: due
    assert drain(queue, loop) == ["app"]


def test_debounce_is_capped_by_max_wait(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    for _ in range(10):
        queue.add("app", delay=1, max_wait=3)
        clock.now += 0.5
    # first add at 100, cap at 103; now is 105
    assert drain(queue, loop) == ["app"]


def test_a_key_is_never_handled_twice_at_once_and_reruns_when_dirty() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        active = 0
        peak = 0
        release = asyncio.Event()

        async def handle(key: str) -> float | None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            seen.append(key)
            if len(seen) == 1:
                queue.add("k")  # while being handled: marked dirty
                await release.wait()
            active -= 1
            return None

        queue.add("k")
        workers = asyncio.create_task(run_workers(queue, handle, lambda k, e: None, 4))
        await asyncio.sleep(0.05)
        release.set()
        for _ in range(100):
            if len(seen) == 2 and queue.idle:
                break
            await asyncio.sleep(0.01)
        workers.cancel()
        with pytest.raises(asyncio.CancelledError):
            await workers
        assert peak == 1
        return seen

    assert asyncio.run(scenario()) == ["k", "k"]


def test_failures_back_off_exponentially(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("k")
    delays = []
    for _ in range(4):
        key = loop.run_until_complete(queue.get())
        delays.append(queue.failed(key, base=0.5, cap=3))
        clock.now += 10  # the retry is due
    assert delays == [0.5, 1.0, 2.0, 3.0]
    key = loop.run_until_complete(queue.get())
    queue.done(key)  # a success forgets the failures
    queue.add("k")
    assert queue.failed(loop.run_until_complete(queue.get()), base=0.5) == 0.5


def test_of_the_keys_due_the_lower_priority_goes_first(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("follow-up-1", priority=1)
    queue.add("follow-up-2", priority=1)
    queue.add("urgent-later", delay=5)
    clock.now += 1
    queue.add("urgent")
    queue.add("follow-up-2", priority=0)  # raised while waiting
    assert drain(queue, loop) == ["follow-up-2", "urgent", "follow-up-1"]  # priority, then due
    clock.now += 5
    assert drain(queue, loop) == ["urgent-later"]


def test_a_key_added_while_active_keeps_the_higher_priority(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    queue.add("a", priority=1)
    queue.add("b", priority=1)

    async def scenario() -> list[str]:
        first = await queue.get()
        queue.add(first, priority=1)
        queue.add(first, priority=0)  # dirty while active
        queue.done(first)
        return [first, await queue.get()]

    first, second = loop.run_until_complete(scenario())
    assert first == second  # the dirty key came back ahead of the other follow-up


def test_urgent_waiting_counts_only_waiting_urgent_keys(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    assert not queue.urgent_waiting
    queue.add("follow-up", priority=FOLLOW_UP)
    assert not queue.urgent_waiting
    queue.add("follow-up", priority=URGENT)  # raised
    queue.add("change")
    assert queue.urgent_waiting
    assert sorted(drain(queue, loop)) == ["change", "follow-up"]
    assert not queue.urgent_waiting


def test_a_handler_asks_to_come_back_as_a_follow_up(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    handled: list[str] = []

    async def handle(key: str) -> Again | None:
        handled.append(key)
        if key == "app" and handled.count("app") == 1:
            assert queue.urgent_waiting  # "other" still waits: defer the rest of "app"
            return Again(0.0, FOLLOW_UP)
        return None

    async def scenario() -> None:
        queue.add("app")
        queue.add("other")
        task = asyncio.create_task(run_workers(queue, handle, lambda k, e: None, 1))
        while len(handled) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    loop.run_until_complete(scenario())
    assert handled == ["app", "other", "app"]
