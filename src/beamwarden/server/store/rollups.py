"""Room: server/store (adapter). Rollups: per series, 1-minute and 1-hour count, sum, min, max and last.

Imports SQLAlchemy only. How they stay right with late, out-of-order and concurrent writes:

* **Marks.** Each readings commit also writes, in the same transaction, a mark for every minute its
  readings fall in (``rollup_dirty``, ``width_s`` 60, with the commit's time). An existing mark is
  not rewritten (``DO NOTHING``: no write). On PostgreSQL the commit first takes each of its
  minutes' advisory keys, shared (:func:`~.ingest.minute_lock_key`), and holds them until it ends;
  a commit spanning more minutes than :data:`~.ingest.MINUTE_LOCKS_MAX` keys (a backfill) locks
  its marks' rows instead (``DO UPDATE … WHERE false`` locks the row without changing it). A
  bucket with a mark is not trusted by queries.
* **The job** (:func:`roll_up`, every few seconds in the replica holding the lease ``rollups``)
  takes the minute marks that are ripe (the minute ended, and the mark is a few seconds old, so a
  backfill is not summarised while it is still being written), deletes them, recomputes those
  minutes from the raw readings and marks their hours; then it takes the ripe hour marks and
  recomputes those hours from their minutes. On SQLite the minutes are read first, outside any
  transaction that writes (:func:`read_minutes`: the last readings id, then the marks and the
  minutes' summaries), and written in a short write transaction after (:func:`apply_minutes`):
  a minute that a commit wrote to since (a reading with a larger id) keeps its mark for the next
  run. Before, the whole job held SQLite's write lock for ~0.4 s per 2000 minutes, and the readings
  writer waited for it (a quarter of the batch throughput). On PostgreSQL the job takes
  a minute's marks only with the minute's key held exclusively (``pg_try_advisory_xact_lock``:
  a key that a commit in flight holds is left for the next run) and ``FOR UPDATE SKIP LOCKED``
  (likewise for marks a backfill has locked); a commit that needs a key or a mark the job holds
  waits for it and then marks the minute anew. A mark is therefore only deleted by a job that
  sees every reading it stands for, and the job never waits for writers. Writers never wait for
  each other over marks (before, every commit locked its marks' rows, and commits of the same
  sensors queued behind each other's marks until they committed).
* **Queries** (:func:`rollup_series`) read minutes and hours without marks from ``rollups`` (an hour
  only if none of its minutes is marked either), and compute the marked minutes and the partial
  minutes at both ends of the range from the raw readings. The answer is the raw answer (sums may
  differ in the last bits: they are added in another order).

A recomputation replaces what was there (an upsert): running it twice is harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .ingest import (
    MARKS_GENERATION,
    MINUTE_LOCK_SPACE,
    READINGS_SEQUENCE,
    minute_lock_key,
    sequence_sql,
)
from .layout import SLOTS
from .stream_retention import cuts_of

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000
#: a bucket is summarised once it ended, and its mark was made, this long ago (later readings
#: mark it again)
SETTLE_US = 5_000_000


_NESTED_LOOPS_ONLY = (
    "enable_hashjoin = off",
    "enable_mergejoin = off",
    "max_parallel_workers_per_gather = 0",
)


def _slot_columns(dialect: str) -> str:
    """count, sum, min, max, last time, last value of every slot, over readings ``r`` of minute
    ``k.m``."""
    parts = []
    for i in range(SLOTS):
        v = f"r.v{i}"
        if dialect == "postgresql":
            last_ts = f"max(r.ts_us) FILTER (WHERE {v} IS NOT NULL)"
            last = f"(array_agg({v} ORDER BY r.ts_us DESC) FILTER (WHERE {v} IS NOT NULL))[1]"
        else:
            # the value of the latest reading: the largest "offset in the minute, value" text
            # (printf %!.20g reads back exactly)
            last_ts = f"max(CASE WHEN {v} IS NOT NULL THEN r.ts_us END)"
            last = (
                f"CAST(substr(max(CASE WHEN {v} IS NOT NULL THEN "
                f"printf('%08d', r.ts_us - k.m) || printf('%!.20g', {v}) END), 9) AS REAL)"
            )
        parts.append(f"count({v}), sum({v}), min({v}), max({v}), {last_ts}, {last}")
    return ", ".join(parts)


def _hour_last(dialect: str) -> str:
    if dialect == "postgresql":
        return "(array_agg(u.last ORDER BY u.last_ts_us DESC))[1]"
    return (
        "CAST(substr(max(printf('%012d', u.last_ts_us - k.h) || printf('%!.20g', u.last)), 13)"
        " AS REAL)"
    )


def _keys_source(dialect: str, columns: str) -> str:
    """A relation ``k(columns)`` of the integer pairs in parameter ``:keys``."""
    a, b = columns.split(",")
    if dialect == "postgresql":
        return f"unnest(CAST(:ka AS bigint[]), CAST(:kb AS bigint[])) AS k({a}, {b})"
    return (
        f"(SELECT CAST(value ->> 0 AS INTEGER) AS {a}, CAST(value ->> 1 AS INTEGER) AS {b} "
        "FROM json_each(:keys)) AS k"
    )


def _keys_params(dialect: str, pairs: list[tuple[int, int]]) -> dict[str, Any]:
    if dialect == "postgresql":
        return {"ka": [p[0] for p in pairs], "kb": [p[1] for p in pairs]}
    return {"keys": json.dumps(pairs)}


#: a recomputed bucket replaces what was there (a slot with no values left keeps its old row:
#: that happens only when readings are deleted, and then their minutes are past retention)
_UPSERT = (
    " ON CONFLICT (sensor_ref, slot, width_s, bucket_us) DO UPDATE SET count = excluded.count, "
    "sum = excluded.sum, min = excluded.min, max = excluded.max, "
    "last_ts_us = excluded.last_ts_us, last = excluded.last"
)
_INSERT = (
    "INSERT INTO rollups (sensor_ref, slot, width_s, bucket_us, count, sum, min, max, "
    "last_ts_us, last) VALUES (:s, :slot, :w, :b, :n, :sum, :min, :max, :lts, :last)" + _UPSERT
)
_INSERT_NAMES = ("s", "slot", "w", "b", "n", "sum", "min", "max", "lts", "last")
#: the same for the driver itself (SQLite): a tenth of the time per row of SQLAlchemy's binding,
#: which the readings writer would wait for
_INSERT_QMARKS = _INSERT.split(" VALUES ")[0] + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + _UPSERT

#: a minute rollup row, in the order of :data:`_INSERT_NAMES`
RollupRow = tuple[int, int, int, int, int, float, float, float, int, float]


async def roll_up(conn: AsyncConnection, now_us: int, limit: int = 2000) -> int:
    """Summarise up to ``limit`` ripe marked minutes and then the ripe marked hours; returns how
    many minutes. Call it in a transaction of its own. The store calls it on PostgreSQL; on SQLite
    it holds the write lock throughout (``bench_rollup_lock.py`` measures it as the baseline), and
    the store calls :func:`read_minutes` and :func:`apply_minutes` instead."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # the keys come from unnest(), which the planner guesses at 100 rows and whose range join
        # it cannot estimate: it chose a sort of the whole table (11.7 s for 2000 minutes of a
        # 10 M-row table) over one index range scan per key (50 ms). Within this transaction only.
        for setting in _NESTED_LOOPS_ONLY:
            await conn.execute(text(f"SET LOCAL {setting}"))
    ripe = now_us - SETTLE_US
    taken = await _take(conn, dialect, 60, ripe - MINUTE_US, ripe, limit)
    minutes = await _kept(conn, taken, "raw_us")
    if minutes:
        await _write_rows(conn, await _minute_rows(conn, dialect, minutes))
        await _mark_hours(conn, minutes, now_us)
    await _roll_up_hours(conn, dialect, ripe, limit)
    return len(taken)


