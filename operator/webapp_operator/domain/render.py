"""Render a WebApp into the objects the operator applies. Pure: no I/O, clock or randomness.

What is rendered, for a WebApp `shop` in namespace `demo`:

- one immutable environment snapshot, a Secret `shop-env-<digest>` holding every variable;
  `<digest>` is an HMAC-SHA256 of the whole environment under the operator's snapshot key, so the
  name changes exactly when the content changes and says nothing about the values to anyone
  without the key (a plain hash of a weak password could be brute-forced from a pod spec);
- the `web` Deployment `shop` and its Service `shop`;
- one Deployment `shop-<process>` per `*-worker` process;
- one Deployment `shop-<process>` per `*-scheduler` process: one replica, `Recreate` strategy,
  so two pods never run at once;
- with `spec.migration`, a Job `shop-migrate-<digest>` that runs it on the new environment
  (the operator applies the workloads once it succeeded);
- with `spec.ingress`, `processes.<p>.autoscale` or `.disruptionBudget`: an Ingress, a
  HorizontalPodAutoscaler or a PodDisruptionBudget (named as the app or the process).

Every container of every process reads the same snapshot through `envFrom` (invariant 1), and no
value is ever inlined in a pod template (invariant 2). A pod template changes exactly when the
snapshot name changes, so one change of environment is one rollout of each process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from webapp_operator import API_VERSION, KIND
from webapp_operator.domain import envrules, revisions
from webapp_operator.domain.errors import InvalidConfig, WebAppError
from webapp_operator.domain.model import (
    HealthCheck,
    ProcessSpec,
    Resources,
    WebApp,
    process_kind,
)

MANAGED_BY: Final = "webapp-operator"
LABEL_WEBAPP: Final = "twelvefactor.dev/webapp"
LABEL_PROCESS: Final = "twelvefactor.dev/process"
LABEL_ENVIRONMENT: Final = "twelvefactor.dev/environment-of"
ANNOTATION_SOURCES: Final = "twelvefactor.dev/sources"
# A Secret holds at most 1 MiB; leave room for metadata.
MAX_SNAPSHOT_BYTES: Final = 1_000_000
DIGEST_LENGTH: Final = 10
MIGRATE_INFIX: Final = "-migrate-"
MIGRATE_CONTAINER: Final = "migrate"


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings that shape what is rendered."""

    snapshot_key: bytes = field(repr=False)
    proxy: envrules.ProxySettings = field(default_factory=envrules.ProxySettings)
    # Old ReplicaSets kept per Deployment as rollout history; their snapshots are kept too.
    revision_history_limit: int = 3
    default_resources: Resources | None = None


@dataclass(frozen=True)
class ResolvedSecret:
    """A secret option (or integration) resolved to the revision the app tracks."""

    option: str
    namespace: str
    name: str
    revision: int | None
    data: Mapping[str, str] = field(repr=False)

    @property
    def source(self) -> str:
        ref = f"{self.namespace}/{self.name}"
        return ref if self.revision is None else f"{ref}#{self.revision}"


@dataclass(frozen=True)
class RenderInputs:
    """Everything the renderer needs, gathered by the caller."""

    webapp: WebApp
    secrets: Mapping[str, ResolvedSecret]
    integrations: Mapping[str, ResolvedSecret]
    generated_secret_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Rendered:
    """The desired objects of one WebApp."""

    environment: envrules.Environment
    snapshot: dict[str, Any] = field(repr=False)
    deployments: tuple[dict[str, Any], ...]
    service: dict[str, Any]
    ingress: dict[str, Any] | None = None
    autoscalers: tuple[dict[str, Any], ...] = ()
    budgets: tuple[dict[str, Any], ...] = ()
    # The Job of spec.migration: it succeeds before any workload is applied.
    migration: dict[str, Any] | None = None

    @property
    def snapshot_name(self) -> str:
        return str(self.snapshot["metadata"]["name"])

    def workloads(self) -> list[dict[str, Any]]:
        """The objects applied after the snapshot: Deployments, the Service, the Ingress, the
        autoscalers, the disruption budgets."""
        ingress = [self.ingress] if self.ingress else []
        return [*self.deployments, self.service, *ingress, *self.autoscalers, *self.budgets]

    def objects(self) -> list[dict[str, Any]]:
        """In apply order: the snapshot first, so no pod can start before it exists; the
        migration Job before the workloads, which wait for it."""
        migration = [self.migration] if self.migration else []
        return [self.snapshot, *migration, *self.workloads()]


