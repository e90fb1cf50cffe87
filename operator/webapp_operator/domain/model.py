"""The WebApp resource (twelvefactor.dev/v1alpha1) as pydantic models.

These models are the single source of truth for the schema: `crd.py` generates the
CustomResourceDefinition in `crds/` from them, descriptions included, so `kubectl explain`
shows the same text as this module. Field names are camelCase in YAML (`secretName`) and
snake_case in Python (`secret_name`).

Validation here mirrors what the API server enforces through the CRD (OpenAPI types and CEL
rules), plus the checks only the operator can make. `format_validation_error` turns pydantic's
errors into messages that name the object and the field, and never echo a value.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from webapp_operator import API_VERSION, KIND
from webapp_operator.domain import quantity
from webapp_operator.domain.envrules import INTEGRATIONS, Framework
from webapp_operator.domain.errors import InvalidConfig

# A process is `web`, or ends in `-worker` or `-scheduler` (case-insensitive, as in paas-charm).
PROCESS_NAME_PATTERN = r"^(?i:web|[a-z0-9]([-a-z0-9]*[a-z0-9])?-(worker|scheduler))$"
# The same rule in CEL's RE2 syntax (no inline groups with alternation issues).
PROCESS_NAME_CEL = r"^(?i)(web|[a-z0-9]([-a-z0-9]*[a-z0-9])?-(worker|scheduler))$"
# A process name is a label value and a container name: at most 63 characters.
PROCESS_NAME_MAX = 63
# Options become part of variable names: letters, digits and hyphens, starting with a letter.
OPTION_NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# A Secret reference: `name` or `namespace/name`, a DNS-1123 label (at most 63 characters) and
# a DNS-1123 subdomain (at most 253).
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_63 = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
SECRET_REF_PATTERN = rf"^({DNS_LABEL_63}/)?{DNS_SUBDOMAIN}$"
SECRET_REF_RULE = "self.contains('/') || size(self) <= 253"  # noqa: S105 (a CEL rule)
SECRET_REF_MESSAGE = "a Secret name has at most 253 characters"  # noqa: S105 (a message)
# An image reference never holds whitespace (Kubernetes refuses pods whose image has any at
# either end, after the Deployment was accepted).
IMAGE_PATTERN = r"^\S+$"
# The base URL is an absolute http(s) URL; the operator checks its host and port too.
BASE_URL_PATTERN = r"^https?://\S+$"
# A whole DNS subdomain: a ServiceAccount, an IngressClass or a Secret name, an Ingress host,
# an annotation key's prefix.
DNS_SUBDOMAIN_PATTERN = rf"^{DNS_SUBDOMAIN}$"
# What an Ingress rule takes as a Prefix path (segments of URL-safe characters, none starting
# with ".", no "//"; no encoded "/" either).
INGRESS_PATH_PATTERN = r"^(/[A-Za-z0-9_~!$&'()*+,;=:@%-][A-Za-z0-9._~!$&'()*+,;=:@%-]*)*/?$"
# The name part of an annotation key (after an optional DNS-subdomain prefix and "/").
ANNOTATION_NAME_PATTERN = r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# An absolute path, no whitespace (a probe's httpGet.path).
HEALTH_PATH_PATTERN = r"^/\S*$"
APP_SECRET_KEY_OPTION = "app-secret-key"  # noqa: S105 (an option name)
APP_SECRET_KEY_ID_OPTION = "app-secret-key-id"  # noqa: S105 (an option name)
# `<app>.secret-key` is the app's own key Secret (owned.SECRET_KEY_SUFFIX): no owned secret
# may take its name.
RESERVED_OWNED_NAME = "secret-key"

# Process kinds, derived from the name.
WEB = "web"


def process_kind(name: str) -> Literal["web", "worker", "scheduler"]:
    """Classify a process name the way paas-charm does (suffix, case-insensitive)."""
    lowered = name.lower()
    if lowered == WEB:
        return "web"
    if lowered.endswith("-worker"):
        return "worker"
    if lowered.endswith("-scheduler"):
        return "scheduler"
    msg = f"process {name!r} must be 'web' or end in '-worker' or '-scheduler'"
    raise InvalidConfig(msg)


def _cel(rule: str, message: str) -> JsonDict:
    return {"rule": rule, "message": message}


class _Model(BaseModel):
    """Shared settings: camelCase on the wire, unknown fields refused, values immutable."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
    )


