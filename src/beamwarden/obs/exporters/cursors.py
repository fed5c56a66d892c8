"""Room: obs (stands alone; touches the obs SQLite file or one small state file). Where exporters
remember what they have sent: one high-water mark per exporter and stream (``"otlp/logs"`` →
the id of the last record the receiver accepted).

An exporter reads the store after its mark, sends, and moves the mark only once the receiver
accepted the batch (a 2xx). A restart starts after the mark: nothing accepted is sent again,
nothing stored is skipped. The one window left is a crash between the receiver's 2xx and the
mark's commit (one small transaction): that batch is sent again, which the payloads make
detectable (ids; Loki drops an identical entry itself).

* :class:`SqliteCursors`: a table ``obs_export_cursors`` in the obs SQLite file itself (its own
  connection, ``synchronous=FULL``), so the marks live and die with the records they point into.
* :class:`FileCursors`: a JSON file replaced atomically (written, fsynced, renamed).
* :class:`MemoryCursors`: for memory and ring stores, whose ids start again at 1 anyway.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS obs_export_cursors (
    exporter TEXT PRIMARY KEY,
    after_id INTEGER NOT NULL,
    updated REAL
)
"""
_PUT = """
INSERT INTO obs_export_cursors (exporter, after_id, updated) VALUES (?, ?, ?)
ON CONFLICT (exporter) DO UPDATE SET after_id = excluded.after_id, updated = excluded.updated
"""


class CursorStore(Protocol):
    def get(self, key: str) -> int:
        """The mark of ``key`` (0: nothing sent yet)."""
        ...

    def put(self, key: str, after_id: int, now: float) -> None:
        """Remember ``after_id`` for ``key``, durably before returning."""
        ...

    def close(self) -> None: ...


class MemoryCursors:
    def __init__(self) -> None:
        self._marks: dict[str, int] = {}

    def get(self, key: str) -> int:
        return self._marks.get(key, 0)

    def put(self, key: str, after_id: int, now: float) -> None:
        self._marks[key] = after_id

    def close(self) -> None:
        pass


class SqliteCursors:
    """Marks in the table ``obs_export_cursors`` of the SQLite file at ``path``."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT after_id FROM obs_export_cursors WHERE exporter = ?", (key,)
            ).fetchone()
        return int(row[0]) if row is not None else 0

    def put(self, key: str, after_id: int, now: float) -> None:
        with self._lock:
            self._conn.execute(_PUT, (key, after_id, now))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class FileCursors:
    """Marks in a JSON file (``{"otlp/logs": 1234, ...}``), replaced whole on each change."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._marks: dict[str, int] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text("utf-8") or "{}")
            if not isinstance(data, dict):
                raise ValueError(f"{self.path}: not a JSON object")
            self._marks = {str(k): int(v) for k, v in data.items()}

    def get(self, key: str) -> int:
        with self._lock:
            return self._marks.get(key, 0)

    def put(self, key: str, after_id: int, now: float) -> None:
        with self._lock:
            self._marks[key] = after_id
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump(self._marks, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)

    def close(self) -> None:
        pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
