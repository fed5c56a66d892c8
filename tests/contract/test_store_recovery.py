"""The store on a PostgreSQL server that stops and comes back: every operation fails fast with
StoreUnavailable while it is down, and the same store object works again once it is up (pooled
connections are pre-pinged; the readings writer drops a connection that failed mid-COPY, and one
that the server closed while it was kept idle)."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil

import pytest

from beamwarden.protocol import Reading
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.records import BatchOutcome, NewEvent, ReadingBatch, ReadingFilter
from beamwarden.server.store import StoreConfig, open_store, upgrade
from tests.fixtures.databases import IN_CI
from tests.fixtures.processes import postgres_instance

BASE = 1_800_000_000_000_000

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _batch(seqs: range) -> list[ReadingBatch]:
    readings = [
        Reading("node-1", "geiger-0", "geiger", {"cps": seq}, None, f"q:{seq}") for seq in seqs
    ]
    return [
        ReadingBatch("node-1", BASE, readings, [BASE + seq for seq in seqs], [0] * len(readings))
    ]


async def test_store_recovers_after_postgres_restarts() -> None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are missing (make system-deps)")
        pytest.skip("PostgreSQL server binaries are missing")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("runuser is needed to start PostgreSQL as root")
    with postgres_instance() as pg:
        await asyncio.to_thread(upgrade, pg.url)
        store = await open_store(
            StoreConfig(pg.url, pool_size=2, connect_timeout=2.0, query_timeout=5.0)
        )
        try:
            await store.create_node("node-1", "pi-log", BASE)
            assert await store.write_readings(_batch(range(1, 11))) == [BatchOutcome(10, 0)]

            await asyncio.to_thread(pg.stop, "immediate")
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(StoreUnavailable):
                await store.write_readings(_batch(range(11, 21)))
            with pytest.raises(StoreUnavailable):
                await store.count_readings(ReadingFilter())
            with pytest.raises(StoreUnavailable):
                await store.add_event(NewEvent(BASE, "x", "down"))
            with pytest.raises(StoreUnavailable):
                await store.ping()
            assert loop.time() - start < 20

            await asyncio.to_thread(pg.start)
            assert await store.ping() >= 0
            assert await store.write_readings(_batch(range(5, 21))) == [BatchOutcome(10, 6)]
            assert await store.count_readings(ReadingFilter()) == 20
            assert await store.add_event(NewEvent(BASE, "x", "up")) > 0

            # a restart while the writer's kept connection is idle: the first write after it
            # gets a new connection instead of failing on the dead one
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.to_thread(pg.start)
            assert await store.write_readings(_batch(range(21, 31))) == [BatchOutcome(10, 0)]
        finally:
            await store.close()