QuantityMap = dict[
    str,
    Annotated[
        int | str,
        Field(
            json_schema_extra={
                "x-kubernetes-int-or-string": True,
                "pattern": quantity.QUANTITY_PATTERN,
                "minimum": 0,
            }
        ),
    ],
]


class Resources(_Model):
    """Compute resources of a container, as in a Pod's `resources`.

    The CRD checks the syntax of each quantity. Names, and requests against limits, are checked
    by the operator (a CEL rule over these maps, nested in up to 20 processes, costs more than
    the API server allows): InvalidConfig, before anything is applied.
    """

    requests: QuantityMap | None = Field(
        default=None,
        description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}.",
    )
    limits: QuantityMap | None = Field(
        default=None,
        description="Maximum resources, e.g. {memory: 256Mi}.",
    )

    @model_validator(mode="after")
    def _as_kubernetes_checks_them(self) -> Resources:
        found = quantity.problems(self.requests, self.limits)
        if found:
            raise ValueError("; ".join(found))
        return self


class Autoscale(_Model):
    """A HorizontalPodAutoscaler for a process: between minReplicas and maxReplicas pods, to
    keep their CPU use near cpuUtilization percent of their CPU request (which it needs), and
    their memory use near memoryUtilization percent of their memory request, if set."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=1, description="The fewest pods."
    )
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = Field(description="The most pods.")
    cpu_utilization: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=80, description="Target CPU use, in percent of each pod's CPU request."
    )
    memory_utilization: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="Also a target memory use, in percent of each pod's memory request (which "
        "it then needs); the autoscaler follows whichever target asks for more pods.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.min_replicas > self.max_replicas:
            msg = f"minReplicas ({self.min_replicas}) is above maxReplicas ({self.max_replicas})"
            raise ValueError(msg)
        return self


# A pod count or a percentage of the process's pods, as a PodDisruptionBudget takes them.
DISRUPTION_PATTERN = r"^([0-9]|[1-9][0-9]|100)%$"
PodsOrPercent = Annotated[
    int | str,
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "pattern": DISRUPTION_PATTERN,
            "minimum": 0,
            "maximum": 1000,
        }
    ),
]


class DisruptionBudget(_Model):
    """A PodDisruptionBudget for a process: how many of its pods a voluntary disruption (a
    node drained for maintenance, a cluster upgrade) may take down at once. Set one of the
    two."""

    max_unavailable: PodsOrPercent | None = Field(
        default=None,
        description="Pods (or a percentage, e.g. 25%) that may be down at once; 0 blocks "
        "every drain.",
    )
    min_available: PodsOrPercent | None = Field(
        default=None, description="Pods (or a percentage) that must stay up."
    )

    @model_validator(mode="after")
    def _one_of_them(self) -> DisruptionBudget:
        if (self.max_unavailable is None) == (self.min_available is None):
            msg = "set maxUnavailable or minAvailable (one of them)"
            raise ValueError(msg)
        for value in (self.max_unavailable, self.min_available):
            if isinstance(value, str) and not re.match(DISRUPTION_PATTERN, value):
                msg = f"{value!r} is not a number of pods or a percentage such as 25%"
                raise ValueError(msg)
            if isinstance(value, int) and not 0 <= value <= 1000:
                msg = f"{value} pods: between 0 and 1000"
                raise ValueError(msg)
        return self


class ProcessSpec(_Model):
    """One process of the app (a Procfile line): its command and its replica count."""

    command: list[str] | None = Field(
        default=None,
        description="Entrypoint of the container; the image's ENTRYPOINT when omitted.",
    )
    args: list[str] | None = Field(
        default=None, description="Arguments to the entrypoint; the image's CMD when omitted."
    )
    replicas: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        default=None,
        description=(
            "Pods of this process. The web process defaults to spec.replicas, workers to 1. "
            "A -scheduler process always runs exactly one pod and may only set 1."
        ),
    )
    resources: Resources | None = Field(
        default=None, description="Overrides spec.resources for this process."
    )
    autoscale: Autoscale | None = Field(
        default=None,
        description="Scale this process on CPU use (a HorizontalPodAutoscaler) instead of a "
        "fixed replica count; not for a -scheduler process. Needs a CPU request.",
    )
    termination_grace_period_seconds: Annotated[int, Field(ge=0, le=86400)] | None = Field(
        default=None,
        description="Seconds a stopping pod of this process gets between SIGTERM and SIGKILL "
        "(a worker finishing its task); Kubernetes' 30 when omitted.",
    )
    disruption_budget: DisruptionBudget | None = Field(
        default=None,
        description="A PodDisruptionBudget: how many pods a node drain may take at once; not "
        "for a -scheduler process (its one pod would block every drain).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.maxUnavailable) != has(self.minAvailable)",
                    "set maxUnavailable or minAvailable (one of them)",
                )
            ]
        },
    )


def _metadata_keys(
    value: dict[str, str] | None, what: str, own_prefix: bool = False
) -> dict[str, str] | None:
    """Refuse keys that are not Kubernetes annotation or label keys ([prefix/]name), and the
    operator's own prefix unless `own_prefix`."""
    for key in value or {}:
        prefix, slash, name = key.rpartition("/")
        if not re.match(ANNOTATION_NAME_PATTERN, name) or (
            slash and not (re.match(DNS_SUBDOMAIN_PATTERN, prefix) and len(prefix) <= 253)
        ):
            msg = f"{what} {key!r} is not a Kubernetes {what} key ([prefix/]name)"
            raise ValueError(msg)
        if prefix == "twelvefactor.dev" and not own_prefix:
            msg = f"{what} {key!r}: the twelvefactor.dev/ prefix is the operator's own"
            raise ValueError(msg)
    return value


