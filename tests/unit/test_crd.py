"""The CRD in crds/ is generated from the models and structurally valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from webapp_operator.domain import crd

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "webapps.twelvefactor.dev.yaml"


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED.read_text() == crd.crd_yaml(), "crds/ is stale: run `make crd`"


def _walk(node: dict[str, Any], path: str) -> list[str]:
    """Structural-schema violations below `node`."""
    problems = []
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title"):
        if forbidden in node:
            problems.append(f"{path}: has {forbidden}")
    if node.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties: false")
    typed = (
        "type" in node
        or node.get("x-kubernetes-int-or-string")
        or node.get("x-kubernetes-preserve-unknown-fields")
    )
    if not typed:
        problems.append(f"{path}: no type")
    if path != "" and "description" not in node and node.get("type") == "object":
        problems.append(f"{path}: object without description")
    for name, child in (node.get("properties") or {}).items():
        problems += _walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}[*]")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    return problems


def test_schema_is_structural_and_described() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems = _walk(schema["properties"]["spec"], ".spec")
    problems += _walk(schema["properties"]["status"], ".status")
    assert problems == []


def test_fixed_names() -> None:
    doc = yaml.safe_load(COMMITTED.read_text())
    spec = doc["spec"]
    assert doc["metadata"]["name"] == "webapps.twelvefactor.dev"
    assert spec["group"] == "twelvefactor.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "WebApp"
    assert spec["names"]["plural"] == "webapps"
    assert spec["names"]["shortNames"] == ["wa"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:3] == ["Framework", "Image", "Ready"]
    assert "Age" in columns


def _rules(node: object) -> list[str]:
    """Every CEL rule anywhere under a schema node."""
    if isinstance(node, dict):
        own = [r["rule"] for r in node.get("x-kubernetes-validations") or []]
        return own + [rule for value in node.values() for rule in _rules(value)]
    if isinstance(node, list):
        return [rule for value in node for rule in _rules(value)]
    return []


def test_cel_rules_cover_process_names_and_secret_keys() -> None:
    spec = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert all("self.config" not in r for r in _rules(spec)), "CEL cannot type config's values"
    assert spec["properties"]["secrets"]["x-kubernetes-validations"]
    # Each rule sits on the field it is about, so the API server's message names that field.
    process_rules = [r["rule"] for r in spec["properties"]["processes"]["x-kubernetes-validations"]]
    assert "worker" in process_rules[0]
    assert any("size(p) <= 63" in r for r in process_rules)
    assert any("scheduler" in r and "replicas" in r for r in process_rules)
    owned_rules = _rules(spec["properties"]["ownedSecrets"])
    assert any("secret-key" in r for r in owned_rules)


def test_status_lists_are_maps() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    status = schema["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["secrets"]["x-kubernetes-list-map-keys"] == ["option"]
    trs = status["secrets"]["items"]["properties"]
    assert {"option", "secretName", "trackedRevision", "latestRevision"} <= set(trs)
