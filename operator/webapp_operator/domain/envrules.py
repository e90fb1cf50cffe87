"""The environment-variable rules of paas-charm, reproduced for plain Kubernetes. Pure.

`build_environment` turns a WebApp's configuration, its secret options, its integrations and a
few operator settings into the flat environment every container of the app sees, with the names
Juju's 12-factor charms use, so that an app written for them runs unchanged.

Layers, lowest precedence first (a higher layer replaces a lower one, and says so in a note):

1. config options: a user option `some-name` gives `<PREFIX>SOME_NAME`;
2. secret options: option `credentials`, key `username` gives `<PREFIX>CREDENTIALS_USERNAME`;
3. framework settings: the framework options and their defaults (`FLASK_DEBUG`, `UVICORN_PORT`,
   `NODE_ENV`, Spring properties, ...). As in paas-charm, a user option can never set a
   framework variable: a user option whose name is a framework setting's name is dropped
   (with a note) even when that setting is unset;
4. integrations (no prefix): `POSTGRESQL_DB_CONNECT_STRING` and its parts, `REDIS_DB_*`,
   `RABBITMQ_*`, `S3_*`, `SMTP_*`, `OTEL_*`;
5. operator variables: `<PREFIX>BASE_URL`, `<PREFIX>SECRET_KEY` and the proxy variables. They
   are the operator's own and nothing below overrides them.

Two variables of one layer with the same name have no winner: that is an error naming both
sources (`InvalidSecretKey` for secret options, `InvalidConfig` otherwise). Every replacement
across layers is an `EnvNote`. Names only: no value ever reaches an exception, a note, a repr
or a log.

paas-charm orders the layers the same way, except that it lets integrations override the
operator variables (they never share a name) and lets a user option `secret-key` replace the
generated `APP_SECRET_KEY` (here the secret key is always the operator's, from `app-secret-key`,
`app-secret-key-id` or the generated one). docs/environment.md has the full tables.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias, TypeVar

from webapp_operator.domain import numbers
from webapp_operator.domain.errors import InvalidConfig, InvalidSecretKey, WebAppError

Framework = Literal["flask", "django", "fastapi", "go", "expressjs", "springboot", "generic"]
FRAMEWORKS: Final[tuple[Framework, ...]] = (
    "flask",
    "django",
    "fastapi",
    "go",
    "expressjs",
    "springboot",
    "generic",
)
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None

INTEGRATIONS: Final[tuple[str, ...]] = (
    "postgresql",
    "mysql",
    "mongodb",
    "redis",
    "rabbitmq",
    "s3",
    "smtp",
    "tracing",
)

# A POSIX-portable variable name: what every user-derived name must be.
VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What Kubernetes accepts as an env name and a Secret key (Spring property names need the dots).
KUBERNETES_VARIABLE_NAME: Final = re.compile(r"[-._A-Za-z][-._A-Za-z0-9]*")
# An option name or a secret key that can become part of a variable name.
_NAME_PART: Final = re.compile(r"[A-Za-z0-9_-]+")

_SECRET_KEY_VALUE: Final = "value"  # noqa: S105 (a key name)
_PROXY_SETTINGS: Final = ("http_proxy", "https_proxy", "no_proxy")


def prefix(framework: Framework) -> str:
    """The prefix of user options, secret options, BASE_URL and SECRET_KEY."""
    if framework in ("flask", "django"):
        return f"{framework.upper()}_"
    return "APP_"


def default_port(framework: Framework) -> int:
    """The web port when neither spec.port nor the framework's port option sets one."""
    return 8000 if framework in ("flask", "django") else 8080


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class ProxySettings:
    """The operator's proxy settings, passed to every app."""

    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None


@dataclass(frozen=True)
class EnvInputs:
    """Everything the environment is built from, gathered by the caller."""

    framework: Framework
    app_name: str
    namespace: str
    port: int | None
    config: Mapping[str, JsonValue] = field(repr=False)
    secrets: Mapping[str, Mapping[str, str]] = field(repr=False)
    integrations: Mapping[str, Mapping[str, str]] = field(repr=False)
    generated_secret_key: str | None = field(repr=False)
    base_url: str | None = None
    proxy: ProxySettings = field(default_factory=ProxySettings)


@dataclass(frozen=True)
class EnvVar:
    """One variable; its repr shows where it comes from, never its value."""

    name: str
    value: str = field(repr=False)
    sensitive: bool
    source: str

    def __repr__(self) -> str:
        return f"EnvVar(name={self.name!r}, source={self.source!r}, sensitive={self.sensitive})"

    __str__ = __repr__


@dataclass(frozen=True)
class EnvNote:
    """An override or a dropped option, reported by name, never by value."""

    variable: str
    winner: str
    loser: str
    message: str


@dataclass(frozen=True)
class Environment:
    """The flattened environment: variables sorted by name, and what was overridden."""

    variables: tuple[EnvVar, ...]
    notes: tuple[EnvNote, ...]

    def as_dict(self) -> dict[str, str]:
        """Name to value, for the snapshot Secret."""
        return {var.name: var.value for var in self.variables}

    def sensitive_names(self) -> frozenset[str]:
        """The names whose values come from a Secret (or hold credentials)."""
        return frozenset(var.name for var in self.variables if var.sensitive)


# --------------------------------------------------------------------------------------------
# Framework options


@dataclass(frozen=True)
class _FrameworkSpec:
    """What paas-charm knows about one framework."""

    # Plain framework options (spec.config), and options of type secret (spec.secrets).
    options: tuple[str, ...]
    secret_options: tuple[str, ...]
    # paas-charm's framework setting names (its pydantic field names) and the option owning
    # each: a user option with one of these names (hyphens as underscores) is dropped.
    reserved: Mapping[str, str]
    # Options that set the web port, in order of preference.
    port_options: tuple[str, ...]
    # Variables that carry the secret key (beyond <PREFIX>SECRET_KEY).
    extra_secret_key_variables: tuple[str, ...] = ()


