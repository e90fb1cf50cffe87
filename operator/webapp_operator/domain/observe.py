"""The observer side of Juju's secret model, and the WebApp's status. Pure.

- `choose_tracked`: which revision an app's option tracks now (auto, manual, pinned, refresh).
- `conditions`: metav1.Condition values that keep `lastTransitionTime` while the status stays.
- `status_equal`: whether a status write would change anything (so nothing is written when
  nothing changed, invariant 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from webapp_operator.domain import reasons
from webapp_operator.domain.errors import InvalidConfig

ConditionStatus = Literal["True", "False", "Unknown"]

REFRESH_ANNOTATION: Final = "twelvefactor.dev/refresh"
"""On a WebApp: `<options>@<nonce>`, set by `kubectl webapp refresh`; the operator moves those
options to the latest revision once per new value, then records the value in status.refreshed."""
REFRESH_ALL: Final = "*"
REFRESH_NONCE_SEPARATOR: Final = "@"
REFRESHED_STATUS_FIELD: Final = "refreshed"


def format_refresh(options: Sequence[str], nonce: str) -> str:
    """`credentials,postgresql@1718000000000000000`, or `*@...` for every option."""
    listed = REFRESH_ALL if not options else ",".join(sorted(set(options)))
    return f"{listed}{REFRESH_NONCE_SEPARATOR}{nonce}"


def parse_refresh(value: str) -> tuple[frozenset[str] | None, str]:
    """The options (None: every option) and the nonce of a refresh annotation value."""
    listed, sep, nonce = value.rpartition(REFRESH_NONCE_SEPARATOR)
    if not sep or not nonce:
        msg = f"{REFRESH_ANNOTATION}: {value!r} is not OPTIONS@NONCE"
        raise InvalidConfig(msg)
    if listed.strip() == REFRESH_ALL:
        return None, nonce
    options = frozenset(o.strip() for o in listed.split(",") if o.strip())
    if not options:
        msg = f"{REFRESH_ANNOTATION}: {value!r} names no option"
        raise InvalidConfig(msg)
    return options, nonce


def pending_refresh(annotations: Mapping[str, str] | None, handled: str | None) -> str | None:
    """The refresh annotation's value when it is one not yet handled (`handled`: the value in
    status.refreshed), else None."""
    token = (annotations or {}).get(REFRESH_ANNOTATION)
    return token if token and token != handled else None


def choose_tracked(
    mode: Literal["auto", "manual"],
    pin: int | None,
    prior: int | None,
    latest: int | None,
    refresh: bool,
) -> int | None:
    """The revision an option tracks after this reconcile.

    A pin wins. `auto` follows the latest. `manual` keeps what it tracked; the first read tracks
    the latest (as in Juju); an explicit refresh moves to the latest.
    """
    if pin is not None:
        return pin
    if mode == "auto" or prior is None or refresh:
        return latest
    return prior


@dataclass(frozen=True)
class ConditionSpec:
    """A condition as decided by a reconcile, before timestamps are merged in."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def conditions(
    old: Sequence[Mapping[str, Any]] | None,
    new: Sequence[ConditionSpec],
    now: str,
    generation: int | None,
    keep_undecided: bool = False,
) -> list[dict[str, Any]]:
    """Merge decided conditions with the old ones; keep a transition time while status holds.
    With `keep_undecided` (a failure, a migration: only Ready is decided), the old conditions
    of other types stay as they were, their observedGeneration saying when they were decided;
    else only the decided ones are left."""
    previous = {c.get("type"): c for c in old or []}
    decided = {spec.type for spec in new}
    merged = [
        dict(c)
        for c in old or []
        if keep_undecided and c.get("type") not in decided and isinstance(c.get("type"), str)
    ]
    for spec in new:
        before = previous.get(spec.type)
        stamp = now
        if before is not None and before.get("status") == spec.status:
            stamp = str(before.get("lastTransitionTime") or now)
        condition: dict[str, Any] = {
            "type": spec.type,
            "status": spec.status,
            "reason": spec.reason,
            "message": spec.message,
            "lastTransitionTime": stamp,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        merged.append(condition)
    return sorted(merged, key=lambda c: (c["type"] != reasons.READY, c["type"]))


def status_equal(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` would change nothing the operator owns."""
    old = old or {}
    return all(old.get(key) == value for key, value in new.items())
