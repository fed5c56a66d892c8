"""A week of one 1 Hz sensor charted at about 1000 points, and what keeping rollups costs.

Figures (issue 7, "Figures and tests"):

* ``GET /api/series`` over 7 days of one sensor at 1 Hz (604 800 readings) in 10-minute buckets
  (1008 points), through HTTP with a ``read`` token: median of ``--queries`` after a warm-up,
  per backend. Bar: < 100 ms on both stores.
* What the rollup job does for them, next to the writing: the readings are written through the
  store's own ``write_readings`` (the group commit's path, which also marks the minutes) in
  transactions of ``--batch``; then ``roll_up`` summarises every marked minute. ``rollup_share``
  is the job's time over the writing time, for this one-sensor backfill (information, not the
  bar). The issue's bar — rollup maintenance costs < 20 % of ingest throughput, compared in one
  run — is ``bench_ingest_batch.py --commit <before rollups>`` against the current commit in one
  sitting (the job runs during that load: its readings' minutes ripen as they are written).

Each backend gets a fresh database (SQLite file or a throwaway PostgreSQL database), so a run takes
a minute or two. Prints ONE JSON line; progress on stderr.

    .venv/bin/python bench/bench_rollup_series.py
    .venv/bin/python bench/bench_rollup_series.py --backends sqlite --queries 10
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import _harness as h

NODE = "bench-node"
SENSOR = "week"
FIELD = "temperature_c"
DAYS = 7
BUCKET = "10m"
POINTS = DAYS * 24 * 6  # 1008
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=DAYS)
BAR_MS = 100.0


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def fill(url: str, batch: int) -> dict[str, Any]:
    """Write the week, then roll it up; the seconds each took."""
    from beamwarden.protocol import Reading
    from beamwarden.server.records import ReadingBatch
    from beamwarden.server.store import StoreConfig, open_store, upgrade

    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=600.0))
    try:
        await store.create_node(NODE, "bench", _us(START))
        t0 = _us(START)
        total = DAYS * 86_400
        written = 0.0
        for first in range(0, total, batch):
            seconds = range(first, min(first + batch, total))
            times = [t0 + s * 1_000_000 for s in seconds]
            readings = [
                Reading(
                    NODE, SENSOR, "climate", {FIELD: 20.0 + (s % 600) / 100}, None, f"w:{s + 1}"
                )
                for s in seconds
            ]
            started = time.perf_counter()
            await store.write_readings(
                [ReadingBatch(NODE, times[-1], readings, times, [0] * len(times))]
            )
            written += time.perf_counter() - started
        started = time.perf_counter()
        minutes = 0
        while step := await store.roll_up(_us(END) + 3_600_000_000, 20_000):
            minutes += step
        rolled = time.perf_counter() - started
    finally:
        await store.close()
    return {
        "readings": total,
        "write_s": round(written, 2),
        "rollup_s": round(rolled, 2),
        "minutes": minutes,
        "rollup_share": round(rolled / written, 3),
    }


def series_path() -> str:
    return "/api/series?" + urlencode(
        {
            "node_id": NODE,
            "sensor_id": SENSOR,
            "field": FIELD,
            "since": START.isoformat().replace("+00:00", "Z"),
            "until": END.isoformat().replace("+00:00", "Z"),
            "bucket": BUCKET,
            "limit": str(POINTS),
        }
    )


def query(server: h.Server, token: str, queries: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    try:
        for i in range(queries + 1):
            started = time.perf_counter()
            conn.request("GET", series_path(), headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise h.BenchError(f"/api/series answered {response.status}: {body[:300]!r}")
            if i == 0:  # the warm-up is checked
                items = json.loads(body)["items"]
                counted = sum(item["count"] for item in items)
                if len(items) != POINTS or counted != DAYS * 86_400:
                    raise h.BenchError(f"wrong answer: {len(items)} points, {counted} readings")
            else:
                times.append(elapsed)
    finally:
        conn.close()
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with h.database(backend) as db:
        h.log(f"rollup_series:{backend}: writing {DAYS * 86_400:,} readings, then rolling up")
        build = asyncio.run(fill(db.url, args.batch))
        h.log(f"rollup_series:{backend}: {build}")
        with h.serve(db) as server:
            token = h.user_token(server.env, "read")
            result = query(server, token, args.queries)
    h.log(f"rollup_series:{backend}: median {result['median_ms']} ms")
    return {
        "median": {**result, "rollup_share": build["rollup_share"]},
        "bars": {"median_ms": f"< {BAR_MS:g}"},
        "meets_bars": result["median_ms"] < BAR_MS,
        "build": build,
    }


def main(argv: Sequence[str] | None = None) -> int:
    h.install_signal_handlers()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--batch", type=int, default=1000, help="readings per write transaction")
    args = p.parse_args(argv)
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    result = h.header(
        "rollup_series",
        {
            "days": DAYS,
            "bucket": BUCKET,
            "points": POINTS,
            "queries": args.queries,
            "batch": args.batch,
        },
    )
    result["results"] = {b: bench_backend(b, args) for b in backends}
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
