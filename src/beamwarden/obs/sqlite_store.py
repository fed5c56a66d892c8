"""Room: obs (stands alone; touches one SQLite file). The SQLite store.

* One long-lived writer connection (WAL, ``synchronous=NORMAL``: a crash of the app loses
  nothing committed, a power cut may lose the last commits), guarded by a lock; each ``append_*``
  call is one transaction, so a caller that batches (the logging handler does) gets batched
  commits. Readers get their own connection per thread and never block the writer.
* Ids are ``INTEGER PRIMARY KEY AUTOINCREMENT``: they keep growing after deletions, so a cursor
  stays valid.
* Only the indexes the queries use: ``ts`` on logs and samples (``since`` and retention by age);
  reads page by rowid (``id > cursor``) with ``+ts`` so that the planner keeps to the rowid order.
  The first page of a ``since`` query finds its first id through the ``ts`` index once.
* Series (name + labels + kind) are rows of ``obs_series``, numbered; a sample row holds only
  ``(ts, series, value)``. The series row also holds the last value (updated by id with each
  batch), so scrapes read one row per series and never touch the history. The series numbers
  are cached by the writer: one writing process per file.
* A stored row that cannot be decoded is skipped and counted (``stats().unreadable``), so one bad
  row never breaks a read; unreadable attributes are kept as text in ``attrs["unreadable_attrs"]``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from . import _json
from .errors import StoreClosed
from .levels import STDLIB_LEVELS, Level, level_from_number
from .query import LogQuery, SampleQuery
from .records import (
    EMPTY_ATTRS,
    HistogramValue,
    Labels,
    LogRecord,
    MetricKind,
    MetricSample,
    labels_from_key,
    labels_key,
)
from .store import StoreStats, clean_json, clean_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS obs_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    level INTEGER NOT NULL,
    logger TEXT NOT NULL,
    message TEXT NOT NULL,
    attrs TEXT
);
CREATE INDEX IF NOT EXISTS obs_logs_ts ON obs_logs (ts);
CREATE TABLE IF NOT EXISTS obs_series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL,
    value REAL,
    histogram TEXT,
    UNIQUE (name, labels)
);
CREATE TABLE IF NOT EXISTS obs_samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    series INTEGER NOT NULL,
    value REAL,
    histogram TEXT
);
CREATE INDEX IF NOT EXISTS obs_samples_ts ON obs_samples (ts);
"""

_INSERT_LOG = "INSERT INTO obs_logs (ts, level, logger, message, attrs) VALUES (?, ?, ?, ?, ?)"
_INSERT_SAMPLE = "INSERT INTO obs_samples (ts, series, value, histogram) VALUES (?, ?, ?, ?)"
_NEW_SERIES = """
INSERT INTO obs_series (name, labels, kind) VALUES (?, ?, ?)
ON CONFLICT (name, labels) DO UPDATE SET kind = excluded.kind
RETURNING id
"""
_LAST_VALUE = """
UPDATE obs_series SET ts = ?, value = ?, histogram = ? WHERE id = ? AND (ts IS NULL OR ts <= ?)
"""
_SAMPLE_COLUMNS = """
SELECT s.id, s.ts, r.name, r.kind, r.labels, s.value, s.histogram
FROM obs_samples AS s JOIN obs_series AS r ON r.id = s.series
"""
#: rows deleted per transaction by retention, so that writers never wait long
DELETE_BATCH = 20_000

_T = TypeVar("_T")
_KINDS = {kind.value: kind for kind in MetricKind}
_new_sample = tuple.__new__
#: what binding or encoding a value SQLite/JSON cannot hold raises
_UNBINDABLE = (UnicodeEncodeError, sqlite3.InterfaceError, OverflowError, TypeError, ValueError)
_LogRow = tuple[float, int, str, str, str | None]
_SampleRow = tuple[float, int, float | None, str | None]