# A label value: at most 63 characters, alphanumerics with -_. inside.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


class Toleration(_Model):
    """A toleration of every pod of the app (as a pod spec writes it): the pods may run on
    nodes with a matching taint."""

    key: str | None = Field(default=None, max_length=317, description="The taint's key.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Equal (the default) or Exists (any value)."
    )
    value: str | None = Field(
        default=None, pattern=LABEL_VALUE_PATTERN, max_length=63, description="The value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint's effect; any when omitted."
    )
    toleration_seconds: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="With NoExecute: how long the pod stays after the taint."
    )

    @model_validator(mode="after")
    def _as_kubernetes_checks_it(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            msg = "a toleration with operator Exists has no value"
            raise ValueError(msg)
        if self.key is None and self.operator != "Exists":
            msg = "a toleration without a key must have operator Exists"
            raise ValueError(msg)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            msg = "tolerationSeconds is for effect NoExecute only"
            raise ValueError(msg)
        return self


class Ingress(_Model):
    """An Ingress for the web process's Service at spec.baseUrl: its host and path. The base
    URL is where the app is reached; the Ingress is what makes it so (Juju's ingress
    integration, which gives a paas-charm app its base URL)."""

    class_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description="The IngressClass (ingressClassName); the cluster's default when omitted.",
    )
    tls_secret_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description="A TLS Secret for the host (cert-manager can make it from an annotation); "
        "no TLS section when omitted.",
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=64,
        description="Annotations of the Ingress, for its controller or for cert-manager "
        "(e.g. cert-manager.io/cluster-issuer: letsencrypt).",
    )

    @field_validator("annotations")
    @classmethod
    def _not_ours(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _metadata_keys(value, "annotation")


class HealthCheck(_Model):
    """The web process's readiness probe: a pod gets traffic, and a rollout moves on, only
    once the check passes. Without one, Kubernetes takes a started container for a ready one,
    so a rollout onto a bad environment (a wrong password in a new revision) replaces every
    healthy pod; with one, the rollout stops at the first new pod that fails its check and the
    previous pods keep serving (Ready=False, RolloutStalled, after the progress deadline)."""

    path: str | None = Field(
        default=None,
        pattern=HEALTH_PATH_PATTERN,
        max_length=2048,
        description="HTTP GET on the web port; a 2xx or 3xx answer passes, e.g. /healthz. "
        "Omitted: a TCP connection to the web port passes.",
    )
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=10, description="Seconds between two checks."
    )
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=3, description="Seconds a check may take before it counts as failed."
    )
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, description="Failed checks in a row that take a pod out of the Service."
    )
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = Field(
        default=0, description="Seconds after the container starts before the first check."
    )


