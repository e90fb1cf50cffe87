"""Rotation and expiry times: policies, plans, persisted state and the single agenda."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp_operator.domain import reasons, schedule
from webapp_operator.domain.errors import InvalidConfig
from webapp_operator.domain.schedule import (
    Agenda,
    ExpirePolicy,
    LatestRevision,
    RevisionExpiry,
    RotatePolicy,
    RotationState,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def t(text: str) -> datetime:
    """`2025-01-31T10:00` (or with seconds) as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rev(number: int, created: str, expires: str | None = None) -> LatestRevision:
    return LatestRevision(number, t(created), None if expires is None else t(expires))


HOURLY = schedule.parse_rotate_policy("hourly")
DAILY = schedule.parse_rotate_policy("daily")
MONTHLY = schedule.parse_rotate_policy("monthly")


# --- policies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "after"),
    [
        pytest.param("hourly", "hourly", "2025-01-31T11:00", id="hourly"),
        pytest.param("daily", "daily", "2025-02-01T10:00", id="daily"),
        pytest.param("weekly", "weekly", "2025-02-07T10:00", id="weekly"),
        pytest.param("monthly", "monthly", "2025-02-28T10:00", id="monthly-clamps-jan-31"),
        pytest.param("quarterly", "quarterly", "2025-04-30T10:00", id="quarterly-clamps"),
        pytest.param("yearly", "yearly", "2026-01-31T10:00", id="yearly"),
        pytest.param("90s", "1m30s", "2025-01-31T10:01:30", id="duration-90s"),
        pytest.param("15m", "15m", "2025-01-31T10:15", id="duration-15m"),
        pytest.param("12h", "12h", "2025-01-31T22:00", id="duration-12h"),
        pytest.param("7d", "7d", "2025-02-07T10:00", id="duration-7d"),
        pytest.param("2w", "14d", "2025-02-14T10:00", id="duration-weeks"),
        pytest.param("1h30m", "1h30m", "2025-01-31T11:30", id="duration-compound"),
        pytest.param("1d2h3m4s", "1d2h3m4s", "2025-02-01T12:03:04", id="duration-all-units"),
        pytest.param("1m", "1m", "2025-01-31T10:01", id="duration-minimum"),
        pytest.param("60m", "1h", "2025-01-31T11:00", id="duration-canonical"),
        pytest.param(" Daily ", "daily", "2025-02-01T10:00", id="case-and-space-tolerated"),
    ],
)
def test_rotate_policies(value: str, name: str, after: str) -> None:
    policy = schedule.parse_rotate_policy(value)
    assert str(policy) == name
    assert policy.next_after(t("2025-01-31T10:00")) == t(after)


def test_never_has_no_next_rotation() -> None:
    policy = schedule.parse_rotate_policy("never")
    assert policy.is_never
    assert policy.next_after(t("2025-01-31T10:00")) is None
    with pytest.raises(ValueError, match="never"):
        policy.at(t("2025-01-31T10:00"), 1)


@pytest.mark.parametrize(
    ("value", "start", "after"),
    [
        pytest.param("monthly", "2024-01-31T00:00", "2024-02-29T00:00", id="leap-february"),
        pytest.param("monthly", "2025-03-31T00:00", "2025-04-30T00:00", id="april-has-30"),
        pytest.param("monthly", "2025-12-15T08:00", "2026-01-15T08:00", id="over-new-year"),
        pytest.param("quarterly", "2025-11-30T00:00", "2026-02-28T00:00", id="quarter-over-year"),
        pytest.param("yearly", "2024-02-29T00:00", "2025-02-28T00:00", id="leap-day-yearly"),
    ],
)
def test_calendar_policies_clamp_the_day(value: str, start: str, after: str) -> None:
    assert schedule.parse_rotate_policy(value).next_after(t(start)) == t(after)