@dataclass(frozen=True, slots=True)
class MinutesRead:
    """Ripe minute marks and their summaries, read without the write lock (SQLite)."""

    #: the last readings id committed before the readings were read (``sequences.readings``)
    last_id: int
    minutes: list[tuple[int, int]]
    rows: list[RollupRow]


async def read_minutes(conn: AsyncConnection, now_us: int, limit: int = 2000) -> MinutesRead:
    """SQLite, step one: the ripe minute marks and the minutes' summaries, outside any write
    transaction (recomputing 2000 minutes takes ~0.4 s, which the readings writer would otherwise
    wait for). Reads the last readings id first: a minute that no later commit touched has the
    same readings in every snapshot after it, so its summary is right whatever snapshot each
    statement saw; :func:`apply_minutes` leaves the others marked."""
    (last_id,) = (await conn.execute(text(sequence_sql(READINGS_SEQUENCE)))).one()
    ripe = now_us - SETTLE_US
    marks = await conn.execute(
        text(_ripe_marks(60, ripe)),
        {"last": ripe - MINUTE_US, "marked": ripe, "n": limit},
    )
    minutes = sorted((int(s), int(b)) for s, _, b in marks)
    kept = await _kept(conn, minutes, "raw_us")
    rows = await _minute_rows(conn, conn.dialect.name, kept) if kept else []
    return MinutesRead(int(last_id), minutes, rows)


