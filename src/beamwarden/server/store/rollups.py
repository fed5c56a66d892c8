"""Room: server/store (adapter). Rollups: per series, 1-minute and 1-hour count, sum, min, max and last.

Imports SQLAlchemy only. How they stay right with late, out-of-order and concurrent writes:

* **Marks.** Each readings commit also inserts, in the same transaction, a mark
  ``(sensor_ref, minute)`` in ``rollup_dirty`` for every minute its readings fall in (an existing
  mark is left alone: no write). A minute with a mark is not trusted by queries.
* **The job** (:func:`roll_up`, run every few seconds under a lease) takes the marks of minutes that
  ended a little while ago, deletes them and recomputes those minutes from the raw readings, then
  the hours they belong to from the minutes, in ONE transaction. On SQLite that transaction holds
  the database's write lock, so no reading can commit in between. On PostgreSQL writers hold the
  advisory lock :data:`ROLLUP_LOCK` shared from the start of their transaction and the job takes it
  exclusively: it waits for the writers in flight to commit (so it sees their readings) and writers
  that come later wait for it (so their marks land after its delete). A mark is therefore deleted
  only by a job that sees every reading it stands for.
* **Queries** (:func:`rollup_series`) read clean minutes (and clean hours) from ``rollups``, and
  compute from the raw readings the marked minutes and the partial minutes at both ends of the
  range. The answer is the raw answer (sums may differ in the last bits: they are added in a
  different order).

A recomputation replaces what was there (an upsert): running it twice is harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .layout import SLOTS

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000
#: PostgreSQL advisory lock between readings writers (shared) and the rollup job (exclusive)
ROLLUP_LOCK = 0x6277_726F_6C6C  # "bwroll"
#: a minute is summarised once it ended this long ago (later readings mark it again)
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


async def roll_up(conn: AsyncConnection, now_us: int, limit: int = 2000) -> int:
    """Summarise up to ``limit`` marked minutes that ended by ``now_us - SETTLE_US`` and the hours
    they are in; returns how many minutes. Call it in a transaction of its own."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROLLUP_LOCK})
        # the keys come from unnest(), which the planner guesses at 100 rows and whose range join
        # it cannot estimate: it chose a sort of the whole table (11.7 s for 2000 minutes of a
        # 10 M-row table) over one index range scan per key (50 ms). Within this transaction only.
        for setting in _NESTED_LOOPS_ONLY:
            await conn.execute(text(f"SET LOCAL {setting}"))
    ripe = now_us - SETTLE_US - MINUTE_US
    taken = await conn.execute(
        text(
            "DELETE FROM rollup_dirty WHERE (sensor_ref, minute_us) IN (SELECT sensor_ref, "
            "minute_us FROM rollup_dirty WHERE minute_us <= :ripe ORDER BY minute_us LIMIT :n) "
            "RETURNING sensor_ref, minute_us"
        ),
        {"ripe": ripe, "n": limit},
    )
    minutes = sorted((int(s), int(m)) for s, m in taken)
    if not minutes:
        return 0
    rows = await conn.execute(
        text(
            f"SELECT k.s, k.m, {_slot_columns(dialect)} FROM {_keys_source(dialect, 's,m')} "
            "JOIN readings r ON r.sensor_ref = k.s AND r.ts_us >= k.m "
            f"AND r.ts_us < k.m + {MINUTE_US} GROUP BY k.s, k.m"
        ),
        _keys_params(dialect, minutes),
    )
    out = []
    for row in rows:
        for slot in range(SLOTS):
            n, total, low, high, last_ts, last = row[2 + 6 * slot : 8 + 6 * slot]
            if n:
                out.append(
                    {
                        "s": row[0],
                        "slot": slot,
                        "w": 60,
                        "b": row[1],
                        "n": n,
                        "sum": total,
                        "min": low,
                        "max": high,
                        "lts": last_ts,
                        "last": last,
                    }
                )
    if out:
        await conn.execute(text(_INSERT), out)
    hours = sorted({(s, m - m % HOUR_US) for s, m in minutes})
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
    return len(minutes)


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


def _add(
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
        dirty = {
            int(m)
            for (m,) in await conn.execute(
                text(
                    "SELECT minute_us FROM rollup_dirty WHERE sensor_ref = :r "
                    "AND minute_us >= :a AND minute_us < :b"
                ),
                {"r": ref, "a": m0, "b": m1},
            )
        }
        raw.extend((m, m + MINUTE_US) for m in dirty)
        hours: set[int] = set()
        if bucket % HOUR_US == 0:
            h0 = -(-m0 // HOUR_US) * HOUR_US
            h1 = m1 - m1 % HOUR_US
            hours = set(range(h0, h1, HOUR_US)) - {m - m % HOUR_US for m in dirty}
        if hours:
            for b, n, total, low, high in await conn.execute(
                text(
                    "SELECT bucket_us, count, sum, min, max FROM rollups WHERE sensor_ref = :r "
                    "AND slot = :s AND width_s = 3600 AND bucket_us >= :a AND bucket_us < :b"
                ),
                {"r": ref, "s": slot, "a": min(hours), "b": max(hours) + HOUR_US},
            ):
                if b in hours:
                    _add(buckets, (b - origin) // bucket, n, total, low, high)
        for b, n, total, low, high in await conn.execute(
            text(
                "SELECT bucket_us, count, sum, min, max FROM rollups WHERE sensor_ref = :r "
                "AND slot = :s AND width_s = 60 AND bucket_us >= :a AND bucket_us < :b"
            ),
            {"r": ref, "s": slot, "a": m0, "b": m1},
        ):
            if b not in dirty and b - b % HOUR_US not in hours:
                _add(buckets, (b - origin) // bucket, n, total, low, high)
    for a, b in _merge(raw):
        for ts, value in await conn.execute(
            text(
                f"SELECT ts_us, v{slot} FROM readings WHERE sensor_ref = :r AND ts_us >= :a "
                f"AND ts_us < :b AND v{slot} IS NOT NULL"
            ),
            {"r": ref, "a": a, "b": b},
        ):
            _add(buckets, (ts - origin) // bucket, 1, value, value, value)
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