def test_monthly_grid_keeps_the_month_end() -> None:
    anchor = t("2025-01-31T09:00")
    grid = [MONTHLY.at(anchor, k) for k in range(1, 6)]
    assert [d.date().isoformat() for d in grid] == [
        "2025-02-28",
        "2025-03-31",
        "2025-04-30",
        "2025-05-31",
        "2025-06-30",
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("", "is not a rotation policy", id="empty"),
        pytest.param("sometimes", "is not a rotation policy", id="unknown-word"),
        pytest.param("0s", "at least 1m", id="zero"),
        pytest.param("0h0m", "at least 1m", id="zero-compound"),
        pytest.param("30s", "at least 1m", id="below-granularity"),
        pytest.param("-5m", "is not a rotation policy", id="negative"),
        pytest.param("1.5h", "is not a rotation policy", id="fraction"),
        pytest.param("m", "is not a rotation policy", id="unit-without-number"),
        pytest.param("30", "is not a rotation policy", id="number-without-unit"),
        pytest.param("30m1h", "is not a rotation policy", id="units-out-of-order"),
        pytest.param("1h 30m", "is not a rotation policy", id="inner-space"),
        pytest.param("1y", "is not a rotation policy", id="unknown-unit"),
        pytest.param("40000d", "is not a rotation policy", id="beyond-100-years"),
        pytest.param("9" * 5000 + "s", "is not a rotation policy", id="absurd-number"),
    ],
)
def test_rotate_policy_rejects_with_the_accepted_forms(value: str, fragment: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        schedule.parse_rotate_policy(value)
    message = caught.value.message
    assert caught.value.reason == reasons.INVALID_CONFIG
    assert message.startswith("twelvefactor.dev/rotate: ")
    assert fragment in message
    assert "never, hourly, daily, weekly, monthly, quarterly, yearly" in message
    assert "1h30m" in message


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        pytest.param("90s", 90, "1m30s", id="seconds"),
        pytest.param("1w", 7 * 86400, "7d", id="week"),
        pytest.param("1h0m", 3600, "1h", id="zero-part"),
        pytest.param("25h", 90000, "1d1h", id="hours-to-days"),
    ],
)
def test_durations(text: str, seconds: int, canonical: str) -> None:
    value = schedule.parse_duration(text)
    assert value == timedelta(seconds=seconds)
    assert schedule.format_duration(value) == canonical


def test_parse_duration_rejects() -> None:
    with pytest.raises(InvalidConfig, match="largest first"):
        schedule.parse_duration("5m1h")


# --- expiry policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical", "created", "expires"),
    [
        pytest.param(
            "2025-06-30T00:00:00Z",
            "2025-06-30T00:00:00Z",
            "2025-01-01T00:00",
            "2025-06-30T00:00",
            id="rfc3339-utc",
        ),
        pytest.param(
            "2025-06-30T02:00:00+02:00",
            "2025-06-30T00:00:00Z",
            "2025-05-01T00:00",
            "2025-06-30T00:00",
            id="rfc3339-offset-to-utc",
        ),
        pytest.param(
            "2025-06-30t00:00:00.987z",
            "2025-06-30T00:00:00Z",
            "2025-05-01T00:00",
            "2025-06-30T00:00",
            id="rfc3339-lower-case-fraction-dropped",
        ),
        pytest.param(
            "2020-01-01T00:00:00Z",
            "2020-01-01T00:00:00Z",
            "2025-05-01T00:00",
            "2020-01-01T00:00",
            id="rfc3339-past-applies-as-written",
        ),
        pytest.param("30d", "30d", "2025-01-01T10:00", "2025-01-31T10:00", id="duration-days"),
        pytest.param("90s", "1m30s", "2025-01-01T10:00", "2025-01-01T10:01:30", id="duration-s"),
        pytest.param(
            " 1h30m ", "1h30m", "2025-01-01T10:00", "2025-01-01T11:30", id="duration-compound"
        ),
    ],
)
def test_expire_policies(value: str, canonical: str, created: str, expires: str) -> None:
    policy = schedule.parse_expire(value)
    assert str(policy) == canonical
    assert policy.expiry_for(t(created)) == t(expires)


def test_absolute_expiry_is_the_same_for_every_revision() -> None:
    policy = schedule.parse_expire("2025-06-30T00:00:00Z")
    assert policy.expiry_for(t("2025-01-01T00:00")) == policy.expiry_for(t("2025-03-01T00:00"))


