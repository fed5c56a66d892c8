"""What a per-stream retention sweep costs (issue 7), on each store.

``--streams`` sensors of one node, ``--days`` (3) days of readings each, one per ``--every``
seconds, written through the store's own ``write_readings``; then three sweeps of raw readings
(:class:`~beamwarden.server.store.stream_retention.StreamRetentionStore.apply`), timed:

* ``longer_override``: the first stream is kept longer, every other forgets day 0 — PostgreSQL
  cannot drop the shared day partition, so it deletes the others' rows; SQLite deletes rows;
* ``uniform``: every stream forgets days 0 and 1 — PostgreSQL drops two day partitions (and
  deletes no row), SQLite deletes a day of every stream (plus day 0 of the first);
* ``steady``: the same sweep again — nothing left to forget: the hourly cost of a sweep.

Each figure is the sweep's seconds, the rows and partitions it forgot, and rows per second.
Each backend gets a fresh database. Prints ONE JSON line; progress on stderr.

    .venv/bin/python bench/bench_retention_sweep.py
    .venv/bin/python bench/bench_retention_sweep.py --backends sqlite --streams 50
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

import _harness as h

DAY_US = 86_400_000_000
#: 2027-01-15T00:00:00Z
DAY0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % DAY_US
NODE = "bench-node"


async def run(url: str, streams: int, days: int, every_s: int) -> dict[str, Any]:
    from beamwarden.protocol import Reading
    from beamwarden.server.records import ReadingBatch, StreamCuts
    from beamwarden.server.store import StoreConfig, open_store, upgrade
    from beamwarden.server.store.stream_retention import StreamRetentionStore

    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=600.0))
    try:
        await store.create_node(NODE, "bench", DAY0)
        await store.ensure_partitions(DAY0, days_behind=1, days_ahead=days)
        per_stream = days * 86_400 // every_s
        started = time.perf_counter()
        for k in range(streams):
            for first in range(0, per_stream, 5000):
                n = range(first, min(first + 5000, per_stream))
                times = [DAY0 + i * every_s * 1_000_000 for i in n]
                items = [
                    Reading(NODE, f"s{k}", "climate", {"temperature_c": i % 40}, None, f"s{k}:{i}")
                    for i in n
                ]
                await store.write_readings(
                    [ReadingBatch(NODE, times[-1], items, times, [0] * len(times))]
                )
        h.log(f"wrote {streams * per_stream:,} readings in {time.perf_counter() - started:.1f} s")
        forget = StreamRetentionStore(store.engine, 600.0)
        refs = sorted(s.ref for s in await forget.streams())
        first = refs[0]
        sweeps = {
            "longer_override": {
                r: StreamCuts(raw_us=DAY0 if r == first else DAY0 + DAY_US) for r in refs
            },
            "uniform": {r: StreamCuts(raw_us=DAY0 + 2 * DAY_US) for r in refs},
        }
        sweeps["steady"] = sweeps["uniform"]
        out: dict[str, Any] = {"readings": streams * per_stream}
        for name, cuts in sweeps.items():
            started = time.perf_counter()
            report = await forget.apply(cuts)
            seconds = time.perf_counter() - started
            out[name] = {
                "seconds": round(seconds, 3),
                "rows": report.raw_rows,
                "partitions": report.partitions,
                "rows_per_s": round(report.raw_rows / seconds) if report.raw_rows else None,
            }
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
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--every", type=int, default=30, help="seconds between a stream's readings")
    args = p.parse_args(argv)
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    result = h.header(
        "retention_sweep", {"streams": args.streams, "days": args.days, "every_s": args.every}
    )
    results = {}
    for backend in backends:
        with h.database(backend) as db:
            h.log(f"retention_sweep:{backend}")
            results[backend] = asyncio.run(run(db.url, args.streams, args.days, args.every))
    result["results"] = results
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
