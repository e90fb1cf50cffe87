"""Container resources as Kubernetes checks them, so that a WebApp the API server would turn
into an invalid Deployment is refused up front with a condition, never half rolled out.

- `QUANTITY_PATTERN`: the syntax of a `resource.Quantity` (no sign: requests and limits are never
  negative), used in the CRD and by `parse`;
- `problems(requests, limits)`: what the API server would refuse in one container's resources
  (names it does not know, requests above limits, extended resources and huge pages whose
  requests and limits differ), as messages naming the resource, never a value.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, DecimalException
from typing import Final

_NUMBER: Final = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_SUFFIX: Final = rf"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?{_NUMBER}))?"
QUANTITY_PATTERN: Final = rf"^\+?{_NUMBER}{_SUFFIX}$"
_QUANTITY: Final = re.compile(QUANTITY_PATTERN)

STANDARD: Final = ("cpu", "memory", "ephemeral-storage")
HUGEPAGES_PREFIX: Final = "hugepages-"
NAME_MESSAGE: Final = (
    "resources are cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource "
    "with a domain, such as example.com/gpu"
)

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_SPLIT: Final = re.compile(rf"^\+?(?P<number>{_NUMBER})(?P<suffix>.*)$")


def parse(value: int | str) -> Decimal | None:
    """The amount a quantity stands for, or None when it is not a (non-negative) quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value) if value >= 0 else None
    if not _QUANTITY.fullmatch(value):
        return None
    match = _SPLIT.fullmatch(value)
    if match is None:
        return None
    number, suffix = Decimal(match["number"]), match["suffix"]
    try:
        if suffix in _BINARY:
            return number * _BINARY[suffix]
        if suffix in _DECIMAL:
            return number * _DECIMAL[suffix]
        return number * Decimal(10) ** Decimal(suffix[1:])
    except (DecimalException, OverflowError):  # decimal.Overflow is not an OverflowError
        return None


# An extended resource: `domain/name`, outside the kubernetes.io domain.
_EXTENDED: Final = re.compile(
    r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


def _known(name: str) -> bool:
    if name in STANDARD:
        return True
    if name.startswith(HUGEPAGES_PREFIX):
        return parse(name.removeprefix(HUGEPAGES_PREFIX)) is not None
    domain = name.partition("/")[0]
    return (
        _EXTENDED.fullmatch(name) is not None
        and not name.startswith("requests.")
        and domain != "kubernetes.io"
        and not domain.endswith(".kubernetes.io")
    )


def problems(
    requests: Mapping[str, int | str] | None, limits: Mapping[str, int | str] | None
) -> list[str]:
    """What the API server would refuse in one container's requests and limits."""
    requests, limits = dict(requests or {}), dict(limits or {})
    found: list[str] = []
    for section, values in (("requests", requests), ("limits", limits)):
        for name, value in values.items():
            if not _known(name):
                found.append(f"{section}.{name}: {NAME_MESSAGE}")
            elif parse(value) is None:
                found.append(
                    f"{section}.{name}: not a quantity such as 500m, 2, 128Mi or 1Gi "
                    "(no sign, no spaces)"
                )
    if found:
        return found
    for name, value in requests.items():
        request = parse(value)
        limit = parse(limits[name]) if name in limits else None
        exact = "/" in name or name.startswith(HUGEPAGES_PREFIX)
        if exact and limit is None and "/" in name:
            found.append(f"requests.{name}: an extended resource needs a limit equal to it")
        elif exact and limit is not None and request != limit:
            found.append(f"requests.{name} must equal limits.{name}")
        elif request is not None and limit is not None and request > limit:
            found.append(f"requests.{name} is more than limits.{name}")
    for name, value in limits.items():
        amount = parse(value)
        if "/" in name and amount is not None and amount != amount.to_integral_value():
            found.append(f"limits.{name}: an extended resource takes whole numbers")
    pages = [n for n in (*requests, *limits) if n.startswith(HUGEPAGES_PREFIX)]
    if pages and not any(n in (*requests, *limits) for n in ("cpu", "memory")):
        found.append(f"{pages[0]}: huge pages need a cpu or memory request or limit too")
    return found
