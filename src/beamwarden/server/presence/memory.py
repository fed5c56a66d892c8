"""Room: server/presence (adapter). In-process leases and presence: the embedded default.

Satisfies ``Presence`` of :mod:`beamwarden.server.services.leases` structurally (adapters never
import services). Only for one server process: a second process has its own table.

The rules are :mod:`beamwarden.fleet.leases`, applied to a dict. Every method reads and writes its
tables without awaiting in between, so on one event loop each call is atomic (asyncio-safe); the
instance is not meant to be shared between threads. Time is the ``now`` each call is given.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from beamwarden.fleet import leases as rules
from beamwarden.fleet.leases import Grant, Holder, Lease, LeaseRefusal


class MemoryPresence:
    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        #: the highest epoch ever granted per name; never forgotten, so epochs only grow
        self._epochs: dict[str, int] = {}
        #: key → (last seen, present until)
        self._seen: dict[str, tuple[datetime, datetime]] = {}

    # --- leases ------------------------------------------------------------------------------

    async def try_acquire(
        self, name: str, holder: Holder, ttl: timedelta, now: datetime
    ) -> Grant | LeaseRefusal:
        result = rules.acquire(
            self._leases.get(name), self._epochs.get(name, 0), name, holder, ttl, now
        )
        if isinstance(result, Grant):
            self._leases[name] = result.lease
            self._epochs[name] = result.lease.epoch
        return result

    async def renew(
        self, name: str, holder_id: str, now: datetime, ttl: timedelta | None = None
    ) -> Lease | None:
        renewed = rules.renew(self._leases.get(name), holder_id, now, ttl)
        if renewed is not None:
            self._leases[name] = renewed
        return renewed

    async def release(self, name: str, holder_id: str, now: datetime) -> Lease | None:
        current = self._leases.get(name)
        if current is None or not rules.may_release(current, holder_id, now):
            return None
        del self._leases[name]
        return current

    async def get(self, name: str, now: datetime) -> Lease | None:
        current = self._leases.get(name)
        return current if current is not None and current.held(now) else None

    async def check_epoch(self, name: str, epoch: int, now: datetime) -> bool:
        return rules.epoch_is_current(self._leases.get(name), epoch, now)

    async def list_leases(self, now: datetime) -> list[Lease]:
        return sorted(
            (lease for lease in self._leases.values() if lease.held(now)), key=lambda x: x.name
        )

    async def expire(self, now: datetime, limit: int = 1000) -> list[Lease]:
        expired = [lease for lease in self._leases.values() if not lease.held(now)][:limit]
        for lease in expired:
            del self._leases[lease.name]
        return expired

    # --- presence ----------------------------------------------------------------------------

    async def seen(self, key: str, now: datetime, ttl: timedelta) -> None:
        self._seen[key] = (now, now + ttl)

    async def last_seen(self, key: str, now: datetime) -> datetime | None:
        entry = self._seen.get(key)
        return entry[0] if entry is not None and now < entry[1] else None

    async def present(self, now: datetime) -> dict[str, datetime]:
        return {key: at for key, (at, until) in sorted(self._seen.items()) if now < until}

    async def forget_absent(self, now: datetime, limit: int = 1000) -> list[str]:
        gone = sorted(key for key, (_, until) in self._seen.items() if now >= until)[:limit]
        for key in gone:
            del self._seen[key]
        return gone

    async def close(self) -> None:
        """Nothing to close; present for the ``Presence`` port."""
