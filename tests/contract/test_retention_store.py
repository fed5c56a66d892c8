"""Contract of the retention adapter (``store/retention.py``) on SQLite and PostgreSQL: bounded
batches of the oldest rows, nothing within retention touched, 503-mapping when the database is gone.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from beamwarden.protocol import InstanceState
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.records import EventFilter, Heartbeat, NewEvent
from beamwarden.server.store import SqlStore
from beamwarden.server.store.retention import SqlRetention
from beamwarden.server.store.schema import telemetry

BASE = 1_800_000_000_000_000
S = 1_000_000
DAY = 86_400 * S


def beat(received_us: int, node_id: str = "node-1") -> Heartbeat:
    return Heartbeat(
        node_id=node_id,
        ts_us=received_us,
        received_us=received_us,
        role="pi-log",
        uptime_seconds=1.0,
        software_version="2.0.1",
        ip_address="10.0.0.2",
        interval_seconds=30.0,
        protocol_version="1.0",
        instance_id="i-1",
        state=InstanceState.ACTIVE,
        metrics={},
        tags={},
        clock_offset_seconds=0.0,
        clock_samples=1,
    )


async def event_times(store: SqlStore) -> list[int]:
    rows = await store.list_events(EventFilter(), 10_000, None)
    return sorted(r.ts_us for r in rows)


async def telemetry_times(store: SqlStore) -> list[int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(telemetry.c.received_us).order_by(telemetry.c.id))
        return [int(r[0]) for r in rows]


async def test_events_older_than_the_cutoff_go_in_bounded_batches(store: SqlStore) -> None:
    for day in range(10):
        await store.add_event(NewEvent(BASE + day * DAY, "k", f"event of day {day}"))
    retention = SqlRetention(store.engine)
    cutoff = BASE + 6 * DAY
    assert await retention.delete_events_before(cutoff, 4) == 4
    assert await event_times(store) == [BASE + d * DAY for d in range(4, 10)]
    assert await retention.delete_events_before(cutoff, 4) == 2
    assert await retention.delete_events_before(cutoff, 4) == 0
    assert await event_times(store) == [BASE + d * DAY for d in range(6, 10)]


async def test_an_event_exactly_at_the_cutoff_stays(store: SqlStore) -> None:
    await store.add_event(NewEvent(BASE - 1, "k", "just old"))
    await store.add_event(NewEvent(BASE, "k", "at the cutoff"))
    assert await SqlRetention(store.engine).delete_events_before(BASE, 100) == 1
    assert await event_times(store) == [BASE]


async def test_when_every_event_is_old_all_go(store: SqlStore) -> None:
    for i in range(5):
        await store.add_event(NewEvent(BASE + i, "k", "old", data={"i": i}))
    assert await SqlRetention(store.engine).delete_events_before(BASE + DAY, 100) == 5
    assert await event_times(store) == []
    assert await SqlRetention(store.engine).delete_events_before(BASE + DAY, 100) == 0


async def test_a_row_written_out_of_order_goes_once_the_rows_before_it_have(
    store: SqlStore,
) -> None:
    retention = SqlRetention(store.engine)
    await store.add_event(NewEvent(BASE + 5 * DAY, "k", "fresh"))
    await store.add_event(NewEvent(BASE, "k", "stamped earlier, written later"))
    assert await retention.delete_events_before(BASE + DAY, 100) == 0
    assert await event_times(store) == [BASE, BASE + 5 * DAY]
    assert await retention.delete_events_before(BASE + 6 * DAY, 100) == 2


async def test_telemetry_older_than_the_cutoff_goes(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    await store.create_node("node-2", "pi-log", BASE)
    await store.write_heartbeats(
        [beat(BASE + day * DAY, node) for day in range(5) for node in ("node-1", "node-2")]
    )
    retention = SqlRetention(store.engine)
    assert await retention.delete_telemetry_before(BASE + 3 * DAY, 3) == 3
    assert await retention.delete_telemetry_before(BASE + 3 * DAY, 3) == 3
    assert await retention.delete_telemetry_before(BASE + 3 * DAY, 3) == 0
    assert await telemetry_times(store) == [BASE + d * DAY for d in (3, 3, 4, 4)]
    # the node's last-heartbeat facts are not telemetry rows: they stay
    node = await store.get_node("node-1")
    assert node is not None
    assert node.last_heartbeat_us == BASE + 4 * DAY


async def test_events_and_telemetry_are_independent(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    await store.write_heartbeats([beat(BASE)])
    await store.add_event(NewEvent(BASE, "k", "old"))
    retention = SqlRetention(store.engine)
    assert await retention.delete_telemetry_before(BASE + DAY, 10) == 1
    assert await event_times(store) == [BASE]


@pytest.mark.parametrize("method", ["delete_events_before", "delete_telemetry_before"])
async def test_a_limit_below_one_is_a_bug(store: SqlStore, method: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        await getattr(SqlRetention(store.engine), method)(BASE, 0)


async def test_an_unreachable_database_is_store_unavailable(store: SqlStore) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    url: Any = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/none"
        if store.dialect == "postgresql"
        else "sqlite+aiosqlite:////nonexistent-dir/none.db"
    )
    engine = create_async_engine(url)
    try:
        with pytest.raises(StoreUnavailable):
            await SqlRetention(engine, query_timeout=5).delete_events_before(BASE, 10)
    finally:
        await engine.dispose()