def deployment_name(app: str, process: str) -> str:
    """`shop` for the web process, `shop-celery-worker` for the others."""
    process = process.lower()
    return app if process == "web" else f"{app}-{process}"


def selector_labels(app: str, process: str) -> dict[str, str]:
    """The immutable selector of one process's pods."""
    return {LABEL_WEBAPP: app, LABEL_PROCESS: process.lower()}


# The labels a process's pod template carries (`common_labels`, its component, its selector),
# the same keys for every app: the informer checks them (`state.marks`).
TEMPLATE_LABELS: Final = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
    LABEL_WEBAPP,
    LABEL_PROCESS,
)


def common_labels(webapp: WebApp) -> dict[str, str]:
    """Kubernetes' recommended labels plus ours."""
    return {
        "app.kubernetes.io/name": webapp.name,
        "app.kubernetes.io/instance": webapp.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": webapp.name,
        LABEL_WEBAPP: webapp.name,
    }


def owner_references(webapp: WebApp) -> list[dict[str, Any]]:
    """The WebApp controls everything rendered for it (and garbage-collects it)."""
    if not webapp.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": webapp.name,
            "uid": webapp.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _metadata(webapp: WebApp, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": webapp.namespace,
        "labels": dict(labels),
    }
    owners = owner_references(webapp)
    if owners:
        meta["ownerReferences"] = owners
    return meta


def snapshot_digest(variables: Mapping[str, str], key: bytes) -> str:
    """A keyed digest of the whole environment: stable, and blind without the key."""
    canonical = json.dumps(dict(sorted(variables.items())), separators=(",", ":"))
    mac = hmac.new(key, canonical.encode(), hashlib.sha256).digest()
    # base32 lower-case is valid in DNS names; 10 characters = 50 bits. Base32 encodes 5 bytes
    # at a time (in pure Python): the first 10 bytes give the same first 16 characters.
    return base64.b32encode(mac[:10]).decode().lower()[:DIGEST_LENGTH]


def snapshot_name_matches(name: str, variables: Mapping[str, str], key: bytes) -> bool:
    """True when `name` is the snapshot name of `variables` under `key` (`<app>-env-<digest>`).

    Only the operator holds the key, so a Secret whose content gives back its name was made by
    the operator (for that content); any other Secret under such a name is a squatter's.
    """
    return name.endswith(f"-env-{snapshot_digest(variables, key)}")


def _sources_annotation(inputs: RenderInputs) -> str:
    """Which revision of which Secret the snapshot holds: names and numbers, no values."""
    items = [f"secret:{opt}={ref.source}" for opt, ref in sorted(inputs.secrets.items())]
    items += [
        f"integration:{name}={ref.source}" for name, ref in sorted(inputs.integrations.items())
    ]
    return ",".join(items)


def _snapshot(
    inputs: RenderInputs, environment: envrules.Environment, settings: Settings
) -> dict[str, Any]:
    webapp = inputs.webapp
    variables = environment.as_dict()
    size = sum(len(k) + len(v.encode()) for k, v in variables.items())
    if size > MAX_SNAPSHOT_BYTES:
        largest = sorted(
            environment.variables, key=lambda var: len(var.value.encode()), reverse=True
        )[:3]
        biggest = ", ".join(
            f"{var.name} from {var.source} ({len(var.value.encode())} bytes)" for var in largest
        )
        msg = (
            f"WebApp {webapp.namespace}/{webapp.name}: the environment is {size} bytes; "
            f"a Kubernetes Secret holds at most {MAX_SNAPSHOT_BYTES}. The largest: {biggest}"
        )
        raise InvalidConfig(msg)
    name = f"{webapp.name}-env-{snapshot_digest(variables, settings.snapshot_key)}"
    labels = {
        **common_labels(webapp),
        revisions.MANAGED_LABEL: revisions.KIND_ENVIRONMENT,
        LABEL_ENVIRONMENT: webapp.name,
    }
    meta = _metadata(webapp, name, labels)
    sources = _sources_annotation(inputs)
    if sources:
        meta["annotations"] = {ANNOTATION_SOURCES: sources}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(variables.items())},
    }


