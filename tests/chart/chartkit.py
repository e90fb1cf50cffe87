"""Render the Helm chart and derive the kustomize tree from it (tests and `make manifests`).

- `helm(...)` / `template(...)`: the chart through the real helm binary (`.devcluster/bin/helm`,
  else helm on PATH), with helm's state kept in a temporary directory.
- `kustomize_files()`: every file under manifests/kustomize/, generated from the chart: the
  `base/` is the cluster-wide rendering, `overlays/namespaced/` turns it into the namespaced one
  (Roles only) with patches. `python -m tests.chart.generate` writes them; a test fails when the
  committed files differ, and another builds them with kubectl and compares with the chart.
- `for_kustomize(objects)`: the one difference between the two: no Helm bookkeeping labels.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CHART_DIR: Final = REPO_ROOT / "manifests" / "charts" / "webapp-operator"
CHART_CRD: Final = CHART_DIR / "crds" / "webapps.twelvefactor.dev.yaml"
REPO_CRD: Final = REPO_ROOT / "crds" / "webapps.twelvefactor.dev.yaml"
NAMESPACED_VALUES: Final = CHART_DIR / "ci" / "namespaced-values.yaml"
ALL_VALUES: Final = CHART_DIR / "ci" / "all-values.yaml"
KUSTOMIZE_DIR: Final = REPO_ROOT / "manifests" / "kustomize"
DEVCLUSTER_BIN: Final = REPO_ROOT / ".devcluster" / "bin"

RELEASE: Final = "webapp-operator"
NAMESPACE: Final = "webapp-operator"
KEYS_SECRET: Final = "webapp-operator-keys"
GENERATED: Final = (
    "# Generated from manifests/charts/webapp-operator by `make manifests`\n"
    "# (python -m tests.chart.generate). Do not edit.\n"
)


class ToolMissingError(Exception):
    """helm or kubectl is neither in .devcluster/bin nor on PATH."""


def tool(name: str) -> str:
    """The path of a CLI: the local control plane's build first, then PATH."""
    local = DEVCLUSTER_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        msg = f"{name} not found in {DEVCLUSTER_BIN} or on PATH: run `make cluster-build`"
        raise ToolMissingError(msg)
    return found


