"""Retention through the app (issue 4): the sweeper under its lease deletes events older than 90
days and telemetry older than 30 days, on SQLite and PostgreSQL, with the in-process and the Redis
presence; the opaque-reading-id prune runs under a lease the same way. Fake clock; nothing sleeps.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy import func, select

from beamwarden.fleet.leases import Holder
from beamwarden.server.records import EventFilter
from beamwarden.server.services.retention import (
    READING_KEYS_LEASE,
    RETENTION_LEASE,
    LeasedJob,
)
from beamwarden.server.store.schema import reading_keys, telemetry
from tests.conftest import IN_CI, START, Server, auth

REDIS_URL = os.environ.get("BEAMWARDEN_TEST_REDIS", "redis://127.0.0.1:6379/0")
DAY = 86_400.0


@pytest.fixture(params=["memory", "redis"])
async def settings_overrides(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The app on the in-process presence, or on Redis under a fresh key prefix (deleted after)."""
    if request.param == "memory":
        yield {}
        return
    prefix = f"bw-test-{secrets.token_hex(6)}"
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        await client.aclose()
        message = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests that need it fail rather than skip)")
        pytest.skip(message)
    try:
        yield {"presence_url": REDIS_URL, "presence_prefix": prefix}
    finally:
        keys = [key async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def job(server: Server, name: str = RETENTION_LEASE) -> LeasedJob:
    jobs: dict[str, LeasedJob] = server.app.state.jobs
    return jobs[name]


async def kinds_left(server: Server, *kinds: str) -> list[str]:
    rows = await server.services.activity.list(EventFilter(), 1000, None)
    return [r.message for r in reversed(rows) if r.kind in kinds]


async def test_a_91_day_old_event_goes_an_89_day_old_one_stays(server: Server) -> None:
    activity = server.services.activity
    await activity.record("test_old", "recorded at day 0")
    server.clock.advance(2 * DAY)
    await activity.record("test_new", "recorded at day 2")
    server.clock.advance(89 * DAY)  # day 91: 91 and 89 days old
    assert await job(server).tick()
    assert await kinds_left(server, "test_old", "test_new") == ["recorded at day 2"]
    server.clock.advance(2 * DAY)
    assert await job(server).tick()
    assert await kinds_left(server, "test_old", "test_new") == []


async def test_telemetry_goes_after_30_days_and_the_node_keeps_its_last_facts(
    server: Server,
) -> None:
    token, reader = await server.node(), await server.user()
    body = {
        "node_id": "node-1",
        "role": "pi-log",
        "uptime_seconds": 5.0,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
    }
    for _ in range(2):
        r = await server.client.post(
            "/api/telemetry",
            json={**body, "timestamp": server.clock.now().isoformat()},
            headers=auth(token),
        )
        assert r.status_code == 202, r.text
        await server.services.heartbeats.flush()
        server.clock.advance(2 * DAY)
    server.clock.advance(27 * DAY)  # day 31: beats of day 0 (31 days old) and day 2 (29)
    assert await job(server).tick()
    async with server.services.store.engine.connect() as conn:  # type: ignore[attr-defined]
        kept = [row[0] for row in await conn.execute(select(telemetry.c.received_us))]
    assert len(kept) == 1
    node = (await server.client.get("/api/nodes/node-1", headers=auth(reader))).json()
    assert datetime.fromisoformat(node["last_heartbeat_at"]) == START + timedelta(days=2)


async def test_a_second_replica_sweeps_only_once_the_first_is_gone(server: Server) -> None:
    first = job(server)
    await first.tick()
    assert first.keeper.held
    runs = first.runs
    swept: list[str] = []

    async def sweep(still_held: Any) -> None:
        swept.append("second")

    second = LeasedJob(
        server.services.leases,
        RETENTION_LEASE,
        Holder("replica-2", "other-host"),
        sweep,
        timedelta(hours=1),
    )
    for _ in range(8):  # two minutes of both replicas ticking every 15 s
        server.clock.advance(15)
        assert not await first.tick()  # renewed, not due for an hour
        assert not await second.tick()
    assert first.keeper.held
    assert first.runs == runs
    assert swept == []
    # the first replica vanishes (no renewal for longer than the TTL): the second takes over
    server.clock.advance(46)
    assert await second.tick()
    assert swept == ["second"]
    assert not await first.tick()  # its renewal says lost; its claim is refused
    assert not first.keeper.held
    lease = await server.services.leases.get(RETENTION_LEASE)
    assert lease is not None
    assert lease.holder.holder_id == "replica-2"
    assert [
        e.kind
        for e in await server.services.activity.list(EventFilter(kind="lease_expired"), 10, None)
    ] == ["lease_expired"]


async def test_opaque_reading_ids_are_pruned_under_their_own_lease(server: Server) -> None:
    token = await server.node()
    reading = {"sensor_type": "climate", "payload": {"temperature_c": 21.5}, "reading_id": "abc"}
    r = await server.client.post(
        "/api/readings",
        json={**reading, "node_id": "node-1", "timestamp": START.isoformat()},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text

    async def stored_keys() -> int:
        async with server.services.store.engine.connect() as conn:  # type: ignore[attr-defined]
            return int(
                (await conn.execute(select(func.count()).select_from(reading_keys))).scalar_one()
            )

    assert await stored_keys() == 1
    server.clock.advance(8 * DAY)  # past the 7-day window
    assert await job(server, READING_KEYS_LEASE).tick()
    assert await stored_keys() == 0
    lease = await server.services.leases.get(READING_KEYS_LEASE)
    assert lease is not None
    assert lease.holder == job(server, READING_KEYS_LEASE).keeper.holder