def _resources(process: ProcessSpec, webapp: WebApp, settings: Settings) -> dict[str, Any] | None:
    chosen = process.resources or webapp.spec.resources or settings.default_resources
    if chosen is None:
        return None
    return chosen.model_dump(by_alias=True, exclude_none=True)


def _replicas(name: str, process: ProcessSpec, webapp: WebApp) -> int | None:
    """The process's pods; None when its autoscaler decides them (not applied, so not owned)."""
    kind = process_kind(name)
    if kind == "scheduler":
        return 1
    if process.autoscale is not None:
        return None
    if process.replicas is not None:
        return process.replicas
    return webapp.spec.replicas if kind == "web" else 1


def _container(
    name: str, process: ProcessSpec, webapp: WebApp, snapshot: str, port: int, settings: Settings
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name.lower(), "image": webapp.spec.image}
    if process.command is not None:
        container["command"] = list(process.command)
    if process.args is not None:
        container["args"] = list(process.args)
    if webapp.spec.image_pull_policy is not None:
        container["imagePullPolicy"] = webapp.spec.image_pull_policy
    container["envFrom"] = [{"secretRef": {"name": snapshot}}]
    if name.lower() == "web":  # (not the migration's container)
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        if webapp.spec.health_check is not None:
            container["readinessProbe"] = _readiness_probe(webapp.spec.health_check)
    resources = _resources(process, webapp, settings)
    if resources:
        container["resources"] = resources
    if webapp.spec.pod_security == "restricted":
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return container


def _pod_security_context(webapp: WebApp) -> dict[str, Any]:
    """The pod's security context: what the restricted level asks of a pod, and the user and
    group the app asked for."""
    spec = webapp.spec
    context: dict[str, Any] = {}
    if spec.pod_security == "restricted":
        context["runAsNonRoot"] = True
        context["seccompProfile"] = {"type": "RuntimeDefault"}
    if spec.run_as_user is not None:
        context["runAsUser"] = spec.run_as_user
    if spec.run_as_group is not None:
        context["runAsGroup"] = spec.run_as_group
    return context


def _readiness_probe(check: HealthCheck) -> dict[str, Any]:
    """The web container's readiness probe, on its named port `http`."""
    action: dict[str, Any] = (
        {"tcpSocket": {"port": "http"}}
        if check.path is None
        else {"httpGet": {"path": check.path, "port": "http", "scheme": "HTTP"}}
    )
    return {
        **action,
        "initialDelaySeconds": check.initial_delay_seconds,
        "periodSeconds": check.period_seconds,
        "timeoutSeconds": check.timeout_seconds,
        "failureThreshold": check.failure_threshold,
        "successThreshold": 1,
    }


def _pod_spec(container: dict[str, Any], webapp: WebApp) -> dict[str, Any]:
    """A pod of the app: its one container, its ServiceAccount, its security context, the
    nodes it may run on."""
    spec = webapp.spec
    pod_spec: dict[str, Any] = {"containers": [container]}
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    security = _pod_security_context(webapp)
    if security:
        pod_spec["securityContext"] = security
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    return pod_spec


def _pod_metadata(webapp: WebApp, labels: Mapping[str, str]) -> dict[str, Any]:
    """A pod template's metadata: its labels, and the app's pod annotations."""
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if webapp.spec.pod_annotations:
        metadata["annotations"] = dict(webapp.spec.pod_annotations)
    return metadata


