"""Rollups (issue 7): marked minutes summarised into 1-minute and 1-hour rows, and series answered
from them — equal to the raw answer however readings arrive (late, out of order, while the job
runs), on every store."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from sqlalchemy import text

from beamwarden.protocol import Reading
from beamwarden.server.records import ReadingBatch, SeriesQuery, StreamCuts
from beamwarden.server.store import SqlStore
from beamwarden.server.store.rollups import HOUR_US, MINUTE_US, SETTLE_US
from beamwarden.server.store.stream_retention import StreamRetentionStore

#: 2027-01-15T08:00:00Z, an hour's start
T0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % HOUR_US
S = 1_000_000


def readings(times: list[int], first_seq: int, value: Any = None) -> list[ReadingBatch]:
    items = [
        Reading(
            "node-1",
            "bme280",
            "climate",
            {"temperature_c": value(t) if value else (t // S) % 97 / 4 - 5.0, "humidity_pct": 40.0},
            None,
            f"q:{first_seq + i}",
        )
        for i, t in enumerate(times)
    ]
    return [ReadingBatch("node-1", times[-1], items, times, [0] * len(times))]


def expected(times: list[int], since: int, until: int, bucket: int) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t in times:
        if since <= t < until:
            out.setdefault(t - t % bucket, []).append((t // S) % 97 / 4 - 5.0)
    return out


async def series(store: SqlStore, since: int, until: int, bucket: int) -> dict[int, dict[str, Any]]:
    query = SeriesQuery(
        "node-1",
        "bme280",
        "temperature_c",
        since,
        until,
        bucket,
        ("avg", "min", "max", "count", "sum"),
        10_000,
    )
    return {row.bucket_us: row.values for row in await store.series(query)}


def check(got: dict[int, dict[str, Any]], want: dict[int, list[float]]) -> None:
    assert sorted(got) == sorted(want)
    for b, values in want.items():
        row = got[b]
        assert row["count"] == len(values)
        assert row["min"] == min(values)
        assert row["max"] == max(values)
        assert row["sum"] == pytest.approx(sum(values))
        assert row["avg"] == pytest.approx(sum(values) / len(values))


async def marks(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM rollup_dirty"))).scalar_one())


async def test_series_are_the_same_before_during_and_after_rolling_up(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", T0)
    times = list(range(T0, T0 + 3 * HOUR_US, 10 * S))  # every 10 s for 3 h
    rng = random.Random(5)
    rng.shuffle(times)  # out of order
    for i in range(0, len(times), 100):
        await store.write_readings(readings(times[i : i + 100], i))
    cases = [
        (T0, T0 + 3 * HOUR_US, 60 * S),
        (T0 + 17 * S, T0 + 3 * HOUR_US - 31 * S, 60 * S),  # ragged ends
        (T0 + 17 * S, T0 + 3 * HOUR_US - 31 * S, 300 * S),
        (T0, T0 + 3 * HOUR_US, HOUR_US),
        (T0 + 90 * S, T0 + 3 * HOUR_US, HOUR_US),
    ]
    for since, until, bucket in cases:  # all raw: every minute is marked
        check(await series(store, since, until, bucket), expected(times, since, until, bucket))
    now = T0 + 3 * HOUR_US + MINUTE_US + SETTLE_US
    assert await store.roll_up(now, limit=50) == 50  # part of it
    for since, until, bucket in cases:
        check(await series(store, since, until, bucket), expected(times, since, until, bucket))
    while await store.roll_up(now, limit=1000):
        pass
    assert await marks(store) == 0
    for since, until, bucket in cases:
        check(await series(store, since, until, bucket), expected(times, since, until, bucket))
    # a late reading marks its minute again; the series counts it at once
    late = [T0 + 65 * MINUTE_US + 7 * S]
    await store.write_readings(readings(late, 10_000))
    times += late
    assert await marks(store) == 1  # its minute (its hour gets one when the minute is summarised)
    for since, until, bucket in cases:
        check(await series(store, since, until, bucket), expected(times, since, until, bucket))
    assert await store.roll_up(now) == 1
    for since, until, bucket in cases:
        check(await series(store, since, until, bucket), expected(times, since, until, bucket))


async def test_the_job_leaves_minutes_that_may_still_fill(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", T0)
    # received (and marked) at T0 + 65 s: the first minute has ended, the second not
    await store.write_readings(readings([T0 + 5 * S, T0 + MINUTE_US + 5 * S], 1))
    assert await store.roll_up(T0 + MINUTE_US + 5 * S + SETTLE_US - 1) == 0  # the mark is fresh
    assert await store.roll_up(T0 + MINUTE_US + 5 * S + SETTLE_US) == 1  # the first minute only
    assert await marks(store) == 2  # the second minute, and the first minute's hour


async def test_a_backfill_is_summarised_once_its_marks_settle(store: SqlStore) -> None:
    """Old readings arriving now: their minutes ended long ago, but their marks are fresh."""
    await store.create_node("node-1", "pi-log", T0)
    batch = readings([T0 + 5 * S], 1)
    batch[0].received_us = T0 + 10 * HOUR_US
    await store.write_readings(batch)
    assert await store.roll_up(T0 + 10 * HOUR_US + SETTLE_US - 1) == 0
    assert await store.roll_up(T0 + 10 * HOUR_US + SETTLE_US) == 1


async def test_minute_and_hour_rows_hold_count_sum_min_max_and_last(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", T0)
    values = {T0 + 10 * S: 2.5, T0 + 50 * S: -1.25, T0 + 30 * S: 7.0, T0 + MINUTE_US: 3.0}
    await store.write_readings(readings(sorted(values, reverse=True), 1, values.__getitem__))
    await store.roll_up(T0 + HOUR_US + SETTLE_US)  # the hour has ended
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT width_s, bucket_us, count, sum, min, max, last_ts_us, last "
                    "FROM rollups WHERE slot = 0 ORDER BY width_s, bucket_us"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (60, T0, 3, 8.25, -1.25, 7.0, T0 + 50 * S, -1.25),
        (60, T0 + MINUTE_US, 1, 3.0, 3.0, 3.0, T0 + MINUTE_US, 3.0),
        (3600, T0, 4, 11.25, -1.25, 7.0, T0 + MINUTE_US, 3.0),
    ]


async def test_rollups_stay_right_while_writers_and_the_job_race(store: SqlStore) -> None:
    """Writers (several batches of one minute each, in flight together) and the job at once:
    when all is rolled up, every minute and hour equals what was written."""
    await store.create_node("node-1", "pi-log", T0)
    times = list(range(T0, T0 + 20 * MINUTE_US, S // 2))  # 2 Hz for 20 minutes
    chunks = [times[i : i + 60] for i in range(0, len(times), 60)]
    now = T0 + 21 * MINUTE_US + SETTLE_US
    done = asyncio.Event()

    async def job() -> None:
        while not done.is_set():
            await store.roll_up(now, limit=7)
            await asyncio.sleep(0)

    async def writer(part: list[list[int]], base: int) -> None:
        for i, chunk in enumerate(part):
            await store.write_readings(readings(chunk, base + i * 100))

    runner = asyncio.create_task(job())
    await asyncio.gather(*(writer(chunks[k::4], 100_000 * k) for k in range(4)))
    done.set()
    await runner
    while await store.roll_up(T0 + HOUR_US + SETTLE_US):  # the hour has ended too
        pass
    assert await marks(store) == 0
    check(
        await series(store, T0, T0 + 20 * MINUTE_US, 60 * S),
        expected(times, T0, T0 + 20 * MINUTE_US, 60 * S),
    )
    async with store.engine.connect() as conn:
        (n,) = (
            await conn.execute(
                text("SELECT sum(count) FROM rollups WHERE width_s = 3600 AND slot = 0")
            )
        ).one()
    assert int(n) == len(times)


async def test_old_minute_rollups_are_forgotten_and_hours_kept(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", T0)
    await store.write_readings(readings([T0 + 5 * S, T0 + HOUR_US + 5 * S], 1))
    await store.roll_up(T0 + 2 * HOUR_US + SETTLE_US)
    forget = StreamRetentionStore(store.engine)
    ((ref, _),) = [(s.ref, s) for s in await forget.streams()]
    report = await forget.apply({ref: StreamCuts(minute_us=T0 + HOUR_US)})
    assert report.minute_rows == 2  # both slots of minute one
    assert (await forget.apply({ref: StreamCuts(minute_us=T0 + HOUR_US)})).minute_rows == 0
    async with store.engine.connect() as conn:
        left = (
            await conn.execute(text("SELECT width_s, bucket_us FROM rollups WHERE slot = 0"))
        ).all()
    assert sorted(tuple(r) for r in left) == [
        (60, T0 + HOUR_US),
        (3600, T0),
        (3600, T0 + HOUR_US),
    ]


async def test_minutes_the_job_summarised_are_marked_again_by_the_next_commit(
    store: SqlStore,
) -> None:
    """Writers remember the marks they made sure of and skip them while the marks' generation
    stays (a commit of 150 sensors asks); the job deletes marks and moves it on, so the next
    commit of the same minute marks again."""
    await store.create_node("node-1", "pi-log", T0)

    def wide(first: int) -> list[ReadingBatch]:
        items = [
            Reading("node-1", f"s{i}", "climate", {"temperature_c": 1.0}, None, f"w:{first + i}")
            for i in range(150)
        ]
        times = [T0 + S + first + i for i in range(150)]
        return [ReadingBatch("node-1", T0 + 2 * S, items, times, [0] * 150)]

    async def minute_marks() -> int:
        async with store.engine.connect() as conn:
            return int(
                (
                    await conn.execute(text("SELECT count(*) FROM rollup_dirty WHERE width_s = 60"))
                ).scalar_one()
            )

    await store.write_readings(wide(0))
    await store.write_readings(wide(1000))  # every mark known: none written
    assert await minute_marks() == 150
    assert await store.roll_up(T0 + MINUTE_US + 2 * SETTLE_US) == 150
    assert await minute_marks() == 0
    await store.write_readings(wide(2000))
    assert await minute_marks() == 150


async def test_rollups_stay_right_while_wide_writers_and_the_job_race(
    store: SqlStore,
) -> None:
    """Four writers of 150 sensors each (so they skip marks they know) over 6 minutes, and the
    job running all along: once all is rolled up, every minute's count is what was written."""
    await store.create_node("node-1", "pi-log", T0)
    done = asyncio.Event()
    now = T0 + 8 * MINUTE_US

    async def job() -> None:
        while not done.is_set():
            await store.roll_up(now + 2 * SETTLE_US, limit=200)
            await asyncio.sleep(0)

    async def writer(k: int) -> None:
        for j in range(12):  # 12 groups: two a minute over 6 minutes
            minute, half = divmod(j, 2)
            readings = [
                Reading(
                    "node-1",
                    f"s{i}",
                    "climate",
                    {"temperature_c": 1.0},
                    None,
                    f"r{k}:{j * 150 + i}",
                )
                for i in range(150)
            ]
            t = T0 + minute * MINUTE_US + (k * 2 + half) * S
            batch = ReadingBatch("node-1", now, readings, [t] * 150, [0] * 150)
            await store.write_readings([batch])

    runner = asyncio.create_task(job())
    await asyncio.gather(*(writer(k) for k in range(4)))
    done.set()
    await runner
    while await store.roll_up(now + 2 * SETTLE_US):
        pass
    async with store.engine.connect() as conn:
        left = await conn.execute(text("SELECT count(*) FROM rollup_dirty WHERE width_s = 60"))
        assert left.scalar_one() == 0
    async with store.engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT bucket_us, sum(count) FROM rollups WHERE width_s = 60 AND slot = 0 "
                    "GROUP BY bucket_us ORDER BY bucket_us"
                )
            )
        ).all()
    assert [(int(b), int(n)) for b, n in counts] == [
        (T0 + m * MINUTE_US, 4 * 2 * 150) for m in range(6)
    ]