def test_duration_expiry_counts_from_each_revision() -> None:
    policy = schedule.parse_expire("1d")
    first = policy.expiry_for(t("2025-01-01T00:00"))
    second = policy.expiry_for(t("2025-01-05T12:00"))
    assert second - first == timedelta(days=4, hours=12)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("", "is not an expiry", id="empty"),
        pytest.param("2025-06-30", "is not an expiry", id="date-only"),
        pytest.param("2025-06-30T00:00:00", "is not an expiry", id="no-offset"),
        pytest.param("2025-06-30 00:00:00Z", "is not an expiry", id="space-separator"),
        pytest.param("2025-13-01T00:00:00Z", "is not an expiry", id="month-13"),
        pytest.param("2025-06-30T24:00:00Z", "is not an expiry", id="hour-24"),
        pytest.param("tomorrow", "is not an expiry", id="word"),
        pytest.param("never", "is not an expiry", id="never-is-no-annotation"),
        pytest.param("0s", "too short", id="zero"),
        pytest.param("30s", "too short", id="below-a-minute"),
    ],
)
def test_expire_rejects_with_the_accepted_forms(value: str, fragment: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        schedule.parse_expire(value)
    message = caught.value.message
    assert message.startswith("twelvefactor.dev/expire: ")
    assert fragment in message
    assert "RFC 3339" in message
    assert "counted from each revision's creation" in message


def test_expire_policy_needs_exactly_one_form() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ExpirePolicy()
    with pytest.raises(ValueError, match="exactly one"):
        ExpirePolicy(at=t("2025-01-01T00:00"), after=DAY)


# --- rotation ----------------------------------------------------------------------------------


def test_first_rotation_is_one_period_after_creation() -> None:
    latest = rev(1, "2025-01-31T10:00:07")
    decision = schedule.plan_rotation(HOURLY, None, latest, t("2025-01-31T10:00:09"))
    assert decision.state == RotationState("hourly", latest.created, t("2025-01-31T11:00:07"))
    assert not decision.notify
    assert decision.due_since is None
    # Minute granularity: due at the start of the minute, so one wake serves that whole minute.
    assert decision.wake_at == t("2025-01-31T11:00")


def test_a_policy_set_on_an_old_secret_counts_from_now() -> None:
    now = t("2025-03-01T08:30:15.5")
    decision = schedule.plan_rotation(DAILY, None, rev(4, "2024-06-01T00:00"), now)
    assert decision.state == RotationState(
        "daily", t("2025-03-01T08:30:15"), t("2025-03-02T08:30:15")
    )
    assert not decision.notify


def test_never_keeps_no_state() -> None:
    state = RotationState("hourly", t("2025-01-31T10:00"), t("2025-01-31T11:00"))
    decision = schedule.plan_rotation(
        schedule.NEVER, state, rev(1, "2025-01-31T10:00"), t("2025-01-31T12:00")
    )
    assert decision == schedule.RotationDecision(notify=False, state=None, wake_at=None)


SCHEDULED = RotationState("hourly", t("2025-01-31T10:00"), t("2025-01-31T11:00"))
TOLD = RotationState(
    "hourly", t("2025-01-31T10:00"), t("2025-01-31T11:00"), 1, t("2025-01-31T11:00")
)


@pytest.mark.parametrize(
    ("state", "latest", "now", "notify", "next_rotation", "wake_at"),
    [
        pytest.param(SCHEDULED, rev(1, "2025-01-31T10:00"), "2025-01-31T10:59:59", False,
                     "2025-01-31T11:00", "2025-01-31T11:00", id="not-yet-due"),
        pytest.param(SCHEDULED, rev(1, "2025-01-31T10:00"), "2025-01-31T11:00", True,
                     "2025-01-31T11:00", "2025-01-31T11:05", id="due-notifies"),
        pytest.param(SCHEDULED, rev(1, "2025-01-31T10:00"), "2025-01-31T11:37:12", True,
                     "2025-01-31T11:00", "2025-01-31T11:40", id="late-check-repeats-on-the-grid"),
        pytest.param(TOLD, rev(1, "2025-01-31T10:00"), "2025-01-31T11:04:59", False,
                     "2025-01-31T11:00", "2025-01-31T11:05", id="told-waits-5-minutes"),
        pytest.param(TOLD, rev(1, "2025-01-31T10:00"), "2025-01-31T11:05", True,
                     "2025-01-31T11:00", "2025-01-31T11:10", id="repeats-after-5-minutes"),
        pytest.param(TOLD, rev(1, "2025-01-31T10:00"), "2025-01-31T13:02", True,
                     "2025-01-31T11:00", "2025-01-31T13:05", id="hours-late-one-notice-no-burst"),
        pytest.param(TOLD, rev(2, "2025-01-31T11:03"), "2025-01-31T11:03:30", False,
                     "2025-01-31T12:00", "2025-01-31T12:00", id="answered-from-scheduled-not-now"),
        pytest.param(TOLD, rev(2, "2025-01-31T13:10"), "2025-01-31T13:10", False,
                     "2025-01-31T14:00", "2025-01-31T14:00", id="slow-answer-skips-covered-times"),
        pytest.param(SCHEDULED, rev(2, "2025-01-31T11:20"), "2025-01-31T11:30", False,
                     "2025-01-31T12:00", "2025-01-31T12:00", id="unnotified-revision-after-due"),
        pytest.param(SCHEDULED, rev(2, "2025-01-31T10:50"), "2025-01-31T11:00", True,
                     "2025-01-31T11:00", "2025-01-31T11:05", id="revision-before-due-no-rotation"),
    ],
)  # fmt: skip
def test_plan_rotation(
    state: RotationState,
    latest: LatestRevision,
    now: str,
    notify: bool,
    next_rotation: str,
    wake_at: str,
) -> None:
    decision = schedule.plan_rotation(HOURLY, state, latest, t(now))
    assert decision.notify is notify
    assert decision.state is not None
    assert decision.state.next_rotation == t(next_rotation)
    assert decision.wake_at == t(wake_at)
    if notify:
        assert decision.state.notified_revision == latest.number
        assert decision.state.last_notified == t(now).replace(microsecond=0)
        assert decision.due_since == t("2025-01-31T11:00")
    if decision.state.next_rotation != state.next_rotation:
        # A rotation is done: nothing is outstanding, nobody was told about the next one.
        assert decision.due_since is None
        assert decision.state.notified_revision is None
        assert decision.state.anchor == state.anchor


def test_a_late_check_does_not_drift_the_schedule() -> None:
    """Told at 11:00:30, answered at 11:02: the next rotation is 12:00, not 12:02 or 12:00:30."""
    latest = rev(1, "2025-01-31T10:00")
    told = schedule.plan_rotation(HOURLY, SCHEDULED, latest, t("2025-01-31T11:00:30"))
    assert told.notify
    answered = schedule.plan_rotation(
        HOURLY, told.state, rev(2, "2025-01-31T11:02"), t("2025-01-31T11:02:10")
    )
    assert answered.state == RotationState("hourly", t("2025-01-31T10:00"), t("2025-01-31T12:00"))


def test_notices_repeat_every_5_minutes_until_a_new_revision() -> None:
    state: RotationState | None = SCHEDULED
    latest = rev(1, "2025-01-31T10:00")
    told_at = []
    now = t("2025-01-31T10:58")
    while now < t("2025-01-31T11:23"):
        decision = schedule.plan_rotation(HOURLY, state, latest, now)
        if decision.notify:
            told_at.append(now.strftime("%H:%M:%S"))
        state = decision.state
        now += timedelta(seconds=70)
    assert told_at == ["11:00:20", "11:05:00", "11:10:50", "11:15:30", "11:20:10"]
    answered = schedule.plan_rotation(HOURLY, state, rev(2, "2025-01-31T11:23"), now)
    assert not answered.notify
    assert answered.due_since is None


def test_a_restart_tells_nobody_twice_and_changes_nothing() -> None:
    now = t("2025-01-31T11:02")
    first = schedule.plan_rotation(HOURLY, SCHEDULED, rev(1, "2025-01-31T10:00"), now)
    persisted = schedule.rotation_from_annotations(
        {k: v for k, v in schedule.rotation_to_annotations(first.state).items() if v is not None}
    )
    again = schedule.plan_rotation(HOURLY, persisted, rev(1, "2025-01-31T10:00"), now + MIN)
    assert first.notify
    assert not again.notify
    assert again.state == first.state
    assert again.wake_at == first.wake_at


def test_rotation_comes_early_when_the_latest_revision_expires_first() -> None:
    state = RotationState("daily", t("2025-01-31T00:00"), t("2025-02-01T00:00"))
    latest = rev(3, "2025-01-31T00:00", expires="2025-01-31T12:00:30")
    before = schedule.plan_rotation(DAILY, state, latest, t("2025-01-31T11:00"))
    assert before.wake_at == t("2025-01-31T11:55")
    due = schedule.plan_rotation(DAILY, state, latest, t("2025-01-31T11:55"))
    assert due.notify
    assert due.early
    assert due.due_since == t("2025-01-31T11:55")
    assert due.wake_at == t("2025-01-31T12:00")
    # Answered early: the early rotation replaces the scheduled one; count on from the answer.
    answered = schedule.plan_rotation(
        DAILY,
        due.state,
        rev(4, "2025-01-31T11:58:20", expires="2025-02-05T00:00"),
        t("2025-01-31T11:59"),
    )
    assert answered.state == RotationState(
        "daily", t("2025-01-31T11:58:20"), t("2025-02-01T11:58:20")
    )
    assert not answered.notify


def test_monthly_with_30_day_expiry_as_in_the_docs() -> None:
    """docs/secrets-schedule.md, "Example: early rotation because of expiry"."""
    expire = schedule.parse_expire("30d")

    def latest(number: int, created: str) -> LatestRevision:
        return LatestRevision(number, t(created), expire.expiry_for(t(created)))

    first = schedule.plan_rotation(
        MONTHLY, None, latest(1, "2025-01-31T09:00"), t("2025-01-31T09:00")
    )
    assert first.wake_at == t("2025-02-28T09:00")
    due = schedule.plan_rotation(
        MONTHLY, first.state, latest(1, "2025-01-31T09:00"), t("2025-02-28T09:00")
    )
    assert due.notify
    assert not due.early
    second = schedule.plan_rotation(
        MONTHLY, due.state, latest(2, "2025-02-28T09:10"), t("2025-02-28T09:10")
    )
    assert second.state is not None
    assert second.state.next_rotation == t("2025-03-31T09:00")
    assert second.wake_at == t("2025-03-30T09:05")
    early = schedule.plan_rotation(
        MONTHLY, second.state, latest(2, "2025-02-28T09:10"), t("2025-03-30T09:05")
    )
    assert early.notify
    assert early.early
    third = schedule.plan_rotation(
        MONTHLY, early.state, latest(3, "2025-03-30T09:07"), t("2025-03-30T09:07")
    )
    assert third.state == RotationState("monthly", t("2025-03-30T09:07"), t("2025-04-30T09:07"))
    assert third.wake_at == t("2025-04-29T09:02")


@pytest.mark.parametrize(
    ("expires", "due_since", "early"),
    [
        pytest.param("2025-02-01T00:03", "2025-01-31T23:58", True, id="expires-just-after"),
        pytest.param("2025-02-01T00:05", "2025-02-01T00:00", False, id="expires-5-minutes-after"),
        pytest.param("2025-03-01T00:00", "2025-02-01T00:00", False, id="expires-much-later"),
        pytest.param(None, "2025-02-01T00:00", False, id="never-expires"),
        pytest.param("2025-01-30T00:00", "2025-01-29T23:55", True, id="already-expired"),
    ],
)
def test_early_rotation_only_when_expiry_comes_first(
    expires: str | None, due_since: str, early: bool
) -> None:
    state = RotationState("daily", t("2025-01-31T00:00"), t("2025-02-01T00:00"))
    latest = rev(3, "2025-01-29T00:00", expires)
    decision = schedule.plan_rotation(DAILY, state, latest, t("2025-02-01T00:01"))
    assert decision.notify
    assert decision.due_since == t(due_since)
    assert decision.early is early


def test_a_policy_change_takes_effect_after_the_scheduled_rotation() -> None:
    state = RotationState("daily", t("2025-01-31T09:00"), t("2025-02-01T09:00"))
    latest = rev(1, "2025-01-31T09:00")
    changed = schedule.plan_rotation(HOURLY, state, latest, t("2025-01-31T12:00"))
    assert changed.state == state  # still daily's rotation, still the old policy's name
    assert changed.wake_at == t("2025-02-01T09:00")
    due = schedule.plan_rotation(HOURLY, changed.state, latest, t("2025-02-01T09:00"))
    assert due.notify
    answered = schedule.plan_rotation(
        HOURLY, due.state, rev(2, "2025-02-01T09:01"), t("2025-02-01T09:02")
    )
    assert answered.state == RotationState("hourly", t("2025-02-01T09:00"), t("2025-02-01T10:00"))


def test_switching_off_and_on_restarts_the_schedule_from_now() -> None:
    state = RotationState("yearly", t("2025-01-01T00:00"), t("2026-01-01T00:00"))
    latest = rev(1, "2025-01-01T00:00")
    off = schedule.plan_rotation(schedule.NEVER, state, latest, t("2025-03-01T00:00"))
    assert off.state is None
    on = schedule.plan_rotation(HOURLY, off.state, latest, t("2025-03-01T00:00:30"))
    assert on.state == RotationState("hourly", t("2025-03-01T00:00:30"), t("2025-03-01T01:00:30"))


def test_monthly_rotations_follow_the_month_end() -> None:
    latest = rev(1, "2025-01-31T09:00")
    decision = schedule.plan_rotation(MONTHLY, None, latest, t("2025-01-31T09:00"))
    seen = []
    number = 1
    for _ in range(4):
        assert decision.state is not None
        due = decision.state.next_rotation
        seen.append(due.date().isoformat())
        decision = schedule.plan_rotation(MONTHLY, decision.state, latest, due)
        assert decision.notify
        number += 1
        latest = LatestRevision(number, due + 2 * HOUR)
        decision = schedule.plan_rotation(MONTHLY, decision.state, latest, due + 2 * HOUR)
    assert seen == ["2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31"]


def test_a_simulated_day_with_a_prompt_owner_keeps_every_rotation_on_the_hour() -> None:
    """The controller's loop: plan, persist, sleep until wake_at; the owner answers in 2 minutes."""
    latest = rev(1, "2025-01-31T00:00")
    state: RotationState | None = None
    now = t("2025-01-31T00:00:05")
    notices = []
    while now < t("2025-02-01T00:00"):
        decision = schedule.plan_rotation(HOURLY, state, latest, now)
        state = decision.state
        if decision.notify:
            notices.append(now)
            latest = LatestRevision(latest.number + 1, now + 2 * MIN)
            now += 2 * MIN
        else:
            assert decision.wake_at is not None
            now = decision.wake_at
    assert notices == [t("2025-01-31T00:00") + k * HOUR for k in range(1, 24)]


def test_plan_rotation_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.plan_rotation(HOURLY, None, rev(1, "2025-01-31T10:00"), datetime(2025, 1, 31))
    with pytest.raises(ValueError, match="timezone-aware"):
        LatestRevision(1, datetime(2025, 1, 31))


def test_other_time_zones_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    latest = LatestRevision(1, datetime(2025, 1, 31, 11, 0, tzinfo=paris))
    assert latest.created == t("2025-01-31T10:00")


def test_rotation_state_needs_both_notified_fields() -> None:
    with pytest.raises(ValueError, match="together"):
        RotationState("hourly", t("2025-01-31T10:00"), t("2025-01-31T11:00"), notified_revision=1)


# --- expiry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "now", "notify", "expired", "wake_at"),
    [
        pytest.param(RevisionExpiry(2, t("2025-01-31T10:05:30")), "2025-01-31T10:04:59",
                     False, False, "2025-01-31T10:05", id="not-yet"),
        pytest.param(RevisionExpiry(2, t("2025-01-31T10:05:30")), "2025-01-31T10:05",
                     True, True, "2025-01-31T10:10", id="minute-granularity"),
        pytest.param(RevisionExpiry(2, t("2025-01-31T10:05"), t("2025-01-31T10:05")),
                     "2025-01-31T10:09:59", False, True, "2025-01-31T10:10", id="told-waits"),
        pytest.param(RevisionExpiry(2, t("2025-01-31T10:05"), t("2025-01-31T10:05")),
                     "2025-01-31T10:10", True, True, "2025-01-31T10:15", id="repeats-5-minutes"),
        pytest.param(RevisionExpiry(2, t("2025-01-31T10:05"), t("2025-01-31T10:05")),
                     "2025-01-31T18:07", True, True, "2025-01-31T18:10", id="hours-late-no-burst"),
    ],
)  # fmt: skip
def test_plan_expiry(
    expiry: RevisionExpiry, now: str, notify: bool, expired: bool, wake_at: str
) -> None:
    decision = schedule.plan_expiry([expiry], t(now))
    assert decision.notify == ((2,) if notify else ())
    assert decision.expired == ((2,) if expired else ())
    assert decision.wake_at == t(wake_at)
    (updated,) = decision.revisions
    assert updated.last_notified == (t(now) if notify else expiry.last_notified)