def helm(*args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run helm with its config, cache and data in a temporary directory; return stdout."""
    with tempfile.TemporaryDirectory(prefix="helm-") as home:
        full_env = dict(os.environ if env is None else env)
        for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
            full_env[var] = str(Path(home) / var.lower())
        done = subprocess.run(
            [tool("helm"), *args], capture_output=True, text=True, env=full_env, check=False
        )
    if check and done.returncode != 0:
        msg = f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise AssertionError(msg)
    return done.stdout + (done.stderr if not check else "")


def template(
    values: Sequence[Path] = (),
    sets: Mapping[str, str] | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    include_crds: bool = False,
) -> str:
    """`helm template` of the chart as text."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    if include_crds:
        args.append("--include-crds")
    return helm(*args)


def parse(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML text (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))


def by_key(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {key(obj): dict(obj) for obj in objects}


def of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [dict(obj) for obj in objects if obj["kind"] == kind]


def deployment(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    (found,) = of_kind(objects, "Deployment")
    return found


def operator_container(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    containers = deployment(objects)["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == "operator"]
    return dict(found)


# ------------------------------------------------------------------------------- kustomize

HELM_ONLY_LABELS: Final = ("helm.sh/chart", "app.kubernetes.io/managed-by")
KUSTOMIZE_LABELS: Final = {"app.kubernetes.io/managed-by": "kustomize"}


def for_kustomize(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The chart's objects as the kustomize tree holds them: without Helm's own labels (the
    kustomization adds `app.kubernetes.io/managed-by: kustomize` to every object's metadata)."""
    result = []
    for obj in objects:
        copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(obj)))
        labels = copy.get("metadata", {}).get("labels")
        if labels is not None:
            for label in HELM_ONLY_LABELS:
                labels.pop(label, None)
        result.append(copy)
    return result


def with_kustomize_labels(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What `kubectl kustomize` makes of `for_kustomize(objects)`: the labels added back."""
    result = []
    for obj in for_kustomize(objects):
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(KUSTOMIZE_LABELS)
        result.append(obj)
    return result


def namespace_object(name: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "webapp-operator",
                "app.kubernetes.io/part-of": "webapp-operator",
            },
        },
    }


def dump(objects: Iterable[Mapping[str, Any]]) -> str:
    return "---\n".join(
        yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False, width=100)
        for obj in objects
    )


def _file(objects: Iterable[Mapping[str, Any]]) -> str:
    return GENERATED + dump(objects)


def cluster_wide_objects() -> list[dict[str, Any]]:
    """The chart with default values, CRD included: what `base/` holds, plus the Namespace."""
    return [namespace_object(), *parse(template(include_crds=True))]


def namespaced_objects() -> list[dict[str, Any]]:
    """The chart with ci/namespaced-values.yaml, CRD included, plus the Namespace."""
    rendered = template(values=[NAMESPACED_VALUES], include_crds=True)
    return [namespace_object(), *parse(rendered)]


BASE_FILES: Final = {
    # file -> the kinds it holds, in apply order
    "namespace.yaml": ("Namespace",),
    "crd.yaml": ("CustomResourceDefinition",),
    "serviceaccount.yaml": ("ServiceAccount",),
    "rbac.yaml": ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
    "deployment.yaml": ("Deployment",),
    "service.yaml": ("Service",),
}


def kustomize_files() -> dict[str, str]:
    """Every file of manifests/kustomize/ (path relative to it -> content)."""
    files: dict[str, str] = {}
    base = for_kustomize(cluster_wide_objects())
    placed: set[tuple[str, str, str]] = set()
    for name, kinds in BASE_FILES.items():
        chosen = [obj for kind in kinds for obj in base if obj["kind"] == kind]
        placed.update(key(obj) for obj in chosen)
        files[f"base/{name}"] = _file(chosen)
    missing = [key(obj) for obj in base if key(obj) not in placed]
    if missing:
        msg = f"objects with no file in the kustomize base: {missing}"
        raise AssertionError(msg)
    files["base/kustomization.yaml"] = GENERATED + yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "labels": [{"pairs": dict(KUSTOMIZE_LABELS)}],
            "resources": list(BASE_FILES),
        },
        sort_keys=False,
    )
    files.update(_namespaced_overlay(base))
    return files


def _namespaced_overlay(base: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """overlays/namespaced: the base without its ClusterRole(Binding), with the chart's Roles for
    the namespaces of ci/namespaced-values.yaml (and Kopf's scanning ClusterRole), and the
    Deployment's arguments for them."""
    wanted = for_kustomize(namespaced_objects())
    base_keys = {key(obj) for obj in base}
    wanted_keys = {key(obj) for obj in wanted}
    added = [obj for obj in wanted if key(obj) not in base_keys]
    removed = [obj for obj in base if key(obj) not in wanted_keys]
    rbac = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    if any(obj["kind"] not in rbac for obj in [*added, *removed]):
        msg = "the namespaced mode differs from the cluster-wide one in more than its RBAC"
        raise AssertionError(msg)
    container = operator_container(wanted)
    deploy = deployment(wanted)
    files: dict[str, str] = {}
    patches = []
    for obj in removed:
        name = f"delete-{obj['kind'].lower()}.yaml"
        files[f"overlays/namespaced/{name}"] = GENERATED + yaml.safe_dump(
            {
                "$patch": "delete",
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": {"name": obj["metadata"]["name"]},
            },
            sort_keys=False,
        )
        patches.append({"path": name})
    files["overlays/namespaced/deployment-args.yaml"] = (
        GENERATED
        + "# The operator's arguments: one --namespace per watched namespace.\n"
        + yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": deploy["metadata"]["name"],
                    "namespace": deploy["metadata"]["namespace"],
                },
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": container["name"], "args": container["args"]}]
                        }
                    }
                },
            },
            sort_keys=False,
        )
    )
    patches.append({"path": "deployment-args.yaml"})
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base", "rbac.yaml"],
        "labels": [{"pairs": dict(KUSTOMIZE_LABELS)}],
        "patches": patches,
    }
    files["overlays/namespaced/kustomization.yaml"] = (
        GENERATED
        + "# Watches only the namespaces of rbac.yaml and deployment-args.yaml (regenerate\n"
        "# from the chart with other watchNamespaces, or edit both together).\n"
        + yaml.safe_dump(kustomization, sort_keys=False)
    )
    files["overlays/namespaced/rbac.yaml"] = _file(added)
    return files


