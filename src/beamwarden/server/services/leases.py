"""Room: server/services. Exclusive leases with fencing epochs, node presence, and the keeper that
holds a lease for a process; the ports (Protocols) the presence adapters satisfy.

The rules are :mod:`beamwarden.fleet.leases` (pure); an adapter (``server/presence``: in-process
or Redis) applies them atomically and keeps the highest epoch of every name forever. Every adapter
method takes ``now``: time comes from this service's clock, so tests move a fake clock instead of
sleeping, and both adapters decide the same way for the same arguments.

What the activity log records (never a renewal, which is a heartbeat of the lease):

* ``lease_granted``: a new grant (a new epoch);
* ``lease_refused``: a claim on a lease someone else holds; once per claimant and grant, so a
  cloned node heartbeating every 15 s does not flood the log;
* ``lease_released``: the holder let go cleanly;
* ``lease_expired``: the holder vanished and its lease ran out (found by the sweep or replaced by
  a new grant, whichever comes first: exactly once per grant), so a crash and a clean stop differ.

Services never raise HTTP errors: refusals are returned as values; :class:`StaleEpoch` is raised
by :meth:`LeaseService.require_epoch` for the API layer to map.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from beamwarden.fleet.errors import StaleEpoch
from beamwarden.fleet.leases import (
    DEFAULT_INTERVAL,
    DEFAULT_TTL,
    Grant,
    Holder,
    Lease,
    LeaseRefusal,
    check_ttl,
    ttl_for_interval,
)
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.services.clock import Clock

log = logging.getLogger("beamwarden.leases")

#: the lease that a node's first live instance holds is named ``node:<node_id>``
NODE_LEASE_PREFIX = "node:"

LEASE_GRANTED = "lease_granted"
LEASE_REFUSED = "lease_refused"
LEASE_RELEASED = "lease_released"
LEASE_EXPIRED = "lease_expired"

#: at most this many (claimant, grant) refusals are remembered to log each once
_REFUSALS_REMEMBERED = 10_000


#: leases the server takes for itself (node instances, its periodic jobs, the MQTT bridge): an
#: outside worker may not claim them, or it could pause a job of the fleet
SERVER_LEASE_PREFIXES = (NODE_LEASE_PREFIX, "sweeper:", "bridge:", "server:")
SERVER_LEASE_NAMES = frozenset({"alert-evaluator", "rollups"})


def is_server_lease(name: str) -> bool:
    return name in SERVER_LEASE_NAMES or name.startswith(SERVER_LEASE_PREFIXES)


def node_lease_name(node_id: str) -> str:
    return f"{NODE_LEASE_PREFIX}{node_id}"


def node_of(name: str) -> str | None:
    """The node a lease is about, if it is a node lease."""
    return name[len(NODE_LEASE_PREFIX) :] if name.startswith(NODE_LEASE_PREFIX) else None


# --- ports -------------------------------------------------------------------------------------


class LeaseStore(Protocol):
    """Leases kept by an adapter. Each method is atomic; each follows :mod:`fleet.leases`.

    Raises :class:`~beamwarden.server.errors.StoreUnavailable` when the backend cannot be reached.
    """

    async def try_acquire(
        self, name: str, holder: Holder, ttl: timedelta, now: datetime
    ) -> Grant | LeaseRefusal:
        """Grant ``name`` to ``holder`` (next epoch), renew it if ``holder`` holds it, or refuse."""
        ...

    async def renew(
        self, name: str, holder_id: str, now: datetime, ttl: timedelta | None = None
    ) -> Lease | None:
        """The renewed lease, or ``None`` if ``holder_id`` does not hold it now (lost)."""
        ...

    async def release(self, name: str, holder_id: str, now: datetime) -> Lease | None:
        """Remove the lease if ``holder_id`` holds it now; return what was released, else None."""
        ...

    async def get(self, name: str, now: datetime) -> Lease | None:
        """The live lease of ``name`` (an expired one is ``None``)."""
        ...

    async def check_epoch(self, name: str, epoch: int, now: datetime) -> bool:
        """Whether a live lease of ``name`` carries ``epoch``."""
        ...

    async def list_leases(self, now: datetime) -> list[Lease]:
        """Every live lease, ordered by name."""
        ...

    async def expire(self, now: datetime, limit: int = 1000) -> list[Lease]:
        """Remove up to ``limit`` expired leases and return them (each is returned once, ever)."""
        ...


class PresenceStore(Protocol):
    """Who was seen lately: a key (a node id) is present until ``ttl`` after it was last seen."""

    async def seen(self, key: str, now: datetime, ttl: timedelta) -> None: ...

    async def last_seen(self, key: str, now: datetime) -> datetime | None:
        """When ``key`` was last seen, or ``None`` if never or not within its TTL."""
        ...

    async def present(self, now: datetime) -> dict[str, datetime]:
        """Every present key and when it was last seen."""
        ...

    async def forget_absent(self, now: datetime, limit: int = 1000) -> list[str]:
        """Remove up to ``limit`` keys whose TTL ran out; return them."""
        ...


class Presence(LeaseStore, PresenceStore, Protocol):
    """What an adapter of ``server/presence`` provides."""

    async def close(self) -> None: ...


class EventRecorder(Protocol):
    """Where lease events go (:class:`~beamwarden.server.services.activity.ActivityLog`)."""

    async def record(
        self,
        kind: str,
        message: str,
        *,
        node_id: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int: ...


# --- the service -------------------------------------------------------------------------------


def _lease_data(lease: Lease) -> dict[str, Any]:
    return {
        "lease": lease.name,
        "holder": lease.holder.holder_id,
        "hostname": lease.holder.hostname,
        "ip": lease.holder.ip,
        "epoch": lease.epoch,
        "acquired_at": lease.acquired_at.isoformat(),
        "renewed_at": lease.renewed_at.isoformat(),
        "ttl_seconds": lease.ttl.total_seconds(),
    }


class LeaseService:
    """Leases and presence on the server's clock, with their events recorded."""

    def __init__(self, store: Presence, clock: Clock, events: EventRecorder):
        self._store = store
        self._clock = clock
        self._events = events
        self._refusals_logged: dict[tuple[str, str, int], None] = {}

    @property
    def clock(self) -> Clock:
        return self._clock

    async def acquire(
        self,
        name: str,
        holder: Holder,
        ttl: timedelta = DEFAULT_TTL,
        *,
        actor: str | None = None,
        log_grant: bool = True,
    ) -> Grant | LeaseRefusal:
        """Claim ``name``. A refusal names the holder; the holder re-claiming is a renewal.
        ``log_grant=False``: a new grant is not written to the activity log (the caller logs what
        it means, e.g. a node instance's start)."""
        check_ttl(ttl)
        result = await self._store.try_acquire(name, holder, ttl, self._clock.now())
        if isinstance(result, LeaseRefusal):
            await self._refused(result, holder, actor)
            return result
        if result.replaced is not None:
            await self._expired(result.replaced)
        if result.new and log_grant:
            lease = result.lease
            await self._events.record(
                LEASE_GRANTED,
                f"lease {name} granted to {holder.describe()} (epoch {lease.epoch})",
                node_id=node_of(name),
                actor=actor,
                data=_lease_data(lease),
            )
        return result

    async def renew(self, name: str, holder_id: str, ttl: timedelta | None = None) -> Lease | None:
        """The renewed lease, or ``None``: the lease is lost and the holder must stop."""
        if ttl is not None:
            check_ttl(ttl)
        return await self._store.renew(name, holder_id, self._clock.now(), ttl)

    async def release(self, name: str, holder_id: str, *, actor: str | None = None) -> bool:
        """Let go; ``False`` if ``holder_id`` did not hold the lease (any more)."""
        return await self.release_lease(name, holder_id, actor=actor) is not None

    async def release_lease(
        self, name: str, holder_id: str, *, actor: str | None = None
    ) -> Lease | None:
        """Let go; the lease released, or ``None`` if ``holder_id`` did not hold it (any more)."""
        released = await self._store.release(name, holder_id, self._clock.now())
        if released is None:
            return None
        await self._events.record(
            LEASE_RELEASED,
            f"lease {name} released by {released.holder.describe()} (epoch {released.epoch})",
            node_id=node_of(name),
            actor=actor,
            data=_lease_data(released),
        )
        return released

    async def get(self, name: str) -> Lease | None:
        return await self._store.get(name, self._clock.now())

    async def list_leases(self) -> list[Lease]:
        return await self._store.list_leases(self._clock.now())

    async def check_epoch(self, name: str, epoch: int) -> bool:
        """Whether a write fenced with ``epoch`` on ``name`` is accepted now."""
        return await self._store.check_epoch(name, epoch, self._clock.now())

    async def require_epoch(self, name: str, epoch: int) -> None:
        """Raise :class:`StaleEpoch` unless a write fenced with ``epoch`` is accepted now."""
        if not await self.check_epoch(name, epoch):
            raise StaleEpoch(name, epoch)

    async def expire(self, limit: int = 1000) -> list[Lease]:
        """Sweep expired leases and record an expiry for each (their holders vanished)."""
        expired = await self._store.expire(self._clock.now(), limit)
        for lease in expired:
            await self._expired(lease)
        return expired

    async def sweep_once(self, batch: int = 1000) -> int:
        """Expire every expired lease (in batches) and forget absent presence; how many expired."""
        count = 0
        while True:
            expired = await self.expire(batch)
            count += len(expired)
            if len(expired) < batch:
                break
        await self._store.forget_absent(self._clock.now())
        return count

    async def sweep(
        self, every_s: float, sleep: Callable[[float], Awaitable[None]] | None = None
    ) -> None:
        """Run :meth:`sweep_once` every ``every_s`` seconds until cancelled.

        Run it in every replica: the adapters make each expiry come out of exactly one sweep.
        """
        pause = sleep or asyncio.sleep
        while True:
            try:
                await self.sweep_once()
            except StoreUnavailable as exc:
                log.warning("lease sweep failed: %s", exc.message)
            await pause(every_s)

    # --- a node's lease, held by its first live instance ------------------------------------

    async def hold_node(
        self,
        node_id: str,
        instance_id: str,
        interval_seconds: float,
        *,
        hostname: str | None = None,
        ip: str | None = None,
        log_grant: bool = True,
    ) -> Grant | LeaseRefusal:
        """On each heartbeat: mark the node present and claim (or renew) ``node:<node_id>`` for
        ``instance_id``, with a TTL of three heartbeat intervals. A refusal means a second live
        instance (a cloned SD card, two agents with one config): answer 409 naming the holder.
        ``log_grant=False`` for an instance the server already knew (a re-grant after the
        server's own restart is not news)."""
        ttl = ttl_for_interval(timedelta(seconds=interval_seconds))
        await self.seen(node_id, ttl)
        holder = Holder(instance_id, hostname, ip)
        return await self.acquire(
            node_lease_name(node_id), holder, ttl, actor=f"node:{node_id}", log_grant=log_grant
        )

    async def release_node(self, node_id: str, instance_id: str) -> bool:
        """When the instance stops (or its start fails): let the node's lease go."""
        return await self.release(node_lease_name(node_id), instance_id, actor=f"node:{node_id}")

    # --- presence --------------------------------------------------------------------------

    async def seen(self, key: str, ttl: timedelta) -> None:
        await self._store.seen(key, self._clock.now(), ttl)

    async def last_seen(self, key: str) -> datetime | None:
        return await self._store.last_seen(key, self._clock.now())

    async def present(self) -> dict[str, datetime]:
        return await self._store.present(self._clock.now())

    # --- events ----------------------------------------------------------------------------

    async def _expired(self, lease: Lease) -> None:
        await self._events.record(
            LEASE_EXPIRED,
            f"lease {lease.name} of {lease.holder.describe()} expired (epoch {lease.epoch}): "
            f"not renewed since {lease.renewed_at.isoformat()}",
            node_id=node_of(lease.name),
            data={**_lease_data(lease), "expired_at": lease.expires_at.isoformat()},
        )

    async def _refused(self, refusal: LeaseRefusal, claimant: Holder, actor: str | None) -> None:
        key = (refusal.name, claimant.holder_id, refusal.epoch)
        if key in self._refusals_logged:
            return
        if len(self._refusals_logged) >= _REFUSALS_REMEMBERED:
            del self._refusals_logged[next(iter(self._refusals_logged))]
        self._refusals_logged[key] = None
        await self._events.record(
            LEASE_REFUSED,
            f"{claimant.describe()} refused lease {refusal.name}: {refusal.message}",
            node_id=node_of(refusal.name),
            actor=actor,
            data={
                "lease": refusal.name,
                "claimant": claimant.holder_id,
                "claimant_hostname": claimant.hostname,
                "claimant_ip": claimant.ip,
                "holder": refusal.holder.holder_id,
                "hostname": refusal.holder.hostname,
                "ip": refusal.holder.ip,
                "epoch": refusal.epoch,
                "acquired_at": refusal.acquired_at.isoformat(),
                "time_left_seconds": refusal.time_left.total_seconds(),
            },
        )


