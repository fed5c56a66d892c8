"""Series over ranges whose raw readings retention has forgotten: answered from the rollups.

One sensor with ``--days`` (90) of 1-minute and 1-hour rollups and no raw readings left (its raw
cut at the end of the range, as the retention sweep records it). The rollup rows are inserted
directly — as the rollup job would have left them — so the set-up takes seconds, not the hours
of writing 90 days of 1 Hz readings. Timed through the store's ``series`` (no HTTP), medians of
``--queries`` after a warm-up:

* ``quarter_2h``: the 90 days in 2-hour buckets (1080 points, from the hour rollups);
* ``week_10m``: the last 7 days in 10-minute buckets (1008 points, from the minute rollups);
* ``hour_10s``: the last hour in 10-second buckets (60 points: a minute's summary each).

The issue's bar for a 7-day chart at ~1000 points is < 100 ms. Each backend gets a fresh
database. Prints ONE JSON line; progress on stderr.

    .venv/bin/python bench/bench_forgotten_series.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import _harness as h

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000
#: 2027-01-15T00:00:00Z: the end of the range
END = 1_800_000_000_000_000 - 1_800_000_000_000_000 % DAY_US
NODE = "bench-node"


async def run(url: str, days: int, queries: int) -> dict[str, Any]:
    from sqlalchemy import text

    from beamwarden.protocol import Reading
    from beamwarden.server.records import ReadingBatch, SeriesQuery
    from beamwarden.server.store import StoreConfig, open_store, upgrade

    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=600.0))
    start = END - days * DAY_US
    try:
        await store.create_node(NODE, "bench", start)
        one = Reading(NODE, "old", "climate", {"temperature_c": 20.0}, None, "old:1")
        await store.write_readings([ReadingBatch(NODE, END, [one], [END], [0])])  # the sensor
        async with store.engine.begin() as conn:
            (ref,) = (await conn.execute(text("SELECT id FROM sensors"))).one()
            rows = []
            for width, step in ((60, MINUTE_US), (3600, HOUR_US)):
                n = 60 if width == 60 else 3600
                for b in range(start, END, step):
                    v = (b // MINUTE_US) % 97 / 4
                    rows.append(
                        {"r": ref, "w": width, "b": b, "n": n, "sum": v * n, "v": v, "t": b}
                    )
            await conn.execute(
                text(
                    "INSERT INTO rollups (sensor_ref, slot, width_s, bucket_us, count, sum, min, "
                    "max, last_ts_us, last) VALUES (:r, 0, :w, :b, :n, :sum, :v, :v, :t, :v)"
                ),
                rows,
            )
            await conn.execute(
                text("INSERT INTO retention_cuts (sensor_ref, raw_us) VALUES (:r, :c)"),
                {"r": ref, "c": END},
            )
        h.log(f"{len(rows):,} rollup rows over {days} days")
        cases = {
            "quarter_2h": (start, 2 * HOUR_US),
            "week_10m": (END - 7 * DAY_US, 10 * MINUTE_US),
            "hour_10s": (END - HOUR_US, 10_000_000),
        }
        out: dict[str, Any] = {"rollup_rows": len(rows)}
        for name, (since, bucket) in cases.items():
            query = SeriesQuery(
                NODE, "old", "temperature_c", since, END, bucket, ("avg", "min", "max"), 10_001
            )
            times = []
            for i in range(queries + 1):
                started = time.perf_counter()
                got = await store.series(query)
                if i == 0:
                    want = -(-(END - since) // max(bucket, MINUTE_US))
                    if len(got) != want:
                        raise h.BenchError(f"{name}: {len(got)} points, expected {want}")
                else:
                    times.append((time.perf_counter() - started) * 1000)
            out[name] = {"points": len(got), "median_ms": round(statistics.median(times), 2)}
            h.log(f"{name}: {out[name]}")
    finally:
        await store.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    h.install_signal_handlers()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--queries", type=int, default=10)
    args = p.parse_args(argv)
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    result = h.header("forgotten_series", {"days": args.days, "queries": args.queries})
    results = {}
    for backend in backends:
        with h.database(backend) as db:
            h.log(f"forgotten_series:{backend}")
            results[backend] = asyncio.run(run(db.url, args.days, args.queries))
    result["results"] = results
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
