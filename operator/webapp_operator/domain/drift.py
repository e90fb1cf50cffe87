"""What of a Deployment's pod template the WebApp decides, in the form the API server keeps,
so that a change made by hand can be told from the API server's own defaults and put back.

The WebApp is the one place to change an app: of each container the operator renders, its
image and pull policy, command, arguments, ports, resources, readiness probe and security
context; of the pod, its ServiceAccount, security context, node selector, tolerations and
termination grace period. Each is compared whole, so a field someone added where the WebApp
sets none (a command, a request, a probe) is a change too, and is taken out again. What a
WebApp cannot say (another container, a liveness probe, volumes) is left to whoever set it.
(The template's labels and annotations are compared key by key, the rendering's only, by
`state.marks`, and applied back.)

- `container_view(container)`, `pod_view(pod_spec)`: those fields as the API server keeps them
  (the pull policy it gives by the image's tag, quantities by amount, the requests a limit
  implies, a probe's defaults, the pod's defaulted grace period): equal for the rendering and
  the live object until someone changes one;
- `changed(rendered, live)`: which differ, named for a message (never a value);
- `repair(rendered, live)`: the strategic merge patch that puts them back in one write, each
  field replaced whole (`$patch: replace`) or deleted (null), so no template between the hand
  change and the rendering ever exists.

Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from webapp_operator.domain import quantity

CONTAINER_FIELDS: Final = (
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "ports",
    "resources",
    "readinessProbe",
    "securityContext",
)
POD_FIELDS: Final = (
    "serviceAccountName",
    "securityContext",
    "nodeSelector",
    "tolerations",
    "terminationGracePeriodSeconds",
)
# The fields of `repair` that are maps, replaced whole rather than merged key by key.
_MAPS: Final = frozenset({"resources", "readinessProbe", "securityContext", "nodeSelector"})
# What the API server fills in a probe it is given without them.
_PROBE_DEFAULTS: Final = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_GRACE_DEFAULT: Final = 30  # seconds: a pod template's terminationGracePeriodSeconds


def frozen(value: object) -> object:
    """A value as a comparable, hashable form: maps as sorted items, lists as tuples. (Decoded
    JSON and renderings are dicts and lists: the exact types are checked, which is several
    times cheaper than the abstract ones, on every Deployment event.)"""
    if type(value) is dict:
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if type(value) is list or type(value) is tuple:
        return tuple(frozen(v) for v in value)
    return value


def _amount(value: object) -> object:
    """A quantity as the amount it stands for ("0.5" and "500m" alike, as text); as given if it
    is none."""
    return _amount_of(value) if isinstance(value, int | str) else value


@functools.lru_cache(maxsize=512)  # a cluster's quantities are few ("500m", "1Gi", ...)
def _amount_of(value: int | str) -> object:
    parsed = quantity.parse(value)
    return value if parsed is None else str(parsed.normalize())


def _resources(resources: object) -> object:
    """Requests and limits by amount, with the requests a limit implies (a pod's missing
    request is its limit: one set so by hand changes nothing)."""
    if not isinstance(resources, Mapping) or not resources:
        return None
    view = {k: v for k, v in resources.items() if k not in ("limits", "requests")}
    limits = {str(k): _amount(v) for k, v in (resources.get("limits") or {}).items()}
    requests = {
        **limits,
        **{str(k): _amount(v) for k, v in (resources.get("requests") or {}).items()},
    }
    if limits:
        view["limits"] = limits
    if requests:
        view["requests"] = requests
    return frozen(view) or None


def _probe(probe: object) -> object:
    """A probe with the API server's defaults, an `initialDelaySeconds` of 0 as absent (it
    does not keep a zero) and an HTTP check's scheme."""
    if not isinstance(probe, Mapping) or not probe:
        return None
    view: dict[str, Any] = {**_PROBE_DEFAULTS, **probe}
    if not view.get("initialDelaySeconds"):
        view.pop("initialDelaySeconds", None)
    if isinstance(view.get("httpGet"), Mapping):
        view["httpGet"] = {"scheme": "HTTP", **view["httpGet"]}
    return frozen(view)