_GUNICORN_OPTIONS: Final = (
    "webserver-workers",
    "webserver-threads",
    "webserver-keepalive",
    "webserver-timeout",
    "webserver-worker-class",
)
_APP_SECRET_KEY: Final = "app-secret-key"  # noqa: S105 (an option name)
_APP_SECRET_KEY_ID: Final = "app-secret-key-id"  # noqa: S105 (an option name)
_METRICS: Final = ("metrics-port", "metrics-path")
_APP_RESERVED: Final = {
    "app_secret_key": _APP_SECRET_KEY,
    "metrics_port": "metrics-port",
    "metrics_path": "metrics-path",
}

_SPECS: Final[Mapping[Framework, _FrameworkSpec]] = {
    "flask": _FrameworkSpec(
        options=(
            "flask-env",
            "flask-debug",
            "flask-secret-key",
            "flask-permanent-session-lifetime",
            "flask-application-root",
            "flask-session-cookie-secure",
            "flask-preferred-url-scheme",
            _APP_SECRET_KEY,
            *_GUNICORN_OPTIONS,
        ),
        secret_options=(
            "flask-secret-key",
            "flask-secret-key-id",
            _APP_SECRET_KEY,
            _APP_SECRET_KEY_ID,
        ),
        reserved={
            "env": "flask-env",
            "debug": "flask-debug",
            "secret_key": "flask-secret-key",
            "permanent_session_lifetime": "flask-permanent-session-lifetime",
            "application_root": "flask-application-root",
            "session_cookie_secure": "flask-session-cookie-secure",
            "preferred_url_scheme": "flask-preferred-url-scheme",
        },
        port_options=(),
    ),
    "django": _FrameworkSpec(
        options=(
            "django-debug",
            "django-secret-key",
            "django-allowed-hosts",
            _APP_SECRET_KEY,
            *_GUNICORN_OPTIONS,
        ),
        secret_options=(
            "django-secret-key",
            "django-secret-key-id",
            _APP_SECRET_KEY,
            _APP_SECRET_KEY_ID,
        ),
        reserved={
            "debug": "django-debug",
            "secret_key": "django-secret-key",
            "allowed_hosts": "django-allowed-hosts",
        },
        port_options=(),
    ),
    "fastapi": _FrameworkSpec(
        options=(
            "webserver-port",
            "webserver-host",
            "webserver-workers",
            "webserver-log-level",
            *_METRICS,
            _APP_SECRET_KEY,
        ),
        secret_options=(_APP_SECRET_KEY, _APP_SECRET_KEY_ID),
        reserved={
            "uvicorn_port": "webserver-port",
            "uvicorn_host": "webserver-host",
            "web_concurrency": "webserver-workers",
            "uvicorn_log_level": "webserver-log-level",
            **_APP_RESERVED,
        },
        port_options=("webserver-port",),
    ),
    "go": _FrameworkSpec(
        options=("port", "app-port", *_METRICS, _APP_SECRET_KEY),
        secret_options=(_APP_SECRET_KEY, _APP_SECRET_KEY_ID),
        reserved={"port": "port", **_APP_RESERVED},
        port_options=("port", "app-port"),
    ),
    "expressjs": _FrameworkSpec(
        options=("node-env", "port", "app-port", *_METRICS, _APP_SECRET_KEY),
        secret_options=(_APP_SECRET_KEY, _APP_SECRET_KEY_ID),
        reserved={"node_env": "node-env", "port": "port", **_APP_RESERVED},
        port_options=("port", "app-port"),
    ),
    "springboot": _FrameworkSpec(
        options=("app-port", "app-profiles", *_METRICS, _APP_SECRET_KEY),
        secret_options=(_APP_SECRET_KEY, _APP_SECRET_KEY_ID),
        reserved={
            "server_port": "app-port",
            "app_profiles": "app-profiles",
            "management_server_port": "metrics-port",
            "metrics_path": "metrics-path",
            "secret_key": _APP_SECRET_KEY,
        },
        port_options=("app-port",),
        extra_secret_key_variables=("SECRET_KEY",),
    ),
    "generic": _FrameworkSpec(
        options=("port", "app-port", *_METRICS, _APP_SECRET_KEY),
        secret_options=(_APP_SECRET_KEY, _APP_SECRET_KEY_ID),
        reserved={"port": "port", **_APP_RESERVED},
        port_options=("port", "app-port"),
    ),
}


def _option_prefixes(framework: Framework) -> tuple[str, ...]:
    own = ("spring-boot-", "springboot-") if framework == "springboot" else (f"{framework}-",)
    return (*own, "webserver-", "app-")


def is_framework_option(name: str, framework: Framework) -> bool:
    """True for options the framework owns: `<framework>-*`, `webserver-*`, `app-*`, and the
    framework's own unprefixed options (`port`, `node-env`, `metrics-port`, `metrics-path`)."""
    spec = _SPECS[framework]
    return (
        name.startswith(_option_prefixes(framework))
        or name in spec.options
        or name in spec.secret_options
    )


def known_framework_options(framework: Framework) -> tuple[str, ...]:
    """Every framework option of `framework`, plain and secret, sorted."""
    spec = _SPECS[framework]
    return tuple(sorted({*spec.options, *spec.secret_options}))


# --------------------------------------------------------------------------------------------
# Names


def _upper(part: str) -> str:
    return part.replace("-", "_").upper()


# Errors about one option name its field, so that a caller which knows the WebApp (and the
# Secret behind a secret option) can name them too (`WebAppError.named`); standalone, the
# message reads `config option x: ...` or `secret option x: ...` as before.


def spec_field(section: Literal["config", "secrets", "integrations"], name: str) -> str:
    """The WebApp field of an option or integration (`spec.secrets.credentials`); framework
    options are config options."""
    return f"spec.{section}.{name}"


