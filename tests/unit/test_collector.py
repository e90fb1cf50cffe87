"""The cyclic garbage collector once the operator is ready (controller/handlers.settle_collector):
start-up's objects leave its scans, and garbage made later is still collected."""

from __future__ import annotations

import gc
import weakref

from webapp_operator.controller import handlers


class Node:
    """A container that can be referenced weakly and can refer to itself."""

    other: Node | None = None


def test_start_up_objects_are_frozen_and_later_cycles_still_collected() -> None:
    saved = gc.get_threshold()
    start_up = [Node() for _ in range(1000)]  # as the first listing's index entries
    try:
        handlers.settle_collector()
        assert gc.get_freeze_count() >= len(start_up)
        assert gc.get_threshold() == saved

        later = Node()
        later.other = later  # a cycle: only the collector frees it
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
