"""Properties of the env rules for arbitrary options, keys, values and integration data.

Every secret value below carries the marker SECRET (a snowman) and every plain config value the
marker PLAIN; no option name or key can contain either. So "the marker appears nowhere" proves
that no value reached an exception, a note, a source, a name or a repr.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from webapp_operator.domain import envrules
from webapp_operator.domain.envrules import (
    FRAMEWORKS,
    INTEGRATIONS,
    EnvInputs,
    Environment,
    Framework,
    JsonValue,
    ProxySettings,
)
from webapp_operator.domain.errors import WebAppError

T = TypeVar("T")

SECRET = "\u2603"
PLAIN = "\u2663"

# Names: well-formed ones, framework-looking and reserved ones, and anything at all.
_WELL_FORMED = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
_SPECIAL_NAMES = st.sampled_from(
    [
        "debug",
        "port",
        "secret-key",
        "uvicorn-port",
        "app-secret-key",
        "app-secret-key-id",
        "flask-debug",
        "flask-secret-key-id",
        "webserver-workers",
        "metrics-path",
        "node-env",
        "app-profiles",
        "base-url",
        "credentials",
        "a-b",
        "a",
    ]
)
_ANY_NAME = st.text(alphabet="abAB09-_. é/\tк=", max_size=8)
option_names = st.one_of(_WELL_FORMED, _SPECIAL_NAMES, _ANY_NAME)
secret_keys = st.one_of(
    st.sampled_from(["value", "username", "password", "foo-bar", "foo_bar", "b-c", "c", ""]),
    _ANY_NAME,
)

secret_values = st.text(max_size=12).map(lambda text: f"{SECRET}{text}{SECRET}")
plain_strings = st.text(max_size=8).map(lambda text: f"{PLAIN}{text}")
plain_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=70000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | plain_strings
    | st.sampled_from(["HTTPS", "http", "debug", "sync", "/metrics", "/", "true", "8080"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)

_INTEGRATION_KEYS = [
    "uri",
    "uris",
    "host",
    "hostname",
    "endpoints",
    "port",
    "username",
    "user",
    "password",
    "dbname",
    "database",
    "vhost",
    "tls",
    "endpoint",
    "service-name",
    "access-key",
    "secret-key",
    "bucket",
    "region",
    "s3-uri-style",
    "attributes",
    "tls-ca-chain",
    "auth_type",
    "transport_security",
    "domain",
]
_URIS = st.builds(
    lambda scheme, password, port: f"{scheme}://user:{password}@db.example:{port}/shop",
    st.sampled_from(["postgresql", "mysql", "mongodb", "redis", "amqp"]),
    secret_values,
    st.sampled_from(["5432", "0", "99999", "x", ""]),
)
integration_values = st.one_of(
    secret_values,
    _URIS,
    st.sampled_from(["5432", "true", "plain", "starttls", "none", "host"]).map(
        lambda text: text  # well-formed parts: not marked, never secret in these tests
    ),
)
integration_data = st.dictionaries(
    st.one_of(st.sampled_from(_INTEGRATION_KEYS), _ANY_NAME), integration_values, max_size=6
)

env_inputs = st.builds(
    EnvInputs,
    framework=st.sampled_from(FRAMEWORKS),
    app_name=st.just("shop"),
    namespace=st.just("demo"),
    port=st.one_of(st.none(), st.integers(min_value=1, max_value=65535)),
    config=st.builds(
        lambda plain, secret_key: {**plain, **secret_key},
        st.dictionaries(option_names, plain_values, max_size=5),
        st.dictionaries(
            st.just("app-secret-key"),
            secret_values,
            max_size=1,
        ),
    ),
    secrets=st.dictionaries(
        option_names, st.dictionaries(secret_keys, secret_values, max_size=4), max_size=4
    ),
    integrations=st.dictionaries(
        st.one_of(st.sampled_from(INTEGRATIONS), st.just("ldap")), integration_data, max_size=3
    ),
    generated_secret_key=st.one_of(st.none(), secret_values),
    base_url=st.one_of(st.none(), st.just("https://shop.example.com")),
    proxy=st.builds(
        ProxySettings,
        http_proxy=st.one_of(st.none(), st.just("http://proxy:3128")),
        https_proxy=st.none(),
        no_proxy=st.one_of(st.none(), st.just(".svc")),
    ),
)


def _outcome(inputs: EnvInputs) -> Environment | WebAppError:
    try:
        return envrules.build_environment(inputs)
    except WebAppError as error:
        return error


def _reversed(mapping: Mapping[str, T]) -> dict[str, T]:
    return dict(reversed(list(mapping.items())))


@settings(max_examples=150, deadline=None)
@given(env_inputs)
def test_valid_names_or_a_clear_error(inputs: EnvInputs) -> None:
    outcome = _outcome(inputs)
    if isinstance(outcome, WebAppError):
        assert outcome.message
        assert outcome.reason in ("InvalidConfig", "InvalidSecretKey")
        return
    names = [var.name for var in outcome.variables]
    assert names == sorted(set(names))
    for name in names:
        assert envrules.KUBERNETES_VARIABLE_NAME.fullmatch(name), name
        if inputs.framework != "springboot" or "." not in name:
            assert envrules.VARIABLE_NAME.fullmatch(name), name


@settings(max_examples=200, deadline=None)
@given(env_inputs)
def test_no_value_ever_leaks(inputs: EnvInputs) -> None:
    outcome = _outcome(inputs)
    if isinstance(outcome, WebAppError):
        texts = [
            outcome.message,
            str(outcome),
            repr(outcome),
            "".join(traceback.format_exception(outcome)),
        ]
    else:
        texts = [repr(outcome), str(outcome)]
        for var in outcome.variables:
            texts += [var.name, var.source, repr(var), str(var)]
        for note in outcome.notes:
            texts += [note.variable, note.winner, note.loser, note.message]
    texts.append(repr(inputs))
    for text in texts:
        assert SECRET not in text
        assert PLAIN not in text


@settings(max_examples=100, deadline=None)
@given(env_inputs)
def test_secret_values_are_only_in_sensitive_variables(inputs: EnvInputs) -> None:
    outcome = _outcome(inputs)
    if isinstance(outcome, WebAppError):
        return
    for var in outcome.variables:
        if SECRET in var.value:
            assert var.sensitive, var.name
    for var in outcome.variables:
        if var.source.startswith(("secret option", "integration")):
            assert var.sensitive, var.name


@settings(max_examples=100, deadline=None)
@given(env_inputs)
def test_same_inputs_in_any_order_give_the_same_outcome(inputs: EnvInputs) -> None:
    shuffled = EnvInputs(
        framework=inputs.framework,
        app_name=inputs.app_name,
        namespace=inputs.namespace,
        port=inputs.port,
        config=_reversed(inputs.config),
        secrets={k: _reversed(v) for k, v in _reversed(inputs.secrets).items()},
        integrations={k: _reversed(v) for k, v in _reversed(inputs.integrations).items()},
        generated_secret_key=inputs.generated_secret_key,
        base_url=inputs.base_url,
        proxy=inputs.proxy,
    )
    first, second = _outcome(inputs), _outcome(shuffled)
    if isinstance(first, WebAppError) or isinstance(second, WebAppError):
        assert type(first) is type(second)
        assert str(first) == str(second)
    else:
        assert first == second


@settings(max_examples=100, deadline=None)
@given(
    framework=st.sampled_from(FRAMEWORKS),
    option=_WELL_FORMED,
    keys=st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,6}", fullmatch=True), max_size=4, unique=True),
)
def test_well_formed_secret_options_flatten_or_collide_explicitly(
    framework: Framework, option: str, keys: list[str]
) -> None:
    """Well-formed keys never fail on their own: only a same-name collision is an error."""
    names = {envrules.secret_env_name(framework, option, key) for key in keys}
    inputs = EnvInputs(
        framework=framework,
        app_name="shop",
        namespace="demo",
        port=None,
        config={},
        secrets={option: {key: f"{SECRET}{key}" for key in keys}},
        integrations={},
        generated_secret_key=None,
    )
    outcome = _outcome(inputs)
    reserved_or_framework = envrules.is_framework_option(option, framework) or option in (
        "debug",
        "env",
        "port",
        "secret-key",
        "allowed-hosts",
        "application-root",
    )
    if len(names) < len(keys):
        assert isinstance(outcome, WebAppError)
        assert outcome.reason == "InvalidSecretKey"
        assert "both give the environment variable" in outcome.message
    elif not reserved_or_framework and isinstance(outcome, Environment):
        assert names <= set(outcome.as_dict())


def test_marker_strategy_is_sound() -> None:
    """The markers cannot be part of a generated name."""
    assert SECRET not in "abAB09-_. é/\tк="
    assert PLAIN not in "abAB09-_. é/\tк="
