"""Contract suite of the presence adapters: the in-process one and Redis answer alike.

Every test runs against both, through the adapter directly or through ``LeaseService`` (which
adds the activity events). Time is a ``FakeClock`` moved by the tests; nothing sleeps: the adapters
compare the deadlines they store with the ``now`` they are given (see ``presence/redis.py``).

Redis is the shared development server (``$BEAMWARDEN_TEST_REDIS``, default
``redis://127.0.0.1:6379/0``); each test uses its own random key prefix and deletes only those
keys afterwards. Without Redis the Redis half is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from beamwarden.fleet.errors import InvalidLease, StaleEpoch
from beamwarden.fleet.leases import Grant, Holder, Lease, LeaseRefusal
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.presence import open_presence
from beamwarden.server.presence.memory import MemoryPresence
from beamwarden.server.presence.redis import RedisPresence
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.leases import (
    LEASE_EXPIRED,
    LEASE_GRANTED,
    LEASE_REFUSED,
    LEASE_RELEASED,
    LeaseKeeper,
    LeaseService,
    Presence,
    node_lease_name,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("BEAMWARDEN_TEST_REDIS", "redis://127.0.0.1:6379/0")
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=45)
INTERVAL = timedelta(seconds=15)
A = Holder("inst-a", "pi-kitchen", "192.168.1.20")
B = Holder("inst-b", "pi-kitchen", "192.168.1.20")  # a cloned SD card: same host and IP


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Recorded:
    kind: str
    message: str
    node_id: str | None
    actor: str | None
    data: dict[str, Any]


@dataclass
class Events:
    """An ``EventRecorder`` that keeps what it is given."""

    items: list[Recorded] = field(default_factory=list)

    async def record(
        self,
        kind: str,
        message: str,
        *,
        node_id: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        self.items.append(Recorded(kind, message, node_id, actor, data or {}))
        return len(self.items)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items]


@asynccontextmanager
async def redis_presence() -> AsyncIterator[RedisPresence]:
    """A Redis adapter under a fresh key prefix; its keys are deleted afterwards."""
    prefix = f"bw-test-{secrets.token_hex(6)}"
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        await client.aclose()
        message = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests that need it fail rather than skip)")
        pytest.skip(message)
    try:
        yield RedisPresence(client, prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[Presence]:
    if request.param == "memory":
        yield MemoryPresence()
        return
    async with redis_presence() as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def leases(presence: Presence, clock: FakeClock, events: Events) -> LeaseService:
    return LeaseService(presence, clock, events)


# --- the acceptance list ---------------------------------------------------------------


async def test_50_concurrent_claims_exactly_one_wins(leases: LeaseService, events: Events) -> None:
    claimants = [Holder(f"inst-{i:02d}", "same-host", "10.0.0.1") for i in range(50)]
    results = await asyncio.gather(*(leases.acquire("bridge:site-x", h) for h in claimants))
    grants = [r for r in results if isinstance(r, Grant)]
    refusals = [r for r in results if isinstance(r, LeaseRefusal)]
    assert len(grants) == 1
    assert len(refusals) == 49
    winner = grants[0].lease
    assert winner == Lease("bridge:site-x", winner.holder, 1, T0, T0, TTL)
    assert {r.holder for r in refusals} == {winner.holder}
    assert all(
        r.message.startswith(f"lease 'bridge:site-x' is held by {winner.holder.holder_id}")
        for r in refusals
    )
    assert all((r.epoch, r.acquired_at, r.time_left) == (1, T0, TTL) for r in refusals)
    assert events.kinds() == [LEASE_GRANTED] + [LEASE_REFUSED] * 49


async def test_silent_60s_then_a_second_claims_and_the_first_has_lost(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    name = node_lease_name("node-1")
    first = await leases.acquire(name, A)
    assert isinstance(first, Grant)
    clock.advance(60)
    second = await leases.acquire(name, B)
    assert second == Grant(Lease(name, B, 2, at(60), at(60), TTL), new=True, replaced=first.lease)
    assert await leases.renew(name, A.holder_id) is None  # "lease lost"
    assert await leases.release(name, A.holder_id) is False
    assert await leases.get(name) == Lease(name, B, 2, at(60), at(60), TTL)
    assert await leases.check_epoch(name, 1) is False
    assert await leases.check_epoch(name, 2) is True
    with pytest.raises(StaleEpoch):
        await leases.require_epoch(name, 1)
    await leases.require_epoch(name, 2)
    assert events.kinds() == [LEASE_GRANTED, LEASE_EXPIRED, LEASE_GRANTED]
    assert [e.node_id for e in events.items] == ["node-1"] * 3
    expired = events.items[1]
    assert expired.data == {
        "lease": name,
        "holder": "inst-a",
        "hostname": "pi-kitchen",
        "ip": "192.168.1.20",
        "epoch": 1,
        "acquired_at": T0.isoformat(),
        "renewed_at": T0.isoformat(),
        "ttl_seconds": 45.0,
        "expired_at": at(45).isoformat(),
    }
    # the replaced lease was logged once: a later sweep has nothing more to say
    assert await leases.expire() == []
    assert events.kinds() == [LEASE_GRANTED, LEASE_EXPIRED, LEASE_GRANTED]


async def test_the_keeper_of_the_first_holder_reports_lease_lost(
    leases: LeaseService, clock: FakeClock
) -> None:
    lost: list[str] = []

    async def on_lost(reason: str) -> None:
        lost.append(reason)

    keeper = LeaseKeeper(leases, "job", A, on_lost=on_lost)
    await keeper.step()
    assert keeper.held
    assert keeper.lease is not None
    assert keeper.lease.epoch == 1
    clock.advance(60)  # the process was frozen (SIGSTOP, a long GC, a suspended VM)
    assert isinstance(await leases.acquire("job", B), Grant)
    await keeper.step()
    assert lost == ["lease lost"]
    assert not keeper.held
    assert await keeper.release() is False
    assert (await leases.get("job")) is not None


async def test_held_at_44_expired_at_46_and_an_expired_event_by_50(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    await leases.acquire("job", A)
    clock.advance(44)
    assert await leases.get("job") == Lease("job", A, 1, T0, T0, TTL)
    refused = await leases.acquire("job", B)
    assert refused == LeaseRefusal("job", A, 1, T0, timedelta(seconds=1))
    assert await leases.expire() == []
    clock.set(at(46))
    assert await leases.get("job") is None
    assert await leases.check_epoch("job", 1) is False
    assert await leases.list_leases() == []
    clock.set(at(50))
    assert await leases.sweep_once() == 1
    assert events.kinds() == [LEASE_GRANTED, LEASE_REFUSED, LEASE_EXPIRED]
    assert events.items[-1].message == (
        "lease job of inst-a on pi-kitchen (192.168.1.20) expired (epoch 1): "
        f"not renewed since {T0.isoformat()}"
    )
    assert await leases.sweep_once() == 0


async def test_a_clean_release_is_not_an_expiry(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    await leases.acquire("job", A, actor="sweeper")
    clock.advance(10)
    assert await leases.release("job", A.holder_id, actor="sweeper") is True
    clock.advance(100)
    assert await leases.sweep_once() == 0
    assert events.kinds() == [LEASE_GRANTED, LEASE_RELEASED]
    assert events.items[1].message == (
        "lease job released by inst-a on pi-kitchen (192.168.1.20) (epoch 1)"
    )
    assert [e.actor for e in events.items] == ["sweeper", "sweeper"]
    assert events.items[1].node_id is None


# --- the rules, through each adapter ------------------------------------------------------------


async def test_same_host_is_not_same_holder(presence: Presence) -> None:
    await presence.try_acquire("node:n1", A, TTL, T0)
    assert await presence.try_acquire("node:n1", B, TTL, at(1)) == LeaseRefusal(
        "node:n1", A, 1, T0, timedelta(seconds=44)
    )
    assert await presence.renew("node:n1", B.holder_id, at(1)) is None
    assert await presence.release("node:n1", B.holder_id, at(1)) is None


async def test_the_holder_re_acquiring_renews_with_the_same_epoch(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    await leases.acquire("job", A)
    clock.advance(30)
    moved = Holder("inst-a", "pi-kitchen", "192.168.1.99")
    again = await leases.acquire("job", moved, timedelta(seconds=20))
    assert again == Grant(Lease("job", moved, 1, T0, at(30), timedelta(seconds=20)), new=False)
    assert events.kinds() == [LEASE_GRANTED]


async def test_renewal_moves_the_deadline_and_may_change_the_ttl(presence: Presence) -> None:
    await presence.try_acquire("job", A, TTL, T0)
    assert await presence.renew("job", "inst-a", at(40)) == Lease("job", A, 1, T0, at(40), TTL)
    assert await presence.get("job", at(84)) is not None
    assert await presence.renew("job", "inst-a", at(84), timedelta(seconds=5)) == Lease(
        "job", A, 1, T0, at(84), timedelta(seconds=5)
    )
    assert await presence.get("job", at(89)) is None
    assert await presence.renew("job", "inst-a", at(89)) is None


async def test_epochs_grow_across_releases_and_expiries(presence: Presence) -> None:
    epochs = []
    for step in range(5):
        now = at(100 * step)
        grant = await presence.try_acquire("job", A if step % 2 else B, TTL, now)
        assert isinstance(grant, Grant)
        epochs.append(grant.lease.epoch)
        if step % 2:
            assert await presence.release("job", A.holder_id, now) is not None
    assert epochs == [1, 2, 3, 4, 5]
    assert [e.epoch for e in await presence.expire(at(1000))] == [5]


async def test_an_expired_lease_cannot_be_released_and_is_swept_once(presence: Presence) -> None:
    await presence.try_acquire("job", A, TTL, T0)
    assert await presence.release("job", "inst-a", at(45)) is None
    assert await presence.expire(at(45)) == [Lease("job", A, 1, T0, T0, TTL)]
    assert await presence.expire(at(45)) == []
    grant = await presence.try_acquire("job", B, TTL, at(46))
    assert grant == Grant(Lease("job", B, 2, at(46), at(46), TTL), new=True, replaced=None)


async def test_sweeps_race_each_other_and_each_expiry_comes_out_once(presence: Presence) -> None:
    for i in range(30):
        await presence.try_acquire(f"job-{i:02d}", A, TTL, T0)
    swept = await asyncio.gather(*(presence.expire(at(50), limit=7) for _ in range(10)))
    names = [lease.name for batch in swept for lease in batch]
    assert sorted(names) == [f"job-{i:02d}" for i in range(30)]


async def test_leases_are_listed_by_name_live_only(presence: Presence) -> None:
    await presence.try_acquire("b", A, TTL, T0)
    await presence.try_acquire("a", B, timedelta(seconds=100), T0)
    await presence.try_acquire("c", A, timedelta(seconds=10), T0)
    assert [x.name for x in await presence.list_leases(at(5))] == ["a", "b", "c"]
    assert await presence.list_leases(at(50)) == [Lease("a", B, 1, T0, T0, timedelta(seconds=100))]


async def test_an_unknown_lease_is_none_and_fences_nothing(presence: Presence) -> None:
    assert await presence.get("nobody", T0) is None
    assert await presence.check_epoch("nobody", 0, T0) is False
    assert await presence.check_epoch("nobody", 1, T0) is False
    assert await presence.renew("nobody", "inst-a", T0) is None
    assert await presence.release("nobody", "inst-a", T0) is None


async def test_a_holder_without_host_or_ip_stays_without(presence: Presence) -> None:
    worker = Holder("worker-7")
    await presence.try_acquire("job", worker, TTL, T0)
    assert await presence.get("job", T0) == Lease("job", worker, 1, T0, T0, TTL)


async def test_microseconds_survive_the_round_trip(presence: Presence) -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, 123457, tzinfo=UTC)
    ttl = timedelta(seconds=45, microseconds=3)
    await presence.try_acquire("job", A, ttl, now)
    assert await presence.get("job", now + ttl - timedelta(microseconds=1)) == Lease(
        "job", A, 1, now, now, ttl
    )
    assert await presence.get("job", now + ttl) is None


async def test_names_with_odd_characters_are_separate_leases(presence: Presence) -> None:
    names = ["bridge:site x", "bridge:site-x", "ä/ö*?[]{}", "job:"]
    for name in names:
        assert isinstance(await presence.try_acquire(name, A, TTL, T0), Grant)
    assert sorted(x.name for x in await presence.list_leases(T0)) == sorted(names)


async def test_a_ttl_must_be_positive(leases: LeaseService) -> None:
    with pytest.raises(InvalidLease):
        await leases.acquire("job", A, timedelta(0))
    with pytest.raises(InvalidLease):
        await leases.renew("job", "inst-a", timedelta(seconds=-1))


async def test_a_refusal_is_logged_once_per_claimant_and_grant(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    await leases.acquire(node_lease_name("n1"), A)
    for _ in range(5):  # a cloned node heartbeating
        clock.advance(5)
        await leases.acquire(node_lease_name("n1"), B)
        await leases.renew(node_lease_name("n1"), A.holder_id)
    assert events.kinds() == [LEASE_GRANTED, LEASE_REFUSED]
    refused = events.items[1]
    assert refused.node_id == "n1"
    assert refused.data == {
        "lease": "node:n1",
        "claimant": "inst-b",
        "claimant_hostname": "pi-kitchen",
        "claimant_ip": "192.168.1.20",
        "holder": "inst-a",
        "hostname": "pi-kitchen",
        "ip": "192.168.1.20",
        "epoch": 1,
        "acquired_at": T0.isoformat(),
        "time_left_seconds": 40.0,
    }


async def test_a_node_is_held_by_its_first_live_instance(
    leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    first = await leases.hold_node("n1", "inst-a", 15, hostname="pi-kitchen", ip="192.168.1.20")
    assert first == Grant(Lease("node:n1", A, 1, T0, T0, TTL), new=True)
    clock.advance(15)
    again = await leases.hold_node("n1", "inst-a", 15, hostname="pi-kitchen", ip="192.168.1.20")
    assert again == Grant(Lease("node:n1", A, 1, T0, at(15), TTL), new=False)
    clone = await leases.hold_node("n1", "inst-b", 15, hostname="pi-kitchen", ip="192.168.1.20")
    assert clone == LeaseRefusal("node:n1", A, 1, T0, timedelta(seconds=45))
    assert await leases.last_seen("n1") == at(15)
    assert await leases.release_node("n1", "inst-b") is False
    assert await leases.release_node("n1", "inst-a") is True
    slow = await leases.hold_node("n1", "inst-b", 30)  # a node with a 30 s interval: TTL 90 s
    assert isinstance(slow, Grant)
    assert (slow.lease.epoch, slow.lease.ttl) == (2, timedelta(seconds=90))
    assert events.kinds() == [LEASE_GRANTED, LEASE_REFUSED, LEASE_RELEASED, LEASE_GRANTED]
    assert {e.actor for e in events.items} == {"node:n1"}
    assert {e.node_id for e in events.items} == {"n1"}


# --- presence: last seen with a TTL -------------------------------------------------------------


async def test_presence_lasts_its_ttl(presence: Presence) -> None:
    await presence.seen("node-1", T0, timedelta(seconds=30))
    await presence.seen("node-2", at(10), timedelta(seconds=30))
    assert await presence.last_seen("node-1", at(29)) == T0
    assert await presence.last_seen("node-1", at(30)) is None
    assert await presence.last_seen("never", T0) is None
    assert await presence.present(at(20)) == {"node-1": T0, "node-2": at(10)}
    assert await presence.present(at(35)) == {"node-2": at(10)}
    assert await presence.forget_absent(at(35)) == ["node-1"]
    assert await presence.forget_absent(at(35)) == []
    await presence.seen("node-2", at(38), timedelta(seconds=30))
    assert await presence.forget_absent(at(45)) == []
    assert await presence.last_seen("node-2", at(45)) == at(38)


async def test_the_service_sees_on_its_clock(leases: LeaseService, clock: FakeClock) -> None:
    await leases.seen("node-1", timedelta(seconds=30))
    clock.advance(29)
    assert await leases.last_seen("node-1") == T0
    assert await leases.present() == {"node-1": T0}
    clock.advance(1)
    assert await leases.last_seen("node-1") is None
    assert await leases.sweep_once() == 0
    assert await leases.present() == {}


# --- a holder that cannot renew demotes itself --------------------------------------------------


class Flaky:
    """A presence store that fails on demand, like an unreachable Redis."""

    def __init__(self, inner: Presence):
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailable("presence store (test) unavailable")
            return await target(*args, **kwargs)

        return call


async def test_a_keeper_that_cannot_renew_demotes_itself_before_the_ttl(
    presence: Presence, clock: FakeClock, events: Events
) -> None:
    flaky = Flaky(presence)
    leases = LeaseService(flaky, clock, events)
    changes: list[str] = []

    async def on_acquired(lease: Lease) -> None:
        changes.append(f"acquired epoch {lease.epoch}")

    async def on_lost(reason: str) -> None:
        changes.append(reason)

    keeper = LeaseKeeper(
        leases, "sweeper", A, ttl=TTL, interval=INTERVAL, on_acquired=on_acquired, on_lost=on_lost
    )
    await keeper.step()
    flaky.down = True
    clock.advance(15)
    await keeper.step()  # 15 s since the last renewal: still sure
    assert keeper.held
    clock.advance(15)
    await keeper.step()  # 30 s: the lease might expire before the next try
    assert not keeper.held
    assert changes == [
        "acquired epoch 1",
        "renewal failed for too long: presence store (test) unavailable",
    ]
    clock.advance(15)
    await keeper.step()  # still down: claiming fails quietly
    flaky.down = False
    clock.advance(15)  # 60 s: the old grant expired; the keeper claims a new one
    await keeper.step()
    assert changes[-1] == "acquired epoch 2"
    assert await keeper.release() is True
    assert await keeper.release() is False
    await keeper.step()
    flaky.down = True
    assert await keeper.release() is False  # unreachable: the lease will expire on its own
    assert not keeper.held


async def test_the_keeper_runs_on_an_injected_sleep(leases: LeaseService, clock: FakeClock) -> None:
    steps = 0

    async def fake_sleep(seconds: float) -> None:
        nonlocal steps
        steps += 1
        clock.advance(seconds)
        if steps == 5:
            raise asyncio.CancelledError

    keeper = LeaseKeeper(leases, "job", A, sleep=fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        await keeper.run()
    assert await leases.get("job") == Lease("job", A, 1, T0, at(60), TTL)


def test_the_keeper_refuses_an_interval_not_below_the_ttl(leases: LeaseService) -> None:
    with pytest.raises(ValueError, match="shorter than the TTL"):
        LeaseKeeper(leases, "job", A, ttl=TTL, interval=TTL)


async def test_the_sweeper_loop_logs_a_failure_and_carries_on(
    presence: Presence, clock: FakeClock, events: Events
) -> None:
    flaky = Flaky(presence)
    leases = LeaseService(flaky, clock, events)
    await leases.acquire("job", A)
    flaky.down = True
    rounds = 0

    async def fake_sleep(seconds: float) -> None:
        nonlocal rounds
        rounds += 1
        flaky.down = False
        clock.advance(seconds)
        if rounds == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await leases.sweep(30, sleep=fake_sleep)
    assert events.kinds() == [LEASE_GRANTED, LEASE_EXPIRED]


async def test_a_sweep_takes_every_batch(
    presence: Presence, leases: LeaseService, clock: FakeClock, events: Events
) -> None:
    for i in range(1005):
        await presence.try_acquire(f"job-{i}", A, TTL, T0)
    clock.advance(46)
    assert await leases.sweep_once() == 1005
    assert events.kinds() == [LEASE_EXPIRED] * 1005


# --- Redis specifics ---------------------------------------------------------------------------


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    store = RedisPresence.from_url("redis://127.0.0.1:1/0", timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable, match="Redis"):
            await store.try_acquire("job", A, TTL, T0)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_open_presence_picks_the_adapter_from_the_url() -> None:
    assert isinstance(open_presence(None), MemoryPresence)
    assert isinstance(open_presence("memory"), MemoryPresence)
    store = open_presence(REDIS_URL, prefix="bw-test-unused", timeout_s=1.0)
    assert isinstance(store, RedisPresence)
    await store.close()
    with pytest.raises(ValueError, match="unknown presence URL"):
        open_presence("postgresql://localhost/x")
