"""Any WebApp the model accepts is either rendered or answered with a WebAppError (a condition
in the cluster, an error line offline): never another exception, whatever its config values,
resources, port or base URL hold (invariant 6). Found with it: a quantity with a huge
exponent raised decimal.Overflow; an integer option of thousands of digits, ValueError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from webapp_operator.domain import model, render, resolve
from webapp_operator.domain.errors import WebAppError

ODD_TEXT = ["1" * 5000, "1e999999999", "9" * 25, "²", "-0", "0x10", " 7 ", "1_0", "NaN", "inf"]
SCALARS = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(ODD_TEXT),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
OPTIONS = st.sampled_from(
    [
        "webserver-workers",
        "webserver-timeout",
        "webserver-keepalive",
        "webserver-threads",
        "webserver-worker-class",
        "metrics-port",
        "metrics-path",
        "app-port",
        "django-allowed-hosts",
        "greeting",
    ]
) | st.text(min_size=1, max_size=12)
QUANTITIES = (
    st.sampled_from(["1e999999999", "1E-999999999", "500m", "1Gi", "0", "1" * 5000, "1.5e3Mi"])
    | st.text(max_size=10)
    | st.integers(-5, 10**20)
)
RESOURCE_NAMES = st.sampled_from(["cpu", "memory", "hugepages-2Mi", "example.com/gpu"])


@st.composite
def webapps(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "framework": draw(
            st.sampled_from(["flask", "django", "fastapi", "go", "expressjs", "springboot"])
        ),
        "image": "shop:1",
        # Often no config at all, so that what follows is reached rather than refused first.
        "config": draw(st.just({}) | st.dictionaries(OPTIONS, VALUES, max_size=3)),
    }
    if draw(st.booleans()):
        spec["resources"] = {
            "requests": draw(st.dictionaries(RESOURCE_NAMES, QUANTITIES, max_size=2)),
            "limits": draw(st.dictionaries(RESOURCE_NAMES, QUANTITIES, max_size=2)),
        }
    if draw(st.booleans()):
        spec["port"] = draw(st.integers(-10, 10**6))
    if draw(st.booleans()):
        spec["baseUrl"] = draw(
            st.sampled_from(
                [
                    "http://x",
                    "https://" + "a" * 300,
                    "http://[::1",
                    "http://x:1" + "0" * 30,
                    "https://shop.example.com/a/b/",
                    "http://Shop.EXAMPLE.com",
                    "http://10.1.2.3/",
                    "http://a.b/%2e%2e/",
                    "http://a.b/x?y#z",
                ]
            )
        )
    if draw(st.booleans()):
        spec["healthCheck"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "path": st.sampled_from(["/", "/healthz", "healthz", "/a b", "/" + "x" * 3000])
                    | st.text(max_size=10),
                    "periodSeconds": st.integers(-1, 5000),
                    "timeoutSeconds": st.integers(-1, 5000),
                    "failureThreshold": st.integers(-1, 200),
                    "initialDelaySeconds": st.integers(-1, 5000) | st.text(max_size=3),
                },
            )
        )
    if draw(st.booleans()):
        spec["progressDeadlineSeconds"] = draw(st.integers(-1, 10**6) | st.none())
    if draw(st.booleans()):
        spec["ingress"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "className": st.sampled_from(["nginx", "Bad_Name", ""]),
                    "tlsSecretName": st.sampled_from(["tls", "x" * 300]),
                    "annotations": st.dictionaries(
                        st.sampled_from(["a", "twelvefactor.dev/x", "bad key", ""]),
                        st.text(max_size=5),
                        max_size=2,
                    ),
                },
            )
        )
    if draw(st.booleans()):
        autoscale = st.fixed_dictionaries(
            {},
            optional={
                "minReplicas": st.integers(-1, 1001),
                "maxReplicas": st.integers(-1, 1001),
                "cpuUtilization": st.integers(0, 2000),
                "memoryUtilization": st.integers(0, 2000) | st.none(),
            },
        )
        names = st.sampled_from(["web", "queue-worker", "beat-scheduler"])
        spec["processes"] = draw(
            st.dictionaries(
                names,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "autoscale": autoscale,
                        "replicas": st.integers(0, 3),
                        "terminationGracePeriodSeconds": st.integers(-1, 90000),
                        "disruptionBudget": st.fixed_dictionaries(
                            {},
                            optional={
                                "maxUnavailable": st.integers(-1, 1001)
                                | st.sampled_from(["25%", "101%", "x", "0%"]),
                                "minAvailable": st.integers(-1, 3) | st.just("50%"),
                            },
                        ),
                    },
                ),
                max_size=3,
            )
        )
    if draw(st.booleans()):
        spec["migration"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "command": st.lists(st.text(max_size=5), max_size=3) | st.none(),
                    "args": st.lists(st.text(max_size=5), max_size=2),
                    "activeDeadlineSeconds": st.integers(-1, 10**5),
                    "backoffLimit": st.integers(-1, 12),
                },
            )
        )
    if draw(st.booleans()):
        keys = st.sampled_from(["a", "example.com/b", "/c", "twelvefactor.dev/x", "bad key", ""])
        spec["podAnnotations"] = draw(st.dictionaries(keys, st.text(max_size=5), max_size=2))
        spec["nodeSelector"] = draw(
            st.dictionaries(keys, st.sampled_from(["web", "", "not ok", "x" * 70]), max_size=2)
        )
        spec["tolerations"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "key": st.sampled_from(["dedicated", ""]),
                        "operator": st.sampled_from(["Exists", "Equal", "In"]),
                        "value": st.sampled_from(["shop", "", "a b"]),
                        "effect": st.sampled_from(["NoSchedule", "NoExecute", "Never"]),
                        "tolerationSeconds": st.integers(-1, 100),
                    },
                ),
                max_size=2,
            )
        )
    if draw(st.booleans()):
        spec["podSecurity"] = draw(st.sampled_from(["restricted", "baseline", "", None]))
        spec["runAsUser"] = draw(st.integers(-1, 2**32) | st.none())
        spec["runAsGroup"] = draw(st.integers(-1, 2**32) | st.none())
    return _app(**spec)


def _app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": "demo", "uid": "u1"},
        "spec": {"framework": "flask", "image": "shop:1", **spec},
    }


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(webapps())
@example(_app(resources={"limits": {"cpu": "1e999999999"}}))  # was decimal.Overflow
@example(_app(config={"webserver-timeout": "1" * 5000}))  # was ValueError from int()
def test_a_webapp_is_rendered_or_refused_with_a_webapp_error(body: dict[str, Any]) -> None:
    try:
        webapp = model.parse_webapp(body)
        inputs = resolve.resolve(webapp, resolve.ManifestSecrets([]), generated_secret_key="k")
        result = render.render(inputs, render.Settings(snapshot_key=b"k" * 32))
    except WebAppError:
        return
    assert result.deployments
    if result.migration is not None:  # the same environment as every process (invariant 1)
        (container,) = result.migration["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": result.snapshot_name}}]
        assert len(result.migration["metadata"]["name"]) <= 63
    selectors = {d["metadata"]["name"]: d["spec"]["selector"] for d in result.deployments}
    for budget in result.budgets:  # a budget selects its process's pods, never a scheduler's
        assert budget["spec"]["selector"] == selectors[budget["metadata"]["name"]]
        assert not budget["metadata"]["name"].endswith("-scheduler")