def test_expiry_repeats_until_the_revision_is_removed() -> None:
    revisions = [RevisionExpiry(1, t("2025-01-31T10:00")), RevisionExpiry(2, t("2025-02-28T10:00"))]
    now = t("2025-01-31T09:59")
    told: list[tuple[str, int]] = []
    for _ in range(25):
        decision = schedule.plan_expiry(revisions, now)
        told.extend((now.strftime("%H:%M"), n) for n in decision.notify)
        revisions = list(decision.revisions)
        now += MIN
    assert told == [("10:00", 1), ("10:05", 1), ("10:10", 1), ("10:15", 1), ("10:20", 1)]
    # Revision 1 removed (obsolete and pruned): no more notices, wake for revision 2.
    remaining = schedule.plan_expiry(revisions[1:], now)
    assert remaining.notify == ()
    assert remaining.wake_at == t("2025-02-28T10:00")


def test_plan_expiry_with_nothing_to_expire() -> None:
    decision = schedule.plan_expiry([], t("2025-01-31T10:00"))
    assert decision == schedule.ExpiryDecision((), (), (), None)


def test_plan_expiry_rejects_duplicate_revisions() -> None:
    same = RevisionExpiry(1, t("2025-01-31T10:00"))
    with pytest.raises(ValueError, match="distinct"):
        schedule.plan_expiry([same, same], t("2025-01-31T10:00"))


