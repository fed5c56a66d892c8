"""Room: agent (queue). The durable, bounded reading queue: one SQLite file (stdlib ``sqlite3``).

Promises
  * **Committed before taken.** :meth:`ReadingQueue.put_many` returns after its transaction is
    committed with ``journal_mode=WAL`` and ``synchronous=FULL``: the WAL is fsync'd at every
    commit, so a reading the agent counted survives ``kill -9`` *and* a power cut. Drivers' readings
    are committed in groups (one fsync per group), which is what keeps FULL affordable.
  * **Ids never reused.** Each reading's ``reading_id`` is ``<stream>:<seq>``: ``stream`` is random,
    created once with the queue and stored in it; ``seq`` is an ``AUTOINCREMENT`` key, which SQLite
    never hands out twice even after the newest rows were deleted (a plain rowid would be).
  * **Removed only when acknowledged.** Rows leave the queue through :meth:`ack` (the server
    answered 2xx), :meth:`dead_letter` (the server named them invalid) or the bound below.
  * **Bounded, never silently.** Beyond ``max_rows`` rows or ``max_bytes`` bytes of reading bodies
    the *oldest* readings are dropped to make room for new ones (the newest data is the most
    useful after a long outage, and a driver is never blocked). Every drop is counted, persisted in
    the queue, and reported by the caller (log, telemetry, ``pi-log queue stats``).

One process writes a queue at a time (the agent holds a lock on its state directory); ``pi-log
queue`` commands may read it meanwhile. Methods are thread-safe (one lock), so the agent calls
them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beamwarden.agent.errors import QueueError
from beamwarden.protocol import ranges_of

FORMAT = "pi-log-queue-1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    enqueued_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    reading_id TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    failed_at REAL NOT NULL,
    error TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """One queued reading: its sequence number, when it was queued (Unix time) and its JSON."""

    seq: int
    enqueued_at: float
    body: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reading_id: str
    enqueued_at: float
    failed_at: float
    error: str
    body: bytes


@dataclass(frozen=True, slots=True)
class QueueStats:
    stream: str
    rows: int
    bytes: int
    oldest_enqueued_at: float | None
    last_seq: int
    dropped_rows: int
    dropped_bytes: int
    dead_letters: int
    acked_total: int


class ReadingQueue:
    """The queue file at ``path`` (created with its stream id on first open)."""

    def __init__(self, path: Path, max_rows: int = 1_000_000, max_bytes: int = 256 << 20) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pending_drop_rows = 0
        self._pending_drop_bytes = 0
        #: how many old readings the last :meth:`put_many` dropped to stay within the bounds
        self.last_put_dropped = 0
        try:
            self._db = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self.stream = self._init()
            self._rows = self._bytes = 0
            self._reload_counts()
        except sqlite3.DatabaseError as exc:
            raise QueueError(f"{path}: cannot be opened as a pi-log queue: {exc}") from exc

    def _init(self) -> str:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise QueueError(f"{self.path}: an SQLite file that is not a pi-log queue")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not stored:
                stored = {"format": FORMAT, "stream": secrets.token_hex(8)}
                for key in ("dropped_rows", "dropped_bytes", "acked_total"):
                    stored[key] = "0"
                db.executemany("INSERT INTO meta VALUES (?, ?)", stored.items())
            elif stored.get("format") != FORMAT:
                raise QueueError(f"{self.path}: queue format {stored.get('format')!r} is unknown")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return str(stored["stream"])

    # -- writing ---------------------------------------------------------------------------------

    def put_many(self, bodies: Sequence[bytes], enqueued_at: float) -> range:
        """Commit ``bodies`` (JSON objects of readings, without ``reading_id``) in one
        transaction; return their sequence numbers. Drops the oldest rows first if the bounds
        require it (see :attr:`last_put_dropped`)."""
        self.last_put_dropped = 0
        if not bodies:
            return range(0)
        with self._lock:
            db = self._db
            if len(bodies) > self.max_rows:  # more than the whole queue holds: keep the newest
                self._count_dropped(len(bodies) - self.max_rows, 0, bodies[: -self.max_rows])
                bodies = bodies[-self.max_rows :]
            new_bytes = sum(len(b) for b in bodies)
            db.execute("BEGIN IMMEDIATE")
            try:
                self._make_room(len(bodies), new_bytes)
                db.executemany(
                    "INSERT INTO readings (enqueued_at, body) VALUES (?, ?)",
                    [(enqueued_at, body) for body in bodies],
                )
                last = db.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"
                ).fetchone()[0]
                self._flush_drop_counters()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._reload_counts()
                raise
            self._rows += len(bodies)
            self._bytes += new_bytes
            return range(last - len(bodies) + 1, last + 1)

    def _count_dropped(self, rows: int, nbytes: int, bodies: Sequence[bytes] = ()) -> None:
        self._pending_drop_rows += rows
        self._pending_drop_bytes += nbytes + sum(len(b) for b in bodies)
        self.last_put_dropped += rows

    def _flush_drop_counters(self) -> None:
        if self._pending_drop_rows:
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'dropped_rows'",
                (self._pending_drop_rows,),
            )
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'dropped_bytes'",
                (self._pending_drop_bytes,),
            )
            self._pending_drop_rows = self._pending_drop_bytes = 0

    def _make_room(self, rows: int, nbytes: int) -> None:
        over_rows = self._rows + rows - self.max_rows
        over_bytes = self._bytes + nbytes - self.max_bytes
        if over_rows <= 0 and over_bytes <= 0:
            return
        freed_rows = freed_bytes = 0
        cut = None
        for seq, size in self._db.execute("SELECT seq, length(body) FROM readings ORDER BY seq"):
            freed_rows += 1
            freed_bytes += size
            cut = seq
            if freed_rows >= over_rows and freed_bytes >= over_bytes:
                break
        if cut is None:
            return
        self._db.execute("DELETE FROM readings WHERE seq <= ?", (cut,))
        self._rows -= freed_rows
        self._bytes -= freed_bytes
        self._count_dropped(freed_rows, freed_bytes)

    def _reload_counts(self) -> None:
        self._pending_drop_rows = self._pending_drop_bytes = 0
        rows, nbytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM readings"
        ).fetchone()
        self._rows, self._bytes = int(rows), int(nbytes)

    def _delete(self, seqs: Sequence[int]) -> tuple[int, int]:
        rows = nbytes = 0
        for lo, hi in ranges_of(list(seqs)):
            for (size,) in self._db.execute(
                "DELETE FROM readings WHERE seq BETWEEN ? AND ? RETURNING length(body)", (lo, hi)
            ).fetchall():
                rows += 1
                nbytes += size
        return rows, nbytes

    def ack(self, seqs: Sequence[int]) -> int:
        """Remove readings the server acknowledged; returns how many were still queued."""
        if not seqs:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows, nbytes = self._delete(seqs)
                self._db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'acked_total'",
                    (rows,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._rows -= rows
            self._bytes -= nbytes
            return int(rows)

    def dead_letter(self, errors: dict[int, str], failed_at: float) -> int:
        """Move the readings the server named invalid (``seq → error``) to the dead letters."""
        if not errors:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO dead_letters "
                    "SELECT seq, ? || ':' || seq, enqueued_at, ?, ?, body FROM readings WHERE seq = ?",
                    [(self.stream, failed_at, error, seq) for seq, error in errors.items()],
                )
                rows, nbytes = self._delete(list(errors))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._rows -= rows
            self._bytes -= nbytes
            return int(rows)

    # -- reading ---------------------------------------------------------------------------------

    def peek(self, limit: int, after: int = 0, upto: int | None = None) -> list[QueuedReading]:
        """Up to ``limit`` readings with ``after < seq <= upto``, oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, enqueued_at, body FROM readings WHERE seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (after, upto if upto is not None else 2**63 - 1, limit),
            ).fetchall()
        return [QueuedReading(seq, at, body) for seq, at, body in rows]

    def reading_id(self, seq: int) -> str:
        return f"{self.stream}:{seq}"

    def wire_item(self, item: QueuedReading) -> bytes:
        """The reading as sent: its JSON object with ``reading_id`` added."""
        return b'%s,"reading_id":"%s:%d"}' % (item.body[:-1], self.stream.encode(), item.seq)

    @property
    def depth(self) -> int:
        return self._rows

    @property
    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"
            ).fetchone()
        return int(row[0]) if row else 0

    def oldest_enqueued_at(self) -> float | None:
        """When the oldest queued reading was queued (Unix time), or None when empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT enqueued_at FROM readings ORDER BY seq LIMIT 1"
            ).fetchone()
        return float(row[0]) if row else None

    def counters(self) -> tuple[int, int]:
        """(readings dropped by the bound since the queue was created, dead letters held)."""
        with self._lock:
            (dropped,) = self._db.execute(
                "SELECT value FROM meta WHERE key = 'dropped_rows'"
            ).fetchone()
            (dead,) = self._db.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(dropped), int(dead)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def stats(self) -> QueueStats:
        with self._lock:
            db = self._db
            rows, nbytes, oldest = db.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0), min(enqueued_at) FROM readings"
            ).fetchone()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            (dead,) = db.execute("SELECT count(*) FROM dead_letters").fetchone()
            last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return QueueStats(
            stream=self.stream,
            rows=rows,
            bytes=nbytes,
            oldest_enqueued_at=oldest,
            last_seq=int(last[0]) if last else 0,
            dropped_rows=int(meta["dropped_rows"]),
            dropped_bytes=int(meta["dropped_bytes"]),
            dead_letters=dead,
            acked_total=int(meta["acked_total"]),
        )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT reading_id, enqueued_at, failed_at, error, body FROM dead_letters "
                "ORDER BY failed_at DESC, seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