async def apply_minutes(conn: AsyncConnection, read: MinutesRead, now_us: int, limit: int) -> int:
    """SQLite, step two, in a write transaction: take the marks read, but those of minutes a
    commit since has written to (marked again, for the next run); store the summaries of the
    rest and mark their hours; then the ripe hours. Returns how many minutes were summarised."""
    done: list[tuple[int, int]] = []
    if read.minutes:
        # the delete comes first: it takes the write lock, so no commit lands after ``touched``
        taken = {
            (int(s), int(b)): int(marked)
            for s, b, marked in await conn.execute(
                text(
                    "DELETE FROM rollup_dirty WHERE width_s = 60 AND (sensor_ref, bucket_us) IN "
                    f"(SELECT s, m FROM {_keys_source('sqlite', 's,m')}) "
                    "RETURNING sensor_ref, bucket_us, marked_us"
                ),
                _keys_params("sqlite", read.minutes),
            )
        }
        touched = {
            (int(s), int(m))
            for s, m in await conn.execute(
                text(
                    f"SELECT DISTINCT sensor_ref, ts_us - ((ts_us % {MINUTE_US}) + {MINUTE_US}) "
                    # NOT INDEXED: the rows after ``last`` by rowid, not a scan of the whole
                    # series index (which SQLite prefers for the DISTINCT: 40 ms at 1 M rows)
                    f"% {MINUTE_US} FROM readings NOT INDEXED WHERE id > :last"
                ),
                {"last": read.last_id},
            )
        }
        again = sorted(taken.keys() & touched)
        if again:  # as the commit found them: marked, since the mark's time
            await conn.execute(
                text(
                    "INSERT INTO rollup_dirty (sensor_ref, width_s, bucket_us, marked_us) "
                    "VALUES (:s, 60, :m, :marked)"
                ),
                [{"s": s, "m": m, "marked": taken[(s, m)]} for s, m in again],
            )
        done = sorted(taken.keys() - touched)
        if done:
            await _next_generation(conn)
            kept = set(await _kept(conn, done, "raw_us"))  # a sweep since may have cut some
            await _write_rows(conn, [r for r in read.rows if (r[0], r[3]) in kept])
            await _mark_hours(conn, sorted(kept), now_us)
    await _roll_up_hours(conn, "sqlite", now_us - SETTLE_US, limit)
    return len(done)


async def _mark_hours(conn: AsyncConnection, minutes: list[tuple[int, int]], now_us: int) -> None:
    hours = sorted({(s, m - m % HOUR_US) for s, m in minutes})
    if hours:
        await conn.execute(
            text(
                "INSERT INTO rollup_dirty (sensor_ref, width_s, bucket_us, marked_us) "
                "VALUES (:s, 3600, :h, :now) ON CONFLICT DO NOTHING"
            ),
            [{"s": s, "h": h, "now": now_us} for s, h in hours],
        )


async def _roll_up_hours(conn: AsyncConnection, dialect: str, ripe: int, limit: int) -> None:
    hours = await _kept(
        conn, await _take(conn, dialect, 3600, ripe - HOUR_US, None, limit), "minute_us"
    )
    if hours:
        await _recompute_hours(conn, dialect, hours)


async def _kept(
    conn: AsyncConnection, buckets: list[tuple[int, int]], source: str
) -> list[tuple[int, int]]:
    """The buckets whose source (``raw_us``: readings; ``minute_us``: minute rollups) retention has
    not forgotten: a late reading in a forgotten minute must not replace the minute's summary
    with a summary of itself alone (it goes at the next retention sweep)."""
    if not buckets:
        return buckets
    cuts = await cuts_of(conn, sorted({s for s, _ in buckets}))
    out = []
    for s, b in buckets:
        cut = getattr(cuts[s], source)
        if cut is None or b >= cut:
            out.append((s, b))
    return out


