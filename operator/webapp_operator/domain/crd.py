"""Generate the WebApp CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema; the API server wants a *structural* OpenAPI v3 schema: every node
typed, no `$ref`, no `anyOf` of alternatives, no `additionalProperties: false`. This module
rewrites one into the other, keeps every description (for `kubectl explain`) and every
validation (patterns, bounds, enums, CEL rules), and adds what only a CRD has: the status
subresource, printer columns and the short name. `crds/` holds its output; a test keeps the
two identical.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from webapp_operator import GROUP, KIND, PLURAL, VERSION
from webapp_operator.domain.model import WebAppSpec, WebAppStatus

# Keys of JSON Schema that a structural schema keeps as they are.
_KEPT = (
    "description",
    "type",
    "format",
    "pattern",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a `$ref` (merging the referring node's own keys over the definition)."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    merged = dict(defs[name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _collapse_optional(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` becomes X: optional fields are simply omitted in YAML."""
    alternatives = node.get("anyOf")
    if not alternatives:
        return node
    non_null = [alt for alt in alternatives if alt.get("type") != "null"]
    if node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields"):
        return {k: v for k, v in node.items() if k != "anyOf"}
    if len(non_null) != 1:
        msg = f"cannot express anyOf with {len(non_null)} alternatives structurally"
        raise ValueError(msg)
    inner = _resolve(non_null[0], defs)
    if inner.get("x-kubernetes-int-or-string") or inner.get("x-kubernetes-preserve-unknown-fields"):
        inner = {k: v for k, v in inner.items() if k != "anyOf"}
    merged = dict(inner)
    merged.update({k: v for k, v in node.items() if k != "anyOf"})
    return merged


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _collapse_optional(_resolve(node, defs), defs)
    # Copies: a value shared by two fields would become a YAML anchor and alias in crds/.
    out: dict[str, Any] = {key: copy.deepcopy(node[key]) for key in _KEPT if key in node}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    default = node.get("default")
    if default is not None and not isinstance(default, (dict, list)):
        out["default"] = default
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {
            name: _structural(child, defs) for name, child in node["properties"].items()
        }
        if node.get("required"):
            out["required"] = list(node["required"])
    elif isinstance(node.get("additionalProperties"), dict):
        out["type"] = "object"
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if "items" in node:
        out["items"] = _structural(node["items"], defs)
    return out


def _schema(model: type[WebAppSpec] | type[WebAppStatus]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def _status_schema() -> dict[str, Any]:
    schema = _schema(WebAppStatus)
    props = schema["properties"]
    props["conditions"]["x-kubernetes-list-type"] = "map"
    props["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    props["secrets"]["x-kubernetes-list-type"] = "map"
    props["secrets"]["x-kubernetes-list-map-keys"] = ["option"]
    props["conditions"]["items"]["properties"]["lastTransitionTime"]["format"] = "date-time"
    return schema


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object for WebApp."""
    openapi = {
        "type": "object",
        "description": (
            "A 12-factor web app (Flask, Django, FastAPI, Go, Express, Spring Boot or generic): "
            "its web, worker and scheduler processes, all sharing one environment built from "
            "its config, its revisioned secrets and its integrations, named as Juju's "
            "paas-charm names them."
        ),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _schema(WebAppSpec),
            "status": _status_schema(),
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "webapp-operator",
                "app.kubernetes.io/part-of": "webapp-operator",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["wa"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Framework", "type": "string", "jsonPath": ".spec.framework"},
                        {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {
                            "name": "Reason",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML committed in crds/ (stable key order, no line folding)."""
    header = (
        "# Generated from operator/webapp_operator/domain/model.py by `make crd`. Do not edit.\n"
    )
    return header + yaml.safe_dump(crd(), sort_keys=False, width=10_000)