def write_kustomize(root: Path = KUSTOMIZE_DIR) -> list[Path]:
    """Write kustomize_files() under `root`, removing generated files that are no longer made."""
    files = kustomize_files()
    written = []
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    for path in root.rglob("*.yaml"):
        relative = path.relative_to(root).as_posix()
        if relative not in files and path.read_text().startswith(GENERATED):
            path.unlink()
    return written


# ------------------------------------------------------------------------------- RBAC

# (where, apiGroup, resource, verb, resourceName or ""): where is "cluster" (a ClusterRole bound
# cluster-wide), "watched" (a Role in every watched namespace) or "release" (a Role in the
# release namespace).
Grant = tuple[str, str, str, str, str]
RBAC_KINDS: Final = ("ClusterRole", "Role")


def grants(objects: Iterable[Mapping[str, Any]], release_namespace: str = NAMESPACE) -> set[Grant]:
    """Every permission the rendered Roles and ClusterRoles hold, one tuple per verb."""
    found: set[Grant] = set()
    for obj in objects:
        if obj["kind"] not in RBAC_KINDS:
            continue
        if obj["kind"] == "ClusterRole":
            where = "cluster"
        elif obj["metadata"]["namespace"] == release_namespace:
            where = "release"
        else:
            where = "watched"
        for rule in obj.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        for name in rule.get("resourceNames") or [""]:
                            found.add((where, group, resource, verb, name))
    return found


def wildcards(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every `*` in a rule of a Role or ClusterRole (in any field), as object/field."""
    hits = []
    for obj in objects:
        if obj["kind"] not in RBAC_KINDS:
            continue
        for index, rule in enumerate(obj.get("rules") or []):
            for field_name, values in rule.items():
                listed = values if isinstance(values, list) else [values]
                if any("*" in str(value) for value in listed):
                    hits.append(
                        f"{obj['kind']}/{obj['metadata']['name']} rules[{index}].{field_name}"
                    )
    return hits


_HTTPX: Final = re.compile(r'HTTP Request: (GET|POST|PATCH|PUT|DELETE) (\S+) "HTTP/1\.1 (\d+)')
_KOPF_WATCH: Final = re.compile(
    r"Starting the watch-stream for (\S+) (?:in '([^']+)'|cluster-wide)"
)
_VERBS: Final = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
_NAMED: Final = frozenset({"get", "patch", "update", "delete"})  # verbs on one named object


def observed_requests(log: str) -> set[tuple[str | None, str, str, str, str]]:
    """The API requests an operator log shows, as (namespace or None, group, resource, verb,
    the object's name for get/patch/update/delete, else ""): lightkube's requests (httpx logs
    every one at INFO) and kube/transport.py's (the Gateway's and the informers' lists and
    `?watch=true` watches, logged at DEBUG in the same words), and Kopf's watch streams (a
    list, then a watch). A PATCH answered 201
    created the object through server-side apply, which RBAC authorises as `create` as well."""
    found: set[tuple[str | None, str, str, str, str]] = set()
    for method, url, code in _HTTPX.findall(log):
        path = urllib.parse.urlsplit(url).path.strip("/").split("/")
        if path[0] == "api":
            group, rest = "", path[2:]
        else:
            group, rest = path[1], path[3:]
        namespace = None
        if rest[:1] == ["namespaces"] and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
        name = rest[1] if len(rest) > 1 else ""
        if rest[0] == "namespaces" and len(rest) == 2:
            namespace = name  # RBAC sees a request for namespace X as in namespace X
        verb = _VERBS.get(method) or ("get" if name else "list")
        if verb == "list" and "watch=true" in urllib.parse.urlsplit(url).query:
            verb = "watch"  # an informer's watch (kube/informer.py), after its list
        if verb == "patch" and code == "201":
            found.add((namespace, group, resource, "create", ""))
        found.add((namespace, group, resource, verb, name if verb in _NAMED else ""))
    for resource_id, namespace in _KOPF_WATCH.findall(log):
        plural, _version, *group_parts = resource_id.split(".")
        group = ".".join(group_parts)
        for verb in ("list", "watch"):
            found.add((namespace or None, group, plural, verb, ""))
    return found
