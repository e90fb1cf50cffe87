"""The domain's error family: one base class, one subclass per user-facing reason.

Every error carries the condition reason it maps to and a message that names the object and
field at fault. Messages never contain secret values: only names of options, keys and Secrets.
"""

from __future__ import annotations

from webapp_operator.domain import reasons


class WebAppError(Exception):
    """Base of every error the domain raises about user input or cluster state."""

    reason: str = reasons.INVALID_CONFIG

    def __init__(
        self, message: str, *, field: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # Set by a raiser that knows the spec field at fault but not the object (the env rules
        # see options, not WebApps): `field` is its path (`spec.secrets.credentials`), `detail`
        # the message relative to it. A caller that knows the object names both with `named`.
        self.field = field
        self.detail = message if detail is None else detail

    def named(self, subject: str, referent: str | None = None) -> WebAppError:
        """This error, of the same class, as `<subject>: <field>: [<referent>: ]<detail>`, or
        `<subject>: <message>` when no field is known. `subject` names the object
        (`WebApp ns/name`), `referent` what the field refers to (`Secret ns/name`)."""
        if self.field is None:
            return type(self)(f"{subject}: {self.message}")
        where = f"{self.field}: {referent}" if referent else self.field
        return type(self)(
            f"{subject}: {where}: {self.detail}", field=self.field, detail=self.detail
        )


class InvalidConfig(WebAppError):
    """The WebApp spec (or an operator setting) is malformed or contradictory."""

    reason = reasons.INVALID_CONFIG


class InvalidSecretKey(WebAppError):
    """A Secret key cannot form a valid environment variable name (or collides)."""

    reason = reasons.INVALID_SECRET_KEY


class SecretNotFound(WebAppError):
    """A Secret referenced by the WebApp does not exist or is not opted in."""

    reason = reasons.SECRET_NOT_FOUND


class SecretNotGranted(WebAppError):
    """A Secret exists but has not granted the WebApp that references it."""

    reason = reasons.SECRET_NOT_GRANTED


class RevisionNotFound(WebAppError):
    """A pinned (or tracked) revision of a Secret no longer exists."""

    reason = reasons.REVISION_NOT_FOUND


class ServiceAccountNotFound(WebAppError):
    """`spec.serviceAccountName` names a ServiceAccount that does not exist."""

    reason = reasons.SERVICE_ACCOUNT_NOT_FOUND


class ServiceAccountNotGranted(WebAppError):
    """`spec.serviceAccountName` names a ServiceAccount that has not granted the WebApp."""

    reason = reasons.SERVICE_ACCOUNT_NOT_GRANTED


class SnapshotNameTaken(WebAppError):
    """The name of a revision or environment snapshot is held by a Secret the operator did not
    make (raised by the reconcilers, which never adopt nor overwrite it)."""

    reason = reasons.SNAPSHOT_NAME_TAKEN


class MigrationFailed(WebAppError):
    """The migration Job of the release failed or ran out of time (raised by the reconciler;
    the processes keep their previous release)."""

    reason = reasons.MIGRATION_FAILED
