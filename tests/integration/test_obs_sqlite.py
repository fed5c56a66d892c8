"""Integration tests of the obs SQLite store on real files: WAL, persistence, the indexes the
queries use, a bad stored row, read-only opening, and the logging handler end to end."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from pathlib import Path

import pytest

from beamwarden.obs import (
    Level,
    LogQuery,
    ObsEndpoints,
    ObsHandler,
    Request,
    SampleQuery,
    SqliteStore,
    new_log_record,
    new_sample,
)

T0 = 1_800_000_000.0


def test_wal_and_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "obs.db"
    store = SqliteStore(path)
    store.append_logs([new_log_record("info", "kept", ts=T0)])
    store.append_samples([new_sample("up", "gauge", 1, ts=T0)])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again = SqliteStore(path)
    assert [r.message for r in again.read_logs(LogQuery())] == ["kept"]
    assert [s.value for s in again.latest_samples()] == [1.0]  # loaded into the writer's cache
    again.append_samples([new_sample("up", "gauge", 2, ts=T0 + 1)])
    assert [s.value for s in again.latest_samples()] == [2.0]
    again.close()


def test_the_queries_use_rowid_ranges_and_the_ts_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "obs.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "obs.db")
    indexes = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'obs_%'"
        )
    }
    assert indexes == {"obs_logs_ts", "obs_samples_ts"}

    def plan(sql: str, *params: object) -> str:
        return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

    page = plan(
        "SELECT * FROM obs_logs WHERE id > ? AND +ts >= ? AND level >= ? ORDER BY id LIMIT ?",
        0,
        T0,
        20,
        10,
    )
    assert "USING INTEGER PRIMARY KEY (rowid>?)" in page
    assert "TEMP B-TREE" not in page
    first = plan("SELECT min(id) FROM obs_logs INDEXED BY obs_logs_ts WHERE ts >= ?", T0)
    assert "USING COVERING INDEX obs_logs_ts (ts>?)" in first
    retention = plan("SELECT id FROM obs_logs WHERE ts < ? LIMIT 10", T0)
    assert "obs_logs_ts" in retention


def test_a_bad_stored_row_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "obs.db"
    store = SqliteStore(path)
    store.append_logs([new_log_record("info", f"m{i}", ts=T0 + i) for i in range(3)])
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(
        "INSERT INTO obs_logs (ts, level, logger, message, attrs) VALUES ('not a time', 20, 'x', 'bad', NULL)"
    )
    raw.execute(
        "INSERT INTO obs_logs (ts, level, logger, message, attrs) VALUES (?, 20, 'x', 'odd attrs', '{nope')",
        (T0 + 9,),
    )
    raw.execute(
        "INSERT INTO obs_logs (ts, level, logger, message, attrs) VALUES (?, 35, 'x', 'odd level', NULL)",
        (T0 + 10,),
    )
    raw.close()
    records = store.read_logs(LogQuery(limit=4))
    assert [r.message for r in records] == [
        "m0",
        "m1",
        "m2",
        "odd attrs",
    ]  # read on past the bad row
    assert records[3].attrs == {"unreadable_attrs": "{nope"}
    assert store.read_logs(LogQuery(min_level=Level.WARNING))[0].level is Level.WARNING
    assert store.stats().unreadable == 1
    answer = ObsEndpoints(store).handle(Request("GET", "/logs", "limit=100"))
    assert answer.status == 200
    assert len(b"".join(answer.body).splitlines()) == 5
    store.close()


def test_read_only_opening(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SqliteStore(tmp_path / "missing.db", readonly=True)
    with pytest.raises(ValueError, match="file"):
        SqliteStore(":memory:")
    writer = SqliteStore(tmp_path / "obs.db")
    writer.append_logs([new_log_record("error", "seen", ts=T0)])
    writer.append_samples([new_sample("up", "gauge", 3, ts=T0)])
    reader = SqliteStore(tmp_path / "obs.db", readonly=True)
    assert [r.message for r in reader.read_logs(LogQuery())] == ["seen"]
    assert [s.value for s in reader.latest_samples()] == [3.0]
    assert [s.value for s in reader.read_samples(SampleQuery(name="up"))] == [3.0]
    with pytest.raises(PermissionError):
        reader.append_logs([new_log_record("info", "no", ts=T0)])
    reader.close()
    writer.close()


def test_the_handler_writes_everything_to_sqlite_without_drops(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "obs.db")
    handler = ObsHandler(store, batch_size=500)
    logger = logging.getLogger(f"test.obs.sqlite.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for i in range(20_000):
        logger.info("record %d", i, extra={"i": i})
    handler.close()
    logger.removeHandler(handler)
    assert handler.dropped == 0
    assert store.stats().logs == 20_000
    last = store.read_logs(LogQuery(after_id=19_999))
    assert [(r.message, r.attrs) for r in last] == [("record 19999", {"i": 19999})]
    store.close()
