"""A coalescing, delaying work queue: many triggers of one key become one reconcile.

- A key added while it waits is not added twice; a debounced add moves its due time later
  (up to `max_wait` after the first add), so a burst of changes is handled once, after it.
- A key is never handled by two workers at once: added while being handled, it is marked
  dirty and handled again right after.
- Failed keys come back with exponential backoff.
- Among keys that are due, the lowest `priority` goes first: the operator serves apps waiting
  for a new revision before the follow-up reconciles that rollouts cause.
- While urgent keys are being handled, due follow-ups wait for them (at most `hold` seconds):
  the last apps of a fan-out do not share the API server and the CPU with status writes and
  pruning that can as well come a moment later.

This is the controller-runtime work queue idea in a few lines of asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Priorities: a change someone made goes before the follow-ups the operator's own writes cause.
URGENT = 0
FOLLOW_UP = 1
# How long a follow-up waits for more of its kind: a rollout's writes and status updates come
# as a burst of watch events, and one reconcile after the burst sees them all.
FOLLOW_UP_DELAY = 0.5


@dataclass(frozen=True)
class Again:
    """What a handler returns to be queued again after `delay`, at `priority`."""

    delay: float = 0.0
    priority: int = URGENT


@dataclass
class _Entry:
    due: float
    first: float
    priority: int = 0


@dataclass
class WorkQueue(Generic[K]):
    """Keys to reconcile, each at most once at a time."""

    clock: Callable[[], float] = field(default_factory=lambda: asyncio.get_running_loop().time)
    # How long a due follow-up waits at most for the urgent keys being handled.
    hold: float = 2.0

    _entries: dict[K, _Entry] = field(default_factory=dict)
    _heap: list[tuple[float, int, K]] = field(default_factory=list)
    # Keys whose time has come, by priority, then due time.
    _ready: list[tuple[int, float, int, K]] = field(default_factory=list)
    _active: set[K] = field(default_factory=set)
    _active_urgent: set[K] = field(default_factory=set)
    _dirty: dict[K, tuple[float, int]] = field(default_factory=dict)
    _failures: dict[K, int] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _urgent: int = 0  # waiting keys of priority URGENT
    # Idle workers, each on a future: a key that comes wakes one of them, not all. One of them
    # (`_timed`) also sleeps until the next due time (`_timer_at`).
    _waiters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    _timed: asyncio.Future[None] | None = None
    _timer_at: float | None = None

    def add(
        self, key: K, delay: float = 0.0, max_wait: float | None = None, priority: int = 0
    ) -> None:
        """Queue `key` to run `delay` seconds from now (debounced up to `max_wait`); of the
        keys due, those of lower `priority` run first."""
        now = self.clock()
        if key in self._active:
            was_delay, was_priority = self._dirty.get(key, (delay, priority))
            self._dirty[key] = (min(was_delay, delay), min(was_priority, priority))
            return
        entry = self._entries.get(key)
        due = now + delay
        if entry is None:
            entry = _Entry(due=due, first=now, priority=priority)
            self._entries[key] = entry
            self._urgent += priority == URGENT
        elif priority > entry.priority:
            return  # the waiting run covers this one: a follow-up never delays a change
        elif priority < entry.priority:
            # A change where a follow-up waited: it runs on the change's own time (a change
            # that waits for its siblings still waits, one due now keeps its earlier place).
            self._urgent += priority == URGENT
            entry.due = min(entry.due, due) if delay <= 0 else due
            entry.first, entry.priority = now, priority
        elif delay > 0 and max_wait is not None:
            entry.due = max(entry.due, min(due, entry.first + max_wait))
        else:
            entry.due = min(entry.due, due)
        heapq.heappush(self._heap, (entry.due, next(self._counter), key))
        if entry.due <= now:
            self._notify()
        elif self._timer_at is None or entry.due < self._timer_at:
            self._notify(self._timed)  # sooner than the sleeper's alarm: it sets a new one

    def _notify(self, waiter: asyncio.Future[None] | None = None) -> None:
        """Wake `waiter`, or else one idle worker."""
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
            return
        while self._waiters:
            first = self._waiters.popleft()
            if not first.done():
                first.set_result(None)
                return

    def __len__(self) -> int:
        return len(self._entries)

    def urgent_besides(self, key: K) -> bool:
        """Whether urgent keys other than `key` wait or are being handled: a fan-out is still
        writing, and what can come a moment later (status, notices) should let it finish."""
        return self._urgent > 0 or len(self._active_urgent) > (key in self._active_urgent)

    @property
    def idle(self) -> bool:
        return not self._entries and not self._active

    async def get(self) -> K:
        """The next due key; the caller must call `done` (or `failed`) with it."""
        while True:
            now = self.clock()
            while self._heap:
                due, count, key = self._heap[0]
                entry = self._entries.get(key)
                if entry is None or entry.due != due:
                    heapq.heappop(self._heap)  # stale heap item: superseded or taken
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                heapq.heappush(self._ready, (entry.priority, due, count, key))
            held_until: float | None = None
            while self._ready:
                priority, due, count, key = heapq.heappop(self._ready)
                entry = self._entries.get(key)
                if entry is None or entry.due != due or entry.due > now:
                    continue  # taken already, or moved later
                if entry.priority != priority:
                    heapq.heappush(self._ready, (entry.priority, due, next(self._counter), key))
                    continue
                if priority != URGENT and self._active_urgent and now < due + self.hold:
                    # Every key still ready is a follow-up too (lowest priority first).
                    heapq.heappush(self._ready, (priority, due, count, key))
                    held_until = due + self.hold
                    break
                del self._entries[key]
                self._urgent -= entry.priority == URGENT
                self._active.add(key)
                if entry.priority == URGENT:
                    self._active_urgent.add(key)
                if self._ready or (self._heap and self._timed is None):
                    self._notify()  # more to take, or to sleep on: another idle worker goes
                return key
            due_next = self._heap[0][0] if self._heap else None
            times = [t for t in (due_next, held_until) if t is not None]
            await self._wait(now, min(times) if times else None)

    async def _wait(self, now: float, deadline: float | None) -> None:
        """Sleep until woken, or until `deadline` if no other worker sleeps on a sooner one."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        alarm = None
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._timed, self._timer_at = waiter, deadline
            alarm = loop.call_later(max(0.0, deadline - now), self._notify, waiter)
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._notify()  # woken as it was cancelled: the wake goes to another worker
            raise
        finally:
            if alarm is not None:
                alarm.cancel()
            if self._timed is waiter:
                self._timed, self._timer_at = None, None
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self, key: K) -> None:
        self._active.discard(key)
        if key in self._active_urgent:
            self._active_urgent.discard(key)
            if not self._active_urgent:
                self._notify()  # held follow-ups may go

    def done(self, key: K) -> None:
        self._release(key)
        self._failures.pop(key, None)
        if key in self._dirty:
            delay, priority = self._dirty.pop(key)
            self.add(key, delay, priority=priority)

    def failed(self, key: K, base: float = 0.5, cap: float = 60.0) -> float:
        """Requeue after a failure with exponential backoff; returns the delay."""
        self._release(key)
        self._dirty.pop(key, None)
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        delay = min(cap, base * float(2 ** (count - 1)))
        self.add(key, delay)
        return delay


async def run_workers(
    queue: WorkQueue[K],
    handle: Callable[[K], Awaitable[float | Again | None]],
    on_error: Callable[[K, BaseException], float | None],
    concurrency: int,
) -> None:
    """Run `concurrency` workers forever. `handle` may return a delay (or an `Again`) to queue
    the key again."""

    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                again = await handle(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 (one bad key must not stop the workers)
                delay = on_error(key, error)
                if delay is None:
                    queue.failed(key)
                else:
                    queue.done(key)
                    queue.add(key, delay)
                continue
            queue.done(key)
            if isinstance(again, Again):
                queue.add(key, again.delay, priority=again.priority)
            elif again is not None:
                queue.add(key, again)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