class Migration(_Model):
    """A command run once per release, before any process moves to it: a Job with the app's
    image and its new environment (its database migrations, as paas-charm runs `migrate.sh` or
    `manage.py migrate` before it starts the app). The processes keep their previous release
    until it succeeds; when it fails, they keep it and the app says why."""

    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1,
        max_length=64,
        description="The command, e.g. [python3, manage.py, migrate]; run in the web "
        "container's image, environment, user and resources.",
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=64, description="Arguments to the command."
    )
    active_deadline_seconds: Annotated[int, Field(ge=1, le=86400)] = Field(
        default=600,
        description="Seconds the migration may run, retries included, before it counts as "
        "failed (the Job's activeDeadlineSeconds).",
    )
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0,
        description="Times a failed run is tried again (the Job's backoffLimit). 0: a "
        "migration that failed halfway is looked at before it runs again.",
    )


_SECRET_REF_RULES: JsonDict = {
    "x-kubernetes-validations": [_cel(SECRET_REF_RULE, SECRET_REF_MESSAGE)]
}


def _check_secret_ref(value: str) -> str:
    if "/" not in value and len(value) > 253:
        raise ValueError(SECRET_REF_MESSAGE)
    return value


class SecretOption(_Model):
    """An option of type secret: a Secret whose keys become `<PREFIX><OPTION>_<KEY>`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.revision) || self.refresh == 'manual' || !has(self.refresh)",
                    "revision pins a revision; refresh: auto cannot be combined with it",
                )
            ]
        }
    )

    secret_name: str = Field(
        pattern=SECRET_REF_PATTERN,
        max_length=317,
        json_schema_extra=_SECRET_REF_RULES,
        description=(
            "The Secret: `name` in the WebApp's namespace, or `namespace/name` (the Secret "
            "must grant `<webapp-namespace>/<webapp-name>` in its twelvefactor.dev/grant "
            "annotation). The Secret must carry the label twelvefactor.dev/secret=true."
        ),
    )
    refresh: Literal["auto", "manual"] | None = Field(
        default=None,
        description=(
            "auto (default): follow the latest revision and roll the app on every change. "
            "manual: stay on the tracked revision; `kubectl webapp refresh` moves on."
        ),
    )
    revision: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Pin this revision (for rollback). It must still exist.",
    )

    _secret_ref = field_validator("secret_name")(_check_secret_ref)

    @model_validator(mode="after")
    def _pin_is_manual(self) -> SecretOption:
        if self.revision is not None and self.refresh == "auto":
            msg = "revision pins a revision; refresh: auto cannot be combined with it"
            raise ValueError(msg)
        return self

    @property
    def refresh_mode(self) -> Literal["auto", "manual"]:
        """The effective refresh mode: a pin implies manual, the default is auto."""
        if self.refresh is not None:
            return self.refresh
        return "manual" if self.revision is not None else "auto"


class IntegrationRef(_Model):
    """A Secret that holds connection data (a `uri` key, or parts: host, port, ...)."""

    secret_name: str = Field(
        pattern=SECRET_REF_PATTERN,
        max_length=317,
        json_schema_extra=_SECRET_REF_RULES,
        description=(
            "The Secret with the connection data, e.g. CloudNativePG's `<cluster>-app`. "
            "Tracked, revisioned and granted like any secret option."
        ),
    )
    refresh: Literal["auto", "manual"] | None = Field(
        default=None, description="As for secrets: auto (default) or manual."
    )

    _secret_ref = field_validator("secret_name")(_check_secret_ref)


class OwnedSecret(_Model):
    """A secret the app owns (Juju's application secret): values generated by the operator."""

    keys: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][-._A-Za-z0-9]*$", max_length=253)]] = (
        Field(min_length=1, max_length=32, description="Keys to generate, e.g. [token].")
    )
    length: Annotated[int, Field(ge=16, le=512)] = Field(
        default=32, description="Bytes of randomness per value (URL-safe base64 text)."
    )
    rotate: str | None = Field(
        default=None,
        description="Rotation policy (never, hourly, daily, weekly, monthly, quarterly, yearly, "
        "or a duration such as 720h): the operator generates a new revision when due.",
    )
    grant: list[str] | None = Field(
        default=None,
        description="WebApps that may read it: names in this namespace or namespace/name. "
        "They consume it as secretName: <this-app>.<name>.",
    )
    description: str | None = Field(default=None, max_length=1024, description="For people.")


