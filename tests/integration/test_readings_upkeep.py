"""The server's upkeep of stored readings: PostgreSQL's day partitions made ahead of time."""

from __future__ import annotations

import asyncio

import pytest

from beamwarden.server.store.partitions import DAY_US, day_partitions, day_start, partition_name
from tests.conftest import START, Server


async def test_the_server_keeps_a_week_of_day_partitions_ahead(server: Server) -> None:
    """(PostgreSQL) the readings upkeep runs at start: partitions from yesterday to a week on."""
    if server.backend != "postgres":
        pytest.skip("SQLite has no partitions")
    store = server.services.store
    today = day_start(int(START.timestamp()) * 1_000_000)
    want = [partition_name(today + d * DAY_US) for d in range(-1, 8)]
    found: list[str] = []
    for _ in range(100):  # the job's first tick runs as the server starts
        async with store.engine.connect() as conn:  # type: ignore[attr-defined]
            found = await day_partitions(conn)
        if found == want:
            break
        await asyncio.sleep(0.05)
    assert found == want