_E = TypeVar("_E", bound=WebAppError)


def _option_error(
    error: type[_E], kind: Literal["config", "framework", "secret"], option: str, detail: str
) -> _E:
    """`<kind> option <option>: <detail>`, about the option's field (framework options are
    set in spec.config; secret options in spec.secrets)."""
    field = spec_field("secrets", option) if kind == "secret" else spec_field("config", option)
    return error(f"{kind} option {option}: {detail}", field=field, detail=detail)


def _unnameable(option: str) -> str:
    return (
        f"the option name {option!r} cannot form an environment variable name: use ASCII "
        "letters, digits, '-' and '_'"
    )


def option_env_name(framework: Framework, option: str) -> str:
    """The variable of a user option: `some-name` -> `<PREFIX>SOME_NAME`.

    Raises InvalidConfig when the option name cannot form a variable name.
    """
    if not _NAME_PART.fullmatch(option):
        raise _option_error(InvalidConfig, "config", option, _unnameable(option))
    return prefix(framework) + _upper(option)


def secret_env_name(framework: Framework, option: str, key: str) -> str:
    """The variable of one key of a secret option: `<PREFIX><OPTION>_<KEY>`.

    Raises InvalidSecretKey, naming the option and the key, when they cannot form a valid name.
    """
    if not _NAME_PART.fullmatch(option):
        raise _option_error(InvalidSecretKey, "secret", option, _unnameable(option))
    if not _NAME_PART.fullmatch(key):
        shown = "an empty key" if not key else f"key {key!r}"
        detail = (
            f"{shown} cannot form an environment variable name; Secret keys must be ASCII "
            "letters, digits, '-' or '_' (no dots, spaces or other characters)"
        )
        raise _option_error(InvalidSecretKey, "secret", option, detail)
    return f"{prefix(framework)}{_upper(option)}_{_upper(key)}"


def _config_source(option: str) -> str:
    return f"config option {option}"


def _secret_source(option: str, key: str) -> str:
    return f"secret option {option}, key {key}"


def _framework_source(option: str) -> str:
    return f"framework option {option}"


def _default_source(option: str) -> str:
    return f"framework default of option {option}"


def _integration_source(name: str) -> str:
    return f"integration {name}"


# --------------------------------------------------------------------------------------------
# Layers


@dataclass
class _Layer:
    """The variables of one layer; a second variable of the same name is an error."""

    error: type[WebAppError]
    variables: dict[str, EnvVar] = field(default_factory=dict)

    def add(self, name: str, value: str, source: str, *, sensitive: bool) -> None:
        if "\x00" in value:
            msg = (
                f"{source}: its value holds a NUL character, which no environment variable "
                f"can carry ({name})"
            )
            raise self.error(msg)
        other = self.variables.get(name)
        if other is not None:
            msg = (
                f"{other.source} and {source} both give the environment variable {name}; "
                "rename one of them"
            )
            raise self.error(msg)
        self.variables[name] = EnvVar(name=name, value=value, sensitive=sensitive, source=source)


