"""Rotation and expiry times: the one place where the operator's secret clock logic lives.

Juju tells a secret's owner when a rotation is due (`secret-rotate`) and when a revision expired
(`secret-expired`). This module decides the same things for a Kubernetes Secret, from the owner's
annotations `twelvefactor.dev/rotate` and `twelvefactor.dev/expire`, and from state that the
controller keeps in annotations (RFC 3339 UTC strings), so that every decision can be recomputed
after a restart from what the API server holds. Nothing here reads a clock: every function that
needs the time takes `now`. Nothing here performs I/O.

The rules (docs/secrets-schedule.md has worked examples):

- The first rotation is due one period after the latest revision's creation (or, when that is
  already past, one period after the policy is first seen, as Juju counts from the moment a
  policy is set). Later rotations are on the grid `anchor + k * period`, counted from the
  scheduled time, never from the time the owner happened to act: a late check does not drift.
- A rotation is done when the owner creates a revision after being told (Juju compares the
  revision it told about with the latest), or any revision once the rotation was due.
- Until then the notice repeats every 5 minutes (Juju's `RotateRetryDelay`), on the grid
  `due + k * 5 min`, so a restart neither repeats a notice nor bursts to catch up.
- A rotation comes early, 5 minutes before the latest revision expires, when that revision would
  expire before the scheduled rotation. An early rotation replaces the scheduled one: the next is
  one period after the revision that answered it.
- A changed policy takes effect after the currently scheduled rotation.
- Expiry is per revision. A notice when the expiry passes, repeated every 5 minutes until the
  revision is removed (Juju's `ExpireRetryDelay`); a newer revision does not stop it, as in Juju,
  because observers may still use the expired one.
- Granularity is one minute, as in Juju's rotate and expire workers: everything due within a
  minute is due at the start of that minute, so the controller wakes once for all of it.
"""

from __future__ import annotations

import heapq
import itertools
import re
from calendar import monthrange
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar

from webapp_operator.domain import numbers
from webapp_operator.domain.errors import InvalidConfig

# Owner-side annotations on a source Secret (fixed names, product.md).
ROTATE_ANNOTATION: Final = "twelvefactor.dev/rotate"
EXPIRE_ANNOTATION: Final = "twelvefactor.dev/expire"

# Rotation state, written by the operator on the source Secret.
ROTATION_POLICY_ANNOTATION: Final = "twelvefactor.dev/rotation-policy"
ROTATION_ANCHOR_ANNOTATION: Final = "twelvefactor.dev/rotation-anchor"
NEXT_ROTATION_ANNOTATION: Final = "twelvefactor.dev/next-rotation"
ROTATION_NOTIFIED_REVISION_ANNOTATION: Final = "twelvefactor.dev/rotation-notified-revision"
ROTATION_NOTIFIED_AT_ANNOTATION: Final = "twelvefactor.dev/rotation-notified-at"
ROTATION_STATE_ANNOTATIONS: Final = (
    ROTATION_POLICY_ANNOTATION,
    ROTATION_ANCHOR_ANNOTATION,
    NEXT_ROTATION_ANNOTATION,
    ROTATION_NOTIFIED_REVISION_ANNOTATION,
    ROTATION_NOTIFIED_AT_ANNOTATION,
)

# Expiry state, written by the operator on each revision snapshot (a revision's expiry is its own).
REVISION_EXPIRES_ANNOTATION: Final = "twelvefactor.dev/revision-expires"
REVISION_EXPIRY_NOTIFIED_AT_ANNOTATION: Final = "twelvefactor.dev/revision-expiry-notified-at"
EXPIRY_STATE_ANNOTATIONS: Final = (
    REVISION_EXPIRES_ANNOTATION,
    REVISION_EXPIRY_NOTIFIED_AT_ANNOTATION,
)

REPEAT_INTERVAL: Final = timedelta(minutes=5)
"""How often an unanswered rotation or expiry notice repeats (Juju: 5 minutes for both)."""

EARLY_ROTATION_LEAD: Final = timedelta(minutes=5)
"""How long before the latest revision expires an early rotation is due."""

GRANULARITY: Final = timedelta(minutes=1)
MIN_DURATION: Final = timedelta(minutes=1)
MAX_DURATION: Final = timedelta(days=36525)

_SECOND: Final = timedelta(seconds=1)

