"""One fix to Kopf's start-up, applied at import: index pre-population without quadratic wakeups.

Kopf holds every object's handlers until every object of every indexed kind has been indexed
(`operator_indexed`, a `ToggleSet` of one toggle per object). Each object's worker drops its
toggle when indexed, then waits on the set's condition until the whole set is on; and every
drop (and every new toggle) woke *all* waiting workers, each of which re-acquired the lock to
look again. With N objects that is N x N wakeups: ~9 s at 600 objects, over ten minutes at
6,000 (1,000 WebApps and their Secrets: docs/performance.md, restart over 1,000 apps).

A waiter of the set waits for the set's state (on or off), so a change that leaves that state
as it was cannot satisfy any of them: here adding and dropping a toggle notify only when the
set's state changed. Individual toggles keep Kopf's own behaviour. Applied only to the Kopf
version this was written against (pinned in pyproject.toml); any other leaves Kopf as it is.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import kopf
from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)

PATCHED_VERSION: Final = "1.45.2"


async def _make_toggle(
    self: aiotoggles.ToggleSet, __val: bool = False, *, name: str | None = None
) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.discard(toggle)
        if self.is_on() != before:
            self._condition.notify_all()


def apply(version: str | None = None) -> bool:
    """Patch Kopf's ToggleSet; False (and nothing changed) on another Kopf version."""
    found = version or str(getattr(kopf, "__version__", ""))
    if found != PATCHED_VERSION:
        logger.debug("Kopf %s: index pre-population left as it is", found)
        return False
    toggle_set: Any = aiotoggles.ToggleSet
    toggle_set.make_toggle = _make_toggle
    toggle_set.drop_toggle = _drop_toggle
    return True
