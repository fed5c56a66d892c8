"""Room: server/services. Retention of the activity log and raw telemetry, and jobs that run once
per fleet: whichever replica holds the job's lease runs it.

Imports services and ``fleet.leases``; never an adapter. The port :class:`RetentionStore` is
satisfied by ``server/store/retention.py`` (built by ``app.py`` from the store's engine).

* :class:`RetentionSweeper` deletes events older than ``events_days`` and telemetry (heartbeat
  rows) older than ``telemetry_days``, at most ``batch`` rows per statement, so a large backlog
  never holds a long transaction (or, on SQLite, the write lock) while requests wait.
* :class:`LeasedJob` runs a periodic job in exactly one replica: every ``interval`` it claims or
  renews its lease (``sweeper:retention``, ``sweeper:reading-keys``) through a
  :class:`~beamwarden.server.services.leases.LeaseKeeper`, and runs the job when it holds the
  lease and the job is due. The job is given ``still_held``, which renews the lease when due and
  says whether it is still held: a long job renews as it goes and stops once it lost the lease.
  A replica that takes a lease over runs the job at once (its previous holder is gone).

The jobs' own lease grants, refusals and releases go to the server's log, not the activity log
(:class:`ServerLogRecorder`): every replica's start would otherwise add entries about the
server's housekeeping to the operators' log of the fleet. A job's lease that *expires* (its
replica vanished) is found by the lease sweep and logged as ``lease_expired`` like any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from beamwarden.fleet.leases import DEFAULT_INTERVAL, DEFAULT_TTL, Holder, Lease
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.records import to_us
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.leases import LeaseKeeper, LeaseService

log = logging.getLogger("beamwarden.retention")

#: the leases of the fleet-wide sweepers
RETENTION_LEASE = "sweeper:retention"
READING_KEYS_LEASE = "sweeper:reading-keys"

DAY = timedelta(days=1)


class RetentionStore(Protocol):
    """Bounded deletes of old rows. Each call is one short transaction; it raises
    :class:`~beamwarden.server.errors.StoreUnavailable` when the database cannot be used."""

    async def delete_events_before(self, before_us: int, limit: int) -> int:
        """Delete up to ``limit`` events stamped (``ts_us``) before ``before_us``, oldest first;
        return how many."""
        ...

    async def delete_telemetry_before(self, before_us: int, limit: int) -> int:
        """Delete up to ``limit`` telemetry rows received (``received_us``) before
        ``before_us``; return how many."""
        ...


StillHeld = Callable[[], Awaitable[bool]]


async def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long rows are kept (0 days: forever) and how many one statement deletes."""

    events_days: float = 90
    telemetry_days: float = 30
    batch: int = 5000


@dataclass(frozen=True, slots=True)
class SweepReport:
    events: int
    telemetry: int
    complete: bool
    """False when the sweep stopped early because the lease was lost."""


class RetentionSweeper:
    def __init__(self, store: RetentionStore, clock: Clock, policy: RetentionPolicy):
        if policy.batch < 1:
            raise ValueError("the retention batch must be at least 1")
        self._store = store
        self._clock = clock
        self.policy = policy

    async def sweep(self, still_held: StillHeld = _always) -> SweepReport:
        """Delete everything past retention, batch by batch, while ``still_held()`` says so."""
        now = self._clock.now()
        events = telemetry = 0
        complete = True
        if self.policy.events_days > 0:
            cutoff = to_us(now - self.policy.events_days * DAY)
            events, complete = await self._drain(
                self._store.delete_events_before, cutoff, still_held
            )
        if complete and self.policy.telemetry_days > 0:
            cutoff = to_us(now - self.policy.telemetry_days * DAY)
            telemetry, complete = await self._drain(
                self._store.delete_telemetry_before, cutoff, still_held
            )
        if events or telemetry:
            log.info(
                "retention: deleted %d events older than %g days and %d telemetry rows older "
                "than %g days",
                events,
                self.policy.events_days,
                telemetry,
                self.policy.telemetry_days,
            )
        return SweepReport(events, telemetry, complete)

    async def _drain(
        self,
        delete: Callable[[int, int], Awaitable[int]],
        before_us: int,
        still_held: StillHeld,
    ) -> tuple[int, bool]:
        total = 0
        while True:
            if not await still_held():
                return total, False
            deleted = await delete(before_us, self.policy.batch)
            total += deleted
            if deleted < self.policy.batch:
                return total, True


