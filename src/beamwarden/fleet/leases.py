"""Room: fleet (pure; imports only ``protocol``). Exclusive leases with fencing epochs.

A lease gives one holder a named resource (a node identity, "the MQTT bridge of site X", a
sweeper) for ``ttl`` after its last renewal. The rules, for any store that keeps leases:

* **acquire** grants a free or expired lease with the next **fencing epoch** of that name (epochs
  only ever grow, across releases and expiries). A live lease is refused with a
  :class:`LeaseRefusal` naming the holder, unless the claimant *is* the holder: then it is a
  renewal (same epoch).
* **renew** and **release** are compare-and-set on the holder id. The holder id is what makes a
  holder: the same hostname or IP is *not* the same holder (a cloned SD card has both).
* a lease is held while ``now < renewed_at + ttl`` and expired from then on (TTL 45 s, last
  renewal at t=0: held at 44 s, expired at 45 s and after). An expired lease cannot be renewed
  or released: its holder lost it and must acquire again (a new epoch).
* a write fenced with an epoch is accepted only while a live lease carries that epoch.

Every function takes the current lease (or ``None``) and ``now`` and returns values; it never
reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from beamwarden.fleet.errors import InvalidLease

#: how often a holder renews by default
DEFAULT_INTERVAL = timedelta(seconds=15)
#: a lease lives this many renewal intervals after its last renewal (two renewals may be missed)
TTL_INTERVALS = 3
#: how long a lease lives after its last renewal by default
DEFAULT_TTL = TTL_INTERVALS * DEFAULT_INTERVAL


def ttl_for_interval(interval: timedelta) -> timedelta:
    """The TTL of a lease renewed every ``interval`` (a node's lease renews with its heartbeat)."""
    return TTL_INTERVALS * interval


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or claims) a lease. Only ``holder_id`` identifies it; host and IP are for people."""

    holder_id: str
    hostname: str | None = None
    ip: str | None = None

    def describe(self) -> str:
        where = " ".join(
            part
            for part in (self.hostname and f"on {self.hostname}", self.ip and f"({self.ip})")
            if part
        )
        return f"{self.holder_id} {where}" if where else self.holder_id


@dataclass(frozen=True, slots=True)
class Lease:
    """A grant: ``holder`` has ``name`` with fencing ``epoch`` until ``expires_at``."""

    name: str
    holder: Holder
    epoch: int
    acquired_at: datetime
    renewed_at: datetime
    ttl: timedelta

    @property
    def expires_at(self) -> datetime:
        return self.renewed_at + self.ttl

    def held(self, now: datetime) -> bool:
        return now < self.expires_at

    def time_left(self, now: datetime) -> timedelta:
        return max(self.expires_at - now, timedelta(0))

    def held_by(self, holder_id: str, now: datetime) -> bool:
        return self.held(now) and self.holder.holder_id == holder_id


@dataclass(frozen=True, slots=True)
class LeaseRefusal:
    """The answer to a claim on a lease someone else holds: who, where, since when, how long."""

    name: str
    holder: Holder
    epoch: int
    acquired_at: datetime
    time_left: timedelta

    @property
    def message(self) -> str:
        return (
            f"lease {self.name!r} is held by {self.holder.describe()} since "
            f"{self.acquired_at.isoformat()}, {self.time_left.total_seconds():.1f} s left"
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful acquire.

    ``new`` is false when the holder already held the lease (a renewal: same epoch).
    ``replaced`` is the expired lease this grant took the place of, if one was still stored: its
    holder vanished without releasing, which the activity log records as an expiry.
    """

    lease: Lease
    new: bool
    replaced: Lease | None = None


def refusal(lease: Lease, now: datetime) -> LeaseRefusal:
    return LeaseRefusal(
        lease.name, lease.holder, lease.epoch, lease.acquired_at, lease.time_left(now)
    )


def check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise InvalidLease(f"a lease TTL must be positive, not {ttl.total_seconds()} s")


def acquire(
    current: Lease | None,
    last_epoch: int,
    name: str,
    holder: Holder,
    ttl: timedelta,
    now: datetime,
) -> Grant | LeaseRefusal:
    """Claim ``name`` for ``holder``. ``last_epoch`` is the highest epoch ever granted for it."""
    check_ttl(ttl)
    if current is not None and current.held(now):
        if current.holder.holder_id != holder.holder_id:
            return refusal(current, now)
        return Grant(replace(current, holder=holder, renewed_at=now, ttl=ttl), new=False)
    epoch = max(last_epoch, current.epoch if current is not None else 0) + 1
    return Grant(Lease(name, holder, epoch, now, now, ttl), new=True, replaced=current)


def renew(
    current: Lease | None, holder_id: str, now: datetime, ttl: timedelta | None = None
) -> Lease | None:
    """The renewed lease, or ``None`` if ``holder_id`` does not hold it now (the lease is lost)."""
    if ttl is not None:
        check_ttl(ttl)
    if current is None or not current.held_by(holder_id, now):
        return None
    return replace(current, renewed_at=now, ttl=ttl if ttl is not None else current.ttl)


def may_release(current: Lease | None, holder_id: str, now: datetime) -> bool:
    """Whether ``holder_id`` may release the lease now (it holds it, and it has not expired)."""
    return current is not None and current.held_by(holder_id, now)


def epoch_is_current(current: Lease | None, epoch: int, now: datetime) -> bool:
    """Whether a write fenced with ``epoch`` is accepted: a live lease carries that epoch."""
    return current is not None and current.held(now) and current.epoch == epoch


def is_expired(current: Lease | None, now: datetime) -> bool:
    """Whether a stored lease has expired (and should be swept and logged as an expiry)."""
    return current is not None and not current.held(now)