JsonScalar = str | int | float | bool
ConfigValue = Annotated[
    JsonScalar | list[Any] | dict[str, Any],
    Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}),
]


class WebAppSpec(_Model):
    """The desired state of a 12-factor app."""

    # `config` holds arbitrary JSON values (strings, numbers, booleans, lists), which CEL cannot
    # type: a rule that mentions `self.config` does not compile on the API server. So the rules
    # about config (option names, app-secret-key vs app-secret-key-id, an option in both config
    # and secrets) are checked by the operator and answered with InvalidConfig; the rest is
    # checked at apply time, each rule on the field it is about so that the API server's
    # message names that field.

    framework: Framework = Field(
        description="flask | django | fastapi | go | expressjs | springboot | generic. "
        "Sets the variable prefix (FLASK_, DJANGO_, APP_), framework variables and the port."
    )
    image: str = Field(
        min_length=1,
        pattern=IMAGE_PATTERN,
        description="The OCI image of the app (no whitespace).",
    )
    replicas: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=1, description="Pods of the web process."
    )
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None,
        description="Port of the web process; 8000 for flask and django, 8080 otherwise.",
    )
    processes: dict[str, ProcessSpec] | None = Field(
        default=None,
        max_length=20,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.all(p, p.matches('{PROCESS_NAME_CEL}'))",
                    "process names must be 'web' or end in '-worker' or '-scheduler'",
                ),
                _cel(
                    f"self.all(p, size(p) <= {PROCESS_NAME_MAX})",
                    f"process names have at most {PROCESS_NAME_MAX} characters",
                ),
                _cel(
                    "self.all(p, !p.lowerAscii().endsWith('-scheduler') || !has(self[p].replicas)"
                    " || self[p].replicas == 1)",
                    "a -scheduler process runs exactly one pod: omit replicas or set 1",
                ),
            ]
        },
        description=(
            "Procfile-like processes: `web`, names ending in `-worker` (scale freely) and "
            "names ending in `-scheduler` (always exactly one pod, never two at once). "
            "Without it, a single web process runs the image's entrypoint."
        ),
    )
    config: dict[str, ConfigValue] | None = Field(
        default=None,
        max_length=256,
        description=(
            "Plain options, like charmcraft config options. A user option `greeting` "
            "becomes FLASK_GREETING; options starting with `<framework>-`, `webserver-` or "
            "`app-` are framework options. Non-string values are JSON-encoded."
        ),
    )
    secrets: dict[str, SecretOption] | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.all(k, k.matches('{OPTION_NAME_PATTERN}'))",
                    "option names are lower-case letters, digits and single hyphens",
                )
            ]
        },
        description=(
            "Options of type secret. Option `credentials` over a Secret holding `username` "
            "gives FLASK_CREDENTIALS_USERNAME. `app-secret-key-id` supplies the app's secret key."
        ),
    )
    integrations: dict[str, IntegrationRef] | None = Field(
        default=None,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.all(k, k in " + str(list(INTEGRATIONS)).replace('"', "'") + ")",
                    "known integrations: " + ", ".join(INTEGRATIONS),
                )
            ]
        },
        description=(
            "Secrets with connection data: postgresql, mysql, mongodb, redis, rabbitmq, s3, "
            "smtp, tracing. postgresql gives POSTGRESQL_DB_CONNECT_STRING and its parts."
        ),
    )
    owned_secrets: dict[str, OwnedSecret] | None = Field(
        default=None,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"self.all(k, k.matches('^{DNS_LABEL}$') && size(k) <= 63)",
                    "owned secret names are DNS labels (lower-case letters, digits, hyphens)",
                ),
                _cel(
                    f"!('{RESERVED_OWNED_NAME}' in self)",
                    f"owned secret name {RESERVED_OWNED_NAME} is taken by the app's own key "
                    f"Secret <app>.{RESERVED_OWNED_NAME}",
                ),
            ]
        },
        description=(
            "Secrets this app owns (Juju's application secrets): the operator keeps a Secret "
            "<app>.<name> with generated values, grants it to the listed apps and rotates it "
            "on its policy. Other apps use it as secretName: <app>.<name>."
        ),
    )
    base_url: str | None = Field(
        default=None,
        pattern=BASE_URL_PATTERN,
        max_length=2048,
        description="The public URL (an ingress), used for <PREFIX>BASE_URL: http:// or "
        "https:// and a host. Defaults to http://<name>.<namespace>:<port>.",
    )
    resources: Resources | None = Field(
        default=None, description="Resources of every container unless a process overrides."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy of every container."
    )
    service_account_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "ServiceAccount of the app's pods; the namespace default when omitted. A named "
            "ServiceAccount must grant the app with the annotation Secrets use "
            "(twelvefactor.dev/grant: APP, NAMESPACE/APP or *), else the app is not rendered "
            "(Ready=False, ServiceAccountNotGranted): whoever may create a WebApp must not get "
            "the token of any account of the namespace."
        ),
    )

    ingress: Ingress | None = Field(
        default=None,
        description="Expose the web process at spec.baseUrl (required with it) through an "
        "Ingress named after the app: the URL's host, its path as a prefix.",
    )
    health_check: HealthCheck | None = Field(
        default=None,
        description="Readiness check of the web process (its pods only get traffic, and a "
        "rollout only goes on, once it passes). Omitted: no probe.",
    )
    pod_security: Literal["restricted"] | None = Field(
        default=None,
        description="restricted: every pod meets the restricted Pod Security level (runs as "
        "a non-root user, no privilege escalation, no capabilities, the runtime's default "
        "seccomp profile), so the app runs in namespaces that enforce it. The image must run "
        "as a numeric non-root user, or set runAsUser. Omitted: no security context.",
    )
    run_as_user: Annotated[int, Field(ge=1, le=2147483647)] | None = Field(
        default=None,
        description="The numeric user every container runs as (not root); the image's when "
        "omitted.",
    )
    run_as_group: Annotated[int, Field(ge=0, le=2147483647)] | None = Field(
        default=None,
        description="The numeric group every container runs as; the image's when omitted.",
    )
    pod_annotations: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=64,
        description="Annotations of every pod of the app (e.g. prometheus.io/scrape: "
        '"true"); never the operator\'s twelvefactor.dev/ prefix. A change rolls every process.',
    )
    node_selector: (
        dict[str, Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]] | None
    ) = Field(
        default=None,
        max_length=32,
        description="Node labels every pod of the app needs (the pod spec's nodeSelector).",
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        max_length=32,
        description="Taints every pod of the app tolerates (the pod spec's tolerations).",
    )
    migration: Migration | None = Field(
        default=None,
        description="A command run once for each new release (image, environment, command) "
        "before any process moves to it, such as database migrations. Omitted: none.",
    )
    progress_deadline_seconds: Annotated[int, Field(ge=1, le=86400)] | None = Field(
        default=None,
        description="Seconds a rollout of a process may make no progress before the app "
        "reports Ready=False, RolloutStalled (each Deployment's progressDeadlineSeconds). "
        "Omitted: Kubernetes' 600.",
    )

    @field_validator("processes")
    @classmethod
    def _process_names(cls, value: dict[str, ProcessSpec] | None) -> dict[str, ProcessSpec] | None:
        if value is None:
            return value
        for name, process in value.items():
            if not re.match(PROCESS_NAME_PATTERN, name):
                msg = (
                    f"process name {name!r} must be 'web' or end in '-worker' or '-scheduler' "
                    "(lower-case letters, digits and hyphens)"
                )
                raise ValueError(msg)
            if len(name) > PROCESS_NAME_MAX:
                msg = f"process name {name!r} has more than {PROCESS_NAME_MAX} characters"
                raise ValueError(msg)
            if process_kind(name) == "scheduler" and process.replicas not in (None, 1):
                msg = f"process {name!r} is a scheduler: it runs exactly one pod (replicas: 1)"
                raise ValueError(msg)
            if process.autoscale is not None and process_kind(name) == "scheduler":
                msg = f"process {name!r} is a scheduler: it runs exactly one pod, no autoscale"
                raise ValueError(msg)
            if process.disruption_budget is not None and process_kind(name) == "scheduler":
                msg = (
                    f"process {name!r} is a scheduler: its one pod has no disruption budget "
                    "(one would block every node drain)"
                )
                raise ValueError(msg)
            if process.autoscale is not None and process.replicas is not None:
                msg = f"process {name!r}: set replicas or autoscale, not both"
                raise ValueError(msg)
        return value

    @field_validator("pod_annotations")
    @classmethod
    def _pod_annotation_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _metadata_keys(value, "annotation")

    @field_validator("node_selector")
    @classmethod
    def _node_label_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _metadata_keys(value, "node label", own_prefix=True)  # the nodes' labels

    @field_validator("config", "secrets")
    @classmethod
    def _option_names(cls, value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        for name in value or {}:
            if not re.match(OPTION_NAME_PATTERN, name):
                msg = (
                    f"option name {name!r} must be lower-case letters, digits and single "
                    "hyphens, starting with a letter (e.g. 'credentials', 'secret-test')"
                )
                raise ValueError(msg)
        return value

    @field_validator("owned_secrets")
    @classmethod
    def _owned(cls, value: dict[str, OwnedSecret] | None) -> dict[str, OwnedSecret] | None:
        from webapp_operator.domain import schedule

        for name, owned in (value or {}).items():
            if not re.match(rf"^{DNS_LABEL}$", name) or len(name) > 63:
                msg = f"owned secret name {name!r} must be a DNS label"
                raise ValueError(msg)
            if name == RESERVED_OWNED_NAME:
                msg = (
                    f"owned secret name {name!r} is taken by the app's own key Secret "
                    f"<app>.{RESERVED_OWNED_NAME}"
                )
                raise ValueError(msg)
            if owned.rotate is not None:
                try:
                    schedule.parse_rotate_policy(owned.rotate)
                except InvalidConfig as error:
                    msg = f"{name}.rotate: {error.message}"
                    raise ValueError(msg) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parts = urllib.parse.urlsplit(value)
            host, _ = parts.hostname, parts.port
        except ValueError:
            host = None
        if not host:
            msg = "the base URL must be http:// or https:// with a valid host (and port, if any)"
            raise ValueError(msg)
        return value

    @field_validator("integrations")
    @classmethod
    def _integration_names(
        cls, value: dict[str, IntegrationRef] | None
    ) -> dict[str, IntegrationRef] | None:
        for name in value or {}:
            if name not in INTEGRATIONS:
                msg = f"unknown integration {name!r}; known: {', '.join(INTEGRATIONS)}"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _ingress_at_the_base_url(self) -> WebAppSpec:
        if self.ingress is None:
            return self
        if self.base_url is None:
            msg = "ingress needs baseUrl: the Ingress serves the app at its host and path"
            raise ValueError(msg)
        parts = urllib.parse.urlsplit(self.base_url)
        host = parts.hostname or ""
        if re.match(r"^[0-9.]+$", host) or ":" in host:
            msg = f"ingress: the host of baseUrl ({host}) is an IP address, not a DNS name"
            raise ValueError(msg)
        if parts.port is not None:
            msg = "ingress: baseUrl has a port; an Ingress serves the standard ports only"
            raise ValueError(msg)
        if parts.query or parts.fragment:
            msg = "ingress: baseUrl has a query or a fragment; an Ingress routes by host and path"
            raise ValueError(msg)
        if not re.match(DNS_SUBDOMAIN_PATTERN, host):
            msg = f"ingress: the host of baseUrl ({host}) is not a DNS name an Ingress takes"
            raise ValueError(msg)
        if not re.match(INGRESS_PATH_PATTERN, parts.path or "/") or "%2f" in parts.path.lower():
            msg = (
                f"ingress: the path of baseUrl ({parts.path}) is not a plain path an Ingress takes"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _cross_field(self) -> WebAppSpec:
        if APP_SECRET_KEY_OPTION in (self.config or {}) and APP_SECRET_KEY_ID_OPTION in (
            self.secrets or {}
        ):
            msg = "set app-secret-key (config) or app-secret-key-id (secrets), not both"
            raise ValueError(msg)
        clash = sorted(set(self.config or {}) & set(self.secrets or {}))
        if clash:
            msg = f"option(s) {', '.join(clash)} appear in both config and secrets"
            raise ValueError(msg)
        return self

    def process_specs(self) -> dict[str, ProcessSpec]:
        """The processes to run: the declared ones, and always a web process."""
        processes = dict(self.processes or {})
        if not any(name.lower() == WEB for name in processes):
            processes[WEB] = ProcessSpec()
        return processes


class ObjectMeta(BaseModel):
    """The part of metadata the domain needs."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str
    namespace: str = Field(default="default", pattern=rf"^{DNS_LABEL}$", max_length=63)
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(DNS_LABEL, value) or len(value) > 63:
            msg = (
                "a WebApp's name must be a DNS-1123 label (lower-case letters, digits and '-', "
                "at most 63 characters, no dots): it names the app's Service, Deployments and "
                "labels"
            )
            raise ValueError(msg)
        return value


class WebApp(BaseModel):
    """A WebApp object as read from a manifest or the API server."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    api_version: Literal["twelvefactor.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["WebApp"]
    metadata: ObjectMeta
    spec: WebAppSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


# ----------------------------------------------------------------------------- status


class Condition(_Model):
    """A condition in the shape of metav1.Condition."""

    type: str = Field(description="Ready, SecretUpdateAvailable, SecretRotationDue, ...")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="A CamelCase reason, e.g. Available or SecretNotGranted.")
    message: str = Field(default="", description="What happened, for a person.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The spec generation this condition was computed from."
    )


class SecretStatus(_Model):
    """Which revision of a secret option the app tracks, and what a refresh would give."""

    option: str = Field(description="The option name in spec.secrets or spec.integrations.")
    secret_name: str = Field(description="The Secret, `name` or `namespace/name`.")
    tracked_revision: int | None = Field(
        default=None, description="The revision the app's pods use."
    )
    latest_revision: int | None = Field(
        default=None, description="The newest revision: what a refresh would move to (peek)."
    )
    notified_revision: int | None = Field(
        default=None,
        description="The latest revision a SecretChanged Event was sent for (manual refresh).",
    )


class WebAppStatus(_Model):
    """The observed state of a WebApp, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, description="The spec generation the operator last acted on."
    )
    conditions: list[Condition] | None = Field(default=None, description="Ready and others.")
    secrets: list[SecretStatus] | None = Field(
        default=None, description="Tracked and latest revision per secret option."
    )
    environment: str | None = Field(
        default=None, description="Name of the immutable environment snapshot the pods use."
    )
    refreshed: str | None = Field(
        default=None,
        description="The last twelvefactor.dev/refresh request handled (kubectl webapp refresh).",
    )
    migration: str | None = Field(
        default=None,
        description="The migration Job that last succeeded: its release does not run it again.",
    )


# ----------------------------------------------------------------------------- parsing


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts)


def format_validation_error(error: ValidationError, subject: str) -> str:
    """One line per problem: `WebApp demo/app: spec.replicas: must be >= 0`. No values."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        loc = _location(tuple(item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{subject}: {loc}: {message}" if loc else f"{subject}: {message}")
    return "\n".join(lines)


def parse_webapp(body: Mapping[str, Any]) -> WebApp:
    """Validate a WebApp body; raise InvalidConfig naming the object and each bad field."""
    meta = body.get("metadata") or {}
    subject = f"WebApp {meta.get('namespace', 'default')}/{meta.get('name', '?')}"
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        msg = f"{subject}: apiVersion must be {API_VERSION} and kind {KIND}"
        raise InvalidConfig(msg)
    try:
        return WebApp.model_validate(body)
    except ValidationError as error:
        raise InvalidConfig(format_validation_error(error, subject)) from None