def _deployment(
    name: str, process: ProcessSpec, webapp: WebApp, snapshot: str, port: int, settings: Settings
) -> dict[str, Any]:
    kind = process_kind(name)
    selector = selector_labels(webapp.name, name)
    labels = {**common_labels(webapp), "app.kubernetes.io/component": name.lower(), **selector}
    pod_spec = _pod_spec(_container(name, process, webapp, snapshot, port, settings), webapp)
    if process.termination_grace_period_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = process.termination_grace_period_seconds
    strategy: dict[str, Any] = (
        {"type": "Recreate"}
        if kind == "scheduler"
        else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    )
    spec: dict[str, Any] = {
        "revisionHistoryLimit": settings.revision_history_limit,
        "selector": {"matchLabels": selector},
        "strategy": strategy,
        "template": {"metadata": _pod_metadata(webapp, labels), "spec": pod_spec},
    }
    replicas = _replicas(name, process, webapp)
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    if webapp.spec.progress_deadline_seconds is not None:
        spec["progressDeadlineSeconds"] = webapp.spec.progress_deadline_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(webapp, deployment_name(webapp.name, name), labels),
        "spec": spec,
    }


def _autoscaler(
    name: str, process: ProcessSpec, webapp: WebApp, settings: Settings
) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler of an autoscaled process, named as its Deployment."""
    autoscale = process.autoscale
    if autoscale is None:
        return None
    requests = (_resources(process, webapp, settings) or {}).get("requests") or {}
    targets = {"cpu": autoscale.cpu_utilization, "memory": autoscale.memory_utilization}
    for resource, share in targets.items():
        if share is not None and resource not in requests:
            said = "CPU" if resource == "cpu" else resource
            msg = (
                f"process {name!r}: autoscale needs a {said} request "
                f"(resources.requests.{resource}, for the process or the app): {said} "
                "utilization is a share of it"
            )
            raise InvalidConfig(msg)
    deployment = deployment_name(webapp.name, name)
    labels = {**common_labels(webapp), "app.kubernetes.io/component": name.lower()}
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": share},
            },
        }
        for resource, share in targets.items()
        if share is not None
    ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(webapp, deployment, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": autoscale.min_replicas,
            "maxReplicas": autoscale.max_replicas,
            "metrics": metrics,
        },
    }


def _disruption_budget(name: str, process: ProcessSpec, webapp: WebApp) -> dict[str, Any] | None:
    """The PodDisruptionBudget of a process that asks for one, named as its Deployment and
    selecting its pods. Pods that are not ready may always be evicted (a crash-looping pod
    must not hold a node drain up)."""
    budget = process.disruption_budget
    if budget is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": selector_labels(webapp.name, name)}}
    if budget.max_unavailable is not None:
        spec["maxUnavailable"] = budget.max_unavailable
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    labels = {**common_labels(webapp), "app.kubernetes.io/component": name.lower()}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(webapp, deployment_name(webapp.name, name), labels),
        "spec": spec,
    }


def migration_job_name(app: str, digest: str) -> str:
    """`<app>-migrate-<digest>`, the app's part shortened so that the name stays a label value
    (the Job controller labels its pods with it)."""
    return f"{app[: 63 - len(MIGRATE_INFIX) - DIGEST_LENGTH].rstrip('-')}{MIGRATE_INFIX}{digest}"


def _migration_job(
    webapp: WebApp, snapshot: str, port: int, settings: Settings
) -> dict[str, Any] | None:
    """The Job that runs spec.migration in the web container's image, environment snapshot,
    user and resources. Named after a digest of what it runs: a new release (image,
    environment, command) is a new Job, and the same release is the same Job."""
    migration = webapp.spec.migration
    if migration is None:
        return None
    web = next(p for n, p in webapp.spec.process_specs().items() if process_kind(n) == "web")
    container = _container(
        MIGRATE_CONTAINER,
        ProcessSpec(command=migration.command, args=migration.args, resources=web.resources),
        webapp,
        snapshot,
        port,
        settings,
    )
    labels = {**common_labels(webapp), "app.kubernetes.io/component": MIGRATE_CONTAINER}
    template = {
        "metadata": _pod_metadata(webapp, labels),
        "spec": {**_pod_spec(container, webapp), "restartPolicy": "Never"},
    }
    spec = {
        "backoffLimit": migration.backoff_limit,
        "activeDeadlineSeconds": migration.active_deadline_seconds,
        "template": template,
    }
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_LENGTH]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(webapp, migration_job_name(webapp.name, digest), labels),
        "spec": spec,
    }


def _service(webapp: WebApp, port: int) -> dict[str, Any]:
    labels = {**common_labels(webapp), "app.kubernetes.io/component": "web"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(webapp, webapp.name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(webapp.name, "web"),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _ingress(webapp: WebApp) -> dict[str, Any] | None:
    """The Ingress at the base URL's host and path (the model checked both), to the Service."""
    ingress, base_url = webapp.spec.ingress, webapp.spec.base_url
    if ingress is None or base_url is None:
        return None
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    path = parts.path.rstrip("/") or "/"
    labels = {**common_labels(webapp), "app.kubernetes.io/component": "web"}
    metadata = _metadata(webapp, webapp.name, labels)
    if ingress.annotations:
        metadata["annotations"] = dict(ingress.annotations)
    backend = {"service": {"name": webapp.name, "port": {"name": "http"}}}
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {"paths": [{"path": path, "pathType": "Prefix", "backend": backend}]},
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def env_inputs(inputs: RenderInputs, settings: Settings) -> envrules.EnvInputs:
    """What the env rules need, taken from the WebApp, its resolved secrets and the settings."""
    spec = inputs.webapp.spec
    return envrules.EnvInputs(
        framework=spec.framework,
        app_name=inputs.webapp.name,
        namespace=inputs.webapp.namespace,
        port=spec.port,
        config=dict(spec.config or {}),
        secrets={opt: ref.data for opt, ref in inputs.secrets.items()},
        integrations={name: ref.data for name, ref in inputs.integrations.items()},
        generated_secret_key=inputs.generated_secret_key,
        base_url=spec.base_url,
        proxy=settings.proxy,
    )


