"""Single-reading ingest: requests/s and p99 latency, on SQLite, PostgreSQL and storage-off.

Figure (issue 2, "Speed"): one reading per request over 32 keep-alive connections, 100 000
requests, each reading with a unique ``reading_id`` (the idempotent path), one node token. Bar:
>= 5 000 requests/s with p99 < 20 ms. Every ``200`` is a durable commit, so this measures the
group commit (concurrent requests sharing one commit). ``discard``
(``BEAMWARDEN_INGEST_SINK=discard``) shows the cost of HTTP, auth and validation alone.

Each run: a fresh throwaway database, ``beamwarden serve`` on a free loopback port, a token from
``beamwarden nodes add bench-node --role bench``, then ``../shared/bench/ingest_load.py -b 1 -c 32``
with ``--server-pid``. Medians of 3 runs per backend (backends take turns), plus the runs.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_ingest_single.py                # all three, 3 runs each
    .venv/bin/python bench/bench_ingest_single.py --backends sqlite --runs 1 -n 20000
    .venv/bin/python bench/bench_ingest_single.py --profile /tmp/prof  # py-spy the first runs
"""

from __future__ import annotations

import sys

import _ingest

BAR = {"requests_per_s": (">=", 5_000.0), "p99_ms": ("<", 20.0)}
BARS = {"postgresql": BAR, "sqlite": BAR, "discard": BAR}

if __name__ == "__main__":
    sys.exit(
        _ingest.main(
            "ingest_single",
            __doc__ or "",
            None,
            readings=100_000,
            batch=1,
            conc=32,
            bars=BARS,
        )
    )
