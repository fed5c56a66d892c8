"""Readings by time: PostgreSQL's day partitions (made ahead, a default partition for the rest) and
retention that forgets readings before a cutoff, on every store."""

from __future__ import annotations

from sqlalchemy import text

from beamwarden.protocol import Reading
from beamwarden.server.records import BatchOutcome, ReadingBatch, ReadingFilter, StreamCuts
from beamwarden.server.store import SqlStore
from beamwarden.server.store.partitions import DAY_US, day_partitions, partition_name
from beamwarden.server.store.stream_retention import StreamRetentionStore

#: 2027-01-15T00:00:00Z, a day's start, in epoch microseconds
DAY0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % DAY_US
H = 3_600_000_000


def batch(times: list[int], first_seq: int) -> list[ReadingBatch]:
    readings = [
        Reading("node-1", "geiger-0", "geiger", {"cps": i}, None, f"s:{first_seq + i}")
        for i in range(len(times))
    ]
    return [ReadingBatch("node-1", DAY0, readings, times, [0] * len(times))]


async def where_stored(store: SqlStore) -> dict[int, str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT ts_us, tableoid::regclass::text FROM readings"))
        return {int(ts): str(table) for ts, table in rows}


async def test_postgres_gets_one_partition_per_day_ahead_of_time(store: SqlStore) -> None:
    created = await store.ensure_partitions(DAY0 + 5 * H, days_behind=1, days_ahead=2)
    if store.dialect != "postgresql":
        assert created == []
        return
    expected = [partition_name(DAY0 + d * DAY_US) for d in (-1, 0, 1, 2)]
    assert created == expected
    assert await store.ensure_partitions(DAY0 + 5 * H, days_behind=1, days_ahead=2) == []
    async with store.engine.connect() as conn:
        assert await day_partitions(conn) == expected


async def test_each_reading_lands_in_its_day_and_the_rest_in_the_default(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", DAY0)
    await store.ensure_partitions(DAY0, days_behind=0, days_ahead=1)
    times = [DAY0 + H, DAY0 + DAY_US + H, 0, DAY0 + 30 * DAY_US]  # today, tomorrow, 1970, later
    assert await store.write_readings(batch(times, 1)) == [BatchOutcome(4, 0)]
    assert await store.count_readings(ReadingFilter()) == 4
    if store.dialect == "postgresql":
        assert await where_stored(store) == {
            DAY0 + H: partition_name(DAY0),
            DAY0 + DAY_US + H: partition_name(DAY0 + DAY_US),
            0: "readings_default",
            DAY0 + 30 * DAY_US: "readings_default",
        }


async def test_retention_forgets_only_what_is_older_than_the_cutoff(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", DAY0)
    await store.ensure_partitions(DAY0, days_behind=3, days_ahead=1)
    times = [DAY0 - 3 * DAY_US + H, DAY0 - 2 * DAY_US + H, DAY0 - DAY_US + H, DAY0 + H, 5]
    assert await store.write_readings(batch(times, 1)) == [BatchOutcome(5, 0)]
    forget = StreamRetentionStore(store.engine)
    ((stream,),) = [await forget.streams()]
    report = await forget.apply({stream.ref: StreamCuts(raw_us=DAY0 - DAY_US)})
    left = sorted(r.ts_us for r in await store.list_readings(ReadingFilter(), 100, None))
    assert left == [DAY0 - DAY_US + H, DAY0 + H]
    if store.dialect == "postgresql":
        # two day partitions dropped, one row of the default partition
        assert (report.partitions, report.raw_rows) == (2, 1)
        async with store.engine.connect() as conn:
            assert partition_name(DAY0 - 2 * DAY_US) not in await day_partitions(conn)
    else:
        assert (report.partitions, report.raw_rows) == (0, 3)
    assert await forget.cuts([stream.ref]) == {stream.ref: StreamCuts(raw_us=DAY0 - DAY_US)}
    # the forgotten readings' ids stay known: a resend is a duplicate, not a new reading (its
    # payload can no longer be compared, so it is also listed as a conflict, and logged)
    (again,) = await store.write_readings(batch(times[:1], 1))
    assert (again.accepted, again.duplicates) == (0, 1)