@pytest.mark.parametrize(
    ("policy", "recorded", "expected"),
    [
        pytest.param(None, None, None, id="no-policy"),
        pytest.param(None, RevisionExpiry(3, t("2025-02-01T00:00")), None, id="policy-removed"),
        pytest.param(
            "2025-06-30T00:00:00Z", None, RevisionExpiry(3, t("2025-06-30T00:00")), id="absolute"
        ),
        pytest.param("1d", None, RevisionExpiry(3, t("2025-01-02T08:00")), id="duration"),
        pytest.param(
            "1d",
            RevisionExpiry(3, t("2025-01-02T08:00"), t("2025-01-02T08:00")),
            RevisionExpiry(3, t("2025-01-02T08:00"), t("2025-01-02T08:00")),
            id="unchanged-keeps-notice",
        ),
        pytest.param(
            "2d",
            RevisionExpiry(3, t("2025-01-02T08:00"), t("2025-01-02T08:00")),
            RevisionExpiry(3, t("2025-01-03T08:00")),
            id="changed-starts-afresh",
        ),
    ],
)
def test_latest_revision_expiry_follows_the_annotation(
    policy: str | None, recorded: RevisionExpiry | None, expected: RevisionExpiry | None
) -> None:
    parsed = None if policy is None else schedule.parse_expire(policy)
    result = schedule.latest_revision_expiry(parsed, 3, t("2025-01-01T08:00"), recorded)
    assert result == expected


