"""Whole numbers read from text anyone may edit (domain/numbers.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp_operator.domain.numbers import whole_number


@pytest.mark.parametrize(
    ("text", "least", "most", "expected"),
    [
        ("0", 0, None, 0),
        ("007", 1, None, 7),
        ("65535", 1, 65535, 65535),
        ("65536", 1, 65535, None),
        ("0", 1, None, None),
        ("7", 8, 512, None),
        ("²", 0, None, None),  # isdigit() accepts it, int() refuses it
        ("\u0661\u0662", 0, None, None),  # Arabic-Indic 12: int() reads it, not ASCII
        ("-1", 0, None, None),
        ("+1", 0, None, None),
        (" 1", 0, None, None),
        ("1_000", 0, None, None),
        ("", 0, None, None),
        ("9" * 18, 0, None, 10**18 - 1),
        ("1" * 19, 0, None, None),  # more digits than any number read here
        ("1" * 5000, 0, None, None),  # int() itself refuses over 4,300 digits: no ValueError
        (None, 0, None, None),
    ],
)
def test_whole_number(text: str | None, least: int, most: int | None, expected: int | None) -> None:
    assert whole_number(text, least, most) == expected


@given(st.text(max_size=8))
def test_never_raises_and_reads_only_ascii_digits(text: str) -> None:
    value = whole_number(text)
    if value is not None:
        assert text.isascii()
        assert text.isdigit()
        assert value == int(text)
