"""The pure parts of the secret commands: arguments, content, plans, tables, documents."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from webapp_operator.cli import apps, main
from webapp_operator.cli import secrets as cli
from webapp_operator.domain import grants, revisions, schedule
from webapp_operator.domain.errors import InvalidConfig

SECRET_VALUE = "s3cr3t-Pa55w0rd"
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- argument parsing ------------------------------------------------------------------------


def parse(*argv: str) -> dict[str, Any]:
    args = vars(main.build_parser("kubectl webapp").parse_args(list(argv)))
    args.pop("handler")
    return args


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["add-secret", "creds", "user=admin", "--grant", "shop", "password=x"],
            {"name": "creds", "content": ["user=admin", "password=x"], "grant": ["shop"]},
            id="add-options-between-content",
        ),
        pytest.param(
            ["add-secret", "-n", "demo", "--rotate", "monthly", "--expire", "30d", "c", "a=b"],
            {"namespace": "demo", "rotate": "monthly", "expire": "30d", "content": ["a=b"]},
            id="add-options-first",
        ),
        pytest.param(
            ["add-secret", "c", "--info", "the db", "--file-key", "cert=@/tmp/c.pem"],
            {"description": "the db", "file_key": ["cert=@/tmp/c.pem"], "content": []},
            id="add-juju-info-alias-and-file-key",
        ),
        pytest.param(
            ["update-secret", "c", "--rotate", "", "--description", ""],
            {"rotate": "", "description": "", "expire": None, "content": []},
            id="update-clears-settings",
        ),
        pytest.param(
            ["grant-secret", "c", "shop,api", "tools/reporter", "-n", "demo"],
            {"apps": ["shop,api", "tools/reporter"], "namespace": "demo"},
            id="grant-lists",
        ),
        pytest.param(["revoke-secret", "c", "shop"], {"apps": ["shop"]}, id="revoke"),
        pytest.param(
            ["secrets"],
            {"namespace": None, "all_namespaces": False, "output": "table"},
            id="secrets-defaults",
        ),
        pytest.param(
            ["list-secrets", "-A", "-o", "json"],
            {"all_namespaces": True, "output": "json"},
            id="secrets-alias-all-json",
        ),
        pytest.param(
            ["show-secret", "c", "--revisions", "--reveal", "--revision", "2"],
            {"revisions": True, "reveal": True, "revision": 2, "output": "yaml"},
            id="show-everything",
        ),
        pytest.param(
            ["show-secret", "c", "-o", "table"], {"output": "table"}, id="show-as-a-table"
        ),
        pytest.param(
            ["update-secret", "c", "a=b", "--wait", "--timeout", "30"],
            {"content": ["a=b"], "wait": True, "timeout": 30.0},
            id="update-wait",
        ),
        pytest.param(
            ["update-secret", "c", "a=b"],
            {"wait": False, "timeout": cli.ROLLOUT_WAIT_TIMEOUT},
            id="update-no-wait",
        ),
        pytest.param(["remove-secret", "c"], {"revision": None}, id="remove-secret"),
        pytest.param(["remove-secret", "c", "--revision", "3"], {"revision": 3}, id="remove-rev"),
        pytest.param(
            ["refresh", "shop", "--wait", "credentials", "--timeout", "5"],
            {"app": "shop", "options": ["credentials"], "wait": True, "timeout": 5.0},
            id="refresh-wait",
        ),
        pytest.param(
            ["refresh", "shop"],
            {"options": [], "wait": False, "timeout": cli.DEFAULT_WAIT_TIMEOUT},
            id="refresh-all",
        ),
    ],
)
def test_arguments_parse(argv: list[str], expected: Mapping[str, Any]) -> None:
    args = parse(*argv)

    assert {k: args[k] for k in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["show-secret", "c", "--revision", "0"], id="revision-zero"),
        pytest.param(["remove-secret", "c", "--revision", "latest"], id="revision-word"),
        pytest.param(["show-secret", "c", "-o", "wide"], id="show-unknown-output"),
        pytest.param(["grant-secret", "c"], id="grant-without-app"),
        pytest.param(["secrets", "-o", "wide"], id="unknown-output"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)

    assert exited.value.code == 2


def test_every_command_has_namespace_flag() -> None:
    for command in (
        "add-secret c a=b",
        "update-secret c",
        "grant-secret c shop",
        "revoke-secret c shop",
        "secrets",
        "show-secret c",
        "remove-secret c",
        "refresh shop",
    ):
        assert parse(*command.split(), "-n", "elsewhere")["namespace"] == "elsewhere", command


# --- content ---------------------------------------------------------------------------------

FILES = {"/keys/cert.pem": b"-----BEGIN-----\n", "/keys/empty": b""}


def read_file(path: str) -> bytes:
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(2, "No such file or directory", path) from None


@pytest.mark.parametrize(
    ("items", "file_keys", "expected"),
    [
        pytest.param(["user=admin"], [], {"user": b"admin"}, id="plain"),
        pytest.param(["token=a=b=="], [], {"token": b"a=b=="}, id="value-with-equals"),
        pytest.param(
            ["user=admin", "pass-word_2=x"],
            [],
            {"user": b"admin", "pass-word_2": b"x"},
            id="several-keys",
        ),
        pytest.param(["blob#base64=AAE="], [], {"blob": b"\x00\x01"}, id="base64"),
        pytest.param(
            ["cert#file=/keys/cert.pem"], [], {"cert": b"-----BEGIN-----\n"}, id="file-form"
        ),
        pytest.param([], ["cert=@/keys/cert.pem"], {"cert": b"-----BEGIN-----\n"}, id="file-key"),
        pytest.param(
            [], ["cert=/keys/cert.pem"], {"cert": b"-----BEGIN-----\n"}, id="file-key-no-at"
        ),
        pytest.param([], [], {}, id="nothing"),
    ],
)
def test_content_parses(
    items: list[str], file_keys: list[str], expected: Mapping[str, bytes]
) -> None:
    assert cli.parse_content(items, file_keys, read_file) == expected


@pytest.mark.parametrize(
    ("items", "file_keys", "message"),
    [
        pytest.param([SECRET_VALUE], [], "argument 1 is not KEY=VALUE", id="no-equals"),
        pytest.param([f"={SECRET_VALUE}"], [], "argument 1 has an empty key", id="empty-key"),
        pytest.param(["user="], [], "key 'user' has an empty value", id="empty-value"),
        pytest.param(
            [f"my key={SECRET_VALUE}"],
            [],
            "key 'my key' cannot become an environment variable name",
            id="space-in-key",
        ),
        pytest.param([f"a.b={SECRET_VALUE}"], [], "key 'a.b' cannot become", id="dot-in-key"),
        pytest.param(
            [f"user={SECRET_VALUE}", f"user={SECRET_VALUE}"],
            [],
            "key 'user' is given twice",
            id="duplicate",
        ),
        pytest.param(
            [f"cert={SECRET_VALUE}"], ["cert=@/keys/cert.pem"], "given twice", id="dup-file-key"
        ),
        pytest.param([f"blob#base64={SECRET_VALUE}!"], [], "is not valid base64", id="bad-base64"),
        pytest.param([f"x#hex={SECRET_VALUE}"], [], "unknown form #hex", id="unknown-form"),
        pytest.param(["cert#file=/keys/nope"], [], "cannot read /keys/nope", id="missing-file"),
        pytest.param(["cert#file=/keys/empty"], [], "has an empty value", id="empty-file"),
        pytest.param(["cert#file="], [], "names no file", id="file-without-path"),
        pytest.param([], ["/keys/cert.pem"], "expected KEY=@PATH", id="file-key-without-key"),
        pytest.param([f"big={'x' * 760_000}"], [], "over 1000000 bytes base64", id="value-too-big"),
        pytest.param(
            [f"a={'x' * 400_000}", f"b={'x' * 400_000}"],
            [],
            "at most 1000000 are allowed",
            id="content-too-big",
        ),
    ],
)
def test_bad_content_is_refused_without_showing_values(
    items: list[str], file_keys: list[str], message: str
) -> None:
    with pytest.raises(cli.CommandError) as refused:
        cli.parse_content(items, file_keys, read_file)

    assert message in refused.value.message
    assert SECRET_VALUE not in refused.value.message
    assert "x" * 100 not in refused.value.message


def test_content_encodes_sorted() -> None:
    assert cli.encode_content({"b": b"2", "a": b"1"}) == {"a": b64("1"), "b": b64("2")}


# --- names and settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["creds", "db.credentials", "a" * cli.MAX_SOURCE_NAME], ids=["plain", "dot", "longest"]
)
def test_source_names_accepted(name: str) -> None:
    cli.check_source_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("Creds", "is not a Secret name", id="upper-case"),
        pytest.param("creds_1", "is not a Secret name", id="underscore"),
        pytest.param("a" * (cli.MAX_SOURCE_NAME + 1), "revision names fit", id="too-long"),
        pytest.param("creds.rev-1", "names revision snapshots", id="looks-like-a-revision"),
    ],
)
def test_source_names_refused(name: str, message: str) -> None:
    with pytest.raises(cli.CommandError, match=message):
        cli.check_source_name(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("monthly", "monthly"), ("Weekly", "weekly"), ("90m", "1h30m"), ("never", "never")],
)
def test_rotate_is_canonical(value: str, expected: str) -> None:
    assert cli.canonical_rotate(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30d", "30d"), ("90s", "1m30s"), ("2031-01-01T00:00:00+01:00", "2030-12-31T23:00:00Z")],
)
def test_expire_is_canonical(value: str, expected: str) -> None:
    assert cli.canonical_expire(value, NOW) == expected


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        pytest.param("rotate", "fortnightly", "--rotate: twelvefactor.dev/rotate", id="rotate"),
        pytest.param("rotate", "30s", "at least 1m", id="rotate-short"),
        pytest.param("expire", "tomorrow", "--expire: twelvefactor.dev/expire", id="expire"),
        pytest.param("expire", "2020-01-01T00:00:00Z", "is in the past", id="expire-past"),
    ],
)
def test_bad_settings_are_refused(flag: str, value: str, message: str) -> None:
    def check() -> str:
        return cli.canonical_rotate(value) if flag == "rotate" else cli.canonical_expire(value, NOW)

    with pytest.raises(cli.CommandError, match=message):
        check()


# --- grants ----------------------------------------------------------------------------------


def refs(*items: str) -> list[grants.AppRef]:
    return cli.parse_apps("demo", items)


@pytest.mark.parametrize(
    ("annotation", "apps", "revoke", "value", "changed"),
    [
        pytest.param(None, ["shop"], False, "shop", ["shop"], id="first-grant"),
        pytest.param(
            "shop",
            ["tools/reporter,api"],
            False,
            "api,shop,tools/reporter",
            ["api", "tools/reporter"],
            id="canonical-order",
        ),
        pytest.param("shop", ["shop"], False, "shop", [], id="already-granted"),
        pytest.param("demo/shop", ["shop"], False, "shop", [], id="own-namespace-written-long"),
        pytest.param("shop,api", ["api"], True, "shop", ["api"], id="revoke"),
        pytest.param("shop", ["shop"], True, None, ["shop"], id="revoke-last-removes"),
        pytest.param("shop", ["api"], True, "shop", [], id="revoke-not-granted"),
        pytest.param("*", ["tools/*"], False, "*,tools/*", ["tools/*"], id="wildcards"),
    ],
)
def test_grant_plans(
    annotation: str | None,
    apps: list[str],
    revoke: bool,
    value: str | None,
    changed: list[str],
) -> None:
    plan = cli.plan_grant("demo", annotation, refs(*apps), revoke)

    assert plan.value == value
    assert [app.relative_to("demo") for app in plan.changed] == changed


@pytest.mark.parametrize(
    ("annotation", "apps", "revoke", "message"),
    [
        pytest.param("*", ["shop"], True, "cannot revoke shop", id="wildcard-still-grants"),
        pytest.param("shop,Bad App", ["api"], False, "fix the annotation first", id="malformed"),
    ],
)
def test_grant_plans_refused(annotation: str, apps: list[str], revoke: bool, message: str) -> None:
    with pytest.raises(cli.CommandError, match=message):
        cli.plan_grant("demo", annotation, refs(*apps), revoke)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        pytest.param([], "name at least one WebApp", id="none"),
        pytest.param([","], "name at least one WebApp", id="only-commas"),
        pytest.param(["Shop"], "'Shop' is not a WebApp", id="upper-case"),
        pytest.param(["*/shop"], "is not a WebApp", id="wildcard-namespace"),
    ],
)
def test_bad_apps_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(cli.CommandError, match=message):
        cli.parse_apps("demo", items)


# --- update plans ----------------------------------------------------------------------------


OLD_DATA = {"user": b64("admin"), "password": b64(SECRET_VALUE), "old": b64("x")}


@pytest.mark.parametrize(
    ("content", "settings", "data", "annotations", "changes"),
    [
        pytest.param(
            {"user": b"admin", "password": b"n3w", "token": b"t"},
            {},
            {"password": b64("n3w"), "token": b64("t"), "old": None},
            {},
            ("added token", "changed password", "removed old"),
            id="content-replaced-whole",
        ),
        pytest.param(
            {"user": b"admin", "password": SECRET_VALUE.encode(), "old": b"x"},
            {},
            {},
            {},
            (),
            id="identical-content-changes-nothing",
        ),
        pytest.param(
            None,
            {schedule.ROTATE_ANNOTATION: "weekly", revisions.DESCRIPTION_ANNOTATION: None},
            {},
            {schedule.ROTATE_ANNOTATION: "weekly", revisions.DESCRIPTION_ANNOTATION: None},
            ("rotate weekly", "description removed"),
            id="settings-only",
        ),
        pytest.param(None, {schedule.ROTATE_ANNOTATION: "monthly"}, {}, {}, (), id="same-setting"),
    ],
)
def test_update_plans(
    content: Mapping[str, bytes] | None,
    settings: Mapping[str, str | None],
    data: Mapping[str, str | None],
    annotations: Mapping[str, str | None],
    changes: tuple[str, ...],
) -> None:
    existing = {schedule.ROTATE_ANNOTATION: "monthly", revisions.DESCRIPTION_ANNOTATION: "db"}

    plan = cli.plan_update(OLD_DATA, existing, content, settings)

    assert plan.data == data
    assert plan.annotations == annotations
    assert plan.changes == changes
    assert plan.empty == (not changes)
    assert SECRET_VALUE not in "; ".join(plan.changes)


# --- refresh ---------------------------------------------------------------------------------


def webapp(
    name: str = "shop",
    namespace: str = "demo",
    secrets: Mapping[str, Mapping[str, Any]] | None = None,
    integrations: Mapping[str, Mapping[str, Any]] | None = None,
    status: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {"framework": "flask", "image": "x"}
    if secrets is not None:
        spec["secrets"] = dict(secrets)
    if integrations is not None:
        spec["integrations"] = dict(integrations)
    return {
        "apiVersion": "twelvefactor.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {"secrets": list(status)},
    }


@pytest.mark.parametrize(
    ("options", "value"),
    [
        pytest.param([], "*@42", id="all"),
        pytest.param(["credentials"], "credentials@42", id="one"),
        pytest.param(["b", "a", "b"], "a,b@42", id="sorted-unique"),
    ],
)
def test_refresh_value_round_trips(options: list[str], value: str) -> None:
    formatted = cli.format_refresh(options, "42")

    assert formatted == value
    assert cli.parse_refresh(formatted) == (frozenset(options) or None, "42")


@pytest.mark.parametrize("value", ["credentials", "credentials@", "@42", " , @42"])
def test_bad_refresh_values_are_refused(value: str) -> None:
    with pytest.raises(InvalidConfig, match=cli.REFRESH_ANNOTATION):
        cli.parse_refresh(value)


MANUAL_APP = webapp(
    secrets={
        "credentials": {"secretName": "creds", "refresh": "manual"},
        "api-key": {"secretName": "key"},
        "old": {"secretName": "old", "revision": 2},
    },
    integrations={"postgresql": {"secretName": "db", "refresh": "manual"}},
)


@pytest.mark.parametrize(
    ("options", "notes"),
    [
        pytest.param(["credentials", "postgresql"], [], id="manual-options"),
        pytest.param(
            ["api-key"],
            ["option api-key follows the latest revision already (refresh: auto)"],
            id="auto-option-noted",
        ),
        pytest.param([], ["option old is pinned to revision 2 and stays there"], id="all"),
    ],
)
def test_refresh_options_checked(options: list[str], notes: list[str]) -> None:
    assert cli.check_refresh_options(MANUAL_APP, options) == notes


@pytest.mark.parametrize(
    ("app", "options", "message"),
    [
        pytest.param(
            MANUAL_APP,
            ["nope"],
            "has no secret option or integration nope; it has api-key, credentials, old, "
            "postgresql",
            id="unknown",
        ),
        pytest.param(MANUAL_APP, ["old"], "pinned to revision 2; remove", id="pinned"),
        pytest.param(webapp(), [], "nothing to refresh", id="no-secrets"),
    ],
)
def test_refresh_options_refused(app: dict[str, Any], options: list[str], message: str) -> None:
    with pytest.raises(cli.CommandError, match=message):
        cli.check_refresh_options(app, options)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_refresh_sees_the_value() -> None:
    clock = FakeClock()
    answers = iter([None, "*@1", "*@2"])

    done = cli.wait_for_refresh(
        lambda: next(answers), "*@2", 10, sleep=clock.sleep, clock=clock.monotonic
    )

    assert done
    assert clock.sleeps == [1.0, 1.0]


def test_wait_for_refresh_gives_up_at_the_deadline() -> None:
    clock = FakeClock()

    done = cli.wait_for_refresh(lambda: None, "*@2", 2.5, sleep=clock.sleep, clock=clock.monotonic)

    assert not done
    assert clock.sleeps == [1.0, 1.0, 0.5]


# --- observers, descriptions, tables ---------------------------------------------------------


def snapshot(
    source: str, number: int, created: str, expires: str | None = None, namespace: str = "demo"
) -> dict[str, Any]:
    # The CLI cannot check a signature (no key): any value stands for the operator's.
    annotations = {revisions.CREATED_ANNOTATION: created, revisions.SIGNATURE_ANNOTATION: "0" * 32}
    if expires:
        annotations[schedule.REVISION_EXPIRES_ANNOTATION] = expires
    return {
        "metadata": {
            "name": revisions.revision_name(source, number),
            "namespace": namespace,
            "labels": revisions.revision_labels(source, number),
            "annotations": annotations,
            "creationTimestamp": created,
        }
    }


def source_secret(
    name: str = "creds", annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "demo",
            "labels": {revisions.MANAGED_LABEL: "true"},
            "annotations": dict(annotations or {}),
            "creationTimestamp": "2030-01-10T12:00:00Z",
        },
        "data": {"password": b64(SECRET_VALUE)},
    }


WEBAPPS = [
    webapp(
        "shop",
        secrets={"credentials": {"secretName": "creds", "refresh": "manual"}},
        status=[{"option": "credentials", "secretName": "creds", "trackedRevision": 2}],
    ),
    webapp(
        "api",
        secrets={"db": {"secretName": "demo/creds"}, "other": {"secretName": "other"}},
        status=[{"option": "db", "secretName": "demo/creds", "trackedRevision": 3}],
    ),
    webapp(
        "reporter",
        namespace="tools",
        integrations={"postgresql": {"secretName": "demo/creds"}},
    ),
    webapp("pinned", secrets={"c": {"secretName": "creds", "revision": 1}}),
    webapp("elsewhere", namespace="tools", secrets={"c": {"secretName": "creds"}}),
    webapp("broken", secrets={"c": {"secretName": "not a/valid/ref"}}),
]


def test_observers_are_found_by_secret_name() -> None:
    found = cli.observers_of("demo", "creds", WEBAPPS)

    assert found == [
        cli.Observer("demo", "api", "db", 3),
        cli.Observer("demo", "pinned", "c", None, 1),
        cli.Observer("demo", "shop", "credentials", 2),
        cli.Observer("tools", "reporter", "postgresql", None),
    ]
    assert cli.format_observers(found, "demo") == "api(3), pinned(-), shop(2), tools/reporter(-)"
    assert cli.format_observers([], "demo") == "-"


def demo_info() -> cli.SecretInfo:
    sources = cli.revisions_by_source(
        [
            snapshot("creds", 3, "2030-01-14T12:00:00Z", "2030-02-13T12:00:00Z"),
            snapshot("creds", 1, "2030-01-10T12:00:00Z"),
            snapshot("creds", 2, "2030-01-12T12:00:00Z", "2030-02-11T12:00:00Z"),
            snapshot("other", 1, "2030-01-10T12:00:00Z"),
        ]
    )
    annotations = {
        grants.GRANT_ANNOTATION: "shop,api,tools/reporter",
        schedule.ROTATE_ANNOTATION: "monthly",
        schedule.NEXT_ROTATION_ANNOTATION: "2030-02-10T12:00:00Z",
        schedule.EXPIRE_ANNOTATION: "30d",
        revisions.DESCRIPTION_ANNOTATION: "db login",
    }
    return cli.describe(source_secret(annotations=annotations), sources["demo", "creds"], WEBAPPS)


def test_describe_reads_metadata_only() -> None:
    info = demo_info()

    assert info.ref == "demo/creds"
    assert [r.number for r in info.revisions] == [1, 2, 3]
    assert info.latest is not None
    assert info.latest.number == 3
    assert info.rotation == "monthly"
    assert info.next_rotation == datetime(2030, 2, 10, 12, tzinfo=UTC)
    assert info.grants == ("api", "shop", "tools/reporter")
    assert info.problems == ()
    assert SECRET_VALUE not in repr(info)


def test_describe_reports_bad_annotations() -> None:
    annotations = {
        schedule.ROTATE_ANNOTATION: "sometimes",
        schedule.NEXT_ROTATION_ANNOTATION: "2030-02-10T12:00:00Z",
        grants.GRANT_ANNOTATION: "shop, Bad",
        schedule.EXPIRE_ANNOTATION: "soon",
    }

    info = cli.describe(source_secret(annotations=annotations), [], [])

    assert info.rotation == "invalid"
    assert info.next_rotation is None
    assert info.grants == ("shop",)
    assert len(info.problems) == 3


def test_secrets_table() -> None:
    plain = cli.describe(source_secret("plain"), [], [])

    table = cli.secrets_table([demo_info(), plain], NOW, all_namespaces=False)

    assert table.splitlines() == [
        "NAME    REVISION   OBSERVERS                                       ROTATION   "
        "NEXT ROTATION          EXPIRES                GRANTED                   AGE",
        "creds   3          api(3), pinned(-), shop(2), tools/reporter(-)   monthly    "
        "2030-02-10T12:00:00Z   2030-02-13T12:00:00Z   api,shop,tools/reporter   5d",
        "plain   -          -                                               never      "
        "-                      -                      -                         5d",
    ]


def test_secrets_table_all_namespaces_adds_the_namespace() -> None:
    table = cli.secrets_table([demo_info()], NOW, all_namespaces=True)

    assert table.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert table.splitlines()[1].split()[:3] == ["demo", "creds", "3"]


def test_show_document_like_juju() -> None:
    document = cli.info_document(demo_info(), with_revisions=True)

    assert document == {
        "revision": 3,
        "owner": "demo",
        "rotation": "monthly",
        "rotates": "2030-02-10T12:00:00Z",
        "expires": "2030-02-13T12:00:00Z",
        "description": "db login",
        "created": "2030-01-10T12:00:00Z",
        "updated": "2030-01-14T12:00:00Z",
        "access": [
            {"target": "api", "role": "view"},
            {"target": "shop", "role": "view"},
            {"target": "tools/reporter", "role": "view"},
        ],
        "observers": [
            {"app": "api", "option": "db", "tracked-revision": 3},
            {"app": "pinned", "option": "c", "tracked-revision": None, "pinned-revision": 1},
            {"app": "shop", "option": "credentials", "tracked-revision": 2},
            {"app": "tools/reporter", "option": "postgresql", "tracked-revision": None},
        ],
        "revisions": [
            {"revision": 1, "created": "2030-01-10T12:00:00Z"},
            {
                "revision": 2,
                "created": "2030-01-12T12:00:00Z",
                "expires": "2030-02-11T12:00:00Z",
            },
            {
                "revision": 3,
                "created": "2030-01-14T12:00:00Z",
                "expires": "2030-02-13T12:00:00Z",
            },
        ],
    }


def test_show_document_of_one_revision_with_content() -> None:
    document = cli.info_document(
        demo_info(), revision=2, content={"password": b"pw", "blob": b"\xff\x00"}
    )

    assert document["revision"] == 2
    assert document["updated"] == "2030-01-12T12:00:00Z"
    assert document["expires"] == "2030-02-11T12:00:00Z"
    assert "revisions" not in document
    assert document["content"] == {"blob#base64": "/wA=", "password": "pw"}


def test_show_table_is_the_row_of_the_secrets_table() -> None:
    info = demo_info()

    assert cli.show_table(info, NOW) == cli.secrets_table([info], NOW, all_namespaces=False)


def test_show_table_with_revisions_and_content() -> None:
    table = cli.show_table(
        demo_info(),
        NOW,
        revision=2,
        with_revisions=True,
        content={"password": b"pw", "blob": b"\xff\x00"},
    )

    assert table.splitlines() == [
        "NAME    REVISION   OBSERVERS                                       ROTATION   "
        "NEXT ROTATION          EXPIRES                GRANTED                   AGE",
        "creds   2          api(3), pinned(-), shop(2), tools/reporter(-)   monthly    "
        "2030-02-10T12:00:00Z   2030-02-11T12:00:00Z   api,shop,tools/reporter   5d",
        "",
        "REVISION   CREATED                EXPIRES                TRACKED BY",
        "1          2030-01-10T12:00:00Z   -                      -",
        "2          2030-01-12T12:00:00Z   2030-02-11T12:00:00Z   shop",
        "3          2030-01-14T12:00:00Z   2030-02-13T12:00:00Z   api",
        "",
        "KEY           VALUE",
        "blob#base64   /wA=",
        "password      pw",
    ]


def test_show_table_without_content_has_no_values() -> None:
    table = cli.show_table(demo_info(), NOW, with_revisions=True)

    assert SECRET_VALUE not in table
    assert "KEY" not in table


def test_show_document_without_content_has_no_values() -> None:
    text = cli.dump({"demo/creds": cli.info_document(demo_info())}, "json")

    assert SECRET_VALUE not in text
    assert "content" not in text


@pytest.mark.parametrize(
    ("number", "message"),
    [
        pytest.param(7, "has no revision 7 (revisions: 1, 2, 3)", id="missing"),
        pytest.param(3, "revision 3 is the latest", id="latest"),
        pytest.param(
            2,
            "in use by shop (option credentials); refresh it first: kubectl webapp refresh "
            "shop credentials -n demo",
            id="tracked",
        ),
        pytest.param(1, "in use by pinned (option c, pinned); remove the pin", id="pinned"),
    ],
)
def test_revision_removal_refused(number: int, message: str) -> None:
    with pytest.raises(cli.CommandError) as refused:
        cli.check_revision_removable(demo_info(), number)

    assert message in refused.value.message


def test_untracked_old_revision_is_removable() -> None:
    info = cli.describe(
        source_secret(),
        cli.revisions_by_source([snapshot("creds", n, "2030-01-10T12:00:00Z") for n in (1, 2, 3)])[
            "demo", "creds"
        ],
        WEBAPPS[:1],
    )

    cli.check_revision_removable(info, 1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (150, "2m30s"),
        (300, "5m"),
        (60 * 100, "100m"),
        (3600 * 3 + 60 * 20, "3h20m"),
        (3600 * 5, "5h"),
        (3600 * 30, "30h"),
        (86400 * 3 + 3600 * 4, "3d4h"),
        (86400 * 5, "5d"),
        (86400 * 400, "400d"),
        (86400 * (365 * 3 + 10), "3y10d"),
        (86400 * 365 * 10, "10y"),
    ],
)
def test_age_like_kubectl(seconds: int, text: str) -> None:
    assert cli.format_age(timedelta(seconds=seconds)) == text


def test_table_columns_fit_the_widest_cell() -> None:
    table = cli.format_table(("A", "LONG HEADER", "C"), [("wide cell", "x", ""), ("y", "z", "q")])

    assert table == "A           LONG HEADER   C\nwide cell   x\ny           z             q\n"


def test_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        cli.format_table(("A", "B", "C"), [("1", "2")])


def test_file_reader_reads_bytes(tmp_path: Path) -> None:
    path = tmp_path / "value"
    path.write_bytes(b"\x00binary")

    assert cli.parse_content([f"k#file={path}"]) == {"k": b"\x00binary"}


# --- update-secret --wait ----------------------------------------------------------------------


def test_followers_are_the_automatic_unpinned_observers() -> None:
    assert cli.followers("demo", "creds", WEBAPPS) == [
        cli.Observer("demo", "api", "db", 3),
        cli.Observer("tools", "reporter", "postgresql", None),
    ]


def app_status(
    namespace: str, app: str, option: str, tracked: int | None, reason: str, updated: int
) -> dict[str, Any]:
    """What `apps.read_status` reads: a WebApp and its web Deployment, summarised."""
    body = webapp(app, namespace, status=[{"option": option, "trackedRevision": tracked}])
    body["metadata"]["generation"] = 2
    body["status"].update(
        observedGeneration=2,
        conditions=[{"type": "Ready", "status": str(reason == "Available"), "reason": reason}],
    )
    deployment = {
        "metadata": {"name": app, "labels": {"twelvefactor.dev/process": "web"}},
        "spec": {"replicas": 2},
        "status": {"updatedReplicas": updated, "availableReplicas": updated},
    }
    return apps.summary(body, [deployment])


def test_update_wait_follows_each_automatic_observer_to_the_new_revision() -> None:
    """Each app is Ready on revision 3 at first (the operator has not seen the update): the
    wait goes on until it runs revision 4 (a newer one would do too)."""
    script = {
        ("demo", "api"): iter(
            [
                app_status("demo", "api", "db", 3, "Available", 2),
                app_status("demo", "api", "db", 4, "RolloutInProgress", 1),
                app_status("demo", "api", "db", 4, "Available", 2),
            ]
        ),
        ("tools", "reporter"): iter(
            [app_status("tools", "reporter", "postgresql", 5, "Available", 2)]
        ),
    }
    lines: list[str] = []
    clock = FakeClock()

    status = cli.wait_for_followers(
        lambda namespace, app: next(script[namespace, app]),
        cli.followers("demo", "creds", WEBAPPS),
        "demo/creds",
        3,
        60,
        say=lines.append,
        clock=clock.monotonic,
        sleep=clock.sleep,
    )

    assert status == 0
    assert lines == [
        "waiting for demo/api (db) to run a revision after 3",
        "demo/api: Ready=True (Available); web 2/2 updated, 2 available",
        "demo/api: Ready=False (RolloutInProgress); web 1/2 updated, 1 available",
        "demo/api: Ready=True (Available); web 2/2 updated, 2 available",
        "demo/api: Ready on revision 4 (db)",
        "waiting for tools/reporter (postgresql) to run a revision after 3",
        "tools/reporter: Ready=True (Available); web 2/2 updated, 2 available",
        "tools/reporter: Ready on revision 5 (postgresql)",
    ]


def test_update_wait_gives_up_at_the_timeout_for_all_apps() -> None:
    clock = FakeClock()
    stuck = app_status("demo", "api", "db", 3, "Available", 2)

    with pytest.raises(cli.CommandError) as failed:
        cli.wait_for_followers(
            lambda namespace, app: stuck,
            cli.followers("demo", "creds", WEBAPPS),
            "demo/creds",
            3,
            5,
            say=lambda _: None,
            clock=clock.monotonic,
            sleep=clock.sleep,
        )

    assert "not Ready on a new revision of demo/creds after 5s (Available)" in failed.value.message
    assert clock.now == 5.0


def test_update_wait_stops_on_a_failure_the_wait_cannot_fix() -> None:
    clock = FakeClock()
    refused = app_status("demo", "api", "db", 3, "InvalidSecretKey", 2)

    with pytest.raises(cli.CommandError, match=r"^InvalidSecretKey: "):
        cli.wait_for_followers(
            lambda namespace, app: refused,
            cli.followers("demo", "creds", WEBAPPS),
            "demo/creds",
            3,
            60,
            say=lambda _: None,
            clock=clock.monotonic,
            sleep=clock.sleep,
        )
    assert clock.now < 60


def test_update_wait_without_followers_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    def unread(namespace: str, app: str) -> dict[str, Any]:
        raise AssertionError(app)

    assert cli.wait_for_followers(unread, [], "demo/creds", 3, 60) == 0
    assert "no WebApp follows demo/creds automatically" in capsys.readouterr().err


def test_a_secret_merely_labelled_as_a_revision_is_not_listed_as_one() -> None:
    """`secrets` and `show-secret --revisions` count only Secrets named `<source>.rev-<n>`."""
    loot = snapshot("creds", 9, "2030-01-15T12:00:00Z")
    loot["metadata"]["name"] = "loot"
    found = cli.revisions_by_source([snapshot("creds", 1, "2030-01-10T12:00:00Z"), loot])
    assert [r.number for r in found["demo", "creds"]] == [1]


def test_a_revision_without_signature_is_shown_as_unsigned() -> None:
    """The CLI cannot check a signature (only the operator holds the key), but a Secret named
    and labelled as a revision with none at all is one the operator ignores (unless it predates
    signatures): `show-secret` says so, in the table, the document and a note."""
    hand_made = snapshot("creds", 2, "2030-01-12T12:00:00Z")
    del hand_made["metadata"]["annotations"][revisions.SIGNATURE_ANNOTATION]
    # A malformed time annotation is read as absent; the signature is still seen.
    odd = snapshot("creds", 3, "2030-01-14T12:00:00Z", expires="not a time")
    found = cli.revisions_by_source([snapshot("creds", 1, "2030-01-10T12:00:00Z"), hand_made, odd])
    info = cli.describe(source_secret(), found["demo", "creds"], [])

    assert [(r.number, r.has_signature) for r in info.revisions] == [
        (1, True),
        (2, False),
        (3, True),
    ]
    assert info.revisions[2].expires is None  # the malformed time, read as absent
    assert len(info.problems) == 1
    assert info.problems[0].startswith(
        f"revision 2 carries no signature ({revisions.SIGNATURE_ANNOTATION}): the operator "
        "ignores it"
    )
    document = cli.info_document(info, with_revisions=True)
    assert [r.get("unsigned", False) for r in document["revisions"]] == [False, True, False]
    assert document["problems"] == list(info.problems)
    rows = cli.show_table(info, NOW, with_revisions=True).splitlines()
    assert [row.split("  ")[0].strip() for row in rows[4:]] == ["1", "2 (unsigned)", "3"]


def test_a_revision_the_operator_disowned_is_not_listed_and_named_as_a_problem() -> None:
    """A forged signature looks like any other to the CLI (it holds no key); the operator's
    `RevisionNotSigned` Event on the Secret tells it apart: not a revision, not the latest, and
    named with the command that deletes it."""
    forged = snapshot("creds", 3, "2030-01-14T12:00:00Z")
    forged["metadata"]["uid"] = "uid-forged"
    listed = [snapshot("creds", 1, "2030-01-10T12:00:00Z"), forged]
    assert [r.number for r in cli.revisions_by_source(listed)["demo", "creds"]] == [1, 3]

    found = cli.revisions_by_source(listed, {"uid-forged"})
    info = cli.describe(source_secret(), found["demo", "creds"], [])
    assert [r.number for r in info.revisions] == [1]
    assert info.problems == (
        "Secret creds.rev-3 is labelled as revision 3 but the operator found it is not one it "
        "made (a Warning Event RevisionNotSigned on it): it is ignored, never read nor removed, "
        "and not listed; delete it: kubectl delete secret creds.rev-3 -n demo",
    )
    document = cli.info_document(info, with_revisions=True)
    assert [r["revision"] for r in document["revisions"]] == [1]
    rows = cli.show_table(info, NOW, with_revisions=True).splitlines()
    assert [row.split("  ")[0].strip() for row in rows[4:]] == ["1"]
