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


def test_urgent_besides_counts_waiting_urgent_keys(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    assert not queue.urgent_besides("app")
    queue.add("follow-up", priority=FOLLOW_UP)
    assert not queue.urgent_besides("app")
    queue.add("follow-up", priority=URGENT)  # raised
    queue.add("change")
    assert queue.urgent_besides("app")
    assert sorted(drain(queue, loop)) == ["change", "follow-up"]
    assert not queue.urgent_besides("app")


def test_urgent_besides_counts_urgent_keys_being_handled_but_the_asker(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The last apps of a fan-out are being handled, none waits: each still lets the others
    write first, and the last one being handled does not wait for itself."""
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    queue.add("a")
    queue.add("b")
    queue.add("later", priority=FOLLOW_UP)

    async def take_two() -> list[str]:
        return [await queue.get(), await queue.get()]

    a, b = sorted(loop.run_until_complete(take_two()))
    assert (a, b) == ("a", "b")
    assert queue.urgent_besides("a")
    assert queue.urgent_besides("b")
    queue.done("b")
    assert not queue.urgent_besides("a")  # only itself is left
    assert queue.urgent_besides("later")  # a follow-up still sees "a" being handled
    queue.done("a")
    assert not queue.urgent_besides("later")


def test_a_handler_asks_to_come_back_as_a_follow_up(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    handled: list[str] = []

    async def handle(key: str) -> Again | None:
        handled.append(key)
        if key == "app" and handled.count("app") == 1:
            assert queue.urgent_besides(key)  # "other" still waits: defer the rest of "app"
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


def test_follow_ups_wait_while_urgent_keys_are_handled(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock, hold=2.0)
    queue.add("app-1")
    queue.add("app-2")
    queue.add("status", priority=FOLLOW_UP)

    async def scenario() -> list[str]:
        taken = [await queue.get(), await queue.get()]  # both urgent keys in flight
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 0.05)  # the follow-up is held
        queue.done(taken[0])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 0.05)  # one urgent key still in flight
        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        queue.done(taken[1])  # the last urgent key done: the follow-up goes at once
        taken.append(await asyncio.wait_for(waiting, 1.0))
        return taken

    assert loop.run_until_complete(scenario()) == ["app-1", "app-2", "status"]


def test_a_held_follow_up_goes_after_the_hold_even_if_urgent_work_goes_on(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock, hold=2.0)
    queue.add("slow-app")
    queue.add("prune", priority=FOLLOW_UP)

    async def scenario() -> list[str]:
        taken = [await queue.get()]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 0.05)
        clock.now += 2.0  # held as long as it may be: it goes though "slow-app" still runs
        taken.append(await asyncio.wait_for(queue.get(), 1.0))
        queue.add("other-app")  # urgent work still comes first
        queue.add("status", priority=FOLLOW_UP)
        taken.append(await asyncio.wait_for(queue.get(), 1.0))
        return taken

    assert loop.run_until_complete(scenario()) == ["slow-app", "prune", "other-app"]


def test_a_failed_urgent_key_releases_the_held_follow_ups(loop: asyncio.AbstractEventLoop) -> None:
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock(), hold=2.0)
    queue.add("app")
    queue.add("status", priority=FOLLOW_UP)

    async def scenario() -> str:
        key = await queue.get()
        queue.failed(key)  # comes back after its backoff; nothing urgent in flight meanwhile
        return await asyncio.wait_for(queue.get(), 1.0)

    assert loop.run_until_complete(scenario()) == "status"


def test_a_follow_up_never_moves_a_waiting_change(loop: asyncio.AbstractEventLoop) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("app", delay=0.2, max_wait=2.0)  # a Secret's change, waiting for its siblings
    queue.add("app", delay=0.5, max_wait=2.0, priority=FOLLOW_UP)  # a rollout's event
    clock.now += 0.2
    assert drain(queue, loop) == ["app"]  # on the change's time, not pushed to the follow-up's
    assert queue.urgent_besides("other") is False


def test_a_change_where_a_follow_up_waits_runs_on_its_own_time(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add("app", delay=0.5, max_wait=2.0, priority=FOLLOW_UP)
    queue.add("other", delay=0.5, max_wait=2.0, priority=FOLLOW_UP)
    queue.add("app", delay=0.2, max_wait=2.0)  # raised: the change's window, not the debounce
    queue.add("other")  # raised, due now
    assert drain(queue, loop) == ["other"]
    clock.now += 0.2
    assert drain(queue, loop) == ["app"]


class CountingClock(FakeClock):
    """A fake clock that counts its reads: each worker that wakes reads it once."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def test_a_key_wakes_one_idle_worker_not_all(loop: asyncio.AbstractEventLoop) -> None:
    clock = CountingClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)

    async def scenario() -> tuple[list[str], int]:
        workers = [asyncio.create_task(queue.get()) for _ in range(8)]
        await asyncio.sleep(0.01)  # all eight idle
        clock.reads = 0
        queue.add("a")
        queue.add("b", delay=0.05)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        taken = [w.result() for w in workers if w.done()]
        reads = clock.reads
        clock.now += 0.05
        await asyncio.sleep(0.2)  # "b" is due: the one worker sleeping on its time wakes
        taken += [w.result() for w in workers if w.done() and w.result() not in taken]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return taken, reads

    taken, reads = loop.run_until_complete(scenario())
    assert taken == ["a", "b"]
    assert reads <= 6  # the two adds and the few workers they woke, not all eight each time
