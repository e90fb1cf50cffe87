"""`spec.ingress` on the real API server: the Ingress it renders is one the API server takes,
it routes the base URL's host and path to the web Service, and it goes when the field goes."""

from __future__ import annotations

from typing import Any

from lightkube.resources.core_v1 import Service
from lightkube.resources.networking_v1 import Ingress
from tests.cluster import opkit
from tests.cluster.support import wait_for

PASSWORD = "canary-ingress-3e9f"

APP: dict[str, Any] = {
    "framework": "django",
    "image": "localhost:32000/shop:1",
    "baseUrl": "https://shop.example.com/store",
    "secrets": {"credentials": {"secretName": "credentials"}},
}


def ingresses(kit: opkit.Kit) -> list[dict[str, Any]]:
    return kit.objects(Ingress, **{"twelvefactor.dev/webapp": "shop"})


def test_an_ingress_routes_the_base_url_to_the_web_service_and_goes_with_the_field(
    kit: opkit.Kit,
) -> None:
    kit.start_operator()
    kit.secret("credentials", {"username": "admin", "password": PASSWORD}, grant="shop")
    spec = {
        **APP,
        "ingress": {
            "className": "nginx",
            "tlsSecretName": "shop-tls",
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        },
    }
    kit.webapp("shop", spec)
    kit.wait_ready("shop")
    found = wait_for(lambda: ingresses(kit), 60, message="the Ingress")
    ingress = found[0]
    assert ingress["metadata"]["name"] == "shop"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "shop.example.com"
    path = rule["http"]["paths"][0]
    assert (path["path"], path["pathType"]) == ("/store", "Prefix")
    backend = path["backend"]["service"]
    service = opkit.as_dict(kit.kube.get(Service, backend["name"], namespace=kit.namespace))
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    env = kit.env(kit.one_snapshot("shop"))
    assert env["DJANGO_BASE_URL"] == "https://shop.example.com/store"

    # Restarted with nothing changed: the Ingress is not written again (invariant 7).
    before = kit.operator_writes()
    kit.stop_operator()
    kit.start_operator()
    kit.operator_log_wait_idle()
    assert kit.operator_writes() == before

    kit.webapp("shop", APP)
    wait_for(lambda: ingresses(kit) == [], 60, message="the Ingress deleted")
    kit.wait_ready("shop")
    assert kit.canary_hits([PASSWORD]) == []
