"""obs: peak memory growth while ``/logs`` streams 100 000 entries.

Figure (issue 6): ``/logs`` for 100 000 entries streamed with < 50 MB peak memory growth. A
fresh SQLite store gets ``--records`` records (messages of ~40 bytes, one in four with
attributes); then, in a fresh process, the ASGI app answers ``GET /logs?limit=<records>`` (and
again with ``Accept-Encoding: gzip``) to an ASGI ``send`` that counts and discards the chunks,
while a thread samples the resident set size every 2 ms. Growth = peak RSS during the request -
RSS before it. Medians of ``--runs`` runs.

Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_stream.py [--records 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BAR_MB = 50.0
T0 = 1_800_000_000.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(path: Path, records: int) -> None:
    from beamwarden.obs import Level, LogRecord, SqliteStore

    store = SqliteStore(path)
    for start in range(0, records, 5000):
        store.append_logs(
            [
                LogRecord(
                    T0 + i * 0.001,
                    Level.INFO,
                    f"request {i} handled in {i % 97} ms",
                    "app",
                    {"route": "/x", "status": 200} if i % 4 == 0 else {},
                )
                for i in range(start, min(start + 5000, records))
            ]
        )
    store.close()


def stream(path: Path, records: int, gzip: bool) -> dict[str, float]:
    from beamwarden.obs import ObsAsgiApp, ObsEndpoints, SqliteStore

    store = SqliteStore(path)
    app = ObsAsgiApp(ObsEndpoints(store))
    received = {"bytes": 0, "status": 0}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received["status"] = message["status"]
        else:
            received["bytes"] += len(message.get("body", b""))

    headers = [(b"accept-encoding", b"gzip")] if gzip else []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/logs",
        "root_path": "",
        "query_string": f"limit={records}".encode(),
        "headers": headers,
    }
    gc.collect()
    before = rss_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    peak = max(peak, rss_bytes())
    store.close()
    assert received["status"] == 200
    return {
        "growth_mb": (peak - before) / 1e6,
        "seconds": elapsed,
        "body_mb": received["bytes"] / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--gzip", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(stream(Path(args.child), args.records, args.gzip)))
        return 0
    out: dict[str, list[dict[str, float]]] = {"plain": [], "gzip": []}
    with tempfile.TemporaryDirectory(prefix="bench-obs-stream-") as tmp:
        path = Path(tmp) / "logs.db"
        fill(path, args.records)
        for _ in range(args.runs):
            for kind in out:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    str(path),
                    "--records",
                    str(args.records),
                ]
                done = subprocess.run(
                    cmd + (["--gzip"] if kind == "gzip" else []),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out[kind].append(json.loads(done.stdout))
    growth = max(statistics.median(r["growth_mb"] for r in runs) for runs in out.values())
    result = {
        "bench": "obs_logs_stream",
        "records": args.records,
        "peak_growth_mb": round(statistics.median(r["growth_mb"] for r in out["plain"]), 1),
        "peak_growth_mb_gzip": round(statistics.median(r["growth_mb"] for r in out["gzip"]), 1),
        "seconds": round(statistics.median(r["seconds"] for r in out["plain"]), 2),
        "body_mb": round(out["plain"][0]["body_mb"], 1),
        "body_mb_gzip": round(out["gzip"][0]["body_mb"], 1),
        "bar": {"peak_growth_mb": f"< {BAR_MB:.0f}"},
        "ok": growth < BAR_MB,
        "runs": {k: [round(r["growth_mb"], 1) for r in v] for k, v in out.items()},
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
