"""PostgreSQL's readings writer (issue 2): the optimistic COPY falls back on duplicates, and the
rollup marks stay right with writers that do not wait for each other: a commit holds its minutes'
keys before it looks at their marks, the rollup job leaves a minute whose key a commit in
flight holds, and a commit checks the marks' generation against the one it saw them in. (The
marks writers remember, and wide writers racing the job, are tested on every
store in tests/contract/test_rollups.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from beamwarden.protocol import Reading
from beamwarden.server.records import BatchOutcome, ReadingBatch, ReadingFilter
from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from beamwarden.server.store.ingest import MINUTE_LOCK_SPACE, minute_lock_key
from beamwarden.server.store.postgres_writer import PostgresReadingWriter
from beamwarden.server.store.rollups import MINUTE_US, SETTLE_US
from tests.fixtures.databases import throwaway_postgres

pytestmark = pytest.mark.postgres

#: a minute's start
M = 1_800_000_000_000_000 - 1_800_000_000_000_000 % MINUTE_US
S = 1_000_000


def group(seqs: list[int], second: int = 10) -> list[ReadingBatch]:
    readings = [
        Reading("node-1", "bme280", "climate", {"temperature_c": 20.0 + seq}, None, f"q:{seq}")
        for seq in seqs
    ]
    times = [M + second * S + seq for seq in seqs]
    return [ReadingBatch("node-1", M + 30 * S, readings, times, [0] * len(readings))]


@pytest.fixture
async def pg() -> AsyncIterator[tuple[SqlStore, str]]:
    async with throwaway_postgres() as url:
        await asyncio.to_thread(upgrade, url)
        store = await open_store(StoreConfig(url, pool_size=2, query_timeout=10.0))
        try:
            await store.create_node("node-1", "pi-log", M)
            yield store, url.replace("postgresql+asyncpg://", "postgresql://")
        finally:
            await store.close()


def writer_of(store: SqlStore) -> PostgresReadingWriter:
    writer = store._writer
    assert isinstance(writer, PostgresReadingWriter)
    return writer


async def marked(store: SqlStore) -> list[int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT bucket_us FROM rollup_dirty WHERE width_s = 60"))
        return sorted(int(b) for (b,) in rows)


async def test_duplicates_roll_the_optimistic_copy_back_and_are_stored_once(
    pg: tuple[SqlStore, str],
) -> None:
    store, _ = pg
    writer = writer_of(store)
    assert await store.write_readings(group(list(range(1, 11)))) == [BatchOutcome(10, 0)]
    assert writer.retried == 0  # new readings: copied at once
    assert await store.write_readings(group(list(range(5, 16)))) == [BatchOutcome(5, 6)]
    assert writer.retried == 1  # a replay: copied, rolled back, deduplicated reading by reading
    assert await store.write_readings(group([20, 21, 20])) == [BatchOutcome(2, 1)]
    assert writer.retried == 2  # an id twice in one group: deduplicated reading by reading
    assert await store.count_readings(ReadingFilter()) == 17


async def test_a_commit_waits_for_the_job_holding_its_minute_then_marks_it_anew(
    pg: tuple[SqlStore, str],
) -> None:
    """The job holds the minute's key and has not yet deleted its mark: a commit of that minute
    must wait for the key before it looks at the mark. Had it looked first, it would have found
    the mark, left it, and committed readings whose mark the job then deletes."""
    store, url = pg
    await store.write_readings(group([1]))
    assert await marked(store) == [M]
    job = await asyncpg.connect(url)
    try:
        async with job.transaction():
            await job.execute(
                "SELECT pg_advisory_xact_lock($1::int, $2::int)",
                MINUTE_LOCK_SPACE,
                minute_lock_key(M),
            )
            write = asyncio.create_task(store.write_readings(group([2], second=20)))
            await asyncio.sleep(0.5)
            assert not write.done()  # waiting for the key
            await job.execute("DELETE FROM rollup_dirty WHERE bucket_us = $1", M)
        assert await write == [BatchOutcome(1, 0)]
    finally:
        await job.close()
    assert await marked(store) == [M]


async def test_the_job_leaves_a_minute_whose_key_a_commit_in_flight_holds(
    pg: tuple[SqlStore, str],
) -> None:
    store, url = pg
    await store.write_readings(group([1]))
    ripe = M + MINUTE_US + 2 * SETTLE_US
    writer = await asyncpg.connect(url)
    try:
        async with writer.transaction():
            await writer.execute(
                "SELECT pg_advisory_xact_lock_shared($1::int, $2::int)",
                MINUTE_LOCK_SPACE,
                minute_lock_key(M),
            )
            assert await store.roll_up(ripe) == 0
            assert await marked(store) == [M]
    finally:
        await writer.close()
    assert await store.roll_up(ripe) == 1
    assert await marked(store) == []


def wide(minute: int, first_seq: int, stream: str = "w", sensors: int = 120) -> list[ReadingBatch]:
    """One reading of each of ``sensors`` sensors in ``minute``: enough marks that the writer
    remembers them (``MARKS_WORTH_A_LOOK``)."""
    readings = [
        Reading(
            "node-1", f"s{i}", "climate", {"temperature_c": 1.0}, None, f"{stream}:{first_seq + i}"
        )
        for i in range(sensors)
    ]
    t = M + minute * MINUTE_US + 10 * S
    return [ReadingBatch("node-1", t, readings, [t] * sensors, [0] * sensors)]


async def test_a_commit_compares_the_generation_it_saw_not_one_adopted_meanwhile(
    pg: tuple[SqlStore, str],
) -> None:
    """A commit that skipped its minute's marks as known waits for the minute's key; meanwhile the
    job has deleted those marks (a new generation) and another commit, of another minute, has
    taught the writer the new generation. The waiting commit must still mark its minute again
    (before, it compared with the shared cache's generation, moved on under it, and left the
    minute unmarked: the job then summarised it without this commit's readings)."""
    store, url = pg
    await store.write_readings(wide(0, 0))  # the writer now knows minute 0's marks
    blocker, job = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        async with blocker.transaction():
            await blocker.execute(
                "SELECT pg_advisory_xact_lock($1::int, $2::int)",
                MINUTE_LOCK_SPACE,
                minute_lock_key(M),
            )
            late = asyncio.create_task(store.write_readings(wide(0, 1000)))
            await asyncio.sleep(0.5)
            assert not late.done()  # waiting for minute 0's key
            async with job.transaction():  # what the job leaves: no marks, a new generation
                await job.execute("DELETE FROM rollup_dirty WHERE bucket_us = $1", M)
                await job.execute(
                    "INSERT INTO sequences (name, value) VALUES ('rollup_marks', 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1"
                )
            # another minute and stream: reads the new generation, and the writer adopts it
            await asyncio.wait_for(store.write_readings(wide(5, 0, stream="v")), 5.0)
            assert not late.done()
        await late
    finally:
        await blocker.close()
        await job.close()
    assert M in await marked(store)
