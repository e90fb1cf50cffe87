"""Results: the targets, a readable table, and the comparison with an earlier run.

Field names are dotted paths into results.json (`fanout.100.p99_s`); docs/performance.md
describes each one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _number(value: Any) -> float | None:  # noqa: ANN401
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Target:
    """One target of issue 6: `check(flat results) -> (value, limit)`, ok when value <= limit."""

    name: str
    field: str
    limit: Callable[[Mapping[str, Any]], float | None]
    strict: bool = False  # value < limit rather than <=

    def evaluate(self, flat: Mapping[str, Any]) -> dict[str, Any] | None:
        value = _number(flat.get(self.field))
        limit = self.limit(flat)
        if value is None or limit is None:
            return None
        ok = value < limit if self.strict else value <= limit
        return {"field": self.field, "value": value, "limit": round(limit, 4), "ok": ok}


def _const(value: float) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda _: value


def _times(factor: float, field: str) -> Callable[[Mapping[str, Any]], float | None]:
    def limit(flat: Mapping[str, Any]) -> float | None:
        base = _number(flat.get(field))
        return None if base is None else factor * base

    return limit


TARGETS: Final = (
    Target("fan-out N=100 p99 <= 2 s", "fanout.100.p99_s", _const(2.0)),
    Target("fan-out N=100 p99 <= 3x floor", "fanout.100.p99_s", _times(3, "fanout.100.floor_s")),
    Target("restart writes = 0 (API server)", "restart.writes", _const(0)),
    Target("restart changes no object", "restart.changed_objects", _const(0)),
    Target("restart writes = 0 (operator)", "restart.operator_writes", _const(0)),
    Target("idle reconciler requests = 0 /min", "idle.requests_per_min", _const(0)),
    Target(
        "idle requests apart from watches ~0 /min", "idle.server_other_requests_per_min", _const(1)
    ),
    Target("steady RSS <= 150 MiB", "steady.rss_mib_before", _const(150)),
    Target("steady RSS with unrelated <= 150 MiB", "steady.rss_mib_after", _const(150)),
    Target("RSS grows < 10% with unrelated Secrets", "steady.rss_growth_pct", _const(10), True),
    Target("no-op reconcile writes nothing", "per_reconcile.noop_writes", _const(0)),
    Target("no API request rejected (429)", "throttle.rejected", _const(0)),
    Target(
        "no throttling stall: APF wait <= 10 ms/request",
        "throttle.server_wait_ms_per_request",
        _const(10),
    ),
)


def evaluate_targets(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    flat = flatten(results)
    found: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        verdict = target.evaluate(flat)
        if verdict is not None:
            found[target.name] = verdict
    return found


# Latency fields and the floor each is shown against.
FLOOR_OF: Final = {
    "p50_s": "floor_s",
    "p95_s": "floor_s",
    "p99_s": "floor_s",
    "max_s": "floor_s",
    "all_p50_s": "floor_s",
    "settle_s": "floor_s",
}


def _fmt(value: Any) -> str:  # noqa: ANN401
    number = _number(value)
    if number is None:
        if isinstance(value, list):
            return ", ".join(_fmt(v) for v in value)
        return str(value)
    if number == int(number) and abs(number) < 1e9:
        return str(int(number))
    if abs(number) >= 100:
        return f"{number:.1f}"
    return f"{number:.4g}"


def table(results: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> str:
    """Markdown: every figure, its ratio to the floor (latencies), and to the previous run."""
    flat = flatten(results)
    old = flatten(previous) if previous else {}
    lines = [
        f"# webapp-operator bench ({results.get('meta', {}).get('profile', '?')})",
        "",
        "| field | value | x floor | previous | new/previous |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, value in flat.items():
        if key.startswith(("meta.", "targets.")):
            continue
        prefix, _, leaf = key.rpartition(".")
        ratio_floor = ""
        floor_key = FLOOR_OF.get(leaf)
        if floor_key:
            base = _number(flat.get(f"{prefix}.{floor_key}"))
            number = _number(value)
            if base and number is not None:
                ratio_floor = f"{number / base:.2f}"
        prev = old.get(key)
        ratio_prev = ""
        if _number(prev) and _number(value) is not None:
            ratio_prev = f"{_number(value) / _number(prev):.2f}"  # type: ignore[operator]
        lines.append(
            f"| `{key}` | {_fmt(value)} | {ratio_floor} | "
            f"{'' if prev is None else _fmt(prev)} | {ratio_prev} |"
        )
    targets = results.get("targets") or {}
    if targets:
        lines += ["", "| target | field | value | limit | met |", "|---|---|---:|---:|---|"]
        for name, verdict in targets.items():
            lines.append(
                f"| {name} | `{verdict['field']}` | {_fmt(verdict['value'])} | "
                f"{_fmt(verdict['limit'])} | {'yes' if verdict['ok'] else '**NO**'} |"
            )
    meta = results.get("meta") or {}
    if meta:
        lines += ["", "Run: " + ", ".join(f"{k}={_fmt(v)}" for k, v in meta.items())]
    return "\n".join(lines) + "\n"


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Every numeric field in both runs: old, new, new/old."""
    a, b = flatten(old), flatten(new)
    lines = ["| field | old | new | new/old |", "|---|---:|---:|---:|"]
    for key, value in b.items():
        if key.startswith(("meta.", "targets.")):
            continue
        x, y = _number(a.get(key)), _number(value)
        if x is None or y is None:
            continue
        ratio = f"{y / x:.2f}" if x else ("=" if y == x else "new")
        lines.append(f"| `{key}` | {_fmt(x)} | {_fmt(y)} | {ratio} |")
    return "\n".join(lines) + "\n"
