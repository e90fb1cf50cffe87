"""A coalescing, delaying work queue: many triggers of one key become one reconcile.

- A key added while it waits is not added twice; a debounced add moves its due time later
  (up to `max_wait` after the first add), so a burst of changes is handled once, after it.
- A key is never handled by two workers at once: added while being handled, it is marked
  dirty and handled again right after.
- Failed keys come back with exponential backoff.
- Among keys that are due, the lowest `priority` goes first: the operator serves apps waiting
  for a new revision before the follow-up reconciles that rollouts cause.

This is the controller-runtime work queue idea in a few lines of asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Priorities: a change someone made goes before the follow-ups the operator's own writes cause.
URGENT = 0
FOLLOW_UP = 1


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

    _entries: dict[K, _Entry] = field(default_factory=dict)
    _heap: list[tuple[float, int, K]] = field(default_factory=list)
    # Keys whose time has come, by priority, then due time.
    _ready: list[tuple[int, float, int, K]] = field(default_factory=list)
    _active: set[K] = field(default_factory=set)
    _dirty: dict[K, tuple[float, int]] = field(default_factory=dict)
    _failures: dict[K, int] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _urgent: int = 0  # waiting keys of priority URGENT
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

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
        elif delay > 0 and max_wait is not None:
            entry.due = max(entry.due, min(due, entry.first + max_wait))
        else:
            entry.due = min(entry.due, due)
        if priority < entry.priority:
            self._urgent += priority == URGENT
            entry.priority = priority
        heapq.heappush(self._heap, (entry.due, next(self._counter), key))
        self._wakeup.set()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def urgent_waiting(self) -> bool:
        """Whether keys of priority URGENT wait (a fan-out in progress, say)."""
        return self._urgent > 0

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
            while self._ready:
                priority, due, _, key = heapq.heappop(self._ready)
                entry = self._entries.get(key)
                if entry is None or entry.due != due or entry.due > now:
                    continue  # taken already, or moved later
                if entry.priority != priority:
                    heapq.heappush(self._ready, (entry.priority, due, next(self._counter), key))
                    continue
                del self._entries[key]
                self._urgent -= entry.priority == URGENT
                self._active.add(key)
                return key
            timeout = self._heap[0][0] - now if self._heap else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def done(self, key: K) -> None:
        self._active.discard(key)
        self._failures.pop(key, None)
        if key in self._dirty:
            delay, priority = self._dirty.pop(key)
            self.add(key, delay, priority=priority)

    def failed(self, key: K, base: float = 0.5, cap: float = 60.0) -> float:
        """Requeue after a failure with exponential backoff; returns the delay."""
        self._active.discard(key)
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
