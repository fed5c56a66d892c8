"""Room: server/store (adapter). :class:`StreamRetentionStore`: per-stream retention of raw
readings and rollups, what it has forgotten (``retention_cuts``), and the policy document.

Imports SQLAlchemy and :mod:`beamwarden.server.records`; never services. The service computes a
cut per stream from the policy (:mod:`beamwarden.fleet.retention`); :meth:`apply` forgets what
lies before it and records it, so series know where raw readings are gone and the rollup job
leaves those minutes alone.

How raw readings go, fast on each database:

* **PostgreSQL** keeps readings in day partitions (:mod:`.partitions`), shared by every stream.
  A day is dropped — instantly, no dead rows — once it ends before the *earliest* cut of all
  streams (the stream kept longest decides; a stream kept for ever keeps every day). The cut
  recorded for every stream at once (``sensor_ref`` 0) is that day boundary. Streams whose cut
  is later than that (shorter retentions than the longest) lose their rows by ``DELETE``: one
  statement per 1000 streams, each stream's key range ``[previous cut, cut)`` of the primary key
  ``(sensor_ref, ts_us, id)``, bounded in time so only the partitions of that range are visited.
  Cuts are whole days on PostgreSQL (a reading may outlive its retention by up to a day, as with
  the partitions). With the issue's defaults (every stream 30 days) only partitions are dropped;
  an override that keeps some stream *longer* turns the others' retention into row deletes (a
  day of each stream's rows once a day), which is the price of sharing day partitions.
* **SQLite** deletes each stream's rows before its cut through the series index, 10 000 rows a
  transaction (short transactions: the readings writer waits for each).

Rollups (table ``rollups``, primary key ``(sensor_ref, slot, width_s, bucket_us)``) go by key
ranges per stream, every slot at once, the same way on both databases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from beamwarden.server.records import RetentionReport, StreamCuts, StreamRow

from .adapter import EngineAdapter
from .layout import SLOTS
from .partitions import DAY_US, drop_partitions_before
from .schema import retention_cuts, retention_policy, sensors

__all__ = ["StreamRetentionStore", "cuts_of", "max_of"]

#: before any time a reading can have
_BEGINNING = -(2**62)
_CHUNK = 1000
_SQLITE_BATCH = 10_000
_SLOTS = ", ".join(str(i) for i in range(SLOTS))
_NESTED_LOOPS_ONLY = ("enable_hashjoin = off", "enable_mergejoin = off")


async def cuts_of(conn: AsyncConnection, refs: list[int]) -> dict[int, StreamCuts]:
    """The effective cuts of sensors ``refs`` (the later of their own and the global one)."""
    rows = await conn.execute(
        select(retention_cuts).where(retention_cuts.c.sensor_ref.in_([0, *refs]))
    )
    found = {int(r.sensor_ref): StreamCuts(r.raw_us, r.minute_us, r.hour_us) for r in rows}
    glob = found.pop(0, StreamCuts())
    out = {}
    for ref in refs:
        own = found.get(ref, StreamCuts())
        out[ref] = StreamCuts(
            max_of(own.raw_us, glob.raw_us),
            max_of(own.minute_us, glob.minute_us),
            max_of(own.hour_us, glob.hour_us),
        )
    return out


def max_of(a: int | None, b: int | None) -> int | None:
    """The later of two cuts (``None``: no cut)."""
    if a is None:
        return b
    return a if b is None else max(a, b)


class StreamRetentionStore(EngineAdapter):
    # -- the policy document --------------------------------------------------------------

    async def get_policy(self) -> Any:
        async with self._read() as conn:
            stmt = select(retention_policy.c.data).where(retention_policy.c.name == "policy")
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def put_policy(self, data: Any, now_us: int) -> None:
        async with self._write() as conn:
            values = {"name": "policy", "data": data, "updated_us": now_us}
            done = await conn.execute(
                retention_policy.update()
                .where(retention_policy.c.name == "policy")
                .values(data=data, updated_us=now_us)
            )
            if done.rowcount == 0:
                await conn.execute(retention_policy.insert().values(**values))

    # -- streams and their cuts -----------------------------------------------------------

    async def streams(self) -> list[StreamRow]:
        s = sensors.c
        async with self._read() as conn:
            rows = await conn.execute(select(s.id, s.owner, s.sensor_type, s.sensor_id))
            return [StreamRow(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def cuts(self, refs: list[int]) -> dict[int, StreamCuts]:
        async with self._read() as conn:
            return await cuts_of(conn, refs)

    async def apply(self, cuts: Mapping[int, StreamCuts]) -> RetentionReport:
        """Forget, per stream ``ref``, what lies before ``cuts[ref]``; record it. Each step is a
        short transaction of its own; running it again does nothing more."""
        report = RetentionReport(streams=len(cuts))
        async with self._read() as conn:
            rows = (await conn.execute(select(retention_cuts))).all()
        own = {int(r.sensor_ref): StreamCuts(r.raw_us, r.minute_us, r.hour_us) for r in rows}
        floor = own.get(0, StreamCuts()).raw_us
        if self.dialect == "postgresql":
            raw = [c.raw_us for c in cuts.values()]
            if raw and all(c is not None for c in raw):
                earliest = min(c for c in raw if c is not None)
                floor = await self._drop_days(earliest, floor, report)
        for column, width in (("raw_us", 0), ("minute_us", 60), ("hour_us", 3600)):
            ranges = []
            for ref, cut in cuts.items():
                hi = getattr(cut, column)
                if hi is not None and width == 0 and self.dialect == "postgresql":
                    hi -= hi % DAY_US  # whole days, like the partitions: the defaults delete no row
                lo = max_of(
                    getattr(own.get(ref, StreamCuts()), column), floor if width == 0 else None
                )
                if hi is not None and (lo is None or hi > lo):
                    ranges.append((ref, _BEGINNING if lo is None else lo, hi))
            for i in range(0, len(ranges), _CHUNK):
                gone = await self._forget(ranges[i : i + _CHUNK], column, width)
                if width == 0:
                    report.raw_rows += gone
                elif width == 60:
                    report.minute_rows += gone
                else:
                    report.hour_rows += gone
        return report

    async def _drop_days(self, earliest: int, floor: int | None, report: RetentionReport) -> int:
        """PostgreSQL: drop the day partitions that end by ``earliest`` and the default
        partition's rows before it; record the day boundary for every stream."""
        day = earliest - earliest % DAY_US
        if floor is not None and day <= floor:
            return floor
        async with self._write() as conn:
            report.partitions += len(await drop_partitions_before(conn, earliest))
        async with self._write() as conn:
            result = await conn.execute(
                text("DELETE FROM readings_default WHERE ts_us < :c"), {"c": earliest}
            )
            report.raw_rows += int(result.rowcount)
            await _set_cuts(conn, "raw_us", [(0, day)])
        return day

    async def _forget(self, ranges: list[tuple[int, int, int]], column: str, width: int) -> int:
        """Delete rows of ``(ref, lo, hi)`` ranges (raw readings for ``width`` 0, else rollups
        of that width) and record each ``hi``."""
        table = "readings" if width == 0 else "rollups"
        key = "ts_us" if width == 0 else "bucket_us"
        of_width = "" if width == 0 else f" AND u.slot IN ({_SLOTS}) AND u.width_s = {width}"
        if self.dialect == "postgresql":
            async with self._write() as conn:
                for setting in _NESTED_LOOPS_ONLY:  # one index range per stream, never a sort
                    await conn.execute(text(f"SET LOCAL {setting}"))
                result = await conn.execute(
                    text(
                        f"DELETE FROM {table} u USING unnest(CAST(:s AS integer[]), "
                        "CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS k(s, lo, hi) "
                        f"WHERE u.sensor_ref = k.s{of_width} AND u.{key} >= k.lo "
                        f"AND u.{key} < k.hi AND u.{key} >= :a AND u.{key} < :b"
                    ),
                    {
                        "s": [r[0] for r in ranges],
                        "lo": [r[1] for r in ranges],
                        "hi": [r[2] for r in ranges],
                        "a": min(r[1] for r in ranges),
                        "b": max(r[2] for r in ranges),
                    },
                )
                await _set_cuts(conn, column, [(ref, hi) for ref, _, hi in ranges])
                return int(result.rowcount)
        gone = 0
        for ref, _, hi in ranges:
            while True:  # from the stream's first row: late readings below an old cut go too
                async with self._write() as conn:
                    if width == 0:
                        sql = (
                            "DELETE FROM readings WHERE id IN (SELECT id FROM readings "
                            f"WHERE sensor_ref = :r AND ts_us < :c LIMIT {_SQLITE_BATCH})"
                        )
                    else:
                        sql = (
                            f"DELETE FROM rollups AS u WHERE u.sensor_ref = :r{of_width} "
                            "AND u.bucket_us < :c"
                        )
                    deleted = int((await conn.execute(text(sql), {"r": ref, "c": hi})).rowcount)
                    gone += deleted
                    if width != 0 or deleted < _SQLITE_BATCH:
                        await _set_cuts(conn, column, [(ref, hi)])
                        break
        return gone


async def _set_cuts(conn: AsyncConnection, column: str, values: list[tuple[int, int]]) -> None:
    """Record ``column`` = the time per sensor ref (cuts only move forward: callers ask for
    later ones)."""
    if not values:
        return
    await conn.execute(
        text(
            f"INSERT INTO retention_cuts (sensor_ref, {column}) VALUES (:r, :t) "
            f"ON CONFLICT (sensor_ref) DO UPDATE SET {column} = excluded.{column}"
        ),
        [{"r": r, "t": t} for r, t in values],
    )
