"""Rendering: the processes, the one shared snapshot, and no value outside it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_operator.domain import model, render
from webapp_operator.domain.errors import InvalidConfig

KEY = b"test-snapshot-key"
SETTINGS = render.Settings(snapshot_key=KEY)
PASSWORD = "canary-Pa55-9d1e"


def app(uid: str | None = "uid-1", **spec: Any) -> model.WebApp:
    base: dict[str, Any] = {
        "framework": "flask",
        "image": "example/app:1",
        "replicas": 2,
        "processes": {
            "web": {"command": ["gunicorn"]},
            "celery-worker": {"command": ["celery", "worker"], "replicas": 3},
            "celery-beat-scheduler": {"command": ["celery", "beat"]},
        },
        "config": {"greeting": "hello"},
        "secrets": {"credentials": {"secretName": "credentials"}},
    }
    base.update(spec)
    meta: dict[str, Any] = {"name": "shop", "namespace": "demo"}
    if uid:
        meta["uid"] = uid
    return model.parse_webapp(
        {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": meta,
            "spec": base,
        }
    )


def inputs(
    webapp: model.WebApp, password: str = PASSWORD, revision: int = 1
) -> render.RenderInputs:
    creds = render.ResolvedSecret(
        option="credentials",
        namespace="demo",
        name="credentials",
        revision=revision,
        data={"username": "admin", "password": password},
    )
    return render.RenderInputs(
        webapp=webapp,
        secrets={"credentials": creds} if webapp.spec.secrets else {},
        integrations={},
        generated_secret_key="generated-key-value",
    )


def decoded(snapshot: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in snapshot["data"].items()}


def test_seed_processes_share_one_snapshot() -> None:
    result = render.render(inputs(app()), SETTINGS)
    names = [d["metadata"]["name"] for d in result.deployments]
    assert names == ["shop", "shop-celery-beat-scheduler", "shop-celery-worker"]
    env_from = {
        json.dumps(c["envFrom"])
        for d in result.deployments
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert env_from == {json.dumps([{"secretRef": {"name": result.snapshot_name}}])}
    env = decoded(result.snapshot)
    assert env["FLASK_CREDENTIALS_USERNAME"] == "admin"
    assert env["FLASK_CREDENTIALS_PASSWORD"] == PASSWORD
    assert env["FLASK_GREETING"] == "hello"


def test_snapshot_is_immutable_and_owned() -> None:
    snapshot = render.render(inputs(app()), SETTINGS).snapshot
    assert snapshot["immutable"] is True
    assert snapshot["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert snapshot["metadata"]["annotations"][render.ANNOTATION_SOURCES] == (
        "secret:credentials=demo/credentials#1"
    )


def test_replicas_and_strategies() -> None:
    by_name = {
        d["metadata"]["name"]: d["spec"] for d in render.render(inputs(app()), SETTINGS).deployments
    }
    assert by_name["shop"]["replicas"] == 2
    assert by_name["shop-celery-worker"]["replicas"] == 3
    scheduler = by_name["shop-celery-beat-scheduler"]
    assert scheduler["replicas"] == 1
    assert scheduler["strategy"] == {"type": "Recreate"}
    assert by_name["shop"]["strategy"]["type"] == "RollingUpdate"


def test_service_selects_only_web_pods() -> None:
    result = render.render(inputs(app()), SETTINGS)
    web = result.deployments[0]
    assert result.service["metadata"]["name"] == "shop"
    assert result.service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    assert result.service["spec"]["ports"][0]["port"] == 8000
    assert web["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8000


def test_recommended_labels_and_owner_on_every_object() -> None:
    for obj in render.render(inputs(app()), SETTINGS).objects():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "webapp-operator"
        assert labels["app.kubernetes.io/instance"] == "shop"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "WebApp"


def test_no_owner_reference_without_uid() -> None:
    result = render.render(inputs(app(uid=None)), SETTINGS)
    assert all("ownerReferences" not in o["metadata"] for o in result.objects())


def test_snapshot_name_changes_exactly_when_content_changes() -> None:
    first = render.render(inputs(app()), SETTINGS).snapshot_name
    same = render.render(inputs(app(), revision=1), SETTINGS).snapshot_name
    changed = render.render(inputs(app(), password="other"), SETTINGS).snapshot_name
    replicas_only = render.render(inputs(app(replicas=5)), SETTINGS).snapshot_name
    assert first == same == replicas_only
    assert changed != first


def test_snapshot_name_is_keyed() -> None:
    first = render.render(inputs(app()), SETTINGS).snapshot_name
    other_key = render.render(inputs(app()), render.Settings(snapshot_key=b"other")).snapshot_name
    assert first != other_key


def test_a_replica_change_does_not_touch_pod_templates() -> None:
    one = render.render(inputs(app()), SETTINGS).deployments
    two = render.render(inputs(app(replicas=7)), SETTINGS).deployments
    assert [d["spec"]["template"] for d in one] == [d["spec"]["template"] for d in two]


def test_processes_differing_only_in_case_are_refused() -> None:
    webapp = app(processes={"a-worker": {}, "A-worker": {}})
    with pytest.raises(InvalidConfig, match="differ only in case"):
        render.render(inputs(webapp), SETTINGS)


def test_an_oversized_environment_is_refused_by_name() -> None:
    big = "x" * 1_100_000
    with pytest.raises(InvalidConfig, match="at most") as raised:
        render.render(inputs(app(), password=big), SETTINGS)
    assert big[:20] not in raised.value.message


def test_default_single_web_process() -> None:
    result = render.render(inputs(app(processes=None, framework="fastapi")), SETTINGS)
    assert [d["metadata"]["name"] for d in result.deployments] == ["shop"]
    assert result.service["spec"]["ports"][0]["port"] == 8080


def test_resources_fall_back_from_process_to_spec_to_settings() -> None:
    webapp = app(
        resources={"limits": {"memory": "256Mi"}},
        processes={"web": {}, "a-worker": {"resources": {"requests": {"cpu": "100m"}}}},
    )
    by_name = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
        for d in render.render(inputs(webapp), SETTINGS).deployments
    }
    assert by_name["shop"]["resources"] == {"limits": {"memory": "256Mi"}}
    assert by_name["shop-a-worker"]["resources"] == {"requests": {"cpu": "100m"}}


@settings(max_examples=200, deadline=None)
@given(
    # No NUL: no environment variable can carry one (tests/unit/test_bad_values.py).
    password=st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), min_size=8, max_size=64
    ).filter(lambda s: s.strip() == s and len(set(s)) > 3),
    username=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=32
    ),
)
def test_no_secret_value_outside_the_snapshot(password: str, username: str) -> None:
    # A marker no rendered name contains, so a hit can only be a leak.
    password, username = f"cnry:{password}", f"cnry:{username}"
    webapp = app()
    creds = render.ResolvedSecret(
        "credentials", "demo", "credentials", 1, {"username": username, "password": password}
    )
    result = render.render(
        render.RenderInputs(webapp=webapp, secrets={"credentials": creds}, integrations={}),
        SETTINGS,
    )
    outside = json.dumps([*result.deployments, result.service, result.snapshot["metadata"]])
    for value in (password, username):
        assert value not in outside
        assert base64.b64encode(value.encode()).decode() not in outside
    assert password not in repr(result)


def test_port_option_sets_the_service_and_container_port() -> None:
    result = render.render(inputs(app(framework="go", config={"port": 9000})), SETTINGS)
    assert result.service["spec"]["ports"][0]["port"] == 9000
    web = result.deployments[0]["spec"]["template"]["spec"]["containers"][0]
    assert web["ports"][0]["containerPort"] == 9000
    assert decoded(result.snapshot)["PORT"] == "9000"


def containers(result: render.Rendered) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
        for d in result.deployments
    }


def test_a_health_check_is_the_web_containers_readiness_probe_on_its_port() -> None:
    check = {"path": "/healthz", "periodSeconds": 5, "failureThreshold": 2}
    web = containers(render.render(inputs(app(healthCheck=check)), SETTINGS))
    assert web["shop"]["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 0,
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 2,
        "successThreshold": 1,
    }
    # Workers and schedulers serve no port: no probe of theirs.
    assert "readinessProbe" not in web["shop-celery-worker"]
    assert "readinessProbe" not in web["shop-celery-beat-scheduler"]


def test_a_health_check_without_a_path_connects_to_the_port() -> None:
    web = containers(render.render(inputs(app(healthCheck={})), SETTINGS))["shop"]
    assert web["readinessProbe"]["tcpSocket"] == {"port": "http"}
    assert "httpGet" not in web["readinessProbe"]


def test_the_progress_deadline_is_every_deployments() -> None:
    result = render.render(inputs(app(progressDeadlineSeconds=120)), SETTINGS)
    assert {d["spec"]["progressDeadlineSeconds"] for d in result.deployments} == {120}


def test_without_them_the_deployments_are_rendered_as_before() -> None:
    """No probe and no deadline unless asked: an upgrade of the operator rolls no app."""
    result = render.render(inputs(app()), SETTINGS)
    for deployment in result.deployments:
        assert "progressDeadlineSeconds" not in deployment["spec"]
        assert "readinessProbe" not in deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    "check",
    [
        {"path": "healthz"},
        {"path": "/with space"},
        {"periodSeconds": 0},
        {"failureThreshold": 101},
        {"timeoutSeconds": 0},
        {"probe": "/healthz"},
    ],
    ids=["relative", "whitespace", "period-0", "threshold-101", "timeout-0", "unknown-field"],
)
def test_a_bad_health_check_is_refused(check: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        app(healthCheck=check)


def test_restricted_pods_meet_the_restricted_pod_security_level() -> None:
    result = render.render(
        inputs(app(podSecurity="restricted", runAsUser=584792, runAsGroup=584792)), SETTINGS
    )
    for deployment in result.deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "runAsUser": 584792,
            "runAsGroup": 584792,
        }
        assert pod["containers"][0]["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }


def test_a_user_alone_is_only_the_user() -> None:
    pod = render.render(inputs(app(runAsUser=1000)), SETTINGS).deployments[0]["spec"]["template"]
    assert pod["spec"]["securityContext"] == {"runAsUser": 1000}
    assert "securityContext" not in pod["spec"]["containers"][0]


def test_without_a_security_setting_no_security_context_is_rendered() -> None:
    """As before they existed: an upgrade of the operator rolls no app."""
    for deployment in render.render(inputs(app()), SETTINGS).deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert "securityContext" not in pod
        assert "securityContext" not in pod["containers"][0]


@pytest.mark.parametrize(
    "spec",
    [{"podSecurity": "baseline"}, {"runAsUser": 0}, {"runAsGroup": -1}],
    ids=["unknown-level", "root", "negative-group"],
)
def test_a_bad_security_setting_is_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig):
        app(**spec)


def test_an_ingress_serves_the_web_service_at_the_base_urls_host_and_path() -> None:
    ingress_spec = {
        "className": "nginx",
        "tlsSecretName": "shop-tls",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
    }
    result = render.render(
        inputs(app(baseUrl="https://Shop.Example.com/store/", ingress=ingress_spec)), SETTINGS
    )
    ingress = result.ingress
    assert ingress is not None
    assert ingress["metadata"]["name"] == "shop"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["metadata"]["ownerReferences"][0]["kind"] == "WebApp"
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/store",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "shop", "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
    }
    assert result.objects()[-1] is ingress
    # The same base URL names the app's own address in its environment.
    assert decoded(result.snapshot)["FLASK_BASE_URL"] == "https://Shop.Example.com/store/"


def test_an_ingress_at_the_root_with_nothing_else() -> None:
    ingress = render.render(
        inputs(app(baseUrl="http://shop.example.com", ingress={})), SETTINGS
    ).ingress
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"
    assert set(ingress["spec"]) == {"rules"}
    assert "annotations" not in ingress["metadata"]


def test_no_ingress_unless_asked() -> None:
    result = render.render(inputs(app(baseUrl="https://shop.example.com/")), SETTINGS)
    assert result.ingress is None
    assert [o["kind"] for o in result.objects()].count("Ingress") == 0


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"ingress": {}}, "ingress needs baseUrl"),
        ({"ingress": {}, "baseUrl": "http://10.0.0.1/"}, "is an IP address"),
        ({"ingress": {}, "baseUrl": "http://[::1]/"}, "is an IP address"),
        ({"ingress": {}, "baseUrl": "http://shop.example.com:8080/"}, "has a port"),
        ({"ingress": {}, "baseUrl": "http://shop.example.com/?a=1"}, "query or a fragment"),
        ({"ingress": {}, "baseUrl": "http://shop_1.example.com/"}, "not a DNS name"),
        ({"ingress": {}, "baseUrl": "http://shop.example.com/a//b"}, "not a plain path"),
        ({"ingress": {}, "baseUrl": "http://shop.example.com/../b"}, "not a plain path"),
        ({"ingress": {}, "baseUrl": "http://shop.example.com/a%2Fb"}, "not a plain path"),
        (
            {"ingress": {"annotations": {"twelvefactor.dev/applied": "x"}}, "baseUrl": "http://a"},
            "the operator's own",
        ),
        ({"ingress": {"className": "Not_A_Name"}, "baseUrl": "http://a"}, "className"),
        (
            {"ingress": {"annotations": {"bad key": "x"}}, "baseUrl": "http://a"},
            "not a Kubernetes annotation key",
        ),
    ],
    ids=[
        "no-base-url",
        "ipv4",
        "ipv6",
        "port",
        "query",
        "underscore",
        "double-slash",
        "dot-dot",
        "encoded-slash",
        "our-annotation",
        "bad-class",
        "bad-annotation-key",
    ],
)
def test_an_ingress_the_base_url_cannot_give_is_refused(spec: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidConfig) as refused:
        app(**spec)
    assert said in refused.value.message


def scaled_app(**web: Any) -> model.WebApp:
    processes = {
        "web": {"command": ["gunicorn"], **web},
        "celery-worker": {"command": ["celery", "worker"], "replicas": 3},
    }
    return app(processes=processes, resources={"requests": {"cpu": "250m"}})


def test_an_autoscaled_process_gets_an_autoscaler_and_no_replica_count() -> None:
    result = render.render(
        inputs(scaled_app(autoscale={"minReplicas": 2, "maxReplicas": 6, "cpuUtilization": 70})),
        SETTINGS,
    )
    web = next(d for d in result.deployments if d["metadata"]["name"] == "shop")
    worker = next(d for d in result.deployments if d["metadata"]["name"] == "shop-celery-worker")
    assert "replicas" not in web["spec"]  # the autoscaler's: never applied, never taken back
    assert worker["spec"]["replicas"] == 3
    (scaler,) = result.autoscalers
    assert scaler["metadata"]["name"] == "shop"
    assert scaler["metadata"]["ownerReferences"][0]["kind"] == "WebApp"
    assert scaler["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    }
    assert result.objects()[-1] is scaler


def test_no_autoscaler_unless_asked() -> None:
    assert render.render(inputs(app()), SETTINGS).autoscalers == ()


def test_autoscale_on_memory_too_adds_its_target_and_needs_a_memory_request() -> None:
    scaled = {"autoscale": {"maxReplicas": 4, "memoryUtilization": 75}}
    requests = {"cpu": "100m", "memory": "128Mi"}
    webapp = app(processes={"web": scaled}, resources={"requests": requests})
    (scaler,) = render.render(inputs(webapp), SETTINGS).autoscalers
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in scaler["spec"]["metrics"]
    }
    assert targets == {"cpu": 80, "memory": 75}
    without = app(processes={"web": scaled}, resources={"requests": {"cpu": "100m"}})
    with pytest.raises(InvalidConfig) as refused:
        render.render(inputs(without), SETTINGS)
    assert "process 'web': autoscale needs a memory request" in refused.value.message


def test_autoscale_without_a_cpu_request_is_refused_naming_the_process() -> None:
    webapp = app(processes={"web": {"autoscale": {"maxReplicas": 3}}})
    with pytest.raises(InvalidConfig) as refused:
        render.render(inputs(webapp), SETTINGS)
    assert "process 'web': autoscale needs a CPU request" in refused.value.message


@pytest.mark.parametrize(
    ("processes", "said"),
    [
        ({"web": {"autoscale": {"minReplicas": 5, "maxReplicas": 3}}}, "above maxReplicas"),
        ({"web": {"replicas": 2, "autoscale": {"maxReplicas": 3}}}, "not both"),
        ({"beat-scheduler": {"autoscale": {"maxReplicas": 3}}}, "no autoscale"),
        ({"web": {"autoscale": {}}}, "maxReplicas"),
    ],
    ids=["min-above-max", "replicas-too", "scheduler", "no-max"],
)
def test_a_bad_autoscale_is_refused(processes: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidConfig) as refused:
        app(processes=processes)
    assert said in refused.value.message


PLACEMENT: dict[str, Any] = {
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "nodeSelector": {"pool": "web", "kubernetes.io/arch": "amd64"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ],
    "migration": {"command": ["migrate"]},
}


def test_pod_annotations_node_selector_and_tolerations_reach_every_pod() -> None:
    result = render.render(inputs(app(**PLACEMENT)), SETTINGS)
    assert result.migration is not None
    templates = [d["spec"]["template"] for d in result.deployments]
    templates.append(result.migration["spec"]["template"])
    for template in templates:
        assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
        assert template["spec"]["nodeSelector"] == PLACEMENT["nodeSelector"]
        assert template["spec"]["tolerations"] == PLACEMENT["tolerations"]
    # Only the pods: the Deployments' own metadata carries none of them.
    assert all("annotations" not in d["metadata"] for d in result.deployments)


def test_without_them_no_pod_template_changes() -> None:
    for deployment in render.render(inputs(app()), SETTINGS).deployments:
        template = deployment["spec"]["template"]
        assert set(template["metadata"]) == {"labels"}
        assert not {"nodeSelector", "tolerations"} & set(template["spec"])


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"podAnnotations": {"twelvefactor.dev/applied": "x"}}, "operator's own"),
        ({"podAnnotations": {"bad key": "x"}}, "not a Kubernetes annotation key"),
        ({"nodeSelector": {"pool": "not a value"}}, "nodeSelector"),
        ({"nodeSelector": {"/pool": "a"}}, "not a Kubernetes node label key"),
        ({"tolerations": [{"operator": "Equal", "value": "x"}]}, "without a key"),
        ({"tolerations": [{"key": "k", "operator": "Exists", "value": "x"}]}, "no value"),
        ({"tolerations": [{"key": "k", "tolerationSeconds": 5}]}, "NoExecute only"),
        ({"tolerations": [{"key": "k", "effect": "NoWay"}]}, "effect"),
    ],
)
def test_placement_kubernetes_would_refuse_is_refused(spec: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidConfig, match=said):
        app(**spec)


def test_a_process_may_have_its_own_termination_grace_period() -> None:
    processes = {
        "web": {"command": ["gunicorn"]},
        "celery-worker": {"command": ["celery"], "terminationGracePeriodSeconds": 600},
    }
    result = render.render(inputs(app(processes=processes)), SETTINGS)
    grace = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds")
        for d in result.deployments
    }
    assert grace == {"shop": None, "shop-celery-worker": 600}
