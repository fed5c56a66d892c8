"""Bare ``sqlite3``: rows/s by commit size, with readings shaped as the server writes them.

Why SQLite's batch figure is what it is (docs/benchmarks.md, "session 4"): the readings table as the
migrations make it on SQLite (rowid = id, the covering series index), 1000 series, WAL and
``synchronous=FULL`` as the server's writer sets them, rows as ``GroupPlan`` makes them, one
``executemany`` and ``COMMIT`` per group. Each commit rewrites about one index page per series, so
rows/s grows with the commit's size. No server, no HTTP: the ceiling a writer of that shape has on
this disk. Medians of ``--runs`` per size; sizes take turns.

    .venv/bin/python bench/bench_sqlite_commit_size.py                       # 1000,2000,4000,8000
    .venv/bin/python bench/bench_sqlite_commit_size.py --sizes 2000 --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _harness as h

SERIES = 1000
_TABLE = (
    "CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor_ref INT NOT NULL, ts_us BIGINT NOT NULL,"
    " node_ref INT NOT NULL, source_ref INT, received_us BIGINT NOT NULL, flags SMALLINT NOT NULL,"
    " v0 REAL, v1 REAL, v2 REAL, v3 REAL, v4 REAL, v5 REAL, v6 REAL, v7 REAL,"
    " reading_id VARCHAR(128), payload TEXT NOT NULL)"
)
_INDEX = (
    "CREATE INDEX ix_readings_series ON readings "
    "(sensor_ref, ts_us, id, v0, v1, v2, v3, v4, v5, v6, v7)"
)
_INSERT = (
    "INSERT INTO readings (sensor_ref, node_ref, source_ref, ts_us, received_us, flags,"
    " reading_id, payload, v0, v1, v2, v3, v4, v5, v6, v7, id)"
    " VALUES (?, ?, nullif(?, 0), ?, ?, ?, nullif(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the readings writer's PRAGMAs."""
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA cache_size=-65536",
        "PRAGMA wal_autocheckpoint=10000",
    ):
        con.execute(pragma)
    return con


def group(first: int, end: int) -> list[tuple[object, ...]]:
    """Readings ``first`` .. ``end - 1`` as the writer's rows: reading j of series j % SERIES, a
    second after the series' previous one."""
    base = 1_800_000_000_000_000
    nan = math.nan
    payload = '{"temperature_c":21.5,"humidity_pct":40.25}'
    return [
        (j % SERIES + 1, 1, 0, base + j // SERIES * 1_000_000, base, 0, f"r-{j}",
         payload, 21.5, 40.25, nan, nan, nan, nan, nan, nan, j + 1)
        for j in range(first, end)
    ]  # fmt: skip


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def one_run(folder: Path, size: int, rows: int) -> dict[str, float]:
    path = folder / f"commit-{size}.db"
    con = connect(path)
    try:
        con.execute(_TABLE)
        con.execute(_INDEX)
        commits: list[float] = []
        start = time.perf_counter()
        for first in range(0, rows, size):
            rows_of_group = group(first, min(rows, first + size))
            con.execute("BEGIN IMMEDIATE")
            con.executemany(_INSERT, rows_of_group)
            c0 = time.perf_counter()
            con.execute("COMMIT")
            commits.append(time.perf_counter() - c0)
        elapsed = time.perf_counter() - start
    finally:
        con.close()
        remove(path)
    return {
        "rows_per_s": round(rows / elapsed, 1),
        "commit_median_ms": round(statistics.median(commits) * 1000, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", default="1000,2000,4000,8000", help="rows per commit")
    p.add_argument("--rows", type=int, default=400_000, help="rows per run")
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result = h.header("sqlite_commit_size", {"sizes": sizes, "rows": args.rows, "runs": args.runs})
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="bw-commit-size-") as folder:
        for i in range(args.runs):
            for size in sizes:
                run = one_run(Path(folder), size, args.rows)
                h.log(f"sqlite_commit_size:{size}:{i + 1}: {run}")
                runs[size].append(run)
    result["results"] = {
        str(size): {
            "median": h.medians(found, ("rows_per_s", "commit_median_ms")),
            "runs": found,
        }
        for size, found in runs.items()
    }
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