def _ripe_marks(width_s: int, marked_by: int | None) -> str:
    """The oldest ``:n`` marks of ``width_s`` buckets that start by ``:last`` (and were marked by
    ``:marked``, unless ``marked_by`` is ``None``): ``sensor_ref, width_s, bucket_us``."""
    marked = "" if marked_by is None else " AND marked_us <= :marked"
    return (
        f"SELECT sensor_ref, width_s, bucket_us FROM rollup_dirty WHERE width_s = {width_s} "
        f"AND bucket_us <= :last{marked} ORDER BY bucket_us LIMIT :n"
    )


async def _take(
    conn: AsyncConnection,
    dialect: str,
    width_s: int,
    last_start: int,
    marked_by: int | None,
    limit: int,
) -> list[tuple[int, int]]:
    """Delete and return the marks of ``width_s`` buckets that start by ``last_start`` (and were
    marked by ``marked_by``), oldest first."""
    pick = _ripe_marks(width_s, marked_by)
    params: dict[str, Any] = {"last": last_start, "marked": marked_by, "n": limit}
    if dialect != "postgresql":
        sql = (
            "DELETE FROM rollup_dirty WHERE (sensor_ref, width_s, bucket_us) IN "
            f"({pick}) RETURNING sensor_ref, bucket_us"
        )
        taken = sorted((int(s), int(b)) for s, b in await conn.execute(text(sql), params))
        if taken and width_s == 60:
            await _next_generation(conn)
        return taken
    if width_s == 60:
        # only the minutes whose keys no commit in flight holds (a minute's marks and readings
        # are written under its key, shared): those commits' readings are all visible, and
        # commits that mark these minutes from now on wait for this transaction
        candidates = [(int(s), int(b)) for s, _, b in await conn.execute(text(pick), params)]
        keys = sorted({minute_lock_key(b) for _, b in candidates})
        held = {
            int(k)
            for (k,) in await conn.execute(
                text(
                    "SELECT k FROM unnest(CAST(:keys AS int[])) AS k "
                    f"WHERE pg_try_advisory_xact_lock({MINUTE_LOCK_SPACE}, k)"
                ),
                {"keys": keys},
            )
        }
        free = [(s, b) for s, b in candidates if minute_lock_key(b) in held]
        if not free:
            return []
        pick = (
            "SELECT d.sensor_ref, d.width_s, d.bucket_us FROM rollup_dirty d "
            "JOIN unnest(CAST(:ka AS int[]), CAST(:kb AS bigint[])) AS q(s, m) "
            "ON d.sensor_ref = q.s AND d.width_s = 60 AND d.bucket_us = q.m "
            "WHERE d.marked_us <= :marked"
        )
        params = {"ka": [f[0] for f in free], "kb": [f[1] for f in free], "marked": marked_by}
    # a mark locked by a commit in flight (one that locks its marks' rows) is left for later
    sql = (
        f"WITH k AS ({pick} FOR UPDATE SKIP LOCKED) DELETE FROM rollup_dirty d USING k "
        "WHERE d.sensor_ref = k.sensor_ref AND d.width_s = k.width_s "
        "AND d.bucket_us = k.bucket_us RETURNING d.sensor_ref, d.bucket_us"
    )
    taken = sorted((int(s), int(b)) for s, b in await conn.execute(text(sql), params))
    if taken and width_s == 60:
        await _next_generation(conn)
    return taken


async def _next_generation(conn: AsyncConnection) -> None:
    """Writers that remember the marks they made sure of (:class:`~.ingest.MarksCache`) mark
    again after this: the job has deleted marks."""
    await conn.execute(
        text(
            "INSERT INTO sequences (name, value) VALUES (:name, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1"
        ),
        {"name": MARKS_GENERATION},
    )


