"""obs: log records/s through the stdlib ``logging`` handler into SQLite, and how many dropped.

Figure (issue 6): >= 50 000 records/s with zero dropped. One thread logs ``--records`` records
as fast as it can through ``logging.Logger.info`` (with %-args; one in four with ``extra``
attributes) to an :class:`~beamwarden.obs.ObsHandler` (default queue of 100 000, batches of
2 000) over a fresh :class:`~beamwarden.obs.SqliteStore` file; the clock stops when
``handler.flush()`` returns (everything committed). Medians of ``--runs`` runs.

Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_logs.py [--records 300000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from beamwarden.obs import LogQuery, ObsHandler, SqliteStore

BAR = 50_000.0


def one_run(records: int, folder: Path, run: int) -> dict[str, float]:
    store = SqliteStore(folder / f"logs-{run}.db")
    handler = ObsHandler(store)
    logger = logging.getLogger(f"bench.obs.{run}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    extra = {"route": "/api/nodes/{node_id}", "status": 200}
    start = time.perf_counter()
    for i in range(records):
        if i & 3:
            logger.info("request %d handled in %.1f ms", i, 1.5)
        else:
            logger.info("request %d handled", i, extra=extra)
    emitted = time.perf_counter()
    assert handler.flush(timeout=120)
    done = time.perf_counter()
    logger.removeHandler(handler)
    handler.close()
    stored = store.stats().logs
    last = store.read_logs(LogQuery(after_id=stored - 1, limit=1))
    store.close()
    assert last
    assert last[0].message.startswith(f"request {records - 1} ")
    return {
        "records_per_s": records / (done - start),
        "emit_per_s": records / (emitted - start),
        "dropped": handler.dropped,
        "stored": stored,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-obs-logs-") as tmp:
        runs = [one_run(args.records, Path(tmp), i) for i in range(args.runs)]
    rate = statistics.median(r["records_per_s"] for r in runs)
    dropped = max(r["dropped"] for r in runs)
    result = {
        "bench": "obs_logs_sqlite",
        "records": args.records,
        "records_per_s": round(rate),
        "emit_per_s": round(statistics.median(r["emit_per_s"] for r in runs)),
        "dropped": dropped,
        "bar": {"records_per_s": f">= {BAR:.0f}", "dropped": "== 0"},
        "ok": rate >= BAR and dropped == 0,
        "runs": [{k: round(v) for k, v in r.items()} for r in runs],
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