# --- a process holding a lease -----------------------------------------------------------------

OnAcquired = Callable[[Lease], Awaitable[None]]
OnLost = Callable[[str], Awaitable[None]]


class LeaseKeeper:
    """Holds a lease for a process: claims it, renews it every ``interval``, and demotes itself.

    It demotes itself (``on_lost(reason)``, then claims again on the next step) when a renewal
    says the lease is lost, and also when renewals *fail* (the store is unreachable) for so long
    that the lease could expire before the next try: from ``ttl - interval`` after the last
    successful renewal, it can no longer be sure nobody else holds it.

    :meth:`step` is one attempt (tests call it after moving a fake clock); :meth:`run` loops.
    """

    def __init__(
        self,
        leases: LeaseService,
        name: str,
        holder: Holder,
        *,
        ttl: timedelta = DEFAULT_TTL,
        interval: timedelta = DEFAULT_INTERVAL,
        on_acquired: OnAcquired | None = None,
        on_lost: OnLost | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        check_ttl(ttl)
        if not timedelta(0) < interval < ttl:
            raise ValueError("the renewal interval must be positive and shorter than the TTL")
        self._leases = leases
        self.name = name
        self.holder = holder
        self._ttl = ttl
        self._interval = interval
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._sleep = sleep or asyncio.sleep
        self.lease: Lease | None = None
        """The lease while this process holds it (its ``epoch`` fences writes)."""
        self._confirmed_at: datetime | None = None

    @property
    def held(self) -> bool:
        return self.lease is not None

    async def step(self) -> None:
        """Claim the lease if not held, renew it if held; demote on loss."""
        if self.lease is None:
            await self._claim()
            return
        try:
            renewed = await self._leases.renew(self.name, self.holder.holder_id, self._ttl)
        except StoreUnavailable as exc:
            assert self._confirmed_at is not None
            if self._leases.clock.now() >= self._confirmed_at + self._ttl - self._interval:
                await self._lose(f"renewal failed for too long: {exc.message}")
            return
        if renewed is None:
            await self._lose("lease lost")
            return
        self.lease = renewed
        self._confirmed_at = renewed.renewed_at

    async def run(self) -> None:
        """Step every ``interval`` until cancelled."""
        while True:
            await self.step()
            await self._sleep(self._interval.total_seconds())

    async def release(self) -> bool:
        """Let go of the lease (a clean stop); ``False`` if it was not held."""
        if self.lease is None:
            return False
        self.lease = None
        self._confirmed_at = None
        try:
            return await self._leases.release(self.name, self.holder.holder_id)
        except StoreUnavailable:
            return False  # it will expire on its own

    async def _claim(self) -> None:
        try:
            result = await self._leases.acquire(self.name, self.holder, self._ttl)
        except StoreUnavailable as exc:
            log.warning("cannot claim lease %s: %s", self.name, exc.message)
            return
        if isinstance(result, Grant):
            self.lease = result.lease
            self._confirmed_at = result.lease.renewed_at
            if self._on_acquired is not None:
                await self._on_acquired(result.lease)

    async def _lose(self, reason: str) -> None:
        log.warning("lease %s lost by %s: %s", self.name, self.holder.holder_id, reason)
        self.lease = None
        self._confirmed_at = None
        if self._on_lost is not None:
            await self._on_lost(reason)
