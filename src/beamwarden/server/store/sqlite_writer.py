"""Room: server/store (adapter). SQLite's readings writer: one stdlib connection, one transaction per group.

Imports the standard library and the shared hot path (:mod:`.ingest`). :class:`SqliteWriterCore`
runs a whole ``write_readings`` group synchronously on its own ``sqlite3`` connection:
``BEGIN IMMEDIATE`` (take the write lock up front, waiting up to ``query_timeout`` for it),
sensors, deduplication, ``executemany`` of plain tuples, ``COMMIT``. The database is in WAL mode
with ``PRAGMA synchronous=FULL`` (by default), so a returned commit is on disk and survives a power
cut.

Where the core runs is the setting ``sqlite_writer``:

* ``process`` (the default): in a child process of its own (:mod:`.sqlite_writer_process`). The
  ``sqlite3`` module gives up the GIL around every step of ``executemany`` and takes it back
  after, once per row; next to an event loop busy parsing requests each hand-back waits, and a
  writer thread ran several times slower than alone (see docs/benchmarks.md). In a process the
  writer has its own interpreter and a core of its own.
* ``thread``: :class:`SqliteReadingWriter`, one thread of the server. When the caller's
  ``query_timeout`` passes, the running statement is interrupted
  (``sqlite3.Connection.interrupt``), which rolls the transaction back.

Only one thread touches a core's connection and its :class:`~.ingest.IngestCache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from beamwarden.server.errors import NotFound
from beamwarden.server.records import BatchOutcome, ReadingBatch

from .config import StoreConfig, sqlite_writer_pragmas
from .ingest import (
    MARKS_GENERATION_SQL,
    MARKS_WORTH_A_LOOK,
    READINGS_SEQUENCE,
    SQLITE_MARKS,
    GroupPlan,
    IngestCache,
    MarksCache,
    MarksSeen,
    SensorEntry,
    SensorKey,
    assign_slots,
    decode_fields,
    encode_fields,
)
from .layout import READING_COLUMNS

T = TypeVar("T")

#: the row's marks of missing values (:data:`~.ingest.SQLITE_MARKS`) become NULL again
_INSERT_READINGS = (
    f"INSERT INTO readings ({', '.join(READING_COLUMNS)}, id) VALUES ("
    + ", ".join(
        {"source_ref": "nullif(?, 0)", "reading_id": "nullif(?, '')"}.get(c, "?")
        for c in READING_COLUMNS
    )
    + ", ?)"
)
#: take ``n`` ids from the ``readings`` counter: the last one given (run under the write lock)
_RESERVE_IDS = (
    f"INSERT INTO sequences (name, value) VALUES ('{READINGS_SEQUENCE}', ?1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + ?1 RETURNING value"
)
#: the minutes a commit touched, for the rollup job (an existing mark is left as it is)
_MARK_DIRTY = (
    "INSERT INTO rollup_dirty (sensor_ref, width_s, bucket_us, marked_us) VALUES (?, 60, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_CHUNK = 500  # bound parameters per IN (...) list
_PROGRESS_STEPS = 20_000  # SQLite VM instructions between two ``past_deadline`` questions


class SqliteWriterCore:
    """The readings writer's connection, caches and transactions; synchronous, one thread only."""

    def __init__(
        self, path: str, config: StoreConfig, *, past_deadline: Callable[[], bool] | None = None
    ) -> None:
        """``past_deadline``: asked every few thousand SQLite instructions; ``True`` interrupts
        the running statement (the ``process`` writer's timeout)."""
        self._path = path
        self._config = config
        self._past_deadline = past_deadline
        self._window_us = int(config.opaque_id_window_s * 1_000_000)
        self._con: sqlite3.Connection | None = None
        self._cache = IngestCache()
        self._marks = MarksCache()

    def connect(self) -> sqlite3.Connection:
        """The connection, opened on first use."""
        con = self._con
        if con is None:
            con = sqlite3.connect(
                self._path,
                timeout=self._config.query_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # interrupt() is called from the event loop's thread
            )
            try:
                for pragma in sqlite_writer_pragmas(self._config):
                    con.execute(pragma)
                if self._past_deadline is not None:
                    con.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
            except BaseException:
                con.close()
                raise
            self._con = con
        return con

    def write(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        """Store the group in one transaction; return once the commit is durable."""
        con = self.connect()
        cache = self._cache
        missing = cache.missing_nodes(batches)
        if missing:
            self._load_nodes(con, missing)
        plan = GroupPlan(batches, cache, SQLITE_MARKS)
        now = max(b.received_us for b in batches)
        staged: dict[SensorKey, SensorEntry] = {}
        seen = MarksSeen(None, [])
        con.execute("BEGIN IMMEDIATE")
        try:
            if plan.pending:
                staged = self._resolve_sensors(con, plan.pending, now)
                plan.complete(staged)
            if plan.streams:
                self._dedup_streams(con, plan)
            if plan.opaque:
                since = min(b.received_us for b in batches) - self._window_us
                self._dedup_opaque(con, plan, since)
            if plan.stored_dups:
                found: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
                for key in plan.stored_keys():
                    found[key] = con.execute(
                        "SELECT node_ref, payload FROM readings "
                        "WHERE sensor_ref = ? AND ts_us = ? AND reading_id = ?",
                        key,
                    ).fetchall()
                plan.check_stored(found)
            rows = plan.accepted_rows()
            if rows:
                # ids from the counter, bumped once under the write lock: unique across processes
                # and restarts (never max(id)); ``row + (i,)`` is half the time of ``(*row, i)``
                (last,) = con.execute(_RESERVE_IDS, (len(rows),)).fetchone()
                ids = range(last - len(rows) + 1, last + 1)
                con.executemany(
                    _INSERT_READINGS,
                    (row + (i,) for row, i in zip(rows, ids, strict=True)),  # noqa: RUF005
                )
                seen = self._mark(con, GroupPlan.dirty_minutes(rows), now)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        cache.adopt(staged)
        self._marks.adopt(seen)
        return plan.outcomes()

    def _mark(self, con: sqlite3.Connection, marks: list[tuple[int, int]], now: int) -> MarksSeen:
        """Mark the minutes (under the write lock) but those this writer knows are marked in the
        current generation (:class:`~.ingest.MarksCache`)."""
        if len(marks) < MARKS_WORTH_A_LOOK:
            con.executemany(_MARK_DIRTY, [(*m, now) for m in marks])
            return MarksSeen(None, [])
        (generation,) = con.execute(MARKS_GENERATION_SQL).fetchone()
        known = self._marks
        if generation == known.generation:
            con.executemany(_MARK_DIRTY, [(*m, now) for m in marks if m not in known.marks])
        else:
            con.executemany(_MARK_DIRTY, [(*m, now) for m in marks])
        return MarksSeen(generation, marks)

    def _load_nodes(self, con: sqlite3.Connection, names: list[str]) -> None:
        nodes = self._cache.nodes
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for ref, node_id in con.execute(
                f"SELECT id, node_id FROM nodes WHERE node_id IN ({marks})", chunk
            ):
                nodes[node_id] = ref
        unknown = [n for n in names if n not in nodes]
        if unknown:
            raise NotFound(f"unknown node(s): {', '.join(unknown[:5])}", code="unknown_node")

    def _resolve_sensors(
        self, con: sqlite3.Connection, pending: dict[SensorKey, dict[str, None]], now: int
    ) -> dict[SensorKey, SensorEntry]:
        keys = sorted(pending)
        con.executemany(
            "INSERT INTO sensors (owner, sensor_id, sensor_type, fields, created_us) "
            "VALUES (?, ?, ?, '{}', ?) ON CONFLICT (owner, sensor_id, sensor_type) DO NOTHING",
            [(*key, now) for key in keys],
        )
        out: dict[SensorKey, SensorEntry] = {}
        for key in keys:
            ref, fields = con.execute(
                "SELECT id, fields FROM sensors WHERE owner = ? AND sensor_id = ? AND sensor_type = ?",
                key,
            ).fetchone()
            slots = decode_fields(fields)
            extended = assign_slots(slots, pending[key])
            if extended is not None:
                con.execute(
                    "UPDATE sensors SET fields = ? WHERE id = ?", (encode_fields(extended), ref)
                )
                slots = extended
            out[key] = SensorEntry(ref, slots)
        return out

    def _dedup_streams(self, con: sqlite3.Connection, plan: GroupPlan) -> None:
        stored: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for node_id, stream, lo, hi in plan.stream_bounds():
            stored[(node_id, stream)] = con.execute(
                "SELECT lo, hi FROM stream_ranges "
                "WHERE node_id = ? AND stream = ? AND hi >= ? AND lo <= ?",
                (node_id, stream, lo, hi),
            ).fetchall()
        delete, upsert = plan.dedup_streams(stored)
        if delete:
            con.executemany(
                "DELETE FROM stream_ranges WHERE node_id = ? AND stream = ? AND lo = ?", delete
            )
        if upsert:
            con.executemany(
                "INSERT INTO stream_ranges (node_id, stream, lo, hi) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (node_id, stream, lo) DO UPDATE SET hi = excluded.hi",
                upsert,
            )

    def _dedup_opaque(self, con: sqlite3.Connection, plan: GroupPlan, since: int) -> None:
        stored: set[tuple[str, str]] = set()
        for node_id, items in plan.opaque.items():
            ids = list(dict.fromkeys(rid for rid, _ in items))
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                for (rid,) in con.execute(
                    "SELECT reading_id FROM reading_keys WHERE node_id = ? AND received_us >= ? "
                    f"AND reading_id IN ({marks})",
                    (node_id, since, *chunk),
                ):
                    stored.add((node_id, rid))
        new = plan.dedup_opaque(stored)
        if new:
            con.executemany(
                "INSERT INTO reading_keys (node_id, reading_id, received_us) VALUES (?, ?, ?) "
                "ON CONFLICT (node_id, reading_id) DO UPDATE SET received_us = excluded.received_us",
                new,
            )

    def prune_reading_keys(self, before_us: int) -> int:
        cur = self.connect().execute("DELETE FROM reading_keys WHERE received_us < ?", (before_us,))
        return int(cur.rowcount)

    def interrupt(self) -> None:
        """Abort the running statement (thread-safe); its transaction is rolled back."""
        con = self._con
        if con is not None:
            con.interrupt()

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()


class SqliteReadingWriter:
    """The ``thread`` writer: a :class:`SqliteWriterCore` on one dedicated thread of the server."""

    def __init__(self, path: str, config: StoreConfig) -> None:
        self._config = config
        self._core = SqliteWriterCore(path, config)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bw-sqlite-writer")

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread; past ``query_timeout`` interrupt it and raise."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        try:
            async with asyncio.timeout(self._config.query_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            self._core.interrupt()  # the transaction is rolled back on the thread
            raise

    async def write(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        return await self._run(lambda: self._core.write(batches))

    async def prune_reading_keys(self, before_us: int) -> int:
        return await self._run(lambda: self._core.prune_reading_keys(before_us))

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._core.close)
        finally:
            await asyncio.to_thread(self._executor.shutdown, True)


def _rollback(con: sqlite3.Connection) -> None:
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the first error is the one that matters
            con.execute("ROLLBACK")
