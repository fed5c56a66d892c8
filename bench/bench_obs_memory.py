"""obs: memory held by 1 000 000 log records in the in-memory store.

Figure (issue 6): 1 000 000 in-memory log entries in < 250 MB. Records like an app's: a unique
message each (``request 123456 handled in 12.5 ms``), five logger names, one in four with three
attributes. They are made and appended in batches of 10 000 (so the input is not counted), then
the resident set size (RSS, ``/proc/self/statm``) growth is measured after a garbage collection,
and a page is read back to check the store works. One run in a fresh process: ``--runs`` runs
each start their own interpreter so that they do not share freed memory.

Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_memory.py [--records 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys

BAR_MB = 250.0
T0 = 1_800_000_000.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_run(records: int) -> dict[str, float]:
    from beamwarden.obs import Level, LogQuery, LogRecord, MemoryStore

    loggers = [f"app.part{i}" for i in range(5)]
    store = MemoryStore()
    gc.collect()
    before = rss_bytes()
    for start in range(0, records, 10_000):
        batch = [
            LogRecord(
                T0 + i * 0.001,
                Level.INFO,
                f"request {i} handled in {i % 997 / 10:.1f} ms",
                loggers[i % 5],
                {"route": "/api/nodes/{node_id}", "status": 200, "node": f"n-{i % 100}"}
                if i % 4 == 0
                else {},
            )
            for i in range(start, min(start + 10_000, records))
        ]
        store.append_logs(batch)
    del batch
    gc.collect()
    grown = rss_bytes() - before
    page = store.read_logs(LogQuery(after_id=records - 3, limit=10))
    assert [r.message.split()[1] for r in page] == [
        str(records - 3),
        str(records - 2),
        str(records - 1),
    ]
    assert store.stats().logs == records
    return {"mb": grown / 1e6, "bytes_per_record": grown / records}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.records)))
        return 0
    runs = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--records", str(args.records)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout))
    mb = statistics.median(r["mb"] for r in runs)
    result = {
        "bench": "obs_memory_store",
        "records": args.records,
        "mb": round(mb, 1),
        "bytes_per_record": round(statistics.median(r["bytes_per_record"] for r in runs), 1),
        "bar": {"mb": f"< {BAR_MB:.0f} (for 1 000 000 records)"},
        "ok": mb * 1_000_000 / args.records < BAR_MB,
        "runs": [round(r["mb"], 1) for r in runs],
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