def test_latest_revision_expiry_checks_the_revision() -> None:
    with pytest.raises(ValueError, match="revision 2"):
        schedule.latest_revision_expiry(
            None, 3, t("2025-01-01T08:00"), RevisionExpiry(2, t("2025-01-02T08:00"))
        )


# --- persisted state ---------------------------------------------------------------------------


def test_rotation_annotations() -> None:
    state = RotationState(
        "1h30m", t("2025-01-31T10:00"), t("2025-01-31T11:30"), 4, t("2025-01-31T11:30:05.9")
    )
    annotations = schedule.rotation_to_annotations(state)
    assert annotations == {
        "twelvefactor.dev/rotation-policy": "1h30m",
        "twelvefactor.dev/rotation-anchor": "2025-01-31T10:00:00Z",
        "twelvefactor.dev/next-rotation": "2025-01-31T11:30:00Z",
        "twelvefactor.dev/rotation-notified-revision": "4",
        "twelvefactor.dev/rotation-notified-at": "2025-01-31T11:30:05Z",
    }
    stored = {k: v for k, v in annotations.items() if v is not None}
    assert schedule.rotation_from_annotations(stored) == state


def test_no_rotation_removes_every_state_annotation() -> None:
    assert schedule.rotation_to_annotations(None) == dict.fromkeys(
        schedule.ROTATION_STATE_ANNOTATIONS
    )
    assert schedule.rotation_from_annotations({"other": "x"}) is None


