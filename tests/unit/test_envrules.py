"""Table-driven tests of the environment-variable rules (paas-charm's naming, for Kubernetes)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TypedDict, Unpack

import pytest

from webapp_operator.domain import envrules
from webapp_operator.domain.envrules import (
    FRAMEWORKS,
    EnvInputs,
    Environment,
    EnvVar,
    Framework,
    JsonValue,
    ProxySettings,
)
from webapp_operator.domain.errors import InvalidConfig, InvalidSecretKey, WebAppError

GENERATED = "generated-key-0123"


def inputs(
    framework: Framework = "flask",
    *,
    config: Mapping[str, JsonValue] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    integrations: Mapping[str, Mapping[str, str]] | None = None,
    port: int | None = None,
    generated: str | None = GENERATED,
    base_url: str | None = None,
    proxy: ProxySettings | None = None,
) -> EnvInputs:
    return EnvInputs(
        framework=framework,
        app_name="shop",
        namespace="demo",
        port=port,
        config=config or {},
        secrets=secrets or {},
        integrations=integrations or {},
        generated_secret_key=generated,
        base_url=base_url,
        proxy=proxy or ProxySettings(),
    )


class Options(TypedDict, total=False):
    config: Mapping[str, JsonValue]
    secrets: Mapping[str, Mapping[str, str]]
    integrations: Mapping[str, Mapping[str, str]]
    port: int | None
    generated: str | None
    base_url: str | None
    proxy: ProxySettings


def build(framework: Framework = "flask", **options: Unpack[Options]) -> Environment:
    return envrules.build_environment(inputs(framework, **options))


def env_of(framework: Framework = "flask", **options: Unpack[Options]) -> dict[str, str]:
    return build(framework, **options).as_dict()


# --------------------------------------------------------------------------------------------
# Prefixes, ports, names


@pytest.mark.parametrize(
    ("framework", "expected_prefix", "expected_port"),
    [
        ("flask", "FLASK_", 8000),
        ("django", "DJANGO_", 8000),
        ("fastapi", "APP_", 8080),
        ("go", "APP_", 8080),
        ("expressjs", "APP_", 8080),
        ("springboot", "APP_", 8080),
        ("generic", "APP_", 8080),
    ],
    ids=lambda v: str(v),
)
def test_prefix_and_default_port(
    framework: Framework, expected_prefix: str, expected_port: int
) -> None:
    assert envrules.prefix(framework) == expected_prefix
    assert envrules.default_port(framework) == expected_port


def test_frameworks_cover_the_literal() -> None:
    assert set(FRAMEWORKS) == {
        "flask",
        "django",
        "fastapi",
        "go",
        "expressjs",
        "springboot",
        "generic",
    }


@pytest.mark.parametrize(
    ("framework", "option", "expected"),
    [
        ("flask", "greeting", "FLASK_GREETING"),
        ("django", "some-name", "DJANGO_SOME_NAME"),
        ("fastapi", "a-b-c", "APP_A_B_C"),
        ("go", "x2", "APP_X2"),
        ("springboot", "Mixed-Case", "APP_MIXED_CASE"),
        ("generic", "under_score", "APP_UNDER_SCORE"),
    ],
    ids=["flask", "django-hyphen", "fastapi-hyphens", "go-digit", "springboot-case", "underscore"],
)
def test_option_env_name(framework: Framework, option: str, expected: str) -> None:
    assert envrules.option_env_name(framework, option) == expected


@pytest.mark.parametrize("option", ["a.b", "a b", "été", "", "a/b"], ids=repr)
def test_option_env_name_rejects_what_cannot_be_a_name(option: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        envrules.option_env_name("flask", option)
    assert repr(option) in caught.value.message


@pytest.mark.parametrize(
    ("framework", "option", "key", "expected"),
    [
        ("flask", "secret-test", "foo", "FLASK_SECRET_TEST_FOO"),
        ("flask", "secret-test", "bar", "FLASK_SECRET_TEST_BAR"),
        ("flask", "secret-test", "foo-bar", "FLASK_SECRET_TEST_FOO_BAR"),
        ("flask", "credentials", "username", "FLASK_CREDENTIALS_USERNAME"),
        ("flask", "credentials", "password", "FLASK_CREDENTIALS_PASSWORD"),
        ("django", "api", "Token", "DJANGO_API_TOKEN"),
        ("go", "api", "1st", "APP_API_1ST"),
        ("springboot", "db", "user_name", "APP_DB_USER_NAME"),
    ],
    ids=[
        "paas-charm-foo",
        "paas-charm-bar",
        "paas-charm-foo-bar",
        "seed-username",
        "seed-password",
        "django-case",
        "leading-digit-key",
        "underscore-key",
    ],
)
def test_secret_env_name(framework: Framework, option: str, key: str, expected: str) -> None:
    assert envrules.secret_env_name(framework, option, key) == expected


@pytest.mark.parametrize(
    "key",
    ["a.b", "with space", "clé", "", "tab\t", "ключ", "a=b"],
    ids=["dot", "space", "accent", "empty", "tab", "cyrillic", "equals"],
)
def test_secret_env_name_rejects_bad_keys(key: str) -> None:
    with pytest.raises(InvalidSecretKey) as caught:
        envrules.secret_env_name("flask", "credentials", key)
    message = caught.value.message
    assert "credentials" in message
    assert (repr(key) in message) if key else ("empty key" in message)
    assert caught.value.reason == "InvalidSecretKey"


def test_bad_secret_key_fails_the_build_naming_option_and_key() -> None:
    with pytest.raises(InvalidSecretKey) as caught:
        build(secrets={"credentials": {"db.password": "hunter2-secret"}})
    assert "credentials" in caught.value.message
    assert "'db.password'" in caught.value.message
    assert "hunter2-secret" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# User options


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        ("", ""),
        ("été", "été"),
        (True, "true"),
        (False, "false"),
        (8, "8"),
        (0, "0"),
        (1.5, "1.5"),
        (["a", "b"], '["a", "b"]'),
        ({"a": 1, "b": [True, None]}, '{"a": 1, "b": [true, null]}'),
        (["é"], '["\\u00e9"]'),
    ],
    ids=[
        "string",
        "empty-string",
        "unicode-string",
        "true",
        "false",
        "int",
        "zero",
        "float",
        "list",
        "map",
        "list-ascii-escaped",
    ],
)
def test_user_option_values(value: JsonValue, expected: str) -> None:
    assert env_of(config={"greeting": value})["FLASK_GREETING"] == expected


def test_unset_user_option_gives_no_variable() -> None:
    assert "FLASK_GREETING" not in env_of(config={"greeting": None})


def test_user_option_of_unsupported_type_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match="config option greeting"):
        build(config={"greeting": object()})  # type: ignore[dict-item]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_user_option_on_every_framework(framework: Framework) -> None:
    name = envrules.prefix(framework) + "GREETING"
    environment = build(framework, config={"greeting": "hello"})
    assert environment.as_dict()[name] == "hello"
    var = next(v for v in environment.variables if v.name == name)
    assert var.source == "config option greeting"
    assert not var.sensitive


# --------------------------------------------------------------------------------------------
# Secret options


def test_flask_seed_credentials() -> None:
    env = env_of(secrets={"credentials": {"username": "alice", "password": "s3cr3t"}})
    assert env["FLASK_CREDENTIALS_USERNAME"] == "alice"
    assert env["FLASK_CREDENTIALS_PASSWORD"] == "s3cr3t"


def test_paas_charm_secret_test_example() -> None:
    environment = build(secrets={"secret-test": {"foo": "1", "bar": "2", "foo-bar": "3"}})
    env = environment.as_dict()
    assert {k: v for k, v in env.items() if k.startswith("FLASK_SECRET_TEST")} == {
        "FLASK_SECRET_TEST_FOO": "1",
        "FLASK_SECRET_TEST_BAR": "2",
        "FLASK_SECRET_TEST_FOO_BAR": "3",
    }
    assert {"FLASK_SECRET_TEST_FOO", "FLASK_SECRET_TEST_FOO_BAR"} <= environment.sensitive_names()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_secret_option_on_every_framework(framework: Framework) -> None:
    environment = build(framework, secrets={"api": {"token": "t0k"}})
    name = envrules.prefix(framework) + "API_TOKEN"
    assert environment.as_dict()[name] == "t0k"
    var = next(v for v in environment.variables if v.name == name)
    assert (var.sensitive, var.source) == (True, "secret option api, key token")


@pytest.mark.parametrize(
    ("secrets", "both"),
    [
        ({"a-b": {"c": "1"}, "a": {"b-c": "2"}}, ("secret option a, key b-c", "secret option a-b")),
        ({"creds": {"foo-bar": "1", "foo_bar": "2"}}, ("key foo-bar", "key foo_bar")),
        ({"creds": {"Key": "1", "key": "2"}}, ("key Key", "key key")),
    ],
    ids=["across-options", "hyphen-vs-underscore", "case"],
)
def test_secret_options_colliding_in_one_layer(
    secrets: Mapping[str, Mapping[str, str]], both: tuple[str, str]
) -> None:
    with pytest.raises(InvalidSecretKey) as caught:
        build(secrets=secrets)
    for source in both:
        assert source in caught.value.message
    assert "1" not in caught.value.message.replace("FLASK_", "")


def test_config_options_colliding_in_one_layer() -> None:
    with pytest.raises(InvalidConfig) as caught:
        build(config={"a-b": "x", "a_b": "y"})
    assert "config option a-b" in caught.value.message
    assert "config option a_b" in caught.value.message


def test_option_in_config_and_secrets_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match="credentials"):
        build(config={"credentials": "x"}, secrets={"credentials": {"u": "v"}})


# --------------------------------------------------------------------------------------------
# Framework defaults and options

DEFAULTS: dict[Framework, dict[str, str]] = {
    "flask": {
        "FLASK_BASE_URL": "http://shop.demo:8000",
        "FLASK_PREFERRED_URL_SCHEME": "HTTPS",
        "FLASK_SECRET_KEY": GENERATED,
    },
    "django": {
        "DJANGO_ALLOWED_HOSTS": '["shop.demo"]',
        "DJANGO_BASE_URL": "http://shop.demo:8000",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": GENERATED,
    },
    "fastapi": {
        "APP_BASE_URL": "http://shop.demo:8080",
        "APP_SECRET_KEY": GENERATED,
        "UVICORN_HOST": "0.0.0.0",  # noqa: S104
        "UVICORN_LOG_LEVEL": "info",
        "UVICORN_PORT": "8080",
        "WEB_CONCURRENCY": "1",
    },
    "go": {"APP_BASE_URL": "http://shop.demo:8080", "APP_SECRET_KEY": GENERATED, "PORT": "8080"},
    "expressjs": {
        "APP_BASE_URL": "http://shop.demo:8080",
        "APP_SECRET_KEY": GENERATED,
        "METRICS_PATH": "/metrics",
        "METRICS_PORT": "8080",
        "NODE_ENV": "production",
        "PORT": "8080",
    },
    "springboot": {
        "APP_BASE_URL": "http://shop.demo:8080",
        "APP_SECRET_KEY": GENERATED,
        "SECRET_KEY": GENERATED,
        "MANAGEMENT_SERVER_PORT": "8080",
        "METRICS_PATH": "/actuator/prometheus",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_TRACES_EXPORTER": "none",
        "SERVER_PORT": "8080",
        "management.endpoints.web.base-path": "/actuator",
        "management.endpoints.web.exposure.include": "prometheus",
        "management.endpoints.web.path-mapping.prometheus": "prometheus",
        "server.forward-headers-strategy": "framework",
    },
    "generic": {
        "APP_BASE_URL": "http://shop.demo:8080",
        "APP_SECRET_KEY": GENERATED,
        "PORT": "8080",
    },
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_defaults_of_every_framework(framework: Framework) -> None:
    environment = build(framework)
    assert environment.as_dict() == DEFAULTS[framework]
    assert environment.notes == ()


FRAMEWORK_OPTIONS: list[tuple[Framework, dict[str, JsonValue], dict[str, str]]] = [
    ("flask", {"flask-env": "staging"}, {"FLASK_ENV": "staging"}),
    ("flask", {"flask-debug": True}, {"FLASK_DEBUG": "true"}),
    ("flask", {"flask-debug": "false"}, {"FLASK_DEBUG": "false"}),
    (
        "flask",
        {"flask-permanent-session-lifetime": 3600},
        {"FLASK_PERMANENT_SESSION_LIFETIME": "3600"},
    ),
    ("flask", {"flask-application-root": "/app"}, {"FLASK_APPLICATION_ROOT": "/app"}),
    ("flask", {"flask-session-cookie-secure": False}, {"FLASK_SESSION_COOKIE_SECURE": "false"}),
    ("flask", {"flask-preferred-url-scheme": "http"}, {"FLASK_PREFERRED_URL_SCHEME": "HTTP"}),
    (
        "flask",
        {"webserver-workers": 4, "webserver-threads": 2, "webserver-worker-class": "gevent"},
        {"GUNICORN_CMD_ARGS": "--workers 4 --threads 2 --worker-class gevent"},
    ),
    (
        "django",
        {"webserver-timeout": 30, "webserver-keepalive": 5},
        {"GUNICORN_CMD_ARGS": "--keep-alive 5 --timeout 30"},
    ),
    ("django", {"django-debug": True}, {"DJANGO_DEBUG": "true"}),
    (
        "django",
        {"django-allowed-hosts": "a.example, b.example,,"},
        {"DJANGO_ALLOWED_HOSTS": '["a.example", "b.example", "shop.demo"]'},
    ),
    (
        "django",
        {"django-allowed-hosts": ["shop.demo", "c.example"]},
        {"DJANGO_ALLOWED_HOSTS": '["shop.demo", "c.example"]'},
    ),
    (
        "fastapi",
        {"webserver-port": 9000},
        {"UVICORN_PORT": "9000", "APP_BASE_URL": "http://shop.demo:9000"},
    ),
    ("fastapi", {"webserver-host": "127.0.0.1"}, {"UVICORN_HOST": "127.0.0.1"}),
    ("fastapi", {"webserver-workers": "3"}, {"WEB_CONCURRENCY": "3"}),
    ("fastapi", {"webserver-log-level": "DEBUG"}, {"UVICORN_LOG_LEVEL": "debug"}),
    (
        "fastapi",
        {"metrics-port": 9102, "metrics-path": "/m"},
        {"METRICS_PORT": "9102", "METRICS_PATH": "/m"},
    ),
    ("go", {"port": 9000}, {"PORT": "9000"}),
    ("go", {"app-port": 9001}, {"PORT": "9001"}),
    ("go", {"metrics-port": 9102}, {"METRICS_PORT": "9102"}),
    ("expressjs", {"node-env": "development"}, {"NODE_ENV": "development"}),
    ("expressjs", {"port": 3000}, {"PORT": "3000", "APP_BASE_URL": "http://shop.demo:3000"}),
    ("expressjs", {"metrics-path": "/stats"}, {"METRICS_PATH": "/stats"}),
    ("springboot", {"app-port": 8081}, {"SERVER_PORT": "8081"}),
    (
        "springboot",
        {"app-profiles": "dev,prod"},
        {"APP_PROFILES": "dev,prod", "spring.profiles.active": "dev,prod"},
    ),
    ("springboot", {"metrics-port": 9000}, {"MANAGEMENT_SERVER_PORT": "9000"}),
    (
        "springboot",
        {"metrics-path": "/metrics"},
        {
            "METRICS_PATH": "/metrics",
            "management.endpoints.web.base-path": "/",
            "management.endpoints.web.path-mapping.prometheus": "metrics",
        },
    ),
    (
        "springboot",
        {"metrics-path": "/a/b/prom"},
        {
            "management.endpoints.web.base-path": "/a/b",
            "management.endpoints.web.path-mapping.prometheus": "prom",
        },
    ),
    ("generic", {"port": 5000}, {"PORT": "5000"}),
    ("generic", {"metrics-path": "/metrics"}, {"METRICS_PATH": "/metrics"}),
]


@pytest.mark.parametrize(
    ("framework", "config", "expected"),
    FRAMEWORK_OPTIONS,
    ids=[f"{fw}-{'-'.join(cfg)}" for fw, cfg, _ in FRAMEWORK_OPTIONS],
)
def test_framework_options(
    framework: Framework, config: dict[str, JsonValue], expected: dict[str, str]
) -> None:
    environment = build(framework, config=config)
    env = environment.as_dict()
    assert {name: env.get(name) for name in expected} == expected
    for name in expected:
        var = next(v for v in environment.variables if v.name == name)
        assert not var.sensitive


def test_framework_option_source_names_the_option_and_defaults_say_so() -> None:
    sources = {v.name: v.source for v in build(config={"flask-debug": True}).variables}
    assert sources["FLASK_DEBUG"] == "framework option flask-debug"
    assert sources["FLASK_PREFERRED_URL_SCHEME"] == (
        "framework default of option flask-preferred-url-scheme"
    )


def test_django_allowed_hosts_takes_the_ingress_host() -> None:
    env = env_of("django", base_url="https://Shop.Example.com/prefix")
    assert json.loads(env["DJANGO_ALLOWED_HOSTS"]) == ["shop.example.com"]


BAD_FRAMEWORK_VALUES: list[tuple[Framework, str, JsonValue]] = [
    ("flask", "flask-debug", "maybe"),
    ("flask", "flask-debug", 2),
    ("flask", "flask-env", ""),
    ("flask", "flask-env", 3),
    ("flask", "flask-permanent-session-lifetime", 0),
    ("flask", "flask-permanent-session-lifetime", True),
    ("flask", "flask-permanent-session-lifetime", "soon"),
    ("flask", "flask-preferred-url-scheme", "ftp"),
    ("flask", "webserver-worker-class", "eventlet"),
    ("flask", "webserver-workers", 0),
    ("django", "django-allowed-hosts", 5),
    ("fastapi", "webserver-log-level", "loud"),
    ("fastapi", "webserver-port", 70000),
    ("fastapi", "webserver-workers", 1.5),
    ("go", "port", "eighty"),
    ("expressjs", "node-env", ["x"]),
    ("springboot", "metrics-path", "/"),
    ("springboot", "app-profiles", ""),
]


@pytest.mark.parametrize(
    ("framework", "option", "value"),
    BAD_FRAMEWORK_VALUES,
    ids=[f"{fw}-{opt}-{val!r}" for fw, opt, val in BAD_FRAMEWORK_VALUES],
)
def test_bad_framework_option_values(framework: Framework, option: str, value: JsonValue) -> None:
    with pytest.raises(InvalidConfig) as caught:
        build(framework, config={option: value})
    assert f"framework option {option}" in caught.value.message


@pytest.mark.parametrize(
    ("framework", "option"),
    [
        ("flask", "flask-foo"),
        ("flask", "webserver-port"),
        ("django", "django-env"),
        ("go", "webserver-workers"),
        ("fastapi", "app-name"),
        ("expressjs", "expressjs-x"),
        ("springboot", "spring-boot-x"),
        ("springboot", "springboot-x"),
        ("generic", "generic-x"),
    ],
    ids=lambda v: str(v),
)
def test_unknown_framework_options_are_invalid(framework: Framework, option: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        build(framework, config={option: "x"})
    message = caught.value.message
    assert option in message
    assert "known options" in message
    assert "app-secret-key" in message


def test_unknown_framework_option_in_secrets_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match="flask-foo"):
        build(secrets={"flask-foo": {"value": "x"}})


def test_plain_framework_option_in_secrets_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match="flask-env: a plain framework option"):
        build(secrets={"flask-env": {"value": "x"}})


@pytest.mark.parametrize(
    ("framework", "option"),
    [("flask", "app-secret-key-id"), ("flask", "flask-secret-key-id"), ("go", "app-secret-key-id")],
    ids=lambda v: str(v),
)
def test_secret_typed_option_in_config_is_invalid(framework: Framework, option: str) -> None:
    with pytest.raises(InvalidConfig, match="of type secret"):
        build(framework, config={option: "secret:abc"})


SAMPLES: dict[str, JsonValue] = {
    "flask-env": "production",
    "flask-debug": True,
    "flask-secret-key": "k" * 10,
    "flask-permanent-session-lifetime": 60,
    "flask-application-root": "/",
    "flask-session-cookie-secure": True,
    "flask-preferred-url-scheme": "HTTPS",
    "django-debug": True,
    "django-secret-key": "k" * 10,
    "django-allowed-hosts": "a.example",
    "webserver-workers": 2,
    "webserver-threads": 2,
    "webserver-keepalive": 2,
    "webserver-timeout": 2,
    "webserver-worker-class": "sync",
    "webserver-port": 8080,
    "webserver-host": "0.0.0.0",  # noqa: S104
    "webserver-log-level": "info",
    "metrics-port": 9000,
    "metrics-path": "/metrics",
    "port": 8080,
    "app-port": 8080,
    "node-env": "production",
    "app-profiles": "dev",
    "app-secret-key": "k" * 10,
}


@pytest.mark.parametrize(
    ("framework", "option"),
    [
        (framework, option)
        for framework in FRAMEWORKS
        for option in envrules.known_framework_options(framework)
        if option in SAMPLES
    ],
    ids=lambda v: str(v),
)
def test_every_known_plain_framework_option_is_accepted(framework: Framework, option: str) -> None:
    assert envrules.is_framework_option(option, framework)
    build(framework, config={option: SAMPLES[option]})


@pytest.mark.parametrize(
    ("framework", "name", "expected"),
    [
        ("flask", "flask-debug", True),
        ("flask", "webserver-workers", True),
        ("flask", "app-anything", True),
        ("flask", "debug", False),
        ("flask", "django-debug", False),
        ("go", "port", True),
        ("go", "node-env", False),
        ("expressjs", "node-env", True),
        ("fastapi", "metrics-port", True),
        ("flask", "metrics-port", False),
        ("springboot", "spring-boot-x", True),
        ("springboot", "greeting", False),
    ],
    ids=lambda v: str(v),
)
def test_is_framework_option(framework: Framework, name: str, expected: bool) -> None:
    assert envrules.is_framework_option(name, framework) is expected


# --------------------------------------------------------------------------------------------
# The app secret key


SECRET_KEY_CASES: list[
    tuple[Framework, dict[str, JsonValue], dict[str, dict[str, str]], str | None, str | None]
] = [
    ("flask", {}, {}, GENERATED, "the operator-generated secret key"),
    ("flask", {"app-secret-key": "from-config"}, {}, "from-config", "config option app-secret-key"),
    ("flask", {"flask-secret-key": "flask-own"}, {}, "flask-own", "config option flask-secret-key"),
    (
        "flask",
        {},
        {"app-secret-key-id": {"value": "from-secret"}},
        "from-secret",
        "secret option app-secret-key-id, key value",
    ),
    (
        "django",
        {},
        {"django-secret-key-id": {"value": "dj"}},
        "dj",
        "secret option django-secret-key-id, key value",
    ),
    (
        "go",
        {},
        {"app-secret-key": {"value": "as-secret"}},
        "as-secret",
        "secret option app-secret-key, key value",
    ),
    ("fastapi", {"app-secret-key": "fa"}, {}, "fa", "config option app-secret-key"),
]


@pytest.mark.parametrize(
    ("framework", "config", "secrets", "expected", "source"),
    SECRET_KEY_CASES,
    ids=[
        "generated",
        "config",
        "flask-secret-key",
        "app-secret-key-id",
        "django-secret-key-id",
        "app-secret-key-as-secret",
        "fastapi-config",
    ],
)
def test_secret_key(
    framework: Framework,
    config: dict[str, JsonValue],
    secrets: dict[str, dict[str, str]],
    expected: str | None,
    source: str | None,
) -> None:
    environment = build(framework, config=config, secrets=secrets)
    name = envrules.prefix(framework) + "SECRET_KEY"
    var = next(v for v in environment.variables if v.name == name)
    assert (var.value, var.source, var.sensitive) == (expected, source, True)
    # A secret-key option is never flattened into <PREFIX><OPTION>_VALUE.
    assert not any(
        v.name.endswith("_ID_VALUE") or "KEY_VALUE" in v.name for v in environment.variables
    )


def test_no_secret_key_at_all_gives_no_variable() -> None:
    assert "FLASK_SECRET_KEY" not in env_of(generated=None)


def test_springboot_carries_the_secret_key_in_both_names() -> None:
    env = env_of("springboot", config={"app-secret-key": "mine"})
    assert env["APP_SECRET_KEY"] == env["SECRET_KEY"] == "mine"


@pytest.mark.parametrize(
    ("config", "secrets"),
    [
        ({"app-secret-key": "a"}, {"app-secret-key-id": {"value": "b"}}),
        ({"flask-secret-key": "a", "app-secret-key": "b"}, {}),
        ({}, {"flask-secret-key-id": {"value": "a"}, "app-secret-key-id": {"value": "b"}}),
    ],
    ids=["config-and-secret", "two-configs", "two-secrets"],
)
def test_secret_key_set_twice_is_invalid(
    config: dict[str, JsonValue], secrets: dict[str, dict[str, str]]
) -> None:
    with pytest.raises(InvalidConfig, match="set only one") as caught:
        build(config=config, secrets=secrets)
    assert "both" in caught.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"value": "a", "other": "b"}, "'other', 'value'"),
        ({"key": "a"}, "'key'"),
        ({}, "no keys"),
        ({"value": ""}, "is empty"),
    ],
    ids=["two-keys", "wrong-key", "no-keys", "empty-value"],
)
def test_secret_key_secret_must_hold_exactly_value(content: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidSecretKey) as caught:
        build(secrets={"app-secret-key-id": content})
    assert "app-secret-key-id" in caught.value.message
    assert fragment in caught.value.message
    assert "hunter" not in caught.value.message


def test_secret_key_config_must_be_a_string() -> None:
    with pytest.raises(InvalidConfig, match="config option app-secret-key: must be"):
        build(config={"app-secret-key": 12345})


# --------------------------------------------------------------------------------------------
# BASE_URL, port, proxies


@pytest.mark.parametrize(
    ("framework", "port", "config", "base_url", "expected"),
    [
        ("flask", None, {}, None, "http://shop.demo:8000"),
        ("flask", 5000, {}, None, "http://shop.demo:5000"),
        ("go", None, {"port": 9000}, None, "http://shop.demo:9000"),
        ("fastapi", 9000, {"webserver-port": 9000}, None, "http://shop.demo:9000"),
        ("django", None, {}, "https://shop.example.com", "https://shop.example.com"),
    ],
    ids=["default-port", "spec-port", "port-option", "both-agree", "ingress"],
)
def test_base_url(
    framework: Framework,
    port: int | None,
    config: dict[str, JsonValue],
    base_url: str | None,
    expected: str,
) -> None:
    env = env_of(framework, port=port, config=config, base_url=base_url)
    assert env[envrules.prefix(framework) + "BASE_URL"] == expected


@pytest.mark.parametrize(
    ("framework", "port", "config", "expected"),
    [
        ("flask", None, {}, 8000),
        ("generic", None, {}, 8080),
        ("generic", 7000, {}, 7000),
        ("go", None, {"app-port": 9000}, 9000),
        ("springboot", None, {"app-port": 8081}, 8081),
        ("fastapi", None, {"webserver-port": "9001"}, 9001),
    ],
    ids=["flask-default", "generic-default", "spec", "go-app-port", "springboot", "fastapi"],
)
def test_effective_port(
    framework: Framework, port: int | None, config: dict[str, JsonValue], expected: int
) -> None:
    assert envrules.effective_port(inputs(framework, port=port, config=config)) == expected


def test_spec_port_and_port_option_disagreeing_is_invalid() -> None:
    with pytest.raises(InvalidConfig, match=r"spec\.port and framework option webserver-port"):
        build("fastapi", port=8080, config={"webserver-port": 9000})


def test_two_port_options_are_invalid() -> None:
    with pytest.raises(InvalidConfig, match="port and app-port"):
        build("go", config={"port": 1000, "app-port": 1000})


def test_port_option_source() -> None:
    sources = {v.name: v.source for v in build("go", config={"port": 9000}).variables}
    assert sources["PORT"] == "framework option port"
    sources = {v.name: v.source for v in build("go", port=9000).variables}
    assert sources["PORT"] == "spec.port"


@pytest.mark.parametrize(
    ("proxy", "expected"),
    [
        (ProxySettings(), {}),
        (
            ProxySettings(http_proxy="http://proxy:3128"),
            {"http_proxy": "http://proxy:3128", "HTTP_PROXY": "http://proxy:3128"},
        ),
        (
            ProxySettings(https_proxy="http://p:3128", no_proxy="127.0.0.1,.svc"),
            {
                "https_proxy": "http://p:3128",
                "HTTPS_PROXY": "http://p:3128",
                "no_proxy": "127.0.0.1,.svc",
                "NO_PROXY": "127.0.0.1,.svc",
            },
        ),
        (ProxySettings(http_proxy=""), {}),
    ],
    ids=["none", "http", "https-and-no-proxy", "empty"],
)
def test_proxy_variables(proxy: ProxySettings, expected: dict[str, str]) -> None:
    env = env_of(proxy=proxy)
    assert {k: v for k, v in env.items() if k.lower().endswith("_proxy")} == expected


def test_proxy_with_credentials_is_sensitive() -> None:
    environment = build(proxy=ProxySettings(http_proxy="http://user:pw@proxy:3128"))
    assert {"http_proxy", "HTTP_PROXY"} <= environment.sensitive_names()


# --------------------------------------------------------------------------------------------
# Integrations

CNPG_URI = "postgresql://app:p%40ss@shop-db-rw.demo:5432/app"
CNPG_SECRET = {
    "uri": CNPG_URI,
    "host": "shop-db-rw",
    "port": "5432",
    "username": "app",
    "user": "app",
    "password": "p@ss",
    "dbname": "app",
    "jdbc-uri": "jdbc:postgresql://shop-db-rw.demo:5432/app?password=p%40ss&user=app",
    "pgpass": "shop-db-rw:5432:app:app:p@ss\n",
}


def db_vars(prefix: str, uri: str, **parts: str) -> dict[str, str]:
    return {f"{prefix}_DB_CONNECT_STRING": uri, **{f"{prefix}_DB_{k}": v for k, v in parts.items()}}


INTEGRATION_CASES: list[tuple[str, Framework, dict[str, str], dict[str, str]]] = [
    (
        "postgresql-cnpg-uri",
        "flask",
        CNPG_SECRET,
        db_vars(
            "POSTGRESQL",
            CNPG_URI,
            SCHEME="postgresql",
            NETLOC="app:p%40ss@shop-db-rw.demo:5432",
            PATH="/app",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            USERNAME="app",
            PASSWORD="p@ss",
            HOSTNAME="shop-db-rw.demo",
            PORT="5432",
            NAME="app",
        ),
    ),
    (
        "postgresql-spec-example",
        "flask",
        {"uri": "postgresql://user:pass@host:5432/shop"},
        db_vars(
            "POSTGRESQL",
            "postgresql://user:pass@host:5432/shop",
            SCHEME="postgresql",
            NETLOC="user:pass@host:5432",
            PATH="/shop",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            USERNAME="user",
            PASSWORD="pass",
            HOSTNAME="host",
            PORT="5432",
            NAME="shop",
        ),
    ),
    (
        "postgresql-parts-encoded",
        "flask",
        {"host": "db", "port": "5432", "user": "a b", "password": "p@ss:w/rd%", "dbname": "shop"},
        db_vars(
            "POSTGRESQL",
            "postgresql://a%20b:p%40ss%3Aw%2Frd%25@db:5432/shop",
            SCHEME="postgresql",
            NETLOC="a%20b:p%40ss%3Aw%2Frd%25@db:5432",
            PATH="/shop",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            USERNAME="a b",
            PASSWORD="p@ss:w/rd%",
            HOSTNAME="db",
            PORT="5432",
            NAME="shop",
        ),
    ),
    (
        "mysql-parts-no-credentials-no-port",
        "flask",
        {"host": "mysql", "database": "shop"},
        db_vars(
            "MYSQL",
            "mysql://mysql/shop",
            SCHEME="mysql",
            NETLOC="mysql",
            PATH="/shop",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            HOSTNAME="mysql",
            NAME="shop",
        ),
    ),
    (
        "mysql-endpoints",
        "flask",
        {"endpoints": "m1:3306,m2:3306", "username": "u", "password": "p", "database": "d"},
        db_vars(
            "MYSQL",
            "mysql://u:p@m1:3306/d",
            SCHEME="mysql",
            NETLOC="u:p@m1:3306",
            PATH="/d",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            USERNAME="u",
            PASSWORD="p",
            HOSTNAME="m1",
            PORT="3306",
            NAME="d",
        ),
    ),
    (
        "mongodb-multi-host",
        "fastapi",
        {"uri": "mongodb://u:p@h1:27017,h2:27017/db?replicaSet=rs"},
        db_vars(
            "MONGODB",
            "mongodb://u:p@h1:27017,h2:27017/db?replicaSet=rs",
            SCHEME="mongodb",
            NETLOC="u:p@h1:27017,h2:27017",
            PATH="/db",
            PARAMS="",
            QUERY="replicaSet=rs",
            FRAGMENT="",
            USERNAME="u",
            PASSWORD="p",
            HOSTNAME="h1",
            NAME="db",
        ),
    ),
    (
        "redis-parts-default-port",
        "go",
        {"host": "redis", "password": "pw"},
        db_vars(
            "REDIS",
            "redis://:pw@redis:6379",
            SCHEME="redis",
            NETLOC=":pw@redis:6379",
            PATH="",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            USERNAME="",
            PASSWORD="pw",
            HOSTNAME="redis",
            PORT="6379",
        ),
    ),
    (
        "redis-uri-with-db",
        "go",
        {"uri": "redis://redis:6379/0"},
        db_vars(
            "REDIS",
            "redis://redis:6379/0",
            SCHEME="redis",
            NETLOC="redis:6379",
            PATH="/0",
            PARAMS="",
            QUERY="",
            FRAGMENT="",
            HOSTNAME="redis",
            PORT="6379",
            NAME="0",
        ),
    ),
    (
        "rabbitmq-parts",
        "django",
        {"hostname": "mq", "username": "shop", "password": "pw"},
        {
            "RABBITMQ_CONNECT_STRING": "amqp://shop:pw@mq:5672/%2F",
            "RABBITMQ_SCHEME": "amqp",
            "RABBITMQ_NETLOC": "shop:pw@mq:5672",
            "RABBITMQ_PATH": "/%2F",
            "RABBITMQ_PARAMS": "",
            "RABBITMQ_QUERY": "",
            "RABBITMQ_FRAGMENT": "",
            "RABBITMQ_USERNAME": "shop",
            "RABBITMQ_PASSWORD": "pw",
            "RABBITMQ_HOSTNAME": "mq",
            "RABBITMQ_PORT": "5672",
            "RABBITMQ_VHOST": "/",
        },
    ),
    (
        "rabbitmq-uri-vhost",
        "django",
        {"uri": "amqp://u:p@mq:5671/shop%2Fprod"},
        {
            "RABBITMQ_CONNECT_STRING": "amqp://u:p@mq:5671/shop%2Fprod",
            "RABBITMQ_SCHEME": "amqp",
            "RABBITMQ_NETLOC": "u:p@mq:5671",
            "RABBITMQ_PATH": "/shop%2Fprod",
            "RABBITMQ_PARAMS": "",
            "RABBITMQ_QUERY": "",
            "RABBITMQ_FRAGMENT": "",
            "RABBITMQ_USERNAME": "u",
            "RABBITMQ_PASSWORD": "p",
            "RABBITMQ_HOSTNAME": "mq",
            "RABBITMQ_PORT": "5671",
            "RABBITMQ_VHOST": "shop/prod",
        },
    ),
    (
        "s3-full",
        "flask",
        {
            "access-key": "AK",
            "secret-key": "SK",
            "bucket": "b",
            "region": "eu-1",
            "endpoint": "https://s3.example",
            "path": "p/",
            "s3-uri-style": "host",
            "s3-api-version": "4",
            "storage-class": "STANDARD",
            "attributes": '["a:1", "b:2"]',
            "tls-ca-chain": "-----BEGIN CERTIFICATE-----",
        },
        {
            "S3_ACCESS_KEY": "AK",
            "S3_SECRET_KEY": "SK",
            "S3_BUCKET": "b",
            "S3_REGION": "eu-1",
            "S3_ENDPOINT": "https://s3.example",
            "S3_PATH": "p/",
            "S3_URI_STYLE": "host",
            "S3_ADDRESSING_STYLE": "virtual",
            "S3_API_VERSION": "4",
            "S3_STORAGE_CLASS": "STANDARD",
            "S3_ATTRIBUTES": '["a:1", "b:2"]',
            "S3_TLS_CA_CHAIN": '["-----BEGIN CERTIFICATE-----"]',
        },
    ),
    (
        "s3-minimal-underscores",
        "go",
        {"access_key": "AK", "secret_key": "SK", "bucket": "b", "s3_uri_style": "path"},
        {
            "S3_ACCESS_KEY": "AK",
            "S3_SECRET_KEY": "SK",
            "S3_BUCKET": "b",
            "S3_URI_STYLE": "path",
            "S3_ADDRESSING_STYLE": "path",
        },
    ),
    (
        "smtp",
        "flask",
        {
            "host": "mail",
            "port": "587",
            "user": "u",
            "password": "none-of-your-business",
            "auth_type": "plain",
            "transport_security": "none",
            "domain": "example.com",
            "skip_ssl_verify": "False",
        },
        {
            "SMTP_HOST": "mail",
            "SMTP_PORT": "587",
            "SMTP_USER": "u",
            "SMTP_PASSWORD": "none-of-your-business",
            "SMTP_AUTH_TYPE": "plain",
            "SMTP_DOMAIN": "example.com",
            "SMTP_SKIP_SSL_VERIFY": "False",
        },
    ),
    (
        "tracing-default-service-name",
        "fastapi",
        {"endpoint": "http://tempo:4318"},
        {"OTEL_SERVICE_NAME": "shop", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo:4318"},
    ),
    (
        "tracing-service-name",
        "fastapi",
        {"endpoint": "http://tempo:4318", "service-name": "shop-api"},
        {"OTEL_SERVICE_NAME": "shop-api", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo:4318"},
    ),
]


@pytest.mark.parametrize(
    ("integration", "framework", "data", "expected"),
    [(case[0].split("-")[0], *case[1:]) for case in INTEGRATION_CASES],
    ids=[case[0] for case in INTEGRATION_CASES],
)
def test_integrations(
    integration: str, framework: Framework, data: dict[str, str], expected: dict[str, str]
) -> None:
    environment = build(framework, integrations={integration: data})
    produced = {
        v.name: v for v in environment.variables if v.source == f"integration {integration}"
    }
    assert {name: var.value for name, var in produced.items()} == expected
    assert all(var.sensitive for var in produced.values())


SPRINGBOOT_INTEGRATIONS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    (
        "postgresql",
        {"uri": "postgresql://u:p%40@db:5432/shop"},
        {
            "spring.datasource.url": "jdbc:postgresql://db:5432/shop",
            "spring.datasource.username": "u",
            "spring.datasource.password": "p@",
            "spring.jpa.hibernate.ddl-auto": "none",
            "POSTGRESQL_DB_NAME": "shop",
        },
    ),
    (
        "mongodb",
        {"uri": "mongodb://u:p@m:27017/db"},
        {"spring.data.mongodb.uri": "mongodb://u:p@m:27017/db"},
    ),
    (
        "redis",
        {"host": "r"},
        {
            "spring.data.redis.url": "redis://r:6379",
            "spring.data.redis.host": "r",
            "spring.data.redis.port": "6379",
        },
    ),
    (
        "rabbitmq",
        {"host": "mq", "username": "u", "password": "p", "vhost": "shop"},
        {
            "spring.rabbitmq.host": "mq",
            "spring.rabbitmq.port": "5672",
            "spring.rabbitmq.username": "u",
            "spring.rabbitmq.password": "p",
            "spring.rabbitmq.virtual-host": "shop",
        },
    ),
    (
        "s3",
        {
            "access-key": "a",
            "secret-key": "s",
            "bucket": "b",
            "region": "r",
            "endpoint": "http://e",
        },
        {
            "spring.cloud.aws.credentials.accessKey": "a",
            "spring.cloud.aws.credentials.secretKey": "s",
            "spring.cloud.aws.s3.bucket": "b",
            "spring.cloud.aws.region.static": "r",
            "spring.cloud.aws.s3.endpoint": "http://e",
        },
    ),
    (
        "smtp",
        {
            "host": "m",
            "port": "25",
            "user": "u",
            "domain": "d.example",
            "transport_security": "starttls",
        },
        {
            "spring.mail.host": "m",
            "spring.mail.port": "25",
            "spring.mail.username": "u@d.example",
            "spring.mail.properties.mail.smtp.auth": "false",
            "spring.mail.properties.mail.smtp.starttls.enable": "true",
        },
    ),
]


@pytest.mark.parametrize(
    ("integration", "data", "expected"),
    SPRINGBOOT_INTEGRATIONS,
    ids=[case[0] for case in SPRINGBOOT_INTEGRATIONS],
)
def test_springboot_integrations_use_spring_properties(
    integration: str, data: dict[str, str], expected: dict[str, str]
) -> None:
    env = env_of("springboot", integrations={integration: data})
    assert {name: env.get(name) for name in expected} == expected


def test_springboot_mongodb_gives_only_the_spring_uri() -> None:
    env = env_of("springboot", integrations={"mongodb": {"uri": "mongodb://m/db"}})
    assert not any(name.startswith("MONGODB_") for name in env)


def test_springboot_tracing_replaces_the_disabled_exporters() -> None:
    env = env_of("springboot", integrations={"tracing": {"endpoint": "http://tempo:4318"}})
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318"
    assert "OTEL_TRACES_EXPORTER" not in env


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"uri": "postgresql://h/db", "tls": "true"}, "postgresql://h/db?sslmode=require"),
        ({"uri": "postgresql://h/db?a=b", "tls": "False"}, "postgresql://h/db?a=b&sslmode=disable"),
        (
            {"uri": "postgresql://h/db?sslmode=verify-full", "tls": "true"},
            "postgresql://h/db?sslmode=verify-full",
        ),
    ],
    ids=["require", "disable-appended", "explicit-sslmode-kept"],
)
def test_postgresql_tls_becomes_sslmode(data: dict[str, str], expected: str) -> None:
    env = env_of(integrations={"postgresql": data})
    assert env["POSTGRESQL_DB_CONNECT_STRING"] == expected


INTEGRATION_ERRORS: list[tuple[str, dict[str, str], str]] = [
    ("postgresql", {"username": "u", "password": "hunter2-secret"}, "neither a uri nor a host"),
    ("postgresql", {"host": "db", "port": "54a", "password": "hunter2-secret"}, "key port"),
    ("postgresql", {"uri": "postgresql://u:hunter2-secret@db:99999/x"}, "malformed"),
    ("postgresql", {"uri": "postgresql://u:hunter2-secret@[::1/x"}, "malformed"),
    ("postgresql", {"uri": "postgresql://db/x", "tls": "maybe"}, "key tls"),
    ("redis", {"password": "hunter2-secret"}, "neither a uri nor a host"),
    ("rabbitmq", {"password": "hunter2-secret"}, "neither a uri nor a host"),
    ("s3", {"access-key": "a", "secret-key": "hunter2-secret"}, "lacks bucket"),
    ("smtp", {"host": "m", "password": "hunter2-secret"}, "lacks port"),
    ("smtp", {"host": "m", "port": "0", "password": "hunter2-secret"}, "key port"),
    (
        "smtp",
        {"host": "m", "port": "25", "auth_type": "weird", "password": "hunter2-secret"},
        "auth_type",
    ),
    ("tracing", {"service-name": "hunter2-secret"}, "lacks endpoint"),
    ("ldap", {"uri": "ldap://u:hunter2-secret@x"}, "known integrations: postgresql"),
]


@pytest.mark.parametrize(
    ("integration", "data", "fragment"),
    INTEGRATION_ERRORS,
    ids=[f"{name}-{fragment}" for name, _, fragment in INTEGRATION_ERRORS],
)
def test_integration_errors_name_the_integration_never_a_value(
    integration: str, data: dict[str, str], fragment: str
) -> None:
    with pytest.raises(InvalidConfig) as caught:
        build(integrations={integration: data})
    assert integration in caught.value.message
    assert fragment in caught.value.message
    assert "hunter2-secret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_unknown_integration_keys_are_ignored() -> None:
    env = env_of(integrations={"tracing": {"endpoint": "http://t", "anything": "x"}})
    assert "x" not in env.values()


# --------------------------------------------------------------------------------------------
# Layering: overrides become notes; same-layer clashes are errors


NOTE_CASES: list[
    tuple[
        str, Framework, dict[str, JsonValue], dict[str, dict[str, str]], str, str, str, str | None
    ]
] = [
    (
        "secret-beats-config",
        "flask",
        {"credentials-username": "plain"},
        {"credentials": {"username": "from-secret"}},
        "FLASK_CREDENTIALS_USERNAME",
        "secret option credentials, key username",
        "config option credentials-username",
        "from-secret",
    ),
    (
        "framework-beats-config",
        "springboot",
        {"profiles": "user", "app-profiles": "framework"},
        {},
        "APP_PROFILES",
        "framework option app-profiles",
        "config option profiles",
        "framework",
    ),
    (
        "framework-beats-secret",
        "flask",
        {"flask-application-root": "/fw"},
        {"application": {"root": "/secret"}},
        "FLASK_APPLICATION_ROOT",
        "framework option flask-application-root",
        "secret option application, key root",
        "/fw",
    ),
    (
        "operator-base-url-beats-config",
        "go",
        {"base-url": "http://elsewhere"},
        {},
        "APP_BASE_URL",
        "the app's Service URL",
        "config option base-url",
        "http://shop.demo:8080",
    ),
    (
        "operator-secret-key-beats-config",
        "fastapi",
        {"secret-key": "user-chosen"},
        {},
        "APP_SECRET_KEY",
        "the operator-generated secret key",
        "config option secret-key",
        GENERATED,
    ),
    (
        "operator-secret-key-beats-secret",
        "go",
        {},
        {"secret": {"key": "from-secret"}},
        "APP_SECRET_KEY",
        "the operator-generated secret key",
        "secret option secret, key key",
        GENERATED,
    ),
    (
        "reserved-flask-debug",
        "flask",
        {"debug": "yes"},
        {},
        "FLASK_DEBUG",
        "framework option flask-debug",
        "config option debug",
        None,
    ),
    (
        "reserved-even-when-framework-option-set",
        "flask",
        {"debug": "yes", "flask-debug": False},
        {},
        "FLASK_DEBUG",
        "framework option flask-debug",
        "config option debug",
        "false",
    ),
    (
        "reserved-fastapi-uvicorn-port",
        "fastapi",
        {"uvicorn-port": 1},
        {},
        "APP_UVICORN_PORT",
        "framework option webserver-port",
        "config option uvicorn-port",
        None,
    ),
    (
        "reserved-secret-option",
        "flask",
        {},
        {"secret-key": {"token": "t"}},
        "FLASK_SECRET_KEY_TOKEN",
        "framework option flask-secret-key",
        "secret option secret-key, key token",
        None,
    ),
    (
        "reserved-expressjs-node-env",
        "expressjs",
        {"node_env": "dev"},
        {},
        "APP_NODE_ENV",
        "framework option node-env",
        "config option node_env",
        None,
    ),
]


@pytest.mark.parametrize(
    ("framework", "config", "secrets", "variable", "winner", "loser", "value"),
    [case[1:] for case in NOTE_CASES],
    ids=[case[0] for case in NOTE_CASES],
)
def test_overrides_are_reported_as_notes(
    framework: Framework,
    config: dict[str, JsonValue],
    secrets: dict[str, dict[str, str]],
    variable: str,
    winner: str,
    loser: str,
    value: str | None,
) -> None:
    environment = build(framework, config=config, secrets=secrets)
    assert environment.as_dict().get(variable) == value
    notes = [n for n in environment.notes if n.variable == variable]
    assert len(notes) == 1
    note = notes[0]
    assert (note.winner, note.loser) == (winner, loser)
    assert variable in note.message
    assert loser in note.message
    for secret in ("from-secret", "user-chosen", GENERATED):
        assert secret not in note.message


def test_integration_collision_in_one_layer_is_invalid() -> None:
    with pytest.raises(InvalidConfig) as caught:
        build(
            "springboot",
            integrations={
                "postgresql": {"uri": "postgresql://p/db"},
                "mysql": {"uri": "mysql://m/db"},
            },
        )
    message = caught.value.message
    assert "integration mysql" in message
    assert "integration postgresql" in message
    assert "spring.datasource" in message


def test_no_notes_without_overrides() -> None:
    environment = build(
        config={"greeting": "hi"},
        secrets={"credentials": {"username": "u"}},
        integrations={"redis": {"host": "r"}},
    )
    assert environment.notes == ()


# --------------------------------------------------------------------------------------------
# The Environment value


def test_variables_are_sorted_unique_and_the_dict_matches() -> None:
    environment = build(
        "springboot",
        config={"z-last": 1, "a-first": 2},
        secrets={"m": {"k": "v"}},
        integrations={"redis": {"host": "r"}},
    )
    names = [v.name for v in environment.variables]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert list(environment.as_dict()) == names


def test_sensitive_names() -> None:
    environment = build(
        config={"greeting": "hi"},
        secrets={"credentials": {"username": "u"}},
        integrations={"tracing": {"endpoint": "http://t"}},
    )
    assert environment.sensitive_names() == frozenset(
        {
            "FLASK_CREDENTIALS_USERNAME",
            "FLASK_SECRET_KEY",
            "OTEL_SERVICE_NAME",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        }
    )


def test_reprs_never_show_values() -> None:
    environment = build(
        config={"greeting": "plain-value-xyz"},
        secrets={"credentials": {"password": "hunter2-secret"}},
        integrations={"postgresql": {"uri": "postgresql://u:db-password-xyz@h/d"}},
    )
    for text in (repr(environment), str(environment), *map(repr, environment.variables)):
        for value in ("plain-value-xyz", "hunter2-secret", "db-password-xyz", GENERATED):
            assert value not in text
    var = EnvVar(name="X", value="hunter2-secret", sensitive=True, source="secret option a, key b")
    assert repr(var) == "EnvVar(name='X', source='secret option a, key b', sensitive=True)"
    assert str(var) == repr(var)
    assert "hunter2-secret" not in repr(inputs(secrets={"a": {"b": "hunter2-secret"}}))


def test_errors_are_webapp_errors_with_reasons() -> None:
    with pytest.raises(WebAppError) as caught:
        build(config={"flask-nope": 1})
    assert caught.value.reason == "InvalidConfig"
    assert re.search(r"flask-nope", str(caught.value))
