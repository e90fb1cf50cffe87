"""skaffold.yaml: parses, names only paths that exist, matches the chart, and obeys skaffold's
own JSON schema (fetched from the skaffold Go module, see tools.py)."""

from __future__ import annotations

import os
from typing import Any, Final

import pytest
import yaml
from tests.chart import chartkit, tools

SKAFFOLD: Final = chartkit.REPO_ROOT / "skaffold.yaml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(SKAFFOLD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _releases(config: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(config["deploy"]["helm"]["releases"])
    for profile in config.get("profiles") or []:
        found += ((profile.get("deploy") or {}).get("helm") or {}).get("releases") or []
    return found


def test_current_schema_version(config: dict[str, Any]) -> None:
    assert config["apiVersion"] == f"skaffold/{tools.SKAFFOLD_SCHEMA}"
    assert config["kind"] == "Config"


def test_every_path_exists(config: dict[str, Any]) -> None:
    root = chartkit.REPO_ROOT
    for artifact in config["build"]["artifacts"]:
        context = root / artifact.get("context", ".")
        assert context.is_dir(), context
        assert (context / artifact["docker"]["dockerfile"]).is_file()
    releases = _releases(config)
    assert releases
    for release in releases:
        assert (root / release["chartPath"] / "Chart.yaml").is_file(), release["chartPath"]
        for values in release.get("valuesFiles") or []:
            assert (root / values).is_file(), values


def test_builds_the_operator_dockerfile_and_deploys_the_chart(config: dict[str, Any]) -> None:
    (artifact,) = config["build"]["artifacts"]
    assert artifact["docker"]["dockerfile"] == "operator/Dockerfile"
    assert artifact.get("context", ".") == "."
    variable = artifact["image"].replace("-", "_").replace("/", "_").replace(".", "_")
    for release in _releases(config):
        assert release["chartPath"] == "manifests/charts/webapp-operator"
        assert release["setValueTemplates"] == {
            "image.repository": f"{{{{.IMAGE_REPO_{variable}}}}}",
            "image.tag": f"{{{{.IMAGE_TAG_{variable}}}}}",
        }


def test_dev_profile_logs_at_debug_and_watches_one_namespace(config: dict[str, Any]) -> None:
    (dev,) = [p for p in config["profiles"] if p["name"] == "dev"]
    assert {"command": "dev"} in dev["activation"]
    (release,) = dev["deploy"]["helm"]["releases"]
    args: list[str] = []
    for values in release["valuesFiles"]:
        rendered = chartkit.template(values=[chartkit.REPO_ROOT / values])
        args = chartkit.operator_container(chartkit.parse(rendered))["args"]
    assert "--debug" in args
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=demo"]
    (forward,) = dev["portForward"]
    assert forward["resourceName"] == "webapp-operator-metrics"


def test_valid_against_skaffolds_schema(config: dict[str, Any]) -> None:
    try:
        schema = tools.skaffold_schema()
    except tools.ToolUnavailableError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"skaffold's schema could not be fetched: {err}")
    assert tools.validate_json_schema(schema, config) == []
    broken = {**config, "build": {**config["build"], "artifact": []}}
    assert tools.validate_json_schema(schema, broken) != []