class SqliteStore:
    """Logs and metric samples in one SQLite file (created with its tables if missing).

    ``readonly=True`` opens an existing file for reading only (the ``obs query`` command)."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = str(path)
        if self.path in {"", ":memory:"} or self.path.startswith("file::memory:"):
            raise ValueError("SqliteStore needs a file (readers use their own connections)")
        self.readonly = readonly
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._unreadable = 0
        self._rejected = 0
        self._series_ids: dict[tuple[str, Labels], int] = {}
        self._labels: dict[object, Labels] = {}  # label text → parsed, for reads
        self._latest: dict[int, MetricSample] = {}  # series id → last value (writer only)
        self._writer: sqlite3.Connection | None = None
        if readonly:
            if not Path(self.path).exists():
                raise FileNotFoundError(self.path)
            return
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        writer = self._connect()
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute(f"PRAGMA synchronous={synchronous.upper()}")
        writer.executescript(SCHEMA)
        self._writer = writer
        self._latest.update(self._read_latest(writer))

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, timeout=self._busy_timeout, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        return conn

    # -- connections ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            if self._writer is None:
                raise PermissionError("the store was opened read-only")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosed("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._reader().execute(sql, params).fetchall()

    # -- logs -------------------------------------------------------------------------------

    def append_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        dumps = _json.dumps
        rows: list[_LogRow] = []
        for rec in records:
            try:
                attrs = dumps(rec.attrs).decode() if rec.attrs else None
            except (TypeError, ValueError):
                attrs = _repaired_attrs(rec.attrs)
            rows.append((rec.ts, int(rec.level), rec.logger, rec.message, attrs))
        try:
            with self._write() as conn:
                conn.executemany(_INSERT_LOG, rows)
        except (UnicodeEncodeError, sqlite3.InterfaceError, OverflowError):
            self._insert_one_by_one(_INSERT_LOG, rows, _clean_log_row)

    def _insert_one_by_one(self, sql: str, rows: Sequence[_T], clean: Callable[[_T], _T]) -> None:
        """The slow path after a batch failed on a value SQLite cannot bind: clean each row,
        insert what can be inserted, count the rest."""
        with self._write() as conn:
            for row in rows:
                try:
                    conn.execute(sql, clean(row))  # type: ignore[arg-type]
                except (UnicodeEncodeError, sqlite3.InterfaceError, OverflowError, ValueError):
                    self._rejected += 1

    def read_logs(self, query: LogQuery) -> list[LogRecord]:
        after = query.after_id
        since = query.since
        if since is not None and after == 0:
            first = self._first_id_since("obs_logs", since)
            if first is None:
                return []
            after = first - 1
        sql = "SELECT id, ts, level, logger, message, attrs FROM obs_logs WHERE id > ?"
        params: list[Any] = [after]
        if since is not None:
            sql += " AND +ts >= ?"
            params.append(since)
        if query.min_level is not None:
            sql += " AND level >= ?"
            params.append(int(query.min_level))
        return self._read_pages(sql + " ORDER BY id LIMIT ?", params, query.limit, self._decode_log)

    def _read_pages(
        self,
        sql: str,
        params: list[Any],
        limit: int,
        decode: Callable[[tuple[Any, ...]], _T | None],
    ) -> list[_T]:
        """Rows ``id > params[0]`` decoded, ``limit`` of them unless the table ends first: rows
        that cannot be decoded are skipped (and counted) and more are read in their place."""
        out: list[_T] = []
        while len(out) < limit:
            want = limit - len(out)
            rows = self._read(sql, [*params, want])
            for row in rows:
                item = decode(row)
                if item is not None:
                    out.append(item)
            if len(rows) < want:
                break
            params = [rows[-1][0], *params[1:]]
        return out

    def _first_id_since(self, table: str, since: float) -> int | None:
        """The smallest id with ``ts >= since``, or None. Through the ts index (forced: left to
        itself the planner walks the rowids from the start, which costs the whole history for a
        recent ``since``), so the cost is that of the rows the query will return anyway."""
        (oldest,) = self._read(f"SELECT min(ts) FROM {table}")[0]
        if oldest is None:
            return None
        if isinstance(oldest, int | float) and oldest >= since:
            return 1
        (first,) = self._read(
            f"SELECT min(id) FROM {table} INDEXED BY {table}_ts WHERE ts >= ?", (since,)
        )[0]
        return first if isinstance(first, int) else None

    def _decode_log(self, row: tuple[Any, ...]) -> LogRecord | None:
        rid, ts, level, logger, message, attrs = row
        try:
            if not isinstance(ts, int | float) or not isinstance(level, int):
                raise TypeError("ts and level")
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            elif not isinstance(message, str):
                raise TypeError("message")
            return LogRecord(
                float(ts),
                STDLIB_LEVELS.get(level) or level_from_number(level),
                message,
                logger if isinstance(logger, str) else "",
                _decode_attrs(attrs),
                rid,
            )
        except (TypeError, ValueError):
            self._unreadable += 1
            return None

    def delete_logs(self, before: float, levels: Collection[Level] | None = None) -> int:
        where = "ts < ?"
        params: list[Any] = [before]
        if levels is not None:
            wanted = sorted({int(level) for level in levels})
            if not wanted:
                return 0
            where += f" AND level IN ({','.join('?' * len(wanted))})"
            params += wanted
        return self._delete_in_batches("obs_logs", where, params)

    def _delete_in_batches(self, table: str, where: str, params: Sequence[Any]) -> int:
        removed = 0
        sql = (
            f"DELETE FROM {table} WHERE id IN "
            f"(SELECT id FROM {table} WHERE {where} LIMIT {DELETE_BATCH})"
        )
        while True:
            with self._write() as conn:
                count = conn.execute(sql, params).rowcount
            removed += count
            if count < DELETE_BATCH:
                return removed

    def trim_logs(self, keep: int) -> int:
        return self._trim("obs_logs", keep)

    def _trim(self, table: str, keep: int) -> int:
        if keep <= 0:
            return self._delete_in_batches(table, "1", ())
        rows = self._read(f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?", (keep,))
        if not rows:
            return 0
        return self._delete_in_batches(table, "id <= ?", (rows[0][0],))

    # -- samples ----------------------------------------------------------------------------

    def _series_id(self, conn: sqlite3.Connection, sample: MetricSample) -> int:
        key = (sample.name, sample.labels)
        sid = self._series_ids.get(key)
        if sid is None:
            (sid,) = conn.execute(
                _NEW_SERIES, (sample.name, labels_key(sample.labels), sample.kind.value)
            ).fetchone()
            self._series_ids[key] = sid
        return sid

    def append_samples(self, samples: Sequence[MetricSample]) -> None:
        if not samples:
            return
        try:
            self._append_samples(samples)
        except _UNBINDABLE:
            self._series_ids.clear()  # ids handed out in the rolled-back transaction are void
            for sample in samples:  # the slow path: one transaction each, the bad ones counted
                try:
                    self._append_samples([sample])
                except _UNBINDABLE:
                    self._series_ids.clear()
                    self._rejected += 1

    def _append_samples(self, samples: Sequence[MetricSample]) -> None:
        rows: list[_SampleRow] = []
        latest: dict[int, _SampleRow] = {}
        newest: dict[int, MetricSample] = {}
        dumps = _json.dumps
        with self._write() as conn:
            series_id = self._series_id
            for sample in samples:
                sid = series_id(conn, sample)
                value = sample.value
                if value.__class__ is HistogramValue:
                    row: _SampleRow = (
                        sample.ts,
                        sid,
                        None,
                        dumps(value.as_json()).decode(),
                    )
                else:
                    row = (sample.ts, sid, value, None)  # type: ignore[assignment]
                rows.append(row)
                current = latest.get(sid)
                if current is None or current[0] <= row[0]:
                    latest[sid] = row
                    newest[sid] = sample
            conn.executemany(_INSERT_SAMPLE, rows)
            conn.executemany(_LAST_VALUE, [(r[0], r[2], r[3], r[1], r[0]) for r in latest.values()])
        cache = self._latest
        for sid, sample in newest.items():  # committed: the cache follows the table
            known = cache.get(sid)
            if known is None or known.ts <= sample.ts:
                cache[sid] = sample._replace(id=0)

    def read_samples(self, query: SampleQuery) -> list[MetricSample]:
        after = query.after_id
        since = query.since
        if since is not None and after == 0:
            first = self._first_id_since("obs_samples", since)
            if first is None:
                return []
            after = first - 1
        sql = _SAMPLE_COLUMNS + " WHERE s.id > ?"
        params: list[Any] = [after]
        if since is not None:
            sql += " AND +s.ts >= ?"
            params.append(since)
        if query.name is not None:
            sql += " AND r.name = ?"
            params.append(query.name)
        return self._read_pages(
            sql + " ORDER BY s.id LIMIT ?", params, query.limit, self._decode_sample
        )

    def latest_samples(self) -> list[MetricSample]:
        """The writer keeps the last-value table in memory too (loaded at open, updated after
        each commit), so a scrape in the writing process reads no rows; ``list(dict.values())``
        is one C call under the GIL, safe against a concurrent commit. Read-only stores read
        ``obs_series``."""
        if not self.readonly:
            if self._closed:
                raise StoreClosed("the store is closed")
            return list(self._latest.values())
        return [s for _, s in self._read_latest()]

    def _read_latest(
        self, conn: sqlite3.Connection | None = None
    ) -> list[tuple[int, MetricSample]]:
        out: list[tuple[int, MetricSample]] = []
        rows = (conn or self._reader()).execute(
            "SELECT id, ts, name, kind, labels, value, histogram FROM obs_series"
            " WHERE ts IS NOT NULL ORDER BY name, labels"
        )
        for row in rows:
            sample = self._decode_sample(row)
            if sample is not None:
                out.append((row[0], sample._replace(id=0)))
        return out

    def _decode_sample(self, row: tuple[Any, ...]) -> MetricSample | None:
        rid, ts, name, kind, labels, value, histogram = row
        try:
            if not isinstance(ts, int | float) or not isinstance(name, str):
                raise TypeError("ts and name")
            metric_kind = _KINDS[kind]
            decoded: float | HistogramValue
            if metric_kind is MetricKind.HISTOGRAM:
                decoded = HistogramValue.from_json(_json.loads(histogram))
            elif isinstance(value, int | float):
                decoded = float(value)
            else:
                raise TypeError("value")
            parsed = self._labels.get(labels)
            if parsed is None:
                if len(self._labels) > 100_000:
                    self._labels.clear()
                parsed = self._labels[labels] = labels_from_key(labels)
            return _new_sample(MetricSample, (float(ts), name, metric_kind, parsed, decoded, rid))
        except (TypeError, ValueError, KeyError):
            self._unreadable += 1
            return None

    def delete_samples(self, before: float) -> int:
        return self._delete_in_batches("obs_samples", "ts < ?", (before,))

    def trim_samples(self, keep: int) -> int:
        return self._trim("obs_samples", keep)

    # -- the rest ---------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        (logs,) = self._read("SELECT count(*) FROM obs_logs")[0]
        (samples,) = self._read("SELECT count(*) FROM obs_samples")[0]
        (series,) = self._read("SELECT count(*) FROM obs_series WHERE ts IS NOT NULL")[0]
        return StoreStats(
            kind=self.kind,
            logs=logs,
            samples=samples,
            series=series,
            unreadable=self._unreadable,
            rejected=self._rejected,
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._writer is not None:
                self._writer.close()
            with self._readers_lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()


def _decode_attrs(text: object) -> dict[str, Any] | Any:
    if text is None or text == "":
        return EMPTY_ATTRS
    try:
        data = _json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        data = None
    if isinstance(data, dict):
        return data
    return {"unreadable_attrs": str(text)[:1000]}


def _repaired_attrs(attrs: object) -> str | None:
    try:
        return _json.dumps(clean_json(attrs)).decode()
    except (TypeError, ValueError):
        return None


def _clean_log_row(row: _LogRow) -> _LogRow:
    ts, level, logger, message, attrs = row
    return (
        ts,
        level,
        clean_text(logger),
        clean_text(message),
        None if attrs is None else clean_text(attrs),
    )
