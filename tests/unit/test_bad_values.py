"""Bad input the fuzzing of tests/cluster/test_bad_input.py found answered late, unclearly or not
at all, now refused up front: each case names the field, key or annotation, never a value.

- inputs Kubernetes would only refuse after the rollout began (a Deployment, a pod): resources,
  image whitespace, long process names, NUL characters;
- inputs that silently did the wrong thing: an owned secret named `secret-key` replaced the app's
  own key; malformed rotation or expiry annotations were only logged;
- inputs that stopped every reconcile of a Secret and its apps: a malformed time on a revision;
- messages that did not say where: binary values (no field path), a missing Secret that exists
  but is not opted in, an environment over 1 MB (no hint which variables).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp_operator.domain import envrules, model, quantity, render, resolve, revisions
from webapp_operator.domain.errors import (
    InvalidConfig,
    InvalidSecretKey,
    SecretNotFound,
    SecretNotGranted,
    WebAppError,
)

VALUE = "canary-\u2603-41aa"  # a value no message may show


def webapp(name: str = "shop", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"framework": "flask", "image": "example/app:1"}
    base.update(spec)
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": base,
    }


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidConfig) as caught:
        model.parse_webapp(body)
    return caught.value.message


# ------------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        pytest.param("100m", Decimal("0.1"), id="milli"),
        pytest.param("1Gi", Decimal(2**30), id="binary"),
        pytest.param("2", Decimal(2), id="digits"),
        pytest.param(2, Decimal(2), id="integer"),
        pytest.param("0.5", Decimal("0.5"), id="fraction"),
        pytest.param("1e3", Decimal(1000), id="exponent"),
        pytest.param("+1k", Decimal(1000), id="plus"),
        pytest.param(".5M", Decimal(500_000), id="leading-dot"),
    ],
)
def test_quantities_parse(value: int | str, amount: Decimal) -> None:
    assert quantity.parse(value) == amount


@pytest.mark.parametrize(
    "value",
    ["lots", "-1", -1, "1 Gi", "", "1Gb", "0x10", "1,5", "1.5.5", True, "--1", "1e"],
)
def test_non_quantities_do_not_parse(value: int | str) -> None:
    assert quantity.parse(value) is None


@pytest.mark.parametrize(
    ("requests", "limits", "expected"),
    [
        pytest.param({"cpu": "100m"}, {"cpu": "1", "memory": "1Gi"}, [], id="fine"),
        pytest.param({"cpus": 1}, None, ["requests.cpus: resources are cpu"], id="unknown"),
        pytest.param(None, {"CPU": 1}, ["limits.CPU: resources are cpu"], id="upper-case"),
        pytest.param(
            {"kubernetes.io/gpu": 1}, None, ["requests.kubernetes.io/gpu"], id="reserved-domain"
        ),
        pytest.param({"cpu": "lots"}, None, ["requests.cpu: not a quantity"], id="syntax"),
        pytest.param({"memory": -1}, None, ["requests.memory: not a quantity"], id="negative"),
        pytest.param(  # decimal.Overflow, which is not an OverflowError, escaped as a crash
            {"cpu": "1e999999999"}, None, ["requests.cpu: not a quantity"], id="huge-exponent"
        ),
        pytest.param(
            {"cpu": "2"}, {"cpu": "1500m"}, ["requests.cpu is more than limits.cpu"], id="over"
        ),
        pytest.param(
            {"example.com/gpu": 1}, None, ["needs a limit equal to it"], id="extended-no-limit"
        ),
        pytest.param(
            {"example.com/gpu": 1},
            {"example.com/gpu": 2},
            ["requests.example.com/gpu must equal limits.example.com/gpu"],
            id="extended-differ",
        ),
        pytest.param(
            None, {"example.com/gpu": "500m"}, ["takes whole numbers"], id="extended-fraction"
        ),
        pytest.param(
            {"hugepages-2Mi": "1Gi", "memory": "1Gi"},
            {"hugepages-2Mi": "2Gi"},
            ["requests.hugepages-2Mi must equal limits.hugepages-2Mi"],
            id="hugepages-differ",
        ),
        pytest.param(
            None, {"hugepages-2Mi": "1Gi"}, ["need a cpu or memory"], id="hugepages-alone"
        ),
        pytest.param(None, {"hugepages-big": "1Gi"}, ["limits.hugepages-big"], id="page-size"),
    ],
)
def test_resource_problems_as_kubernetes_sees_them(
    requests: dict[str, Any] | None, limits: dict[str, Any] | None, expected: list[str]
) -> None:
    found = quantity.problems(requests, limits)
    assert len(found) == len(expected), found
    for message, part in zip(found, expected, strict=True):
        assert part in message


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(st.integers(), st.text(max_size=8)),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["cpu", "memory", "example.com/gpu", "hugepages-2Mi"]),
        st.one_of(st.integers(), st.text(max_size=8)),
        max_size=4,
    ),
)
def test_any_resources_are_accepted_or_refused_as_invalid_config(
    requests: dict[str, Any], limits: dict[str, Any]
) -> None:
    body = webapp(resources={"requests": requests, "limits": limits})
    try:
        model.parse_webapp(body)
    except InvalidConfig as error:
        message = error.message
    else:
        return
    assert message.startswith("WebApp demo/shop: spec.resources")


# ------------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"image": " example/app:1"}, "spec.image", id="image-leading-space"),
        pytest.param({"image": "example/app:1\n"}, "spec.image", id="image-newline"),
        pytest.param(
            {"processes": {"p" * 60 + "-worker": {}}},
            "has more than 63 characters",
            id="process-name-too-long",
        ),
        pytest.param(
            {"ownedSecrets": {"secret-key": {"keys": ["a"]}}},
            "is taken by the app's own key Secret",
            id="owned-secret-key",
        ),
        pytest.param(
            {"secrets": {"c": {"secretName": "n" * 64 + "/creds"}}},
            "spec.secrets.c.secretName",
            id="namespace-too-long",
        ),
        pytest.param(
            {"secrets": {"c": {"secretName": "s" * 254}}},
            "spec.secrets.c.secretName: a Secret name has at most 253",
            id="name-too-long",
        ),
        pytest.param(
            {"integrations": {"redis": {"secretName": "s" * 254}}},
            "spec.integrations.redis.secretName",
            id="integration-name-too-long",
        ),
        pytest.param(
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
            "spec.resources: requests.cpu is more than limits.cpu",
            id="requests-over-limits",
        ),
        pytest.param(
            {"processes": {"web": {"resources": {"limits": {"gpu": 1}}}}},
            "spec.processes.web.resources: limits.gpu: resources are cpu",
            id="unknown-resource",
        ),
        pytest.param({"baseUrl": "http://[::1"}, "spec.baseUrl", id="base-url-host"),
        pytest.param({"baseUrl": "http://shop:99999/"}, "spec.baseUrl", id="base-url-port"),
        pytest.param({"baseUrl": "shop.example"}, "spec.baseUrl", id="base-url-scheme"),
    ],
)
def test_what_kubernetes_would_refuse_later_is_refused_now(
    spec: dict[str, Any], expected: str
) -> None:
    message = refusal(webapp(**spec))
    assert expected in message


@pytest.mark.parametrize("name", ["shop.v2", "s" * 64, "Shop"])
def test_a_webapp_name_says_what_it_must_be(name: str) -> None:
    message = refusal(webapp(name=name))
    assert "metadata.name: a WebApp's name must be a DNS-1123 label" in message


def test_an_ordinary_spec_still_parses() -> None:
    body = webapp(
        resources={"requests": {"cpu": "100m", "memory": 64}, "limits": {"memory": "128Mi"}},
        baseUrl="https://shop.example.com:8443/prefix",
        secrets={"c": {"secretName": "other/creds"}},
        ownedSecrets={"api-token": {"keys": ["token"]}},
    )
    assert model.parse_webapp(body).spec.image == "example/app:1"


# ------------------------------------------------------------------------------- resolution


class Lookup:
    """A SecretLookup over one source and its revisions (the Protocol of resolve.py)."""

    def __init__(self, source: resolve.SecretObject | None, latest: int | None = 1) -> None:
        self._source = source
        self._latest = latest

    def source(self, namespace: str, name: str) -> resolve.SecretObject | None:
        return self._source

    def revision(self, namespace: str, name: str, revision: int) -> resolve.SecretObject | None:
        return self._source if revision == self._latest else None

    def latest_revision(self, namespace: str, name: str) -> int | None:
        return self._latest


def secret(data: dict[str, bytes], grant: str = "shop", **annotations: str) -> resolve.SecretObject:
    return resolve.SecretObject(
        namespace="demo",
        name="creds",
        labels={"twelvefactor.dev/secret": "true"},
        annotations={"twelvefactor.dev/grant": grant, **annotations},
        data=data,
    )


def resolve_creds(source: resolve.SecretObject | None, app: str = "shop") -> None:
    parsed = model.parse_webapp(webapp(name=app, secrets={"creds": {"secretName": "creds"}}))
    resolve.resolve_one(parsed, "spec.secrets.creds", "creds", "creds", None, Lookup(source))


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        pytest.param(b"\xff" + VALUE.encode(), "binary data", id="binary"),
        pytest.param(VALUE.encode("utf-16"), "binary data", id="utf-16"),
        pytest.param((VALUE + "\x00").encode(), "a NUL character", id="nul"),
    ],
)
def test_values_no_variable_can_carry_name_the_field_and_key(raw: bytes, what: str) -> None:
    with pytest.raises(InvalidSecretKey) as caught:
        resolve_creds(secret({"ok": b"fine", "blob": raw}))
    message = caught.value.message
    assert message.startswith("WebApp demo/shop: spec.secrets.creds: Secret demo/creds: ")
    assert f"key 'blob' holds {what}" in message
    assert VALUE not in message
    assert "\u2603" not in message


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        pytest.param({"twelvefactor.dev/rotate": "often"}, ["rotate"], id="rotate"),
        pytest.param({"twelvefactor.dev/rotate": "30s"}, ["rotate"], id="rotate-too-short"),
        pytest.param({"twelvefactor.dev/expire": "tomorrow"}, ["expire"], id="expire"),
        pytest.param(
            {"twelvefactor.dev/rotate": "1y", "twelvefactor.dev/expire": "2030-13-01T00:00:00Z"},
            ["rotate", "expire"],
            id="both",
        ),
    ],
)
def test_malformed_schedule_annotations_stop_the_app_taking_content(
    annotations: dict[str, str], named: list[str]
) -> None:
    with pytest.raises(InvalidConfig) as caught:
        resolve_creds(secret({"password": VALUE.encode()}, **annotations))
    message = caught.value.message
    assert "spec.secrets.creds: Secret demo/creds has malformed annotations" in message
    for word in named:
        assert f"twelvefactor.dev/{word}" in message
    assert VALUE not in message


def test_an_app_not_granted_learns_nothing_of_the_annotations() -> None:
    source = secret({"password": VALUE.encode()}, grant="other", **{"twelvefactor.dev/rotate": "x"})
    with pytest.raises(SecretNotGranted) as caught:
        resolve_creds(source)
    assert "rotate" not in caught.value.message


def test_well_formed_annotations_resolve() -> None:
    source = secret(
        {"password": VALUE.encode()},
        **{"twelvefactor.dev/rotate": "monthly", "twelvefactor.dev/expire": "2030-01-01T00:00:00Z"},
    )
    resolve_creds(source)


def test_a_missing_secret_says_how_to_opt_one_in() -> None:
    with pytest.raises(SecretNotFound) as caught:
        resolve_creds(None)
    message = caught.value.message
    assert "Secret demo/creds not found" in message
    assert "kubectl label secret creds -n demo twelvefactor.dev/secret=true" in message


# ------------------------------------------------------------------------------- environment


def test_a_nul_in_a_config_value_names_the_option() -> None:
    inputs = envrules.EnvInputs(
        framework="flask",
        app_name="shop",
        namespace="demo",
        port=None,
        config={"greeting": "hel\x00lo"},
        secrets={},
        integrations={},
        generated_secret_key="k" * 64,
    )
    with pytest.raises(InvalidConfig) as caught:
        envrules.build_environment(inputs)
    assert "config option greeting: its value holds a NUL character" in caught.value.message
    assert "hel" not in caught.value.message


def test_an_environment_over_1mb_names_its_largest_variables() -> None:
    parsed = model.parse_webapp(
        webapp(config={"small": "x"}, secrets={"big": {"secretName": "big"}})
    )
    blob = render.ResolvedSecret("big", "demo", "big", 1, {"blob": VALUE * 70_000})
    with pytest.raises(InvalidConfig) as caught:
        render.render(
            render.RenderInputs(webapp=parsed, secrets={"big": blob}, integrations={}),
            render.Settings(snapshot_key=b"k"),
        )
    message = caught.value.message
    assert "the environment is" in message
    assert "The largest: FLASK_BIG_BLOB from secret option big, key blob (" in message
    assert VALUE not in message


# ------------------------------------------------------------------------------- revisions

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
LABELS = {
    "twelvefactor.dev/secret": "revision",
    "twelvefactor.dev/revision-of": "creds",
    "twelvefactor.dev/revision": "3",
}


@pytest.mark.parametrize("garbage", ["yesterday", "2030-13-01T00:00:00Z", "1", "now!"])
def test_a_malformed_time_on_a_revision_reads_as_absent(garbage: str) -> None:
    revision = revisions.parse_revision(
        LABELS,
        {"twelvefactor.dev/created": garbage, "twelvefactor.dev/revision-expires": garbage},
        CREATED,
    )
    assert revision is not None
    assert (revision.number, revision.created, revision.expires) == (3, CREATED, None)


@given(st.text(max_size=40), st.text(max_size=40))
def test_revision_metadata_never_raises(created: str, expires: str) -> None:
    annotations = {
        "twelvefactor.dev/created": created,
        "twelvefactor.dev/revision-expires": expires,
    }
    try:
        revisions.parse_revision(LABELS, annotations, CREATED)
    except WebAppError as error:  # pragma: no cover - the property says this never happens
        pytest.fail(f"parse_revision raised {error!r}")


@given(st.from_regex(quantity.QUANTITY_PATTERN, fullmatch=True))
def test_every_quantity_the_crd_lets_through_is_answered_without_raising(value: str) -> None:
    """The CRD's pattern admits exponents of any size: the answer is an amount or None."""
    amount = quantity.parse(value)
    assert amount is None or amount >= 0
