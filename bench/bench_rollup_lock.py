"""How long SQLite's rollup job holds the write lock per step: in one transaction (before session
5) against reading first and writing in a short transaction after (``read_minutes`` /
``apply_minutes``, what ``SqlStore.roll_up`` does on SQLite now).

Why it matters (docs/benchmarks.md, "session 5"): SQLite has one write lock, and the readings
writer waits while the job holds it; with the job's steps of 2000 minutes holding it ~0.4 s each,
batch ingest lost a quarter of its throughput whenever the job ran during a load.

One SQLite database is filled through the store's ``write_readings`` (``--sensors`` sensors, a
reading every 5 s for ``--minutes`` minutes, groups of 2000 readings, so every minute is marked),
then copied once per way and limit; each copy is rolled up to the end, step by step. Per step:
the time the write lock is held (one transaction: the whole step, as its first statement is the
marks' delete; two steps: the write step), and for two steps the read step too (no lock). Both
ways must leave the same rollups (``same_rollups``). The job is rolled up just after the readings'
last minute, as when it keeps up with a live fleet; ``--ripe-hours`` rolls up after their hour has
ended, so each step also recomputes hours (under the lock either way: an hour a step, once an
hour, in a live fleet). Prints ONE JSON line; progress on stderr.

    .venv/bin/python bench/bench_rollup_lock.py
    .venv/bin/python bench/bench_rollup_lock.py --sensors 1000 --minutes 20 --limits 500,2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h

T0 = 1_800_000_000_000_000 - 1_800_000_000_000_000 % 3_600_000_000
EVERY_S = 5


async def fill(url: str, sensors: int, minutes: int) -> int:
    """Write the readings; how many."""
    from beamwarden.protocol import Reading
    from beamwarden.server.records import ReadingBatch
    from beamwarden.server.store import StoreConfig, open_store, upgrade

    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=600.0))
    try:
        await store.create_node("bench-node", "bench", T0)
        items: list[tuple[int, int]] = [
            (tick, s) for tick in range(minutes * 60 // EVERY_S) for s in range(sensors)
        ]
        for first in range(0, len(items), 2000):
            chunk = items[first : first + 2000]
            readings = [
                Reading("bench-node", f"s{s}", "climate", {"temperature_c": 20.0 + tick % 7}, None,
                        f"b:{first + i + 1}")
                for i, (tick, s) in enumerate(chunk)
            ]  # fmt: skip
            times = [T0 + tick * EVERY_S * 1_000_000 for tick, _ in chunk]
            await store.write_readings(
                [ReadingBatch("bench-node", T0, readings, times, [0] * len(chunk))]
            )
        return len(items)
    finally:
        await store.close()


async def roll(url: str, way: str, limit: int, now: int) -> dict[str, Any]:
    """Roll the copy up at ``now``, ``way`` (``one`` or ``two`` transactions a step)."""
    from sqlalchemy import text

    from beamwarden.server.store import StoreConfig, open_store
    from beamwarden.server.store.rollups import apply_minutes, read_minutes, roll_up

    store = await open_store(StoreConfig(url, query_timeout=600.0))
    held: list[float] = []
    reads: list[float] = []
    summarised = 0
    try:
        while True:
            if way == "one":
                t0 = time.perf_counter()
                async with store.engine.begin() as conn:
                    step = await roll_up(conn, now, limit)
                held.append(time.perf_counter() - t0)
            else:
                t0 = time.perf_counter()
                async with store.engine.connect() as conn:
                    read = await read_minutes(conn, now, limit)
                t1 = time.perf_counter()
                async with store.engine.begin() as conn:
                    step = await apply_minutes(conn, read, now, limit)
                reads.append(t1 - t0)
                held.append(time.perf_counter() - t1)
            summarised += step
            if step < limit:
                break
        async with store.engine.connect() as conn:
            check = (
                await conn.execute(
                    text("SELECT width_s, count(*), sum(count), sum(sum) FROM rollups GROUP BY 1")
                )
            ).all()
    finally:
        await store.close()
    return {
        "minutes": summarised,
        "steps": len(held),
        "lock_held_median_ms": round(statistics.median(held) * 1000, 1),
        "lock_held_max_ms": round(max(held) * 1000, 1),
        "lock_held_total_s": round(sum(held), 2),
        "read_median_ms": round(statistics.median(reads) * 1000, 1) if reads else None,
        "rollups": [list(map(float, row)) for row in check],
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sensors", type=int, default=1000)
    p.add_argument("--minutes", type=int, default=10, help="minutes of readings per sensor")
    p.add_argument("--limits", default="500,2000", help="minutes a step takes")
    p.add_argument("--ripe-hours", action="store_true", help="roll up after the hour ended too")
    args = p.parse_args()
    limits = [int(x) for x in args.limits.split(",") if x.strip()]
    if not 1 <= args.minutes <= 58:
        raise SystemExit("--minutes must be 1..58 (the readings stay within one hour)")
    # the minutes are ripe; the hour is ripe only with --ripe-hours (then every step recomputes
    # the hours of the minutes before it too, as after the end of an hour)
    end = T0 + args.minutes * 60_000_000
    now = end + (2 * 3_600_000_000 if args.ripe_hours else 60_000_000)
    result = h.header(
        "rollup_lock",
        {
            "sensors": args.sensors,
            "minutes": args.minutes,
            "limits": limits,
            "ripe_hours": args.ripe_hours,
        },
    )
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bw-rollup-lock-") as folder:
        source = Path(folder) / "filled.db"
        url = f"sqlite:///{source}"
        readings = asyncio.run(fill(url, args.sensors, args.minutes))
        h.log(f"rollup_lock: {readings} readings written")
        for limit in limits:
            for way in ("one", "two"):
                with h.database("sqlite", template=str(source)) as db:
                    run = asyncio.run(roll(db.url, way, limit, now))
                h.log(f"rollup_lock:{way}:{limit}: {run}")
                out[f"{way}_transaction{'s' if way == 'two' else ''}:{limit}"] = run
    for limit in limits:
        one, two = out[f"one_transaction:{limit}"], out[f"two_transactions:{limit}"]
        out[f"same_rollups:{limit}"] = one.pop("rollups") == two.pop("rollups")
    result["readings"] = readings
    result["results"] = out
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