def _encode(value: JsonValue) -> str:
    """Strings as they are, anything else JSON-encoded (json.dumps defaults, as paas-charm)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _is_json(value: object) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


# --------------------------------------------------------------------------------------------
# Framework option values: each parser names the option and the expectation, never the value.

_T = TypeVar("_T")
Parser: TypeAlias = Callable[[str, JsonValue], _T]


def _invalid(option: str, expectation: str) -> InvalidConfig:
    return _option_error(InvalidConfig, "framework", option, f"must be {expectation}")


def _string(option: str, value: JsonValue) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(option, "a non-empty string")
    return value


def _boolean(option: str, value: JsonValue) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _invalid(option, "a boolean (true or false)")


def _integer(option: str, value: JsonValue, minimum: int, maximum: int | None) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        # Bounded: int() refuses over 4,300 digits with a ValueError, not a condition.
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,18}\s*", value)
    ):
        number = int(value)
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise _invalid(option, f"an integer {bound}")
    return number


def _positive(option: str, value: JsonValue) -> int:
    return _integer(option, value, 1, None)


def _non_negative(option: str, value: JsonValue) -> int:
    return _integer(option, value, 0, None)


def _port_number(option: str, value: JsonValue) -> int:
    return _integer(option, value, 1, 65535)


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Parser[str]:
    def parse(option: str, value: JsonValue) -> str:
        if isinstance(value, str):
            canonical = value.upper() if upper else value.lower()
            if canonical in choices:
                return canonical
        raise _invalid(option, "one of " + ", ".join(choices))

    return parse


def _host_list(option: str, value: JsonValue) -> list[str]:
    if isinstance(value, str):
        return [host.strip() for host in value.split(",") if host.strip()]
    if isinstance(value, list) and all(isinstance(host, str) for host in value):
        return [host.strip() for host in value if isinstance(host, str) and host.strip()]
    raise _invalid(option, "a comma-separated string (or a list) of host names")


def _metrics_path(option: str, value: JsonValue) -> str:
    path = _string(option, value)
    if not [part for part in path.split("/") if part]:
        raise _invalid(option, "a path with at least one segment, such as /actuator/prometheus")
    return path


@dataclass
class _FrameworkContext:
    """Reads framework options and writes the framework layer."""

    framework: Framework
    config: Mapping[str, JsonValue]
    port: int
    port_source: str
    base_url: str
    integrations: frozenset[str]
    layer: _Layer

    def get(self, option: str, parse: Parser[_T]) -> _T | None:
        value = self.config.get(option)
        return None if value is None else parse(option, value)

    def emit(self, name: str, value: str, source: str) -> None:
        self.layer.add(name, value, source, sensitive=False)

    def put(
        self, name: str, option: str, parse: Parser[str | int | bool], default: JsonValue = None
    ) -> None:
        """`name` from `option` when set, else from its default (if any)."""
        value = self.get(option, parse)
        if value is not None:
            self.emit(name, _encode(value), _framework_source(option))
        elif default is not None:
            self.emit(name, _encode(default), _default_source(option))


def _gunicorn(ctx: _FrameworkContext) -> None:
    """paas-charm writes webserver-* into gunicorn.conf.py; here gunicorn reads them from
    GUNICORN_CMD_ARGS (gunicorn lets it override its config file)."""
    flags = (
        ("webserver-workers", "--workers", _positive),
        ("webserver-threads", "--threads", _positive),
        ("webserver-keepalive", "--keep-alive", _non_negative),
        ("webserver-timeout", "--timeout", _non_negative),
        ("webserver-worker-class", "--worker-class", _choice(("sync", "gevent"))),
    )
    args: list[str] = []
    options: list[str] = []
    for option, flag, parse in flags:
        value = ctx.get(option, parse)
        if value is not None:
            args += [flag, str(value)]
            options.append(option)
    if args:
        source = "framework option" + ("s " if len(options) > 1 else " ") + ", ".join(options)
        ctx.emit("GUNICORN_CMD_ARGS", " ".join(args), source)


def _metrics(ctx: _FrameworkContext, *, defaults: bool) -> None:
    ctx.put("METRICS_PORT", "metrics-port", _port_number, 8080 if defaults else None)
    ctx.put("METRICS_PATH", "metrics-path", _string, "/metrics" if defaults else None)


def _build_flask(ctx: _FrameworkContext) -> None:
    ctx.put("FLASK_ENV", "flask-env", _string)
    ctx.put("FLASK_DEBUG", "flask-debug", _boolean)
    ctx.put("FLASK_PERMANENT_SESSION_LIFETIME", "flask-permanent-session-lifetime", _positive)
    ctx.put("FLASK_APPLICATION_ROOT", "flask-application-root", _string)
    ctx.put("FLASK_SESSION_COOKIE_SECURE", "flask-session-cookie-secure", _boolean)
    ctx.put(
        "FLASK_PREFERRED_URL_SCHEME",
        "flask-preferred-url-scheme",
        _choice(("HTTP", "HTTPS"), upper=True),
        "HTTPS",
    )
    _gunicorn(ctx)


def _build_django(ctx: _FrameworkContext) -> None:
    ctx.put("DJANGO_DEBUG", "django-debug", _boolean, False)
    option = "django-allowed-hosts"
    hosts = ctx.get(option, _host_list)
    source = _framework_source(option) if hosts is not None else _default_source(option)
    hosts = hosts or []
    base_host = _hostname(ctx.base_url)
    if base_host and base_host not in hosts:
        hosts.append(base_host)
    ctx.emit("DJANGO_ALLOWED_HOSTS", json.dumps(hosts), source)
    _gunicorn(ctx)


def _build_fastapi(ctx: _FrameworkContext) -> None:
    ctx.emit("UVICORN_PORT", str(ctx.port), ctx.port_source)
    ctx.put("UVICORN_HOST", "webserver-host", _string, "0.0.0.0")  # noqa: S104 (paas-charm's default)
    ctx.put("WEB_CONCURRENCY", "webserver-workers", _positive, 1)
    levels = ("critical", "error", "warning", "info", "debug", "trace")
    ctx.put("UVICORN_LOG_LEVEL", "webserver-log-level", _choice(levels), "info")
    _metrics(ctx, defaults=False)


def _build_go(ctx: _FrameworkContext) -> None:
    ctx.emit("PORT", str(ctx.port), ctx.port_source)
    _metrics(ctx, defaults=False)


def _build_expressjs(ctx: _FrameworkContext) -> None:
    ctx.put("NODE_ENV", "node-env", _string, "production")
    ctx.emit("PORT", str(ctx.port), ctx.port_source)
    _metrics(ctx, defaults=True)


def _build_springboot(ctx: _FrameworkContext) -> None:
    ctx.emit("SERVER_PORT", str(ctx.port), ctx.port_source)
    profiles = ctx.get("app-profiles", _string)
    if profiles is not None:
        ctx.emit("APP_PROFILES", profiles, _framework_source("app-profiles"))
        ctx.emit("spring.profiles.active", profiles, _framework_source("app-profiles"))
    ctx.put("MANAGEMENT_SERVER_PORT", "metrics-port", _port_number, 8080)
    option = "metrics-path"
    path = ctx.get(option, _metrics_path)
    source = _framework_source(option) if path is not None else _default_source(option)
    path = path or "/actuator/prometheus"
    segments = [part for part in path.split("/") if part]
    ctx.emit("METRICS_PATH", path, source)
    ctx.emit("management.endpoints.web.exposure.include", "prometheus", source)
    ctx.emit("management.endpoints.web.base-path", "/" + "/".join(segments[:-1]), source)
    ctx.emit("management.endpoints.web.path-mapping.prometheus", segments[-1], source)
    # Required by the ingress, which strips the path prefix.
    ctx.emit("server.forward-headers-strategy", "framework", "framework default")
    if "tracing" not in ctx.integrations:
        for signal in ("TRACES", "METRICS", "LOGS"):
            ctx.emit(f"OTEL_{signal}_EXPORTER", "none", "framework default (no tracing)")


_BUILDERS: Final[Mapping[Framework, Callable[[_FrameworkContext], None]]] = {
    "flask": _build_flask,
    "django": _build_django,
    "fastapi": _build_fastapi,
    "go": _build_go,
    "expressjs": _build_expressjs,
    "springboot": _build_springboot,
    "generic": _build_go,
}


def _hostname(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:
        msg = "the base URL is not a valid URL"
        raise InvalidConfig(msg) from None


# --------------------------------------------------------------------------------------------
# Port and secret key


def _port_setting(inputs: EnvInputs) -> tuple[int, str]:
    spec = _SPECS[inputs.framework]
    set_options = [o for o in spec.port_options if inputs.config.get(o) is not None]
    if len(set_options) > 1:
        msg = f"framework options {' and '.join(set_options)} both set the port; set only one"
        raise InvalidConfig(msg)
    option_port = (
        _port_number(set_options[0], inputs.config[set_options[0]]) if set_options else None
    )
    if inputs.port is not None:
        if option_port is not None and option_port != inputs.port:
            msg = (
                f"spec.port and framework option {set_options[0]} set different ports; "
                "set one of them, or the same port in both"
            )
            raise InvalidConfig(msg)
        return inputs.port, "spec.port"
    if option_port is not None:
        return option_port, _framework_source(set_options[0])
    return default_port(inputs.framework), f"default port of {inputs.framework}"


def effective_port(inputs: EnvInputs) -> int:
    """The web port: spec.port, else the framework's port option, else the framework default.

    Raises InvalidConfig when spec.port and the port option disagree.
    """
    return _port_setting(inputs)[0]


def _secret_key_options(framework: Framework) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(plain options, secret options) that supply the app secret key."""
    plain = [_APP_SECRET_KEY]
    secret = [_APP_SECRET_KEY, _APP_SECRET_KEY_ID]
    if framework in ("flask", "django"):
        plain.insert(0, f"{framework}-secret-key")
        secret[:0] = [f"{framework}-secret-key", f"{framework}-secret-key-id"]
    return tuple(plain), tuple(secret)


