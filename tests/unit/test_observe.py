"""Tracking decisions and condition bookkeeping."""

from __future__ import annotations

from typing import Literal

import pytest

from webapp_operator.domain import observe


@pytest.mark.parametrize(
    ("mode", "pin", "prior", "latest", "refresh", "expected"),
    [
        pytest.param("auto", None, 1, 3, False, 3, id="auto-follows-latest"),
        pytest.param("manual", None, 1, 3, False, 1, id="manual-stays"),
        pytest.param("manual", None, None, 3, False, 3, id="first-read-tracks-latest"),
        pytest.param("manual", None, 1, 3, True, 3, id="refresh-moves"),
        pytest.param("manual", 2, 1, 3, True, 2, id="pin-wins"),
        pytest.param("auto", 1, None, 3, False, 1, id="pin-over-auto"),
        pytest.param("auto", None, None, None, False, None, id="no-revision-yet"),
    ],
)
def test_choose_tracked(
    mode: Literal["auto", "manual"],
    pin: int | None,
    prior: int | None,
    latest: int | None,
    refresh: bool,
    expected: int | None,
) -> None:
    assert observe.choose_tracked(mode, pin, prior, latest, refresh) == expected


def test_transition_time_kept_while_status_holds() -> None:
    first = observe.conditions(
        None, [observe.ConditionSpec("Ready", "False", "RolloutInProgress")], "T1", 1
    )
    same = observe.conditions(
        first, [observe.ConditionSpec("Ready", "False", "SecretNotFound", "gone")], "T2", 2
    )
    flipped = observe.conditions(
        same, [observe.ConditionSpec("Ready", "True", "Available")], "T3", 2
    )
    assert first[0]["lastTransitionTime"] == "T1"
    assert same[0]["lastTransitionTime"] == "T1"
    assert same[0]["reason"] == "SecretNotFound"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "T3"


def test_ready_comes_first() -> None:
    result = observe.conditions(
        None,
        [
            observe.ConditionSpec("SecretUpdateAvailable", "False", "UpToDate"),
            observe.ConditionSpec("Ready", "True", "Available"),
        ],
        "T",
        None,
    )
    assert [c["type"] for c in result] == ["Ready", "SecretUpdateAvailable"]
    assert "observedGeneration" not in result[0]


def test_status_equal_ignores_fields_not_written() -> None:
    old = {"observedGeneration": 2, "conditions": [], "kopf": {"x": 1}}
    assert observe.status_equal(old, {"observedGeneration": 2, "conditions": []})
    assert not observe.status_equal(old, {"observedGeneration": 3})
    assert not observe.status_equal(None, {"observedGeneration": 3})


@pytest.mark.parametrize(
    ("annotations", "handled", "pending"),
    [
        (None, None, None),
        ({}, "web@1", None),
        ({observe.REFRESH_ANNOTATION: ""}, None, None),
        ({observe.REFRESH_ANNOTATION: "web@1"}, "web@1", None),
        ({observe.REFRESH_ANNOTATION: "web@2"}, "web@1", "web@2"),
        ({observe.REFRESH_ANNOTATION: "*@3"}, None, "*@3"),
        ({observe.REFRESH_ANNOTATION: "not a token"}, None, "not a token"),  # told as invalid
    ],
)
def test_a_refresh_is_pending_until_its_value_is_recorded_as_handled(
    annotations: dict[str, str] | None, handled: str | None, pending: str | None
) -> None:
    assert observe.pending_refresh(annotations, handled) == pending
