"""SQLite's rollup job in two steps (store/rollups.py): the minutes are read without the write lock
and written in a short transaction after; a minute that a commit wrote to in between stays marked
and is summarised by the next run, never summarised without that commit's readings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from beamwarden.protocol import Reading
from beamwarden.server.records import ReadingBatch
from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from beamwarden.server.store.rollups import (
    HOUR_US,
    MINUTE_US,
    SETTLE_US,
    apply_minutes,
    read_minutes,
)
from tests.fixtures.databases import sqlite_url

T0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % HOUR_US
S = 1_000_000
NOW = T0 + 2 * MINUTE_US + 2 * SETTLE_US


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    opened = await open_store(StoreConfig(url, pool_size=2, query_timeout=10.0))
    await opened.create_node("node-1", "pi-log", T0)
    try:
        yield opened
    finally:
        await opened.close()


async def write(store: SqlStore, sensor: str, t: int, seq: int) -> None:
    reading = Reading("node-1", sensor, "climate", {"temperature_c": 1.0}, None, f"q:{seq}")
    await store.write_readings([ReadingBatch("node-1", T0, [reading], [t], [0])])


async def counts(store: SqlStore) -> tuple[dict[str, int], int]:
    """Minute rollups' counts by sensor id, and the minute marks left."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.sensor_id, u.count FROM rollups u JOIN sensors s ON s.id = u.sensor_ref "
                "WHERE u.width_s = 60 AND u.slot = 0 AND u.bucket_us = :m"
            ),
            {"m": T0},
        )
        found = {str(sensor): int(n) for sensor, n in rows}
        marks = await conn.execute(text("SELECT count(*) FROM rollup_dirty WHERE width_s = 60"))
        return found, int(marks.scalar_one())


async def test_a_commit_between_the_steps_keeps_its_minute_marked(store: SqlStore) -> None:
    await write(store, "a", T0 + S, 1)
    await write(store, "b", T0 + S, 2)
    async with store.engine.connect() as conn:
        read = await read_minutes(conn, NOW, 100)
    assert len(read.minutes) == 2
    await write(store, "a", T0 + 2 * S, 3)  # lands after the job read minute (a, T0)
    async with store.engine.begin() as conn:
        assert await apply_minutes(conn, read, NOW, 100) == 1  # b's minute only
    assert await counts(store) == ({"b": 1}, 1)  # a's minute: still marked, not summarised
    assert await store.roll_up(NOW) == 1
    assert await counts(store) == ({"a": 2, "b": 1}, 0)