async def _minute_rows(
    conn: AsyncConnection, dialect: str, minutes: list[tuple[int, int]]
) -> list[RollupRow]:
    """The rollup rows of ``minutes``, computed from the raw readings."""
    rows = await conn.execute(
        text(
            f"SELECT k.s, k.m, {_slot_columns(dialect)} FROM {_keys_source(dialect, 's,m')} "
            "JOIN readings r ON r.sensor_ref = k.s AND r.ts_us >= k.m "
            f"AND r.ts_us < k.m + {MINUTE_US} GROUP BY k.s, k.m"
        ),
        _keys_params(dialect, minutes),
    )
    out: list[RollupRow] = []
    for row in rows:
        for slot in range(SLOTS):
            n, total, low, high, last_ts, last = row[2 + 6 * slot : 8 + 6 * slot]
            if n:
                out.append((row[0], slot, 60, row[1], n, total, low, high, last_ts, last))
    return out


async def _write_rows(conn: AsyncConnection, rows: list[RollupRow]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql(_INSERT_QMARKS, rows)
    else:
        await conn.execute(text(_INSERT), [dict(zip(_INSERT_NAMES, r, strict=True)) for r in rows])


async def _recompute_hours(
    conn: AsyncConnection, dialect: str, hours: list[tuple[int, int]]
) -> None:
    await conn.execute(
        text(
            "INSERT INTO rollups (sensor_ref, slot, width_s, bucket_us, count, sum, min, max, "
            f"last_ts_us, last) SELECT k.s, u.slot, 3600, k.h, sum(u.count), sum(u.sum), "
            f"min(u.min), max(u.max), max(u.last_ts_us), {_hour_last(dialect)} "
            f"FROM {_keys_source(dialect, 's,h')} JOIN rollups u ON u.sensor_ref = k.s "
            f"AND u.width_s = 60 AND u.bucket_us >= k.h AND u.bucket_us < k.h + {HOUR_US} "
            "GROUP BY k.s, k.h, u.slot" + _UPSERT
        ),
        _keys_params(dialect, hours),
    )


# -- reading ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Agg:
    """count, sum, min and max of the values in one bucket."""

    count: int
    total: float
    low: float
    high: float

    def add(self, n: int, total: float, low: float, high: float) -> None:
        self.count += n
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)


def add_to(
    buckets: dict[int, Agg], index: int, n: int, total: float, low: float, high: float
) -> None:
    agg = buckets.get(index)
    if agg is None:
        buckets[index] = Agg(n, total, low, high)
    else:
        agg.add(n, total, low, high)


