"""Revision snapshot conventions and the pruning rule (invariant 4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp_operator.domain import revisions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_names_and_labels_are_deterministic() -> None:
    assert revisions.revision_name("credentials", 3) == "credentials.rev-3"
    labels = revisions.revision_labels("credentials", 3)
    assert labels[revisions.MANAGED_LABEL] == "revision"
    assert labels[revisions.REVISION_OF_LABEL] == "credentials"
    assert labels[revisions.REVISION_LABEL] == "3"
    assert revisions.revision_selector("credentials") == (
        "twelvefactor.dev/secret=revision,twelvefactor.dev/revision-of=credentials"
    )


def test_parse_revision_reads_metadata_only() -> None:
    labels = revisions.revision_labels("c", 2)
    annotations = {"twelvefactor.dev/revision-expires": "2026-02-01T00:00:00Z"}
    parsed = revisions.parse_revision(labels, annotations, T0)
    assert parsed == revisions.Revision(
        source="c", number=2, created=T0, expires=datetime(2026, 2, 1, tzinfo=UTC)
    )
    # Whether a signature is there at all (the CLI's view); whether it is good takes the key.
    signed = {**annotations, revisions.SIGNATURE_ANNOTATION: "f" * 32}
    parsed = revisions.parse_revision(labels, signed, T0)
    assert parsed is not None
    assert parsed.has_signature


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param({"twelvefactor.dev/secret": "true"}, id="source"),
        pytest.param({"twelvefactor.dev/secret": "revision"}, id="no-source-label"),
        pytest.param(
            {
                "twelvefactor.dev/secret": "revision",
                "twelvefactor.dev/revision-of": "c",
                "twelvefactor.dev/revision": "0",
            },
            id="revision-zero",
        ),
        pytest.param(
            {
                "twelvefactor.dev/secret": "revision",
                "twelvefactor.dev/revision-of": "c",
                "twelvefactor.dev/revision": "x",
            },
            id="not-a-number",
        ),
    ],
)
def test_parse_revision_ignores_other_secrets(labels: dict[str, str]) -> None:
    assert revisions.parse_revision(labels, {}, T0) is None


@pytest.mark.parametrize(
    ("numbers", "latest", "tracked", "in_use", "expected"),
    [
        pytest.param([1, 2, 3], 3, set(), set(), [1, 2], id="untracked-old-go"),
        pytest.param([1, 2, 3], 3, {1}, set(), [2], id="tracked-stays"),
        pytest.param([1, 2, 3], 3, set(), {2}, [1], id="live-replicaset-keeps"),
        pytest.param([1], 1, set(), set(), [], id="latest-always-stays"),
        pytest.param([1, 2, 3], 3, {1, 2}, {3}, [], id="all-needed"),
        pytest.param([], None, set(), set(), [], id="nothing"),
    ],
)
def test_removable(
    numbers: list[int], latest: int | None, tracked: set[int], in_use: set[int], expected: list[int]
) -> None:
    assert revisions.removable(numbers, latest, tracked, in_use) == expected


def test_parse_sources_round_trip_with_render() -> None:
    annotation = "secret:credentials=demo/credentials#2,integration:postgresql=db/pg#1,bad,x=y"
    assert revisions.parse_sources(annotation) == {
        "secret:credentials": ("demo", "credentials", 2),
        "integration:postgresql": ("db", "pg", 1),
    }
    assert revisions.parse_sources(None) == {}


def test_parse_sources_reads_a_revision_number_of_other_digits_as_none() -> None:
    """`²` and `٣` are digits to str.isdigit() but not to int(): an annotation anyone who may
    edit the snapshot can write must not make its entry fail."""
    annotation = "secret:a=demo/a#²,secret:b=demo/b#٣,secret:c=demo/c#3"
    assert revisions.parse_sources(annotation) == {
        "secret:a": ("demo", "a", None),
        "secret:b": ("demo", "b", None),
        "secret:c": ("demo", "c", 3),
    }


@pytest.mark.parametrize("number", ["²", "٣", "\uff11"])  # the last: FULLWIDTH DIGIT ONE
def test_numbers_in_annotations_are_ascii_digits_or_a_clear_error(number: str) -> None:
    """The same for the other annotations read as numbers: a clear InvalidConfig (a condition
    on the object), not a ValueError from int() failing the reconcile."""
    from webapp_operator.domain import owned, schedule
    from webapp_operator.domain.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match="BYTES from 8 to 512"):
        owned.parse_generate(f"token={number}")
    state = {
        schedule.ROTATION_POLICY_ANNOTATION: "hourly",
        schedule.ROTATION_ANCHOR_ANNOTATION: "2025-01-31T10:00:00Z",
        schedule.NEXT_ROTATION_ANNOTATION: "2025-01-31T11:00:00Z",
        schedule.ROTATION_NOTIFIED_REVISION_ANNOTATION: number,
        schedule.ROTATION_NOTIFIED_AT_ANNOTATION: "2025-01-31T11:00:00Z",
    }
    with pytest.raises(InvalidConfig, match="is not a revision number"):
        schedule.rotation_from_annotations(state)
