"""Leader election on a coordination.k8s.io Lease, for running two or more replicas.

Why a Lease and not Kopf peering: Kopf's peering pauses a whole operator (its watches too) and
needs Kopf's own CRDs; with a Lease, every replica keeps watching, so its indexes stay warm and a
standby takes over with no re-listing, only the leader reconciles, and the mechanism is the one
Kubernetes' own controllers use (client-go's leaderelection). Standbys write nothing.

The algorithm: the Lease `webapp-operator` in the operator's namespace names its holder and
when it last renewed. A replica that holds it renews it every `renew` seconds; any replica may
take it over once `renewTime + leaseDurationSeconds` has passed. Every write carries the
resourceVersion it read, so two replicas cannot both win a race (the loser gets 409). A holder
that cannot renew within the lease duration steps down by itself, before anyone else can take
over, so two leaders never act at once. A replica that stops cleanly releases the Lease, so
the next takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

logger = logging.getLogger(__name__)

LEASE_NAME: Final = "webapp-operator"


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


class LeaderElection:
    """Hold or wait for the Lease; `leading` is set exactly while this replica leads."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        identity: str,
        duration: float = 15.0,
        renew: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if renew * 2 > duration:
            msg = "the renew interval must be at most half the lease duration"
            raise ValueError(msg)
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.duration = duration
        self.renew = renew
        self.now = now
        self.monotonic = monotonic
        self.leading = asyncio.Event()
        self._renewed_at = 0.0  # monotonic time of our last successful acquire or renew
        # A leader that has not renewed for this long steps down; others wait `duration`.
        self.deadline = duration - renew
        self.transitions = 0

    async def run(self) -> None:
        """Try to acquire or renew forever; step down when renewals keep failing."""
        while True:
            try:
                won = await self._attempt()
            except ApiError as error:
                logger.warning("leader election: %s %s", error.status.code, error.status.reason)
                won = False
            except (OSError, TimeoutError) as error:
                logger.warning("leader election: %s", type(error).__name__)
                won = False
            if won:
                self._renewed_at = self.monotonic()
                if not self.leading.is_set():
                    self.transitions += 1
                    logger.warning("became the leader (%s)", self.identity)
                    self.leading.set()
            elif self.leading.is_set() and self.monotonic() - self._renewed_at > self.deadline:
                # Step down before anyone may take over (renewTime + duration): never two leaders.
                logger.warning("lost the leadership (%s): could not renew", self.identity)
                self.leading.clear()
            await asyncio.sleep(self.renew if self.leading.is_set() else self.renew / 2)

    async def _attempt(self) -> bool:
        """One try: True if this replica holds the Lease afterwards."""
        try:
            lease = await self.client.get(Lease, LEASE_NAME, namespace=self.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            return await self._create()
        spec = lease.spec or LeaseSpec()
        holder = spec.holderIdentity or ""
        renewed = _parse(spec.renewTime)
        duration = spec.leaseDurationSeconds or int(self.duration)
        now = self.now()
        if holder == self.identity:
            spec.renewTime = now
        elif holder and renewed is not None and renewed + timedelta(seconds=duration) > now:
            if self.leading.is_set():
                logger.warning("lost the leadership to %s", holder)
                self.leading.clear()
            return False
        else:
            spec.holderIdentity = self.identity
            spec.acquireTime = now
            spec.renewTime = now
            spec.leaseDurationSeconds = int(self.duration)
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        lease.spec = spec
        try:
            await self.client.replace(lease)
        except ApiError as error:
            if error.status.code == 409:
                return False  # another replica wrote first
            raise
        return True

    async def _create(self) -> bool:
        now = self.now()
        lease = Lease(
            metadata=ObjectMeta(
                name=LEASE_NAME,
                namespace=self.namespace,
                labels={"app.kubernetes.io/managed-by": "webapp-operator"},
            ),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(self.duration),
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            await self.client.create(lease)
        except ApiError as error:
            if error.status.code == 409:
                return False
            raise
        return True

    async def release(self) -> None:
        """On a clean stop: hand the Lease back so a standby takes over at once."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            lease = await self.client.get(Lease, LEASE_NAME, namespace=self.namespace)
            if lease.spec and lease.spec.holderIdentity == self.identity:
                lease.spec.holderIdentity = ""
                lease.spec.renewTime = None
                await self.client.replace(lease)
                logger.warning("released the leadership (%s)", self.identity)