async def rollup_series(
    conn: AsyncConnection, ref: int, slot: int, start: int, until: int, bucket: int, origin: int
) -> dict[int, Agg]:
    """The buckets (index from ``origin``) of slot ``slot`` of sensor ``ref`` over
    ``[start, until)``, from rollups where they are clean, from raw readings elsewhere.
    ``bucket`` is a multiple of a minute and ``origin`` a multiple of ``bucket``."""
    m0 = -(-start // MINUTE_US) * MINUTE_US  # the first whole minute
    m1 = until - until % MINUTE_US  # the end of the last whole minute
    buckets: dict[int, Agg] = {}
    raw: list[tuple[int, int]] = []
    if m0 >= m1:
        raw.append((start, until))
    else:
        if start < m0:
            raw.append((start, m0))
        if m1 < until:
            raw.append((m1, until))
        marks = await conn.execute(
            text(
                "SELECT width_s, bucket_us FROM rollup_dirty WHERE sensor_ref = :r "
                "AND bucket_us >= :a AND bucket_us < :b"
            ),
            {"r": ref, "a": m0 - m0 % HOUR_US, "b": m1},
        )
        dirty: set[int] = set()
        stale_hours: set[int] = set()
        for width_s, b in marks:
            if width_s == 60:
                dirty.add(int(b))
                stale_hours.add(int(b) - int(b) % HOUR_US)
            else:
                stale_hours.add(int(b))
        raw.extend((m, m + MINUTE_US) for m in dirty if m0 <= m < m1)
        hours: set[int] = set()
        if bucket % HOUR_US == 0:
            h0 = -(-m0 // HOUR_US) * HOUR_US
            h1 = m1 - m1 % HOUR_US
            hours = set(range(h0, h1, HOUR_US)) - stale_hours
        if hours:
            for b, n, total, low, high in await conn.execute(
                text(
                    "SELECT bucket_us, count, sum, min, max FROM rollups WHERE sensor_ref = :r "
                    "AND slot = :s AND width_s = 3600 AND bucket_us >= :a AND bucket_us < :b"
                ),
                {"r": ref, "s": slot, "a": min(hours), "b": max(hours) + HOUR_US},
            ):
                if b in hours:
                    add_to(buckets, (b - origin) // bucket, n, total, low, high)
        for b, n, total, low, high in await conn.execute(
            text(
                "SELECT bucket_us, count, sum, min, max FROM rollups WHERE sensor_ref = :r "
                "AND slot = :s AND width_s = 60 AND bucket_us >= :a AND bucket_us < :b"
            ),
            {"r": ref, "s": slot, "a": m0, "b": m1},
        ):
            if b not in dirty and b - b % HOUR_US not in hours:
                add_to(buckets, (b - origin) // bucket, n, total, low, high)
    for a, b in _merge(raw):
        for ts, value in await conn.execute(
            text(
                f"SELECT ts_us, v{slot} FROM readings WHERE sensor_ref = :r AND ts_us >= :a "
                f"AND ts_us < :b AND v{slot} IS NOT NULL"
            ),
            {"r": ref, "a": a, "b": b},
        ):
            add_to(buckets, (ts - origin) // bucket, 1, value, value, value)
    return buckets


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Touching or overlapping ``[a, b)`` spans joined, in order."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


async def forgotten_series(
    conn: AsyncConnection,
    ref: int,
    slot: int,
    since: int,
    start: int,
    until: int,
    bucket: int,
    origin: int,
    minute_cut: int | None,
    limit: int,
) -> tuple[dict[int, Agg], bool]:
    """The first ``limit`` buckets (index from ``origin``) of ``[start, until)`` where retention
    has forgotten the raw readings, and whether that is all of them: from the 1-minute rollups,
    and from the 1-hour rollups where the minutes are gone too (before ``minute_cut``) or the
    bucket is whole hours. This is the finest data left, so a bucket narrower than a rollup gets
    the rollup's whole summary in the bucket its start falls in (a rollup that starts before the
    series' ``since`` counts in its first bucket; one that ends after ``until`` counts whole).
    ``start`` is where this page starts (``since``, or the bucket after the cursor): a rollup
    counted in an earlier page is not counted again. Rollups are read in time order, a chunk at
    a time, only as far as the page needs."""
    buckets: dict[int, Agg] = {}
    first = (start - origin) // bucket
    spans: list[tuple[int, int, int]] = []  # (width_s, from, until), in time order
    minutes_from = start - start % MINUTE_US
    if bucket % HOUR_US == 0:
        spans.append((3600, start - start % HOUR_US, until))
    else:
        if minute_cut is not None and minute_cut > minutes_from:
            spans.append((3600, start - start % HOUR_US, min(until, minute_cut)))
            minutes_from = minute_cut  # an hour's start: cuts are whole hours
        if minutes_from < until:
            spans.append((60, minutes_from, until))
    for width_s, a, b in spans:
        while a < b:
            # a chunk of rollup rows in time order, summed per bucket in SQL (a bucket split
            # between two chunks is added up here)
            rows = (
                await conn.execute(
                    text(
                        "SELECT (CASE WHEN c.bucket_us > :since THEN c.bucket_us "
                        "ELSE CAST(:since AS BIGINT) END - CAST(:origin AS BIGINT)) "
                        "/ CAST(:bucket AS BIGINT) AS i, sum(c.count), sum(c.sum), min(c.min), "
                        "max(c.max), max(c.bucket_us), count(*) FROM (SELECT bucket_us, count, "
                        "sum, min, max FROM rollups WHERE sensor_ref = :r AND slot = :s "
                        "AND width_s = :w AND bucket_us >= :a AND bucket_us < :b "
                        "ORDER BY bucket_us LIMIT :n) AS c GROUP BY i ORDER BY i"
                    ),
                    {
                        "r": ref,
                        "s": slot,
                        "w": width_s,
                        "a": a,
                        "b": b,
                        "n": _CHUNK,
                        "since": since,
                        "origin": origin,
                        "bucket": bucket,
                    },
                )
            ).all()
            read = 0
            for index, n, total, low, high, _, rows_in in rows:
                read += int(rows_in)
                if index < first:
                    continue  # in an earlier page
                if index not in buckets and len(buckets) == limit:
                    return buckets, False  # the page is full; the buckets in it are whole
                add_to(buckets, int(index), int(n), float(total), float(low), float(high))
            if read < _CHUNK:
                break
            a = int(rows[-1][5]) + 1
    return buckets, True


#: rollup rows read per query where raw readings are gone
_CHUNK = 5000
