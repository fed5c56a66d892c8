"""obs: log records/s through the stdlib ``logging`` handler into SQLite, and how many dropped.

Figure (issue 6): >= 50 000 records/s with zero dropped. One thread logs through
``logging.Logger.info`` (with %-args; one in four with ``extra`` attributes) to an
:class:`~beamwarden.obs.ObsHandler` with its defaults (queue of 100 000 records, batches of
2 000) over a fresh :class:`~beamwarden.obs.SqliteStore` file. The clock stops when
``handler.flush()`` returns (everything committed).

* ``paced``: the thread offers ``--rate`` records/s (in 10 ms slices) for ``--seconds``; the bar
  is on this one: everything stored, zero dropped, at the offered rate. Also run at twice it.
* ``blast``: ``--records`` records as fast as the thread can log them: the most the pipeline
  takes. The handler never blocks its caller, so a caller faster than SQLite for long enough
  fills the queue and then records are dropped (and counted); the figure says how far that is.

Medians of ``--runs`` runs. Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_logs.py [--rate 50000] [--seconds 4] [--records 200000]
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

from beamwarden.obs import ObsHandler, SqliteStore

BAR = 50_000.0
EXTRA = {"route": "/api/nodes/{node_id}", "status": 200}


def _log(logger: logging.Logger, i: int) -> None:
    if i & 3:
        logger.info("request %d handled in %.1f ms", i, 1.5)
    else:
        logger.info("request %d handled", i, extra=EXTRA)


def one_run(folder: Path, run: str, records: int, rate: float | None) -> dict[str, float]:
    store = SqliteStore(folder / f"logs-{run}.db")
    handler = ObsHandler(store)
    logger = logging.getLogger(f"bench.obs.{run}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    start = time.perf_counter()
    if rate is None:
        for i in range(records):
            _log(logger, i)
    else:
        per_slice = int(rate / 100)
        i = 0
        while i < records:
            for j in range(i, min(i + per_slice, records)):
                _log(logger, j)
            i += per_slice
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    emitted = time.perf_counter()
    assert handler.flush(timeout=120)
    done = time.perf_counter()
    logger.removeHandler(handler)
    handler.close()
    stored = store.stats().logs
    store.close()
    return {
        "records_per_s": records / (done - start),
        "offered_per_s": records / (emitted - start),
        "dropped": handler.dropped,
        "stored": stored,
    }


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        "records_per_s": round(statistics.median(r["records_per_s"] for r in runs)),
        "offered_per_s": round(statistics.median(r["offered_per_s"] for r in runs)),
        "dropped": [int(r["dropped"]) for r in runs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=BAR)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, list[dict[str, float]]] = {"paced": [], "paced_x2": [], "blast": []}
    with tempfile.TemporaryDirectory(prefix="bench-obs-logs-") as tmp:
        folder = Path(tmp)
        for n in range(args.runs):
            paced = int(args.rate * args.seconds)
            out["paced"].append(one_run(folder, f"p{n}", paced, args.rate))
            out["paced_x2"].append(one_run(folder, f"q{n}", 2 * paced, 2 * args.rate))
            out["blast"].append(one_run(folder, f"b{n}", args.records, None))
    paced = summary(out["paced"])
    ok = paced["records_per_s"] >= args.rate * 0.99 and not any(paced["dropped"])  # type: ignore[operator]
    result = {
        "bench": "obs_logs_sqlite",
        "paced": {"rate": args.rate, **paced},
        "paced_x2": {"rate": 2 * args.rate, **summary(out["paced_x2"])},
        "blast": {"records": args.records, **summary(out["blast"])},
        "bar": {"paced.records_per_s": f">= {args.rate:.0f}", "paced.dropped": "== 0"},
        "ok": ok,
    }
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
