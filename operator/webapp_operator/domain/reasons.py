"""Condition types, condition reasons and Event reasons: the fixed vocabulary of product.md.

Kept in one module so that conditions, Events and metrics never drift apart.
"""

from typing import Final

# Condition types on a WebApp.
READY: Final = "Ready"
SECRET_UPDATE_AVAILABLE: Final = "SecretUpdateAvailable"
SECRET_ROTATION_DUE: Final = "SecretRotationDue"
SECRET_EXPIRED: Final = "SecretExpired"
CONFIG_OVERRIDDEN: Final = "ConfigOverridden"

# Reasons for Ready.
AVAILABLE: Final = "Available"
SECRET_NOT_FOUND: Final = "SecretNotFound"
SECRET_NOT_GRANTED: Final = "SecretNotGranted"
INVALID_SECRET_KEY: Final = "InvalidSecretKey"
INVALID_CONFIG: Final = "InvalidConfig"
REVISION_NOT_FOUND: Final = "RevisionNotFound"
ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
# A process's rollout made no progress within its deadline (its new pods never became ready):
# the previous pods keep running; told by a Warning Event of the same reason, once per stall.
ROLLOUT_STALLED: Final = "RolloutStalled"
# spec.migration runs (its Job) before any process moves to the new release.
MIGRATION_IN_PROGRESS: Final = "MigrationInProgress"
# The migration Job failed (or ran out of time): the processes keep the previous release.
MIGRATION_FAILED: Final = "MigrationFailed"
SERVICE_ACCOUNT_NOT_FOUND: Final = "ServiceAccountNotFound"
SERVICE_ACCOUNT_NOT_GRANTED: Final = "ServiceAccountNotGranted"
# A name the operator must create (a revision or environment snapshot) is held by a Secret it
# did not make: never adopted, never overwritten (also a Warning Event on the source Secret).
SNAPSHOT_NAME_TAKEN: Final = "SnapshotNameTaken"
# The reasons of Ready=False that are failures (RolloutInProgress and MigrationInProgress are
# progress, not failures). Each failure is also told by a Warning Event of the same reason (the
# one failure path, or, for a stalled rollout, its own notice) and counted in
# webapp_operator_errors_total.
FAILURE_REASONS: Final = frozenset(
    {
        SECRET_NOT_FOUND,
        SECRET_NOT_GRANTED,
        INVALID_SECRET_KEY,
        INVALID_CONFIG,
        REVISION_NOT_FOUND,
        SERVICE_ACCOUNT_NOT_FOUND,
        SERVICE_ACCOUNT_NOT_GRANTED,
        SNAPSHOT_NAME_TAKEN,
        ROLLOUT_STALLED,
        MIGRATION_FAILED,
    }
)

# Event reasons on a source Secret.
REVISION_CREATED: Final = "RevisionCreated"
ROTATION_DUE: Final = "RotationDue"
EXPIRED: Final = "Expired"
REVISION_REMOVED: Final = "RevisionRemoved"
UNSEAL_FAILED: Final = "UnsealFailed"
# On a Secret labelled as a revision that the operator did not make (no valid signature): it is
# ignored, never read nor removed. Told once per such Secret; `secret show` lists it as ignored.
REVISION_NOT_SIGNED: Final = "RevisionNotSigned"

# Event reasons on a WebApp.
# A Deployment's environment was changed outside the operator and put back (a Warning).
ENVIRONMENT_RESTORED: Final = "EnvironmentRestored"
# Other fields of a Deployment (its pod template's fields the WebApp decides, its replicas) or
# a Service changed outside the operator and put back (a Warning).
CHANGE_REVERTED: Final = "ChangeReverted"
# A pod template changed again by every repair (a mutating admission webhook or policy): left as
# it is after REPAIR_TRIES (a Warning).
CHANGE_NOT_REVERTED: Final = "ChangeNotReverted"
SECRET_CHANGED: Final = "SecretChanged"
SECRET_REFRESHED: Final = "SecretRefreshed"
ROLLOUT_STARTED: Final = "RolloutStarted"
# spec.migration's Job of a release was made; it succeeded (the processes move to the release).
MIGRATION_STARTED: Final = "MigrationStarted"
MIGRATION_SUCCEEDED: Final = "MigrationSucceeded"
