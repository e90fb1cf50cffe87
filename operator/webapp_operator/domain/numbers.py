"""Whole numbers written in text that anyone may edit: labels, annotations, files, arguments.

`str.isdigit` also accepts characters `int` refuses (`²`, `③`) and other scripts' digits; a
check made with it alone turns such a value into a crash instead of a clear answer. Every
number the operator and the CLI read from text goes through `whole_number`.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Final

# More digits than any number read here needs (revision numbers, ports, sizes); Python also
# refuses to convert over 4,300 digits (ValueError), and an annotation can hold that many.
MAX_DIGITS: Final = 18


def whole_number(text: str | None, least: int = 0, most: int | None = None) -> int | None:
    """`text` as an int when it is written in ASCII digits only (at most MAX_DIGITS) and lies
    in [least, most]; None otherwise (absent, empty, signed, spaced, another script's digits,
    too long, out of range)."""
    if not text or len(text) > MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    if value < least or (most is not None and value > most):
        return None
    return value
