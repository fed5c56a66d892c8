"""Per-stream retention (issue 7), on every store: each stream forgets its raw readings and rollups
before its own cut (a stream kept longer than the others keeps its rows although PostgreSQL shares
day partitions), what went is recorded, and a series over a range whose raw readings are gone is
answered from the rollups — whatever its span and bucket — never with a hole."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from beamwarden.protocol import Reading
from beamwarden.server.records import ReadingBatch, ReadingFilter, SeriesQuery, StreamCuts
from beamwarden.server.store import SqlStore, rollups
from beamwarden.server.store.partitions import DAY_US, day_partitions, partition_name
from beamwarden.server.store.rollups import HOUR_US, MINUTE_US, SETTLE_US
from beamwarden.server.store.stream_retention import StreamRetentionStore

#: 2027-01-15T00:00:00Z, a day's start: raw readings before it are forgotten in these tests
DAY0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % DAY_US
S = 1_000_000
AGGS = ("avg", "min", "max", "count", "sum")


def value(t: int) -> float:
    return (t // S) % 97 / 4 - 5.0


def batch(sensor: tuple[str, str], times: list[int], first_seq: int) -> list[ReadingBatch]:
    sensor_id, sensor_type = sensor
    items = [
        Reading(
            "node-1",
            sensor_id,
            sensor_type,
            {"temperature_c": value(t), "humidity_pct": 40.0},
            None,
            f"{sensor_id}:{first_seq + i}",
        )
        for i, t in enumerate(times)
    ]
    return [ReadingBatch("node-1", times[-1], items, times, [0] * len(times))]


async def write(store: SqlStore, sensor: tuple[str, str], times: list[int]) -> None:
    for i in range(0, len(times), 500):
        await store.write_readings(batch(sensor, times[i : i + 500], i))


async def refs(forget: StreamRetentionStore) -> dict[str, int]:
    return {s.sensor_id: s.ref for s in await forget.streams()}


async def raw_times(store: SqlStore, sensor_id: str) -> list[int]:
    rows = await store.list_readings(
        ReadingFilter(sensor_id=sensor_id, node_id="node-1"), 10**5, None
    )
    return sorted(r.ts_us for r in rows)


async def test_each_stream_keeps_its_own_raw_readings(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", DAY0)
    await store.ensure_partitions(DAY0, days_behind=2, days_ahead=1)
    times = list(range(DAY0 - 2 * HOUR_US, DAY0 + HOUR_US, MINUTE_US))
    for sensor in (("short", "climate"), ("long", "geiger"), ("kept", "climate")):
        await write(store, sensor, times)
    forget = StreamRetentionStore(store.engine)
    ref = await refs(forget)
    # "long" is kept a day longer, "kept" for ever: no day can be dropped, "short" loses rows
    cuts = {
        ref["short"]: StreamCuts(raw_us=DAY0),
        ref["long"]: StreamCuts(raw_us=DAY0 - DAY_US),
        ref["kept"]: StreamCuts(),
    }
    report = await forget.apply(cuts)
    assert (report.partitions, report.raw_rows) == (0, 120)
    assert await raw_times(store, "short") == [t for t in times if t >= DAY0]
    assert await raw_times(store, "long") == times
    assert await raw_times(store, "kept") == times
    assert (await forget.apply(cuts)).raw_rows == 0  # done is done
    assert await forget.cuts(list(ref.values())) == {
        ref["short"]: StreamCuts(raw_us=DAY0),
        ref["long"]: StreamCuts(raw_us=DAY0 - DAY_US),
        ref["kept"]: StreamCuts(),
    }
    # now every stream forgets before DAY0: PostgreSQL drops the day before it, rows of none
    report = await forget.apply({r: StreamCuts(raw_us=DAY0) for r in ref.values()})
    for sensor_id in ref:
        assert await raw_times(store, sensor_id) == [t for t in times if t >= DAY0]
    if store.dialect == "postgresql":
        assert (report.partitions, report.raw_rows) == (2, 0)  # DAY0 - 2 days (empty), DAY0 - 1
        async with store.engine.connect() as conn:
            assert partition_name(DAY0 - DAY_US) not in await day_partitions(conn)
            assert partition_name(DAY0) in await day_partitions(conn)
    else:
        assert report.raw_rows == 240
    assert set((await forget.cuts(list(ref.values()))).values()) == {StreamCuts(raw_us=DAY0)}


async def test_postgres_cuts_raw_readings_by_whole_days(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", DAY0)
    await store.ensure_partitions(DAY0, days_behind=1, days_ahead=1)
    times = list(range(DAY0 - 2 * HOUR_US, DAY0 + 2 * HOUR_US, MINUTE_US))
    await write(store, ("a", "climate"), times)
    await write(store, ("b", "climate"), times)
    forget = StreamRetentionStore(store.engine)
    ref = await refs(forget)
    await forget.apply({ref["a"]: StreamCuts(raw_us=DAY0 + HOUR_US), ref["b"]: StreamCuts()})
    if store.dialect == "postgresql":  # the cut is rounded down to the day
        assert await raw_times(store, "a") == [t for t in times if t >= DAY0]
        assert await forget.cuts([ref["a"]]) == {ref["a"]: StreamCuts(raw_us=DAY0)}
    else:
        assert await raw_times(store, "a") == [t for t in times if t >= DAY0 + HOUR_US]
    assert await raw_times(store, "b") == times


# --- series where raw readings are gone ---------------------------------------------------------

#: raw readings kept from DAY0, 1-minute rollups from DAY0 - 2 h, 1-hour rollups kept
CUTS = StreamCuts(raw_us=DAY0, minute_us=DAY0 - 2 * HOUR_US)
TIMES = list(range(DAY0 - 3 * HOUR_US, DAY0 + HOUR_US, 10 * S))  # every 10 s for 4 hours


def attributed(t: int, since: int, bucket: int) -> int | None:
    """The time a reading counts at in a series from ``since``: its own where raw readings are
    kept, else the start of the finest rollup left holding it (no earlier than ``since``)."""
    assert CUTS.raw_us is not None
    assert CUTS.minute_us is not None
    if t >= CUTS.raw_us:
        return t if t >= since else None
    width = HOUR_US if t < CUTS.minute_us or bucket % HOUR_US == 0 else MINUTE_US
    start = t - t % width
    if start < since - since % width:
        return None
    return max(start, since)


def expected(since: int, until: int, bucket: int) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t in TIMES:
        at = attributed(t, since, bucket)
        if at is not None and at < until:
            out.setdefault(at - at % bucket, []).append(value(t))
    return out


async def series(
    store: SqlStore, since: int, until: int, bucket: int, limit: int = 10_000
) -> dict[int, dict[str, Any]]:
    query = SeriesQuery("node-1", "bme280", "temperature_c", since, until, bucket, AGGS, limit)
    return {row.bucket_us: row.values for row in await store.series(query)}


def check(got: dict[int, dict[str, Any]], want: dict[int, list[float]]) -> None:
    assert sorted(got) == sorted(want)
    for b, values in want.items():
        row = got[b]
        assert row["count"] == len(values), b
        assert row["min"] == min(values)
        assert row["max"] == max(values)
        assert row["sum"] == pytest.approx(sum(values))
        assert row["avg"] == pytest.approx(sum(values) / len(values))


@pytest.fixture
async def forgotten(store: SqlStore) -> SqlStore:
    """Four hours of a sensor, rolled up; then raw readings forgotten before DAY0 and 1-minute
    rollups before DAY0 - 2 h."""
    await store.create_node("node-1", "pi-log", DAY0)
    await store.ensure_partitions(DAY0, days_behind=1, days_ahead=1)
    await write(store, ("bme280", "climate"), TIMES)
    await write(store, ("other", "climate"), TIMES[:10])  # kept: no day partition can go
    while await store.roll_up(DAY0 + 2 * HOUR_US + SETTLE_US, limit=5000):
        pass
    forget = StreamRetentionStore(store.engine)
    ref = await refs(forget)
    report = await forget.apply({ref["bme280"]: CUTS, ref["other"]: StreamCuts()})
    assert report.raw_rows == 3 * 360
    assert report.minute_rows == 60 * 2  # the first hour's minutes, two slots
    return store


@pytest.mark.parametrize(
    ("since", "until", "bucket"),
    [
        (DAY0 - 3 * HOUR_US, DAY0 + HOUR_US, HOUR_US),  # hours throughout
        (DAY0 - 3 * HOUR_US, DAY0 + HOUR_US, 60 * S),  # hours, minutes, then raw
        (DAY0 - 3 * HOUR_US, DAY0 - HOUR_US, 60 * S),  # two hours, all gone
        (DAY0 - 90 * MINUTE_US, DAY0 - 80 * MINUTE_US, 60 * S),  # 10 minutes, gone
        (DAY0 - 5 * MINUTE_US, DAY0 + 5 * MINUTE_US, 10 * S),  # finer than a rollup
        (DAY0 - 5 * MINUTE_US - 17 * S, DAY0 + 5 * MINUTE_US + 3 * S, 90 * S),  # ragged
        (DAY0 - 150 * MINUTE_US, DAY0 - 100 * MINUTE_US, 300 * S),  # from inside an hour
        (DAY0 - 2 * HOUR_US - 30 * S, DAY0 + 10 * S, 5 * MINUTE_US),
    ],
)
async def test_a_series_where_raw_readings_are_gone_comes_from_rollups(
    forgotten: SqlStore, since: int, until: int, bucket: int
) -> None:
    got = await series(forgotten, since, until, bucket)
    assert got
    check(got, expected(since, until, bucket))


async def test_a_long_series_from_rollups_is_paged(forgotten: SqlStore) -> None:
    since, until = DAY0 - 2 * HOUR_US, DAY0 + HOUR_US
    got = await series(forgotten, since, until, 60 * S, limit=7)
    want = expected(since, until, 60 * S)
    assert sorted(got) == sorted(want)[:7]


async def test_a_late_reading_in_a_forgotten_minute_leaves_its_rollup(forgotten: SqlStore) -> None:
    store = forgotten
    since, until = DAY0 - 2 * HOUR_US, DAY0
    before = await series(store, since, until, 60 * S)
    late = DAY0 - 90 * MINUTE_US + 5 * S
    await store.write_readings(batch(("bme280", "climate"), [late], 10**6))
    now = DAY0 + 3 * HOUR_US
    assert await store.roll_up(now) == 1  # taken, and left alone
    async with store.engine.connect() as conn:
        (n,) = (
            await conn.execute(
                text(
                    "SELECT count FROM rollups WHERE width_s = 60 AND slot = 0 AND bucket_us = :b"
                ),
                {"b": late - late % MINUTE_US},
            )
        ).one()
        marks = (await conn.execute(text("SELECT count(*) FROM rollup_dirty"))).scalar_one()
    assert (n, marks) == (6, 0)
    assert await series(store, since, until, 60 * S) == before


@pytest.mark.parametrize(
    ("bucket", "size"), [(60 * S, 1), (60 * S, 10), (300 * S, 4), (HOUR_US, 1)]
)
async def test_pages_walk_a_forgotten_range_in_chunks(
    forgotten: SqlStore, bucket: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page after page (the cursor is the last bucket), rollups read 7 rows at a time: the
    pages together are the whole answer."""
    monkeypatch.setattr(rollups, "_CHUNK", 7)
    since, until = DAY0 - 3 * HOUR_US + 30 * S, DAY0 + 10 * MINUTE_US
    walked: dict[int, dict[str, Any]] = {}
    after: int | None = None
    for _ in range(1000):
        query = SeriesQuery(
            "node-1", "bme280", "temperature_c", since, until, bucket, AGGS, size + 1, after
        )
        rows = await forgotten.series(query)
        page = rows[:size]
        assert not set(walked) & {row.bucket_us for row in page}
        walked.update({row.bucket_us: row.values for row in page})
        if len(rows) <= size:
            break
        after = page[-1].bucket_us
    check(walked, expected(since, until, bucket))