def _secret_key(inputs: EnvInputs) -> tuple[str, str] | None:
    """(value, source) of the app secret key, or None when there is none."""
    plain, secret = _secret_key_options(inputs.framework)
    found: list[tuple[str, str]] = []
    for option in plain:
        value = inputs.config.get(option)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            detail = "must be a non-empty string (the app's secret key)"
            raise _option_error(InvalidConfig, "config", option, detail)
        found.append((value, _config_source(option)))
    for option in secret:
        data = inputs.secrets.get(option)
        if data is None:
            continue
        keys = sorted(data)
        if keys != [_SECRET_KEY_VALUE]:
            held = ", ".join(repr(k) for k in keys) if keys else "no keys"
            detail = f"must hold exactly one key, 'value' (the app's secret key); it holds {held}"
            raise _option_error(InvalidSecretKey, "secret", option, detail)
        if not data[_SECRET_KEY_VALUE]:
            raise _option_error(InvalidSecretKey, "secret", option, "key 'value' is empty")
        found.append((data[_SECRET_KEY_VALUE], _secret_source(option, _SECRET_KEY_VALUE)))
    if len(found) > 1:
        sources = " and ".join(source for _, source in found)
        msg = f"the app's secret key is set by both {sources}; set only one"
        raise InvalidConfig(msg)
    if found:
        return found[0]
    if inputs.generated_secret_key:
        return inputs.generated_secret_key, "the operator-generated secret key"
    return None


# --------------------------------------------------------------------------------------------
# Integrations


def _pick(data: Mapping[str, str], *keys: str) -> str | None:
    """The first non-empty value among `keys` (each also tried with '-' and '_' swapped)."""
    for key in keys:
        for spelling in (key, key.replace("-", "_"), key.replace("_", "-")):
            value = data.get(spelling)
            if value:
                return value
    return None


def _valid_port(integration: str, key: str, value: str) -> str:
    port = numbers.whole_number(value, least=1, most=65535)
    if port is None:
        msg = f"integration {integration}: key {key} must be a port number from 1 to 65535"
        raise InvalidConfig(msg)
    return str(port)


def _netloc_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _connection_uri(
    integration: str, data: Mapping[str, str], *, scheme: str, default_port: str | None
) -> str:
    """The `uri` of the Secret, or one built from its parts with user and password encoded."""
    uri = _pick(data, "uri", "uris", "url")
    if uri is not None:
        return uri
    host = _pick(data, "host", "hostname")
    hostport: str
    if host is not None:
        port = _pick(data, "port") or default_port
        hostport = _netloc_host(host)
        if port is not None:
            hostport += ":" + _valid_port(integration, "port", port)
    else:
        endpoints = _pick(data, "endpoints")
        first = endpoints.split(",")[0].strip() if endpoints else ""
        if not first:
            msg = (
                f"integration {integration}: its Secret holds neither a uri nor a host "
                "(keys uri, or host with port, username, password, dbname)"
            )
            raise InvalidConfig(msg)
        hostport = first
    user = _pick(data, "username", "user")
    password = _pick(data, "password")
    userinfo = ""
    if user is not None or password is not None:
        userinfo = urllib.parse.quote(user or "", safe="")
        if password is not None:
            userinfo += ":" + urllib.parse.quote(password, safe="")
        userinfo += "@"
    return f"{scheme}://{userinfo}{hostport}"


def _parse(integration: str, uri: str) -> urllib.parse.ParseResult:
    """urlparse, with the lazily-parsed hostname and port checked up front (paas-charm crashes
    on a bad port; a multi-host netloc such as MongoDB's simply has no single port)."""
    try:
        parsed = urllib.parse.urlparse(uri)
        _ = parsed.hostname
        _port(parsed)
    except ValueError:
        msg = f"integration {integration}: the connection URI is malformed (check host and port)"
        raise InvalidConfig(msg) from None
    return parsed


def _port(parsed: urllib.parse.ParseResult) -> int | None:
    try:
        return parsed.port
    except ValueError:
        if "," in parsed.netloc:
            return None
        raise