NEXT = "twelvefactor.dev/next-rotation"
GOOD = {
    "twelvefactor.dev/rotation-policy": "hourly",
    "twelvefactor.dev/rotation-anchor": "2025-01-31T10:00:00Z",
    NEXT: "2025-01-31T11:00:00Z",
}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({NEXT: "soon"}, NEXT, id="bad-time"),
        pytest.param({NEXT: "2025-01-31T11:00:00"}, NEXT, id="time-without-offset"),
        pytest.param({"twelvefactor.dev/rotation-policy": "often"}, "rotation-policy", id="policy"),
        pytest.param({"twelvefactor.dev/rotation-anchor": None}, "incomplete", id="no-anchor"),
        pytest.param(
            {"twelvefactor.dev/rotation-notified-revision": "2"}, "incomplete", id="half-notified"
        ),
        pytest.param(
            {
                "twelvefactor.dev/rotation-notified-revision": "x",
                "twelvefactor.dev/rotation-notified-at": "2025-01-31T11:00:00Z",
            },
            "not a revision number",
            id="bad-revision",
        ),
    ],
)
def test_malformed_rotation_annotations_are_named(
    changes: dict[str, str | None], fragment: str
) -> None:
    merged = {**GOOD, **changes}
    annotations = {k: v for k, v in merged.items() if v is not None}
    with pytest.raises(InvalidConfig, match=re.escape(fragment)):
        schedule.rotation_from_annotations(annotations)


def test_expiry_annotations() -> None:
    expiry = RevisionExpiry(7, t("2025-06-30T00:00"), t("2025-06-30T00:05"))
    annotations = schedule.expiry_to_annotations(expiry)
    assert annotations == {
        "twelvefactor.dev/revision-expires": "2025-06-30T00:00:00Z",
        "twelvefactor.dev/revision-expiry-notified-at": "2025-06-30T00:05:00Z",
    }
    stored = {k: v for k, v in annotations.items() if v is not None}
    assert schedule.expiry_from_annotations(7, stored) == expiry
    assert schedule.expiry_to_annotations(None) == dict.fromkeys(schedule.EXPIRY_STATE_ANNOTATIONS)
    assert schedule.expiry_from_annotations(7, {}) is None


def test_format_time_pads_and_uses_z() -> None:
    assert (
        schedule.format_time(datetime(5, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == "0005-01-02T03:04:05Z"
    )


# --- the agenda --------------------------------------------------------------------------------


def test_agenda_orders_due_keys_and_wakes_for_the_earliest() -> None:
    agenda: Agenda[str] = Agenda()
    assert agenda.next_wake() is None
    agenda.set("b", t("2025-01-31T10:05"))
    agenda.set("a", t("2025-01-31T10:00"))
    agenda.set("c", t("2025-01-31T11:00"))
    assert agenda.next_wake() == t("2025-01-31T10:00")
    assert agenda.due(t("2025-01-31T09:59")) == []
    assert agenda.due(t("2025-01-31T10:05")) == ["a", "b"]
    assert len(agenda) == 3  # due() removes nothing
    assert agenda.pop_due(t("2025-01-31T10:05")) == ["a", "b"]
    assert agenda.next_wake() == t("2025-01-31T11:00")
    assert "a" not in agenda
    assert "c" in agenda


def test_agenda_set_replaces_and_none_drops() -> None:
    agenda: Agenda[tuple[str, str]] = Agenda()
    key = ("demo", "credentials")
    agenda.set(key, t("2025-01-31T10:00"))
    agenda.set(key, t("2025-01-31T12:00"))
    assert agenda.when(key) == t("2025-01-31T12:00")
    assert agenda.next_wake() == t("2025-01-31T12:00")
    assert agenda.due(t("2025-01-31T11:00")) == []
    agenda.set(key, None)
    assert agenda.next_wake() is None
    assert agenda.when(key) is None
    agenda.drop(key)  # dropping an absent key is fine


def test_agenda_rejects_naive_times() -> None:
    agenda: Agenda[str] = Agenda()
    with pytest.raises(ValueError, match="timezone-aware"):
        agenda.set("a", datetime(2025, 1, 31))


def test_agenda_stays_small_under_many_resets() -> None:
    agenda: Agenda[int] = Agenda()
    base = t("2025-01-31T10:00")
    for i in range(10_000):
        agenda.set(i % 10, base + timedelta(seconds=i))
    assert len(agenda) == 10
    assert len(agenda._heap) <= 2 * 10 + 64 + 1
    assert agenda.next_wake() == base + timedelta(seconds=9990)


# --- properties --------------------------------------------------------------------------------

times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
).map(lambda d: d.replace(microsecond=0))
policies = st.sampled_from(
    ["hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "1m", "90s", "7h13m", "45d"]
).map(schedule.parse_rotate_policy)
gaps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)).map(
    lambda d: timedelta(seconds=int(d.total_seconds()))
)