_ROTATE_FORMS: Final = (
    "never, hourly, daily, weekly, monthly, quarterly, yearly, or a duration of at least 1m "
    "such as 90s, 15m, 12h, 7d or 1h30m (units w, d, h, m, s, largest first)"
)
_EXPIRE_FORMS: Final = (
    "an RFC 3339 time such as 2030-06-30T00:00:00Z, or a duration of at least 1m counted from "
    "each revision's creation, such as 90s, 12h, 30d or 1h30m (units w, d, h, m, s, largest first)"
)


# --- time values -------------------------------------------------------------------------------


def require_utc(value: datetime, what: str = "time") -> datetime:
    """`value` in UTC; a naive datetime is a programming error (ValueError)."""
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}"
        raise ValueError(msg)
    return value.astimezone(UTC)


def _seconds(value: datetime, what: str) -> datetime:
    """UTC, truncated to whole seconds: the precision of every persisted time."""
    return require_utc(value, what).replace(microsecond=0)


def _minute(value: datetime) -> datetime:
    """The start of the minute: the instant something is due, at Juju's granularity."""
    return value.replace(second=0, microsecond=0)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, e.g. `2025-01-31T10:00:00Z`."""
    return _seconds(value, "time").replace(tzinfo=None).isoformat() + "Z"


_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def _parse_rfc3339(text: str) -> datetime | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    date, time, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{date}T{time}{offset}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def parse_time(text: str, what: str = "time") -> datetime:
    """An RFC 3339 time (offset required) in UTC, fractions of a second dropped."""
    parsed = _parse_rfc3339(text.strip())
    if parsed is None:
        msg = f"{what}: {text!r} is not an RFC 3339 time such as 2030-06-30T00:00:00Z"
        raise InvalidConfig(msg)
    return parsed


# --- durations ---------------------------------------------------------------------------------

_DURATION: Final = re.compile(
    r"(?:(\d{1,12})w)?(?:(\d{1,12})d)?(?:(\d{1,12})h)?(?:(\d{1,12})m)?(?:(\d{1,12})s)?"
)
_UNIT_SECONDS: Final = (7 * 86400, 86400, 3600, 60, 1)


def _duration_or_none(text: str) -> timedelta | None:
    """`1h30m` and friends as a timedelta; None when not a duration or beyond MAX_DURATION."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    total = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n)
    if total > MAX_DURATION.total_seconds():
        return None
    return timedelta(seconds=total)


def parse_duration(text: str) -> timedelta:
    """A duration like `90s`, `15m`, `12h`, `7d`, `2w` or `1h30m` (units largest first)."""
    value = _duration_or_none(text.strip().lower())
    if value is None:
        msg = (
            f"{text!r} is not a duration; expected numbers with units w, d, h, m, s, largest "
            f"first, such as 90s, 15m, 12h, 7d or 1h30m (at most {MAX_DURATION.days}d)"
        )
        raise InvalidConfig(msg)
    return value


def format_duration(value: timedelta) -> str:
    """The canonical form: days, hours, minutes, seconds, e.g. `1m30s` for 90 seconds."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# --- rotation policy ---------------------------------------------------------------------------


def _add_months(value: datetime, months: int) -> datetime:
    """Calendar months later, the day clamped to the month's end (Jan 31 + 1 = Feb 28 or 29)."""
    year, month0 = divmod(value.month - 1 + months, 12)
    year += value.year
    day = min(value.day, monthrange(year, month0 + 1)[1])
    return value.replace(year=year, month=month0 + 1, day=day)