def _url_variables(prefix_: str, parsed: urllib.parse.ParseResult, uri: str) -> dict[str, str]:
    """The connection string and every urlparse component; absent components are left out.

    User and password are percent-decoded (paas-charm passes them as they appear in the URI;
    the two agree unless they hold percent-escapes, which only a decoded value can use).
    """
    variables = {
        f"{prefix_}_CONNECT_STRING": uri,
        f"{prefix_}_SCHEME": parsed.scheme,
        f"{prefix_}_NETLOC": parsed.netloc,
        f"{prefix_}_PATH": parsed.path,
        f"{prefix_}_PARAMS": parsed.params,
        f"{prefix_}_QUERY": parsed.query,
        f"{prefix_}_FRAGMENT": parsed.fragment,
    }
    if parsed.username is not None:
        variables[f"{prefix_}_USERNAME"] = urllib.parse.unquote(parsed.username)
    if parsed.password is not None:
        variables[f"{prefix_}_PASSWORD"] = urllib.parse.unquote(parsed.password)
    if parsed.hostname is not None:
        variables[f"{prefix_}_HOSTNAME"] = parsed.hostname
    port = _port(parsed)
    if port is not None:
        variables[f"{prefix_}_PORT"] = str(port)
    return variables


def _with_sslmode(integration: str, uri: str, tls: str | None) -> str:
    """paas-charm's PostgreSQL rule: a `tls` flag becomes sslmode, unless the URI has one."""
    if tls is None or tls.lower() not in ("true", "false"):
        if tls is not None:
            msg = f"integration {integration}: key tls must be true or false"
            raise InvalidConfig(msg)
        return uri
    parts = urllib.parse.urlsplit(uri)
    if "sslmode" in dict(urllib.parse.parse_qsl(parts.query)):
        return uri
    mode = "require" if tls.lower() == "true" else "disable"
    query = f"{parts.query}&sslmode={mode}" if parts.query else f"sslmode={mode}"
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _database(name: str, data: Mapping[str, str], framework: Framework) -> dict[str, str]:
    uri = _pick(data, "uri", "uris", "url")
    if uri is None:
        uri = _connection_uri(name, data, scheme=name, default_port=None)
        database = _pick(data, "dbname", "database")
        if database is not None:
            uri += "/" + urllib.parse.quote(database, safe="")
    if name == "postgresql":
        uri = _with_sslmode(name, uri, _pick(data, "tls"))
    parsed = _parse(name, uri)
    if framework == "springboot" and name == "mongodb":
        return {"spring.data.mongodb.uri": uri.split(",")[0]}
    variables = _url_variables(f"{name.upper()}_DB", parsed, uri)
    if parsed.path:
        variables[f"{name.upper()}_DB_NAME"] = parsed.path.removeprefix("/")
    if framework == "springboot":
        first = _parse(name, uri.split(",")[0])
        port = f":{_port(first)}" if _port(first) is not None else ""
        host = _netloc_host(first.hostname or "")
        variables["spring.datasource.url"] = f"jdbc:{first.scheme}://{host}{port}{first.path}"
        variables["spring.jpa.hibernate.ddl-auto"] = "none"
        if first.username:
            variables["spring.datasource.username"] = urllib.parse.unquote(first.username)
        if first.password:
            variables["spring.datasource.password"] = urllib.parse.unquote(first.password)
    return variables


def _redis(data: Mapping[str, str], framework: Framework) -> dict[str, str]:
    uri = _connection_uri("redis", data, scheme="redis", default_port="6379")
    parsed = _parse("redis", uri)
    if framework == "springboot":
        variables = {"spring.data.redis.url": uri}
        if parsed.hostname:
            variables["spring.data.redis.host"] = parsed.hostname
        if _port(parsed):
            variables["spring.data.redis.port"] = str(_port(parsed))
        if parsed.username:
            variables["spring.data.redis.username"] = urllib.parse.unquote(parsed.username)
        if parsed.password:
            variables["spring.data.redis.password"] = urllib.parse.unquote(parsed.password)
        return variables
    variables = _url_variables("REDIS_DB", parsed, uri)
    if parsed.path:
        variables["REDIS_DB_NAME"] = parsed.path.removeprefix("/")
    return variables


def _rabbitmq(data: Mapping[str, str], framework: Framework) -> dict[str, str]:
    uri = _pick(data, "uri", "url")
    if uri is None:
        uri = _connection_uri("rabbitmq", data, scheme="amqp", default_port="5672")
        uri += "/" + urllib.parse.quote(_pick(data, "vhost") or "/", safe="")
    parsed = _parse("rabbitmq", uri)
    # paas-charm's rule (the first path segment), without its crash on a path with no "/".
    segments = parsed.path.split("/")
    vhost = (
        urllib.parse.unquote(segments[1]) if len(parsed.path) > 1 and len(segments) > 1 else None
    )
    if framework == "springboot":
        variables = {
            "spring.rabbitmq.virtual-host": vhost or "/",
            "spring.rabbitmq.port": str(_port(parsed) or 5672),
        }
        if parsed.hostname:
            variables["spring.rabbitmq.host"] = parsed.hostname
        if parsed.username is not None:
            variables["spring.rabbitmq.username"] = urllib.parse.unquote(parsed.username)
        if parsed.password is not None:
            variables["spring.rabbitmq.password"] = urllib.parse.unquote(parsed.password)
        return variables
    variables = _url_variables("RABBITMQ", parsed, uri)
    if vhost is not None:
        variables["RABBITMQ_VHOST"] = vhost
    return variables


def _require(integration: str, data: Mapping[str, str], *keys: str) -> list[str]:
    values = [_pick(data, key) for key in keys]
    missing = [key for key, value in zip(keys, values, strict=True) if value is None]
    if missing:
        msg = f"integration {integration}: its Secret lacks {', '.join(missing)}"
        raise InvalidConfig(msg)
    return [value for value in values if value is not None]


def _json_list(value: str) -> str:
    """A JSON list: the value itself when it is one, else a one-element list."""
    try:
        decoded = json.loads(value)
    except ValueError:
        decoded = None
    if isinstance(decoded, list) and all(isinstance(item, str) for item in decoded):
        return json.dumps(decoded)
    return json.dumps([value])