@given(policies, times, st.integers(min_value=0, max_value=30), gaps)
def test_the_next_rotation_is_strictly_after_the_scheduled_one(
    policy: RotatePolicy, anchor: datetime, k: int, answer_delay: timedelta
) -> None:
    scheduled = policy.at(anchor, k) if k else policy.at(anchor, 1)
    state = RotationState(policy.name, anchor, scheduled, 1, scheduled)
    answered_at = scheduled + answer_delay
    decision = schedule.plan_rotation(policy, state, LatestRevision(2, answered_at), answered_at)
    assert decision.state is not None
    nxt = decision.state.next_rotation
    assert nxt > scheduled
    assert nxt.replace(second=0) > answered_at  # the answer covers every time it could
    # No drift: the next rotation is on the grid counted from the anchor.
    if policy.months:
        assert any(policy.at(anchor, j) == nxt for j in range(1, k + 40))
    else:
        assert (nxt - anchor) % policy.period == timedelta(0)
    assert not decision.notify


@given(policies, times, gaps, st.integers(min_value=1, max_value=9), gaps)
def test_planning_twice_is_idempotent(
    policy: RotatePolicy, created: datetime, age: timedelta, number: int, later: timedelta
) -> None:
    latest = LatestRevision(number, created)
    now = created + age
    first = schedule.plan_rotation(policy, None, latest, now)
    assert first.state is not None
    second = schedule.plan_rotation(policy, first.state, latest, now + later % timedelta(minutes=5))
    if second.notify:
        # Only when a new 5-minute slot began in between.
        assert first.wake_at is not None
        assert now + later % timedelta(minutes=5) >= first.wake_at
    else:
        assert second.state == first.state


optional_times = st.none() | times


@given(
    policies.map(str),
    times,
    times,
    st.none() | st.integers(min_value=1, max_value=10**6),
    times,
)
def test_rotation_state_round_trips(
    policy: str, anchor: datetime, nxt: datetime, told: int | None, told_at: datetime
) -> None:
    state = RotationState(policy, anchor, nxt, told, None if told is None else told_at)
    annotations = schedule.rotation_to_annotations(state)
    stored = {k: v for k, v in annotations.items() if v is not None}
    assert schedule.rotation_from_annotations(stored) == state


@given(st.integers(min_value=1, max_value=10**6), times, optional_times)
def test_expiry_state_round_trips(revision: int, expires: datetime, told: datetime | None) -> None:
    expiry = RevisionExpiry(revision, expires, told)
    annotations = schedule.expiry_to_annotations(expiry)
    stored = {k: v for k, v in annotations.items() if v is not None}
    assert schedule.expiry_from_annotations(revision, stored) == expiry


@given(st.lists(st.tuples(st.integers(0, 5), st.none() | times), max_size=40), times)
def test_agenda_matches_a_plain_dict(ops: list[tuple[int, datetime | None]], now: datetime) -> None:
    agenda: Agenda[int] = Agenda()
    model: dict[int, datetime] = {}
    for key, when in ops:
        agenda.set(key, when)
        if when is None:
            model.pop(key, None)
        else:
            model[key] = when
    assert agenda.next_wake() == min(model.values(), default=None)
    assert set(agenda.due(now)) == {k for k, w in model.items() if w <= now}
    assert [agenda.when(k) for k in range(6)] == [model.get(k) for k in range(6)]


@given(st.integers(min_value=1, max_value=36525 * 86400))
def test_durations_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert schedule.parse_duration(schedule.format_duration(value)) == value