def _ports(ports: object) -> object:
    """Ports by number and protocol (TCP unless said)."""
    if not isinstance(ports, list) or not ports:
        return None
    return tuple(sorted(repr(frozen({"protocol": "TCP", **p})) for p in ports))


def _container_field(name: str, value: object) -> object:
    if name == "resources":
        return _resources(value)
    if name == "readinessProbe":
        return _probe(value)
    if name == "ports":
        return _ports(value)
    return frozen(value) or None  # an empty list or map is kept as none


def _pod_field(name: str, value: object) -> object:
    if name == "serviceAccountName":
        return None if value in (None, "", "default") else value
    if name == "terminationGracePeriodSeconds":
        return _GRACE_DEFAULT if value is None else value
    return frozen(value) or None


def _pull_policy(container: Mapping[str, Any]) -> object:
    """The pull policy, or the one the API server gives a container without one: Always for
    an image without a tag or tagged `latest`, else IfNotPresent."""
    policy = container.get("imagePullPolicy")
    if policy:
        return policy
    image = str(container.get("image") or "")
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container_value(name: str, container: Mapping[str, Any]) -> object:
    if name == "imagePullPolicy":
        return _pull_policy(container)
    return _container_field(name, container.get(name))


def container_view(container: Mapping[str, Any]) -> tuple[Any, ...]:
    """A container's fields the WebApp decides, as the API server keeps them."""
    return tuple(_container_value(f, container) for f in CONTAINER_FIELDS)


def pod_view(pod_spec: Mapping[str, Any]) -> tuple[Any, ...]:
    """The pod's fields the WebApp decides, as the API server keeps them."""
    return tuple(_pod_field(f, pod_spec.get(f)) for f in POD_FIELDS)


def _pod_spec(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(deployment: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("name", "")): c for c in _pod_spec(deployment).get("containers") or []}


def _differences(
    rendered: Mapping[str, Any], live: Mapping[str, Any]
) -> tuple[dict[str, list[str]], list[str]]:
    """(each rendered container's differing fields, by container; the pod's differing
    fields), a container missing from the live object with all of its fields."""
    found: dict[str, list[str]] = {}
    live_containers = _containers(live)
    for name, container in _containers(rendered).items():
        other = live_containers.get(name)
        fields = [
            f
            for f in CONTAINER_FIELDS
            if other is None or _container_value(f, container) != _container_value(f, other)
        ]
        if fields:
            found[name] = fields
    ours, theirs = _pod_spec(rendered), _pod_spec(live)
    pod = [f for f in POD_FIELDS if _pod_field(f, ours.get(f)) != _pod_field(f, theirs.get(f))]
    return found, pod


def changed(rendered: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """What someone changed of what the rendering decides, for a message: `container web
    (image, resources)`, `the pod's nodeSelector`; [] when nothing."""
    containers, pod = _differences(rendered, live)
    said = [f"container {name} ({', '.join(fields)})" for name, fields in containers.items()]
    if pod:
        said.append(f"the pod's {', '.join(pod)}")
    return said


def _replaced(name: str, value: object) -> object:
    """A field of a strategic merge patch that sets it to `value` whole (null: deleted)."""
    if value is None:
        return None
    if name in _MAPS and isinstance(value, Mapping):
        return {"$patch": "replace", **value}
    if name == "ports" and isinstance(value, list):  # merged by port number: replaced whole
        return [{"$patch": "replace"}, *value]
    return value


def repair(rendered: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The strategic merge patch that gives the live Deployment the rendering's values of every
    field `changed` finds (a container missing from it whole); None when nothing differs."""
    containers, pod = _differences(rendered, live)
    if not containers and not pod:
        return None
    ours = _containers(rendered)
    live_names = set(_containers(live))
    patched: list[dict[str, Any]] = []
    for name, fields in containers.items():
        if name not in live_names:
            patched.append(dict(ours[name]))
            continue
        patched.append({"name": name, **{f: _replaced(f, ours[name].get(f)) for f in fields}})
    spec: dict[str, Any] = {f: _replaced(f, _pod_spec(rendered).get(f)) for f in pod}
    if "serviceAccountName" in pod:  # its deprecated twin would set it again
        spec["serviceAccount"] = spec["serviceAccountName"]
    if patched:
        spec["containers"] = patched
    return {"spec": {"template": {"spec": spec}}}