def _s3(data: Mapping[str, str], framework: Framework) -> dict[str, str]:
    access_key, secret_key, bucket = _require("s3", data, "access-key", "secret-key", "bucket")
    region = _pick(data, "region")
    endpoint = _pick(data, "endpoint")
    if framework == "springboot":
        variables = {
            "spring.cloud.aws.credentials.accessKey": access_key,
            "spring.cloud.aws.credentials.secretKey": secret_key,
            "spring.cloud.aws.s3.bucket": bucket,
        }
        if region:
            variables["spring.cloud.aws.region.static"] = region
        if endpoint:
            variables["spring.cloud.aws.s3.endpoint"] = endpoint
        return variables
    uri_style = _pick(data, "s3-uri-style")
    attributes = _pick(data, "attributes")
    ca_chain = _pick(data, "tls-ca-chain")
    candidates = {
        "S3_ACCESS_KEY": access_key,
        "S3_SECRET_KEY": secret_key,
        "S3_REGION": region,
        "S3_STORAGE_CLASS": _pick(data, "storage-class"),
        "S3_BUCKET": bucket,
        "S3_ENDPOINT": endpoint,
        "S3_PATH": _pick(data, "path"),
        "S3_API_VERSION": _pick(data, "s3-api-version"),
        "S3_URI_STYLE": uri_style,
        "S3_ADDRESSING_STYLE": "virtual" if uri_style == "host" else uri_style,
        "S3_ATTRIBUTES": _json_list(attributes) if attributes else None,
        "S3_TLS_CA_CHAIN": _json_list(ca_chain) if ca_chain else None,
    }
    return {name: value for name, value in candidates.items() if value is not None}


def _smtp(data: Mapping[str, str], framework: Framework) -> dict[str, str]:
    host, port = _require("smtp", data, "host", "port")
    port = _valid_port("smtp", "port", port)
    user = _pick(data, "user", "username")
    password = _pick(data, "password")
    domain = _pick(data, "domain")
    # "none" means unset (paas-charm tests `v not in ("none")`, a substring test that also
    # drops a password such as "no"; only these two fields are meant).
    auth_type = _smtp_choice(data, "auth_type", ("none", "not_provided", "plain"))
    security = _smtp_choice(data, "transport_security", ("none", "starttls", "tls"))
    if framework == "springboot":
        variables = {
            "spring.mail.host": host,
            "spring.mail.port": port,
            "spring.mail.properties.mail.smtp.auth": str(auth_type == "plain").lower(),
            "spring.mail.properties.mail.smtp.starttls.enable": str(security == "starttls").lower(),
        }
        if user:
            variables["spring.mail.username"] = f"{user}@{domain}" if domain else user
        if password:
            variables["spring.mail.password"] = password
        return variables
    candidates = {
        "SMTP_HOST": host,
        "SMTP_PORT": port,
        "SMTP_USER": user,
        "SMTP_PASSWORD": password,
        "SMTP_AUTH_TYPE": auth_type,
        "SMTP_TRANSPORT_SECURITY": security,
        "SMTP_DOMAIN": domain,
        "SMTP_SKIP_SSL_VERIFY": _pick(data, "skip_ssl_verify"),
    }
    return {name: value for name, value in candidates.items() if value is not None}


def _smtp_choice(data: Mapping[str, str], key: str, choices: tuple[str, ...]) -> str | None:
    value = _pick(data, key)
    if value is None:
        return None
    if value.lower() not in choices:
        msg = f"integration smtp: key {key} must be one of {', '.join(choices)}"
        raise InvalidConfig(msg)
    return None if value.lower() == "none" else value.lower()


def _tracing(data: Mapping[str, str], app_name: str) -> dict[str, str]:
    (endpoint,) = _require("tracing", data, "endpoint")
    return {
        "OTEL_SERVICE_NAME": _pick(data, "service-name") or app_name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }


def _integration_variables(name: str, data: Mapping[str, str], inputs: EnvInputs) -> dict[str, str]:
    framework = inputs.framework
    if name in ("postgresql", "mysql", "mongodb"):
        return _database(name, data, framework)
    if name == "redis":
        return _redis(data, framework)
    if name == "rabbitmq":
        return _rabbitmq(data, framework)
    if name == "s3":
        return _s3(data, framework)
    if name == "smtp":
        return _smtp(data, framework)
    if name == "tracing":
        return _tracing(data, inputs.app_name)
    msg = f"unknown integration {name!r}; known integrations: {', '.join(INTEGRATIONS)}"
    raise InvalidConfig(msg)


# --------------------------------------------------------------------------------------------
# Building


def _check_framework_options(inputs: EnvInputs) -> None:
    """Every framework option must be one the framework knows, in the right place."""
    framework = inputs.framework
    spec = _SPECS[framework]
    known = ", ".join(known_framework_options(framework))
    for option in sorted(inputs.config):
        if not is_framework_option(option, framework) or option in spec.options:
            continue
        if option in spec.secret_options:
            detail = (
                "an option of type secret: reference a Secret holding one key, value, under "
                f"{spec_field('secrets', option)} instead"
            )
            raise _option_error(InvalidConfig, "config", option, detail)
        detail = f"unknown {framework} framework option; known options: {known}"
        raise _option_error(InvalidConfig, "config", option, detail)
    for option in sorted(inputs.secrets):
        if not is_framework_option(option, framework) or option in spec.secret_options:
            continue
        if option in spec.options:
            detail = f"a plain framework option: set it under {spec_field('config', option)}"
            raise _option_error(InvalidConfig, "secret", option, detail)
        detail = f"unknown {framework} framework option; known options: {known}"
        raise _option_error(InvalidConfig, "secret", option, detail)


def _reserved_owner(framework: Framework, option: str) -> str | None:
    """The framework option owning `option`'s name, when paas-charm reserves that name."""
    return _SPECS[framework].reserved.get(option.replace("-", "_").lower())


