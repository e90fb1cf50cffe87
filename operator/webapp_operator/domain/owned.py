"""Application secrets: Secrets a WebApp owns, whose values the operator generates.

Juju's application secrets are created by an app and shared with other apps; here a WebApp
declares them in `spec.ownedSecrets`, and the operator keeps a source Secret `<app>.<name>`
(labelled `twelvefactor.dev/owned-by: <app>`, owned by the WebApp) with generated values,
its grant and rotation policy from the spec. Other apps consume it like any secret, by
`secretName: <app>.<name>`. When a rotation is due, the operator generates new values itself
(a new revision); `kubectl webapp rotate-secret` does the same on request.

The generator is written on the Secret (`twelvefactor.dev/generate: token=32,salt=16`: key and
bytes of entropy), so the Secret says how to renew itself. Randomness is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from webapp_operator.domain import numbers
from webapp_operator.domain.errors import InvalidConfig

OWNED_BY_LABEL: Final = "twelvefactor.dev/owned-by"
GENERATE_ANNOTATION: Final = "twelvefactor.dev/generate"
SECRET_KEY_SUFFIX: Final = ".secret-key"  # noqa: S105 (a name suffix)
SECRET_KEY_DATA: Final = "value"  # noqa: S105 (a key name)
SECRET_KEY_BYTES: Final = 64  # paas-charm: secrets.token_urlsafe(64)
_KEY: Final = re.compile(r"^[A-Za-z0-9][-._A-Za-z0-9]*$")


def owned_secret_name(app: str, name: str) -> str:
    """`shop.api-token`: the dot keeps it apart from any Secret a user names."""
    return f"{app}.{name}"


def format_generate(spec: Mapping[str, int]) -> str:
    return ",".join(f"{key}={length}" for key, length in sorted(spec.items()))


def parse_generate(value: str) -> dict[str, int]:
    """`token=32,salt=16` -> {"token": 32, "salt": 16}; InvalidConfig on anything else."""
    result: dict[str, int] = {}
    for item in value.split(","):
        key, sep, length = item.strip().partition("=")
        size = numbers.whole_number(length, least=8, most=512)
        if not sep or not _KEY.match(key) or size is None:
            msg = (
                f"{GENERATE_ANNOTATION}: {item.strip()!r} must be KEY=BYTES with BYTES from "
                "8 to 512"
            )
            raise InvalidConfig(msg)
        result[key] = size
    if not result:
        msg = f"{GENERATE_ANNOTATION}: names no key"
        raise InvalidConfig(msg)
    return result


def generate(spec: Mapping[str, int], token: Callable[[int], str]) -> dict[str, str]:
    """New values for every key: `token(n)` is a URL-safe text of n random bytes."""
    return {key: token(length) for key, length in sorted(spec.items())}
