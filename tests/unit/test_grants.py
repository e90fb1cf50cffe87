"""The `twelvefactor.dev/grant` annotation: parsing, checking, granting and revoking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp_operator.domain import grants, reasons
from webapp_operator.domain.errors import (
    InvalidConfig,
    SecretNotGranted,
    ServiceAccountNotFound,
    ServiceAccountNotGranted,
)
from webapp_operator.domain.grants import AppRef, Grants

NS = "demo"


def refs(*items: str) -> frozenset[AppRef]:
    """`name` or `ns/name` strings as AppRefs, bare names in NS."""
    result = set()
    for item in items:
        namespace, _, name = item.rpartition("/")
        result.add(AppRef(namespace or NS, name))
    return frozenset(result)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, refs(), id="absent-grants-nothing"),
        pytest.param("", refs(), id="empty-grants-nothing"),
        pytest.param("shop", refs("shop"), id="one-name"),
        pytest.param("shop,billing", refs("shop", "billing"), id="two-names"),
        pytest.param(" shop ,  billing\t", refs("shop", "billing"), id="whitespace-tolerated"),
        pytest.param("shop,,billing,", refs("shop", "billing"), id="empty-items-ignored"),
        pytest.param(" , ,", refs(), id="only-separators"),
        pytest.param("shop,shop", refs("shop"), id="duplicates-collapse"),
        pytest.param("tools/reporter", refs("tools/reporter"), id="namespace-slash-name"),
        pytest.param("demo/shop", refs("shop"), id="own-namespace-spelled-out"),
        pytest.param("*", refs("*"), id="wildcard-own-namespace"),
        pytest.param("tools/*", refs("tools/*"), id="wildcard-other-namespace"),
        pytest.param("a1,b-2,3c", refs("a1", "b-2", "3c"), id="dns-label-forms"),
        pytest.param("x" * 63, refs("x" * 63), id="name-63-characters"),
    ],
)
def test_parse_grants(value: str | None, expected: frozenset[AppRef]) -> None:
    assert grants.parse_grants(NS, value) == Grants(NS, expected)


@pytest.mark.parametrize(
    "item",
    [
        pytest.param("Shop", id="upper-case"),
        pytest.param("my_app", id="underscore"),
        pytest.param("-shop", id="leading-dash"),
        pytest.param("shop-", id="trailing-dash"),
        pytest.param("shop.v2", id="dot-is-not-a-webapp-name"),
        pytest.param("x" * 64, id="name-64-characters"),
        pytest.param("*/shop", id="wildcard-namespace"),
        pytest.param("*/*", id="wildcard-everywhere"),
        pytest.param("a/b/c", id="two-slashes"),
        pytest.param("/shop", id="empty-namespace"),
        pytest.param("tools/", id="empty-name"),
        pytest.param("sh op", id="inner-space"),
        pytest.param("shop*", id="partial-wildcard"),
    ],
)
def test_parse_grants_names_the_invalid_item(item: str) -> None:
    with pytest.raises(InvalidConfig, match=re.escape(repr(item))) as caught:
        grants.parse_grants(NS, f"shop, {item}")
    assert caught.value.reason == reasons.INVALID_CONFIG
    assert "NAMESPACE/NAME" in caught.value.message


def test_parse_grants_names_every_invalid_item() -> None:
    with pytest.raises(InvalidConfig) as caught:
        grants.parse_grants(NS, "Bad,shop,also_bad")
    assert "'Bad'" in caught.value.message
    assert "'also_bad'" in caught.value.message
    assert "'shop'" not in caught.value.message


def test_lenient_parse_keeps_valid_items_and_lists_invalid_ones() -> None:
    parsed, invalid = grants.parse_grants_lenient(NS, "shop, Bad ,tools/x, */y")
    assert parsed == Grants(NS, refs("shop", "tools/x"))
    assert invalid == ("Bad", "*/y")


@pytest.mark.parametrize(
    ("annotation", "app", "allowed"),
    [
        pytest.param("shop", AppRef(NS, "shop"), True, id="named"),
        pytest.param("shop", AppRef(NS, "billing"), False, id="other-name"),
        pytest.param(None, AppRef(NS, "shop"), False, id="no-annotation"),
        pytest.param("shop", AppRef("other", "shop"), False, id="bare-name-is-own-namespace-only"),
        pytest.param("other/shop", AppRef("other", "shop"), True, id="cross-namespace-named"),
        pytest.param("other/shop", AppRef(NS, "shop"), False, id="cross-grant-not-own-namespace"),
        pytest.param("*", AppRef(NS, "anything"), True, id="wildcard-covers-own-namespace"),
        pytest.param("*", AppRef("other", "shop"), False, id="wildcard-never-crosses-namespaces"),
        pytest.param("other/*", AppRef("other", "shop"), True, id="namespace-wildcard"),
        pytest.param("other/*", AppRef("third", "shop"), False, id="namespace-wildcard-only-there"),
        pytest.param("other/*", AppRef(NS, "shop"), False, id="namespace-wildcard-not-own"),
        pytest.param("Bad, shop", AppRef(NS, "shop"), True, id="valid-item-grants-despite-bad"),
    ],
)
def test_allows(annotation: str | None, app: AppRef, allowed: bool) -> None:
    parsed, _ = grants.parse_grants_lenient(NS, annotation)
    assert parsed.allows(app) is allowed


def test_allows_refuses_a_wildcard_question() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        Grants(NS).allows(AppRef(NS, "*"))


def test_app_ref_prints_namespace_slash_name() -> None:
    assert str(AppRef("demo", "shop")) == "demo/shop"
    assert AppRef("demo", "shop").relative_to("demo") == "shop"
    assert AppRef("demo", "shop").relative_to("other") == "demo/shop"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("billing, shop", "billing,shop", id="sorted"),
        pytest.param("shop,billing", "billing,shop", id="resorted"),
        pytest.param("demo/shop", "shop", id="own-namespace-bare"),
        pytest.param("x/b, shop, *, a/z", "*,shop,a/z,x/b", id="own-first-then-others"),
        pytest.param(" shop ,, shop ", "shop", id="whitespace-and-duplicates"),
    ],
)
def test_to_annotation_is_canonical(value: str, canonical: str) -> None:
    assert grants.parse_grants(NS, value).to_annotation() == canonical


def test_with_app_adds_once() -> None:
    start = grants.parse_grants(NS, "shop")
    added = start.with_app(AppRef("tools", "reporter")).with_app(AppRef("tools", "reporter"))
    assert added.to_annotation() == "shop,tools/reporter"
    assert start.to_annotation() == "shop"  # immutable


@pytest.mark.parametrize(
    ("value", "revoke", "remaining"),
    [
        pytest.param("shop,billing", AppRef(NS, "shop"), "billing", id="revoke-named"),
        pytest.param("shop,x/a", AppRef("x", "a"), "shop", id="revoke-cross-namespace"),
        pytest.param("shop", AppRef(NS, "billing"), "shop", id="revoke-absent-is-noop"),
        pytest.param("*,shop", AppRef(NS, "*"), "shop", id="revoke-wildcard"),
        pytest.param("x/*,shop", AppRef("x", "*"), "shop", id="revoke-namespace-wildcard"),
        pytest.param("shop", AppRef(NS, "shop"), "", id="revoke-last"),
    ],
)
def test_without_app(value: str, revoke: AppRef, remaining: str) -> None:
    revoked = grants.parse_grants(NS, value).without_app(revoke)
    assert revoked.to_annotation() == remaining
    if not revoke.is_wildcard:
        assert not revoked.allows(revoke)


@pytest.mark.parametrize(
    ("value", "revoke", "wildcard"),
    [
        pytest.param("*,shop", AppRef(NS, "shop"), "'*'", id="own-wildcard"),
        pytest.param("x/*", AppRef("x", "a"), "'x/*'", id="namespace-wildcard"),
    ],
)
def test_without_app_refuses_a_revoke_a_wildcard_undoes(
    value: str, revoke: AppRef, wildcard: str
) -> None:
    with pytest.raises(InvalidConfig, match=re.escape(wildcard)):
        grants.parse_grants(NS, value).without_app(revoke)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param("shop", AppRef(NS, "shop"), id="bare"),
        pytest.param(" shop ", AppRef(NS, "shop"), id="stripped"),
        pytest.param("x/shop", AppRef("x", "shop"), id="qualified"),
        pytest.param("*", AppRef(NS, "*"), id="wildcard"),
        pytest.param("x/*", AppRef("x", "*"), id="namespace-wildcard"),
    ],
)
def test_parse_app_ref(item: str, expected: AppRef) -> None:
    assert grants.parse_app_ref(NS, item) == expected


def test_check_granted_passes_silently() -> None:
    grants.check_granted(NS, "credentials", "shop", AppRef(NS, "shop"))


def test_check_granted_tells_the_same_namespace_fix() -> None:
    with pytest.raises(SecretNotGranted) as caught:
        grants.check_granted(NS, "credentials", "billing", AppRef(NS, "my-app"))
    message = caught.value.message
    assert caught.value.reason == reasons.SECRET_NOT_GRANTED
    assert "Secret demo/credentials has not granted WebApp demo/my-app" in message
    assert "kubectl webapp grant-secret credentials my-app -n demo" in message
    # The annotation alternative keeps the existing grant.
    assert (
        "kubectl annotate secret credentials -n demo --overwrite "
        "twelvefactor.dev/grant=billing,my-app" in message
    )


def test_check_granted_quotes_a_wildcard_for_the_shell() -> None:
    with pytest.raises(SecretNotGranted) as caught:
        grants.check_granted(NS, "credentials", "other/*", AppRef(NS, "my-app"))
    assert "'twelvefactor.dev/grant=my-app,other/*'" in caught.value.message


@pytest.mark.parametrize(
    "annotation",
    [
        pytest.param("my-app", id="bare-name-in-the-secret-namespace"),
        pytest.param("*", id="wildcard-of-the-secret-namespace"),
        pytest.param(None, id="no-grant"),
    ],
)
def test_check_granted_refuses_cross_namespace_and_tells_the_qualified_fix(
    annotation: str | None,
) -> None:
    with pytest.raises(SecretNotGranted) as caught:
        grants.check_granted("vault", "credentials", annotation, AppRef(NS, "my-app"))
    message = caught.value.message
    assert "kubectl webapp grant-secret credentials demo/my-app -n vault" in message
    assert "add demo/my-app to the twelvefactor.dev/grant annotation" in message


def test_check_granted_does_not_show_grants_across_namespaces() -> None:
    with pytest.raises(SecretNotGranted) as caught:
        grants.check_granted("vault", "credentials", "secret-app, Bad", AppRef(NS, "my-app"))
    assert "secret-app" not in caught.value.message
    assert "Bad" not in caught.value.message


def test_check_granted_mentions_invalid_items_in_own_namespace() -> None:
    with pytest.raises(SecretNotGranted) as caught:
        grants.check_granted(NS, "credentials", "my_app", AppRef(NS, "my-app"))
    assert "'my_app'" in caught.value.message


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param("credentials", (NS, "credentials"), id="bare-is-app-namespace"),
        pytest.param("vault/credentials", ("vault", "credentials"), id="qualified"),
        pytest.param("db.example", (NS, "db.example"), id="secret-names-are-subdomains"),
    ],
)
def test_parse_secret_ref(ref: str, expected: tuple[str, str]) -> None:
    assert grants.parse_secret_ref(NS, ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("", id="empty"),
        pytest.param("a/b/c", id="two-slashes"),
        pytest.param("/creds", id="empty-namespace"),
        pytest.param("vault/", id="empty-name"),
        pytest.param("Creds", id="upper-case"),
        pytest.param("vault.ns/creds", id="namespace-is-a-label"),
        pytest.param("*", id="wildcard"),
    ],
)
def test_parse_secret_ref_rejects(ref: str) -> None:
    with pytest.raises(InvalidConfig, match="NAME or NAMESPACE/NAME"):
        grants.parse_secret_ref(NS, ref)


labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
entries = st.builds(
    AppRef,
    namespace=st.sampled_from([NS, "other", "tools"]),
    name=labels | st.just("*"),
)


@given(st.frozensets(entries, max_size=8))
def test_annotation_round_trips(items: frozenset[AppRef]) -> None:
    value = Grants(NS, items).to_annotation()
    assert grants.parse_grants(NS, value) == Grants(NS, items)


@given(st.frozensets(entries, max_size=8), labels, st.sampled_from([NS, "other", "tools"]))
def test_grant_then_revoke(items: frozenset[AppRef], name: str, namespace: str) -> None:
    app = AppRef(namespace, name)
    granted = Grants(NS, items).with_app(app)
    assert granted.allows(app)
    if AppRef(namespace, "*") not in items:
        assert not granted.without_app(app).allows(app)


# --- ServiceAccounts: a WebApp names one only if it grants the app ---------------------------


@pytest.mark.parametrize(
    ("annotation", "allowed"),
    [
        pytest.param("shop", True, id="granted-by-name"),
        pytest.param("demo/shop", True, id="granted-by-namespace-slash-name"),
        pytest.param("*", True, id="granted-to-every-app-of-the-namespace"),
        pytest.param("billing, shop", True, id="one-of-several"),
        pytest.param("billing", False, id="another-app"),
        pytest.param("other/shop", False, id="same-name-other-namespace"),
        pytest.param("other/*", False, id="wildcard-of-another-namespace"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="no-annotation"),
        pytest.param("Shop!, billing", False, id="malformed-never-widens"),
    ],
)
def test_a_service_account_runs_an_app_only_if_it_grants_it(
    annotation: str | None, allowed: bool
) -> None:
    annotations = {} if annotation is None else {grants.GRANT_ANNOTATION: annotation}
    app = AppRef(NS, "shop")
    if allowed:
        grants.check_service_account(NS, "reader", annotations, app)
        return
    with pytest.raises(ServiceAccountNotGranted) as raised:
        grants.check_service_account(NS, "reader", annotations, app)
    assert raised.value.reason == reasons.SERVICE_ACCOUNT_NOT_GRANTED
    message = raised.value.message
    assert "ServiceAccount demo/reader has not granted WebApp demo/shop" in message
    assert "kubectl annotate serviceaccount reader -n demo --overwrite" in message
    assert "twelvefactor.dev/grant=" in message


def test_a_missing_service_account_is_named_with_the_fix() -> None:
    with pytest.raises(ServiceAccountNotFound) as raised:
        grants.check_service_account(NS, "reader", None, AppRef(NS, "shop"))
    assert raised.value.reason == reasons.SERVICE_ACCOUNT_NOT_FOUND
    assert "ServiceAccount demo/reader does not exist" in raised.value.message
    assert "twelvefactor.dev/grant=shop" in raised.value.message