def _drop_note(variable: str, loser: str, owner: str) -> EnvNote:
    winner = _framework_source(owner)
    message = f"{variable} is not set from {loser}: that option name is reserved by {winner}."
    return EnvNote(variable=variable, winner=winner, loser=loser, message=message)


def _config_layer(inputs: EnvInputs, drops: list[EnvNote]) -> _Layer:
    layer = _Layer(InvalidConfig)
    for option in sorted(inputs.config):
        value = inputs.config[option]
        if is_framework_option(option, inputs.framework) or value is None:
            continue
        if not _is_json(value):
            raise _option_error(
                InvalidConfig, "config", option, "must be a string, number, boolean, list or map"
            )
        name = option_env_name(inputs.framework, option)
        owner = _reserved_owner(inputs.framework, option)
        if owner is not None:
            drops.append(_drop_note(name, _config_source(option), owner))
            continue
        layer.add(name, _encode(value), _config_source(option), sensitive=False)
    return layer


def _secret_layer(inputs: EnvInputs, drops: list[EnvNote]) -> _Layer:
    layer = _Layer(InvalidSecretKey)
    for option in sorted(inputs.secrets):
        if is_framework_option(option, inputs.framework):
            continue
        owner = _reserved_owner(inputs.framework, option)
        for key in sorted(inputs.secrets[option]):
            name = secret_env_name(inputs.framework, option, key)
            if owner is not None:
                drops.append(_drop_note(name, _secret_source(option, key), owner))
                continue
            layer.add(
                name, inputs.secrets[option][key], _secret_source(option, key), sensitive=True
            )
    return layer


def _framework_layer(inputs: EnvInputs, base_url: str, port: tuple[int, str]) -> _Layer:
    layer = _Layer(InvalidConfig)
    context = _FrameworkContext(
        framework=inputs.framework,
        config={k: v for k, v in inputs.config.items() if is_framework_option(k, inputs.framework)},
        port=port[0],
        port_source=port[1],
        base_url=base_url,
        integrations=frozenset(inputs.integrations),
        layer=layer,
    )
    _BUILDERS[inputs.framework](context)
    return layer


def _integration_layer(inputs: EnvInputs) -> _Layer:
    layer = _Layer(InvalidConfig)
    for name in sorted(inputs.integrations):
        try:
            variables = _integration_variables(name, inputs.integrations[name], inputs)
        except WebAppError as error:
            detail = error.message.removeprefix(f"integration {name}: ")
            raise type(error)(
                error.message, field=spec_field("integrations", name), detail=detail
            ) from None
        for variable, value in sorted(variables.items()):
            layer.add(variable, value, _integration_source(name), sensitive=True)
    return layer


def _has_credentials(url: str) -> bool:
    try:
        return "@" in urllib.parse.urlsplit(url).netloc
    except ValueError:
        return True


def _operator_layer(inputs: EnvInputs, base_url: str, base_url_source: str) -> _Layer:
    layer = _Layer(InvalidConfig)
    app_prefix = prefix(inputs.framework)
    layer.add(f"{app_prefix}BASE_URL", base_url, base_url_source, sensitive=False)
    secret_key = _secret_key(inputs)
    if secret_key is not None:
        value, source = secret_key
        names = (f"{app_prefix}SECRET_KEY", *_SPECS[inputs.framework].extra_secret_key_variables)
        for name in names:
            layer.add(name, value, source, sensitive=True)
    proxy = inputs.proxy
    settings = zip(
        _PROXY_SETTINGS, (proxy.http_proxy, proxy.https_proxy, proxy.no_proxy), strict=True
    )
    for setting, proxy_value in settings:
        if proxy_value:
            source = f"operator proxy setting {setting}"
            sensitive = _has_credentials(proxy_value)
            layer.add(setting, proxy_value, source, sensitive=sensitive)
            layer.add(setting.upper(), proxy_value, source, sensitive=sensitive)
    return layer


def _merge(layers: Iterable[_Layer], notes: list[EnvNote]) -> dict[str, EnvVar]:
    merged: dict[str, EnvVar] = {}
    for layer in layers:
        for name, var in layer.variables.items():
            old = merged.get(name)
            if old is not None:
                message = f"{name} comes from {var.source}; the value from {old.source} is unused."
                notes.append(EnvNote(name, winner=var.source, loser=old.source, message=message))
            merged[name] = var
    return merged


def build_environment(inputs: EnvInputs) -> Environment:
    """The environment of every container of the app, and the notes on what was overridden.

    Raises InvalidSecretKey or InvalidConfig, naming the option, key or integration at fault.
    """
    if inputs.framework not in _SPECS:
        msg = f"unknown framework {inputs.framework!r}; known: {', '.join(FRAMEWORKS)}"
        raise InvalidConfig(msg)
    clash = sorted(set(inputs.config) & set(inputs.secrets))
    if clash:
        msg = f"option(s) {', '.join(clash)} appear in both config and secrets; keep one"
        raise InvalidConfig(msg)
    _check_framework_options(inputs)
    port = _port_setting(inputs)
    if inputs.base_url:
        base_url, base_url_source = inputs.base_url, "the ingress URL"
    else:
        base_url = f"http://{inputs.app_name}.{inputs.namespace}:{port[0]}"
        base_url_source = "the app's Service URL"
    notes: list[EnvNote] = []
    layers = (
        _config_layer(inputs, notes),
        _secret_layer(inputs, notes),
        _framework_layer(inputs, base_url, port),
        _integration_layer(inputs),
        _operator_layer(inputs, base_url, base_url_source),
    )
    merged = _merge(layers, notes)
    return Environment(
        variables=tuple(merged[name] for name in sorted(merged)),
        notes=tuple(sorted(set(notes), key=lambda n: (n.variable, n.loser, n.winner))),
    )