class ServerLogRecorder:
    """An ``EventRecorder`` that writes to the server's log only (see the module docstring)."""

    async def record(
        self,
        kind: str,
        message: str,
        *,
        node_id: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        log.info(message, extra={"event_kind": kind})
        return 0


def replica_holder() -> Holder:
    """This server process as a lease holder: a random id (two processes on one host are two
    holders), with the host name and process id for the people reading a refusal."""
    host = socket.gethostname()
    return Holder(f"server-{host}-{os.getpid()}-{secrets.token_hex(4)}", host)


Job = Callable[[StillHeld], Awaitable[object]]


def reading_keys_job(
    prune: Callable[[int], Awaitable[int]], clock: Clock, window: timedelta
) -> Job:
    """The job that forgets opaque reading ids older than the deduplication window
    (``prune(before_us)``: the store's ``prune_reading_keys``)."""

    async def job(still_held: StillHeld) -> int:
        pruned = await prune(to_us(clock.now() - window))
        if pruned:
            log.info("forgot %d opaque reading ids older than %s", pruned, window)
        return pruned

    return job


class LeasedJob:
    """A periodic job that runs in the one replica holding its lease (see the module docstring).

    :meth:`tick` is one step (tests call it after moving a fake clock); :meth:`run` loops.
    """

    def __init__(
        self,
        leases: LeaseService,
        name: str,
        holder: Holder,
        job: Job,
        every: timedelta,
        *,
        ttl: timedelta = DEFAULT_TTL,
        interval: timedelta = DEFAULT_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        if every <= timedelta(0):
            raise ValueError("a job's period must be positive")
        self._clock = leases.clock
        self._job = job
        self._every = every
        self._interval = interval
        self._sleep = sleep or asyncio.sleep
        self._due: datetime | None = None
        self._renew_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.runs = 0
        """How many times this replica ran the job."""
        self.keeper = LeaseKeeper(
            leases,
            name,
            holder,
            ttl=ttl,
            interval=interval,
            on_acquired=self._acquired,
            on_lost=self._lost,
        )

    @property
    def name(self) -> str:
        return self.keeper.name

    async def _acquired(self, lease: Lease) -> None:
        log.info("%s: this replica runs it now (epoch %d)", lease.name, lease.epoch)
        self._due = self._clock.now()  # taken over: the previous holder may be long gone

    async def _lost(self, reason: str) -> None:
        self._due = None

    async def _step_lease(self) -> None:
        await self.keeper.step()
        self._renew_at = self._clock.now() + self._interval

    async def still_held(self) -> bool:
        """Renew the lease if a renewal is due; whether this replica still holds it."""
        if self._renew_at is None or self._clock.now() >= self._renew_at:
            await self._step_lease()
        return self.keeper.held

    async def tick(self) -> bool:
        """Claim or renew the lease (claim again at once if a renewal found it lost); run the
        job if held and due. Whether the job ran."""
        async with self._lock:
            was_held = self.keeper.held
            await self._step_lease()
            if was_held and not self.keeper.held:
                await self._step_lease()
            if not self.keeper.held or self._due is None or self._clock.now() < self._due:
                return False
            try:
                await self._job(self.still_held)
            except StoreUnavailable as exc:
                log.warning("%s failed: %s (tried again next period)", self.name, exc.message)
            self.runs += 1
            self._due = self._clock.now() + self._every
            return True

    async def run(self) -> None:
        """Tick every ``interval`` until cancelled; then release the lease (a clean stop)."""
        try:
            while True:
                await self.tick()
                await self._sleep(self._interval.total_seconds())
        finally:
            await asyncio.shield(self.keeper.release())
