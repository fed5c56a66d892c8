"""Bare ``sqlite3``: readings written through an unindexed tail table, moved in bulk, against
straight into the indexed table — the next step for SQLite's batch figure (not built).

Why (docs/benchmarks.md, "session 5"): each commit of the server's writer rewrites about one page
of the series index per series (1000 pages for a 1000-series group), and every page goes to the
WAL and again to the database file. Written first into a table without the index, a commit only
appends; moving the tail into the indexed table every ``--move`` rows touches each series' page
once per move instead of once per commit. The price is a pause for each move (``move_ms``) and a
second table every reader must see. Tables, rows and PRAGMAs as :mod:`bench_sqlite_commit_size`
(the server's writer: WAL, ``synchronous=FULL``, 64 MiB cache, checkpoints every 10 000 pages).
Reports rows/s, the median commit, the moves' median and longest, and the bytes the process wrote
per row (``/proc/self/io``). Modes take turns; medians of ``--runs``.

    .venv/bin/python bench/bench_sqlite_tail_table.py                      # direct, move 20 000
    .venv/bin/python bench/bench_sqlite_tail_table.py --moves 10000,20000,60000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _harness as h
from bench_sqlite_commit_size import _INDEX, _INSERT, _TABLE, connect, group, remove

_COLUMNS = (
    "id, sensor_ref, ts_us, node_ref, source_ref, received_us, flags, v0, v1, v2, v3, v4, v5, v6, "
    "v7, reading_id, payload"
)


def written_bytes() -> int:
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("write_bytes"):
                return int(line.split()[1])
    return 0


def one_run(folder: Path, size: int, rows: int, move: int) -> dict[str, float]:
    """``move`` 0: straight into the indexed table; else through the tail, moved every ``move``."""
    path = folder / f"tail-{move}.db"
    con = connect(path)
    try:
        con.execute(_TABLE)
        con.execute(_INDEX)
        con.execute(_TABLE.replace("TABLE readings", "TABLE tail"))
        insert = _INSERT if not move else _INSERT.replace("INTO readings", "INTO tail")
        commits: list[float] = []
        moves: list[float] = []
        waiting = 0
        wrote = written_bytes()
        start = time.perf_counter()
        for first in range(0, rows, size):
            rows_of_group = group(first, min(rows, first + size))
            c0 = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.executemany(insert, rows_of_group)
            con.execute("COMMIT")
            commits.append(time.perf_counter() - c0)
            waiting += len(rows_of_group)
            if move and waiting >= move:
                m0 = time.perf_counter()
                con.execute("BEGIN IMMEDIATE")
                con.execute(f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM tail")
                con.execute("DELETE FROM tail")
                con.execute("COMMIT")
                moves.append(time.perf_counter() - m0)
                waiting = 0
        elapsed = time.perf_counter() - start
        wrote = written_bytes() - wrote
    finally:
        con.close()
        remove(path)
    return {
        "rows_per_s": round(rows / elapsed, 1),
        "commit_median_ms": round(statistics.median(commits) * 1000, 2),
        "move_median_ms": round(statistics.median(moves) * 1000, 1) if moves else 0.0,
        "move_max_ms": round(max(moves) * 1000, 1) if moves else 0.0,
        "bytes_written_per_row": round(wrote / rows),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--moves", default="0,20000", help="rows between moves; 0: no tail table")
    p.add_argument("--size", type=int, default=2000, help="rows per commit (the server's groups)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per run")
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    moves = [int(m) for m in args.moves.split(",") if m.strip()]
    params = {"moves": moves, "size": args.size, "rows": args.rows, "runs": args.runs}
    result = h.header("sqlite_tail_table", params)
    keys = ("rows_per_s", "commit_median_ms", "move_median_ms", "move_max_ms")
    runs: dict[int, list[dict[str, float]]] = {m: [] for m in moves}
    with tempfile.TemporaryDirectory(prefix="bw-tail-table-") as folder:
        for i in range(args.runs):
            for move in moves:
                run = one_run(Path(folder), args.size, args.rows, move)
                h.log(f"sqlite_tail_table:{move}:{i + 1}: {run}")
                runs[move].append(run)
    result["results"] = {
        str(move): {"median": h.medians(found, (*keys, "bytes_written_per_row")), "runs": found}
        for move, found in runs.items()
    }
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
