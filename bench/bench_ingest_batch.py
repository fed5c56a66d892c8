"""Batch ingest: readings/s, p99 latency, server CPU and RSS, on SQLite, PostgreSQL and storage-off.

Figure (issue 2, "Speed"): batches of 1000 readings over 4 keep-alive connections, 1 000 000
readings with unique ``reading_id`` s (the idempotent path), one node token. Bars: >= 100 000
readings/s into PostgreSQL, >= 60 000 into SQLite, p99 request latency < 100 ms. ``discard``
(``BEAMWARDEN_INGEST_SINK=discard``: parse and validate, store nothing) has no throughput bar: it
shows what the HTTP layer and validation cost without storage.

Each run: a fresh throwaway database, ``beamwarden serve`` on a free loopback port, a token from
``beamwarden nodes add bench-node --role bench``, then ``../shared/bench/ingest_load.py`` with
``--server-pid``. Medians of 3 runs per backend (backends take turns), plus the runs.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_ingest_batch.py                 # all three, 3 runs each
    .venv/bin/python bench/bench_ingest_batch.py --backends postgresql --runs 1 -n 200000
    .venv/bin/python bench/bench_ingest_batch.py --env BEAMWARDEN_INGEST_WRITERS=2
    .venv/bin/python bench/bench_ingest_batch.py --profile /tmp/prof   # py-spy the first runs
"""

from __future__ import annotations

import sys

import _ingest

BARS = {
    "postgresql": {"readings_per_s": (">=", 100_000.0), "p99_ms": ("<", 100.0)},
    "sqlite": {"readings_per_s": (">=", 60_000.0), "p99_ms": ("<", 100.0)},
    "discard": {"p99_ms": ("<", 100.0)},
}

if __name__ == "__main__":
    sys.exit(
        _ingest.main(
            "ingest_batch",
            __doc__ or "",
            None,
            readings=1_000_000,
            batch=1000,
            conc=4,
            bars=BARS,
        )
    )