def _named(error: WebAppError, inputs: RenderInputs) -> WebAppError:
    """An error of the env rules naming the WebApp, and the Secret behind the field at fault
    (`WebApp demo/shop: spec.secrets.credentials: Secret demo/credentials: key 'a.b' ...`)."""
    referents = {envrules.spec_field("secrets", o): ref for o, ref in inputs.secrets.items()}
    referents |= {
        envrules.spec_field("integrations", n): ref for n, ref in inputs.integrations.items()
    }
    ref = referents.get(error.field or "")
    referent = None if ref is None else f"Secret {ref.namespace}/{ref.name}"
    return error.named(f"WebApp {inputs.webapp.namespace}/{inputs.webapp.name}", referent)


def _check_unique_names(webapp: WebApp) -> None:
    seen: dict[str, str] = {}
    for name in webapp.spec.process_specs():
        lowered = name.lower()
        if lowered in seen:
            msg = (
                f"WebApp {webapp.namespace}/{webapp.name}: processes {seen[lowered]!r} and "
                f"{name!r} differ only in case; process names must be unique ignoring case"
            )
            raise InvalidConfig(msg)
        seen[lowered] = name


def render(inputs: RenderInputs, settings: Settings) -> Rendered:
    """The snapshot, the Deployments, the Service and the Ingress (if any) of one WebApp."""
    webapp = inputs.webapp
    _check_unique_names(webapp)
    rules_inputs = env_inputs(inputs, settings)
    try:
        environment = envrules.build_environment(rules_inputs)
        port = envrules.effective_port(rules_inputs)
    except WebAppError as error:
        raise _named(error, inputs) from None
    snapshot = _snapshot(inputs, environment, settings)
    name = snapshot["metadata"]["name"]
    processes = webapp.spec.process_specs()
    order = sorted(processes, key=lambda p: (p.lower() != "web", p.lower()))
    deployments = tuple(_deployment(p, processes[p], webapp, name, port, settings) for p in order)
    try:
        scaled = [_autoscaler(p, processes[p], webapp, settings) for p in order]
    except WebAppError as error:
        raise _named(error, inputs) from None
    return Rendered(
        environment=environment,
        snapshot=snapshot,
        deployments=deployments,
        service=_service(webapp, port),
        ingress=_ingress(webapp),
        autoscalers=tuple(a for a in scaled if a is not None),
        budgets=tuple(
            b for p in order if (b := _disruption_budget(p, processes[p], webapp)) is not None
        ),
        migration=_migration_job(webapp, name, port, settings),
    )