@dataclass(frozen=True)
class RotatePolicy:
    """How often a Secret rotates: calendar months, or a fixed period; neither means never."""

    name: str
    months: int = 0
    period: timedelta = timedelta(0)

    def __str__(self) -> str:
        return self.name

    @property
    def is_never(self) -> bool:
        return self.months == 0 and not self.period

    def at(self, anchor: datetime, k: int) -> datetime:
        """The k-th rotation counted from `anchor`; months clamp the day from the anchor's day.

        Counting from the anchor keeps month ends: Jan 31, Feb 28, Mar 31, Apr 30, ...
        """
        if self.is_never:
            msg = "a policy of never has no rotation times"
            raise ValueError(msg)
        anchor = require_utc(anchor, "anchor")
        if self.months:
            return _add_months(anchor, k * self.months)
        return anchor + k * self.period

    def next_after(self, t: datetime) -> datetime | None:
        """One period after `t`; None for never."""
        return None if self.is_never else self.at(t, 1)

    def first_at_or_after(self, anchor: datetime, bound: datetime) -> datetime:
        """The first rotation time `at(anchor, k)`, k >= 1, that is not before `bound`."""
        anchor = require_utc(anchor, "anchor")
        bound = require_utc(bound, "bound")
        if self.months:
            elapsed = (bound.year - anchor.year) * 12 + bound.month - anchor.month
            k = max(1, elapsed // self.months)
        else:
            if self.is_never:
                msg = "a policy of never has no rotation times"
                raise ValueError(msg)
            whole, rest = divmod(bound - anchor, self.period)
            k = max(1, whole + (1 if rest else 0))
        while self.at(anchor, k) < bound:
            k += 1
        return self.at(anchor, k)


NEVER: Final = RotatePolicy("never")

_NAMED_POLICIES: Final = {
    "never": NEVER,
    "hourly": RotatePolicy("hourly", period=timedelta(hours=1)),
    "daily": RotatePolicy("daily", period=timedelta(days=1)),
    "weekly": RotatePolicy("weekly", period=timedelta(days=7)),
    "monthly": RotatePolicy("monthly", months=1),
    "quarterly": RotatePolicy("quarterly", months=3),
    "yearly": RotatePolicy("yearly", months=12),
}


def parse_rotate_policy(value: str) -> RotatePolicy:
    """The `twelvefactor.dev/rotate` value as a policy; InvalidConfig listing the accepted forms.

    Durations are canonicalised (`90s` -> `1m30s`), so equal periods compare equal.
    """
    text = value.strip().lower()
    named = _NAMED_POLICIES.get(text)
    if named is not None:
        return named
    period = _duration_or_none(text)
    if period is None:
        msg = f"{ROTATE_ANNOTATION}: {value!r} is not a rotation policy; expected {_ROTATE_FORMS}"
        raise InvalidConfig(msg)
    if period < MIN_DURATION:
        msg = (
            f"{ROTATE_ANNOTATION}: {value!r} is too short; a rotation period must be at least 1m "
            f"(the scheduler's granularity). Expected {_ROTATE_FORMS}"
        )
        raise InvalidConfig(msg)
    return RotatePolicy(format_duration(period), period=period)


# --- expiry policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpirePolicy:
    """When revisions expire: at one absolute time, or a duration after each one's creation."""

    at: datetime | None = None
    after: timedelta | None = None

    def __post_init__(self) -> None:
        if (self.at is None) == (self.after is None):
            msg = "an ExpirePolicy has exactly one of `at` and `after`"
            raise ValueError(msg)
        if self.at is not None:
            object.__setattr__(self, "at", _seconds(self.at, "at"))

    def __str__(self) -> str:
        if self.at is not None:
            return format_time(self.at)
        assert self.after is not None
        return format_duration(self.after)

    def expiry_for(self, revision_created: datetime) -> datetime:
        """The expiry of a revision created at `revision_created` while this policy applies.

        An absolute time applies as written, even when it is already past (the revision is then
        expired at once, which the owner is told about rather than having it silently ignored).
        """
        created = _seconds(revision_created, "revision_created")
        if self.at is not None:
            return self.at
        assert self.after is not None
        return created + self.after


def parse_expire(value: str) -> ExpirePolicy:
    """The `twelvefactor.dev/expire` value; InvalidConfig listing the accepted forms."""
    text = value.strip()
    at = _parse_rfc3339(text)
    if at is not None:
        return ExpirePolicy(at=at)
    after = _duration_or_none(text.lower())
    if after is None:
        msg = f"{EXPIRE_ANNOTATION}: {value!r} is not an expiry; expected {_EXPIRE_FORMS}"
        raise InvalidConfig(msg)
    if after < MIN_DURATION:
        msg = f"{EXPIRE_ANNOTATION}: {value!r} is too short; expected {_EXPIRE_FORMS}"
        raise InvalidConfig(msg)
    return ExpirePolicy(after=after)


# --- rotation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatestRevision:
    """What rotation needs to know about a Secret's latest revision."""

    number: int
    created: datetime
    expires: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created", _seconds(self.created, "created"))
        if self.expires is not None:
            object.__setattr__(self, "expires", _seconds(self.expires, "expires"))


@dataclass(frozen=True)
class RotationState:
    """The rotation schedule of one Secret, as persisted in its annotations.

    `policy` is the policy the schedule follows (a changed annotation takes over after
    `next_rotation`); rotations are on the grid `policy.at(anchor, k)`. `notified_revision` and
    `last_notified` are set once the owner was told that `next_rotation` is due, and cleared when
    a rotation is done. Times are UTC with whole seconds.
    """

    policy: str
    anchor: datetime
    next_rotation: datetime
    notified_revision: int | None = None
    last_notified: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor", _seconds(self.anchor, "anchor"))
        object.__setattr__(self, "next_rotation", _seconds(self.next_rotation, "next_rotation"))
        if (self.notified_revision is None) != (self.last_notified is None):
            msg = "notified_revision and last_notified are set together"
            raise ValueError(msg)
        if self.last_notified is not None:
            object.__setattr__(self, "last_notified", _seconds(self.last_notified, "notified"))


@dataclass(frozen=True)
class RotationDecision:
    """What to do now about one Secret's rotation.

    `notify`: tell the owner now (Event `RotationDue`). `state`: the state to persist (None: no
    rotation; remove the state annotations). `wake_at`: when to plan again at the latest (None:
    only when something changes). `due_since`: the instant the outstanding rotation became due,
    None when none is outstanding (drives the `SecretRotationDue` condition). `early`: it is due
    because the latest revision expires before the scheduled rotation.
    """

    notify: bool
    state: RotationState | None
    wake_at: datetime | None
    due_since: datetime | None = None
    early: bool = False


def _first_schedule(policy: RotatePolicy, latest: LatestRevision, now: datetime) -> RotationState:
    anchor = latest.created
    if _minute(policy.at(anchor, 1)) <= now:
        # The revision is older than one period: count from now, as Juju does when a policy is
        # set on an existing secret, instead of surprising the owner with an instant rotation.
        anchor = _seconds(now, "now")
    return RotationState(policy.name, anchor, policy.at(anchor, 1))


def _settle(policy: RotatePolicy, state: RotationState, latest: LatestRevision) -> RotationState:
    """Move past the scheduled rotation if the owner has done it; otherwise `state` unchanged."""
    scheduled = state.next_rotation
    told = state.notified_revision
    answered = told is not None and latest.number > told
    if not answered and latest.created < _minute(scheduled):
        return state
    if latest.created < _minute(scheduled):
        # Answered an early rotation: it replaces the scheduled one; count on from the answer.
        anchor = latest.created
        return RotationState(policy.name, anchor, policy.at(anchor, 1))
    # Regular rotation: on from the scheduled time (a changed policy starts there), skipping
    # every grid time the latest revision already covers, so a slow answer causes no burst.
    anchor = state.anchor if policy.name == state.policy else scheduled
    bound = max(scheduled + _SECOND, _minute(latest.created) + GRANULARITY)
    return RotationState(policy.name, anchor, policy.first_at_or_after(anchor, bound))


def _slot(due: datetime, now: datetime) -> datetime:
    """The start of the current 5-minute repeat slot of something due since `due`."""
    return due + ((now - due) // REPEAT_INTERVAL) * REPEAT_INTERVAL


def plan_rotation(
    policy: RotatePolicy,
    state: RotationState | None,
    latest: LatestRevision,
    now: datetime,
) -> RotationDecision:
    """Decide about one Secret's rotation at `now`, from its policy, persisted state and latest.

    Pure and idempotent: planning again with the returned state and the same inputs returns the
    same state and no new notice, so a restart writes nothing and tells nobody twice.
    """
    now = require_utc(now, "now")
    if policy.is_never:
        return RotationDecision(notify=False, state=None, wake_at=None)
    current = _first_schedule(policy, latest, now) if state is None else state
    current = _settle(policy, current, latest)
    scheduled_due = _minute(current.next_rotation)
    due = scheduled_due
    if latest.expires is not None:
        due = min(due, _minute(latest.expires - EARLY_ROTATION_LEAD))
    if due > now:
        return RotationDecision(notify=False, state=current, wake_at=due)
    slot = _slot(due, now)
    notify = current.last_notified is None or current.last_notified < slot
    if notify:
        current = replace(current, notified_revision=latest.number, last_notified=now)
    return RotationDecision(
        notify=notify,
        state=current,
        wake_at=slot + REPEAT_INTERVAL,
        due_since=due,
        early=due < scheduled_due,
    )


# --- expiry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionExpiry:
    """The expiry of one revision and when the owner was last told it expired."""

    revision: int
    expires: datetime
    last_notified: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires", _seconds(self.expires, "expires"))
        if self.last_notified is not None:
            object.__setattr__(self, "last_notified", _seconds(self.last_notified, "notified"))


@dataclass(frozen=True)
class ExpiryDecision:
    """What to do now about a Secret's revision expiries.

    `notify`: revisions to report now (Event `Expired`), ascending. `expired`: every revision
    whose expiry has passed (drives the `SecretExpired` condition). `revisions`: the states to
    persist, in the order given (only those in `notify` changed). `wake_at`: plan again then.
    """

    notify: tuple[int, ...]
    expired: tuple[int, ...]
    revisions: tuple[RevisionExpiry, ...]
    wake_at: datetime | None


def plan_expiry(revisions: Sequence[RevisionExpiry], now: datetime) -> ExpiryDecision:
    """Decide which expired revisions to report at `now`; each repeats every 5 minutes."""
    now = require_utc(now, "now")
    given = [r.revision for r in revisions]
    if len(set(given)) != len(given):
        msg = f"revisions must be distinct, got {sorted(given)}"
        raise ValueError(msg)
    notify: list[int] = []
    expired: list[int] = []
    updated: list[RevisionExpiry] = []
    wakes: list[datetime] = []
    for item in revisions:
        due = _minute(item.expires)
        if due > now:
            wakes.append(due)
            updated.append(item)
            continue
        expired.append(item.revision)
        slot = _slot(due, now)
        wakes.append(slot + REPEAT_INTERVAL)
        if item.last_notified is None or item.last_notified < slot:
            notify.append(item.revision)
            item = replace(item, last_notified=now)
        updated.append(item)
    return ExpiryDecision(
        notify=tuple(sorted(notify)),
        expired=tuple(sorted(expired)),
        revisions=tuple(updated),
        wake_at=min(wakes, default=None),
    )


def latest_revision_expiry(
    policy: ExpirePolicy | None,
    revision: int,
    created: datetime,
    recorded: RevisionExpiry | None,
) -> RevisionExpiry | None:
    """The expiry the latest revision should have under the current `expire` annotation.

    The latest revision follows the annotation (as `juju update-secret --expire` sets the
    expiry of the latest revision); a revision keeps what was recorded once it is superseded,
    so the controller calls this for the latest revision only. The recorded state (with its
    notice time) is kept when the expiry did not change; a changed expiry starts afresh.
    """
    if recorded is not None and recorded.revision != revision:
        msg = f"recorded expiry is for revision {recorded.revision}, not {revision}"
        raise ValueError(msg)
    if policy is None:
        return None
    expires = policy.expiry_for(created)
    if recorded is not None and recorded.expires == expires:
        return recorded
    return RevisionExpiry(revision, expires)


# --- persistence -------------------------------------------------------------------------------


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def rotation_to_annotations(state: RotationState | None) -> dict[str, str | None]:
    """The state as annotations; None values remove a key (a JSON merge patch does that)."""
    if state is None:
        return dict.fromkeys(ROTATION_STATE_ANNOTATIONS)
    return {
        ROTATION_POLICY_ANNOTATION: state.policy,
        ROTATION_ANCHOR_ANNOTATION: format_time(state.anchor),
        NEXT_ROTATION_ANNOTATION: format_time(state.next_rotation),
        ROTATION_NOTIFIED_REVISION_ANNOTATION: (
            None if state.notified_revision is None else str(state.notified_revision)
        ),
        ROTATION_NOTIFIED_AT_ANNOTATION: _optional_time(state.last_notified),
    }


def _read_time(annotations: Mapping[str, str], key: str) -> datetime | None:
    value = annotations.get(key)
    return None if value is None else parse_time(value, key)


def _read_revision(annotations: Mapping[str, str], key: str) -> int | None:
    value = annotations.get(key)
    if value is None:
        return None
    number = numbers.whole_number(value, least=1)
    if number is None:
        msg = f"{key}: {value!r} is not a revision number"
        raise InvalidConfig(msg)
    return number


def rotation_from_annotations(annotations: Mapping[str, str]) -> RotationState | None:
    """The persisted state, None when there is none; InvalidConfig naming a malformed key."""
    next_rotation = _read_time(annotations, NEXT_ROTATION_ANNOTATION)
    if next_rotation is None:
        return None
    policy = annotations.get(ROTATION_POLICY_ANNOTATION)
    anchor = _read_time(annotations, ROTATION_ANCHOR_ANNOTATION)
    told = _read_revision(annotations, ROTATION_NOTIFIED_REVISION_ANNOTATION)
    told_at = _read_time(annotations, ROTATION_NOTIFIED_AT_ANNOTATION)
    if policy is None or anchor is None or (told is None) != (told_at is None):
        msg = (
            "the rotation state annotations are incomplete: "
            f"{', '.join(ROTATION_STATE_ANNOTATIONS)} are written together "
            "(the notified pair may be absent)"
        )
        raise InvalidConfig(msg)
    try:
        canonical = parse_rotate_policy(policy)
    except InvalidConfig as err:
        msg = f"{ROTATION_POLICY_ANNOTATION}: {policy!r} is not a rotation policy"
        raise InvalidConfig(msg) from err
    return RotationState(canonical.name, anchor, next_rotation, told, told_at)


def expiry_to_annotations(expiry: RevisionExpiry | None) -> dict[str, str | None]:
    """A revision's expiry state as annotations for its snapshot; None values remove a key."""
    if expiry is None:
        return dict.fromkeys(EXPIRY_STATE_ANNOTATIONS)
    return {
        REVISION_EXPIRES_ANNOTATION: format_time(expiry.expires),
        REVISION_EXPIRY_NOTIFIED_AT_ANNOTATION: _optional_time(expiry.last_notified),
    }


def expiry_from_annotations(revision: int, annotations: Mapping[str, str]) -> RevisionExpiry | None:
    """A revision's expiry state from its snapshot's annotations; None when it never expires."""
    expires = _read_time(annotations, REVISION_EXPIRES_ANNOTATION)
    if expires is None:
        return None
    return RevisionExpiry(
        revision, expires, _read_time(annotations, REVISION_EXPIRY_NOTIFIED_AT_ANNOTATION)
    )


# --- one scheduler for every object ------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


class Agenda(Generic[K]):
    """One timer wheel for all objects: each key has at most one due time.

    The controller's single scheduler sets `wake_at` of every decision here, sleeps until
    `next_wake()` (or until something changes), and plans again for `pop_due(now)`. No clock,
    no I/O, no threads: the caller owns time. Not thread-safe; use it from one event loop.
    A heap with lazy deletion keeps `set` and `next_wake` at O(log n).
    """

    def __init__(self) -> None:
        self._when: dict[K, tuple[datetime, int]] = {}
        self._heap: list[tuple[datetime, int, K]] = []
        self._counter = itertools.count()

    def __repr__(self) -> str:
        return f"Agenda({len(self)} keys, next wake {self.next_wake()})"

    def set(self, key: K, when: datetime | None) -> None:
        """Make `key` due at `when` (replacing an earlier time); None drops it."""
        if when is None:
            self.drop(key)
            return
        when = require_utc(when, "when")
        current = self._when.get(key)
        if current is not None and current[0] == when:
            return
        entry = (when, next(self._counter))
        self._when[key] = entry
        heapq.heappush(self._heap, (*entry, key))
        if len(self._heap) > 2 * len(self._when) + 64:
            self._heap = [(w, s, k) for k, (w, s) in self._when.items()]
            heapq.heapify(self._heap)

    def drop(self, key: K) -> None:
        """Forget `key` (no error when absent)."""
        self._when.pop(key, None)

    def when(self, key: K) -> datetime | None:
        entry = self._when.get(key)
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._when)

    def __contains__(self, key: object) -> bool:
        return key in self._when

    def next_wake(self) -> datetime | None:
        """The earliest due time, None when nothing is scheduled."""
        while self._heap:
            when, seq, key = self._heap[0]
            if self._when.get(key) == (when, seq):
                return when
            heapq.heappop(self._heap)
        return None

    def due(self, now: datetime) -> list[K]:
        """The keys due at `now` (time not after `now`), earliest first; nothing is removed."""
        now = require_utc(now, "now")
        entries = [(entry, key) for key, entry in self._when.items() if entry[0] <= now]
        entries.sort(key=lambda item: item[0])
        return [key for _, key in entries]

    def pop_due(self, now: datetime) -> list[K]:
        """`due(now)`, removed from the agenda: the caller sets them again after planning."""
        keys = self.due(now)
        for key in keys:
            self.drop(key)
        return keys
