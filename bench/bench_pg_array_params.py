"""asyncpg: the client CPU of the rollup-marks statement, by how its 1000 sensor/minute pairs go.

Why the PostgreSQL writer sends marks as joined text (docs/benchmarks.md, "session 4"): the
statement runs on the server's event loop once per commit, and the loop is what bounds batch
ingest. Three ways, same rows and same ``INSERT … ON CONFLICT DO NOTHING`` into a temporary table
of the marks' shape: two ``int[]``/``bigint[]`` parameters (asyncpg encodes each element), two
comma-joined texts split by ``string_to_array``, and one text plus a single minute (a live
group's marks share their minute). Prints this process's CPU µs and the wall µs per statement
(medians of ``--runs``), and ``SELECT 1`` for the fixed cost of a statement.

    .venv/bin/python bench/bench_pg_array_params.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

import _harness as h

_TABLE = "CREATE TEMP TABLE marks (s int, m bigint, t bigint, PRIMARY KEY (s, m))"
_ARRAYS = (
    "INSERT INTO marks SELECT s, m, $3 FROM unnest($1::int[], $2::bigint[]) AS k(s, m) "
    "ON CONFLICT DO NOTHING"
)
_TEXTS = (
    "INSERT INTO marks SELECT s, m, $3 FROM unnest(string_to_array($1, ',')::int[], "
    "string_to_array($2, ',')::bigint[]) AS k(s, m) ON CONFLICT DO NOTHING"
)
_ONE_MINUTE = (
    "INSERT INTO marks SELECT s, $2, $3 FROM unnest(string_to_array($1, ',')::int[]) AS k(s) "
    "ON CONFLICT DO NOTHING"
)


async def measure(call: Callable[[], Awaitable[Any]], times: int) -> dict[str, float]:
    await call()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(times):
        await call()
    return {
        "cpu_us": round((time.process_time() - cpu0) / times * 1e6, 1),
        "wall_us": round((time.perf_counter() - wall0) / times * 1e6, 1),
    }


async def one_run(url: str, pairs: int, times: int) -> dict[str, dict[str, float]]:
    pg = await asyncpg.connect(url)
    try:
        await pg.execute(_TABLE)
        sensors = list(range(1, pairs + 1))
        minute = 1_800_000_000_000_000 - 1_800_000_000_000_000 % 60_000_000
        minutes = [minute] * pairs

        def joined() -> tuple[str, str]:
            return ",".join([str(s) for s in sensors]), ",".join([str(minute)] * pairs)

        return {
            "select_1": await measure(lambda: pg.execute("SELECT 1"), times),
            "arrays": await measure(lambda: pg.execute(_ARRAYS, sensors, minutes, 1), times),
            "texts": await measure(lambda: pg.execute(_TEXTS, *joined(), 1), times),
            "one_minute": await measure(
                lambda: pg.execute(_ONE_MINUTE, joined()[0], minute, 1), times
            ),
        }
    finally:
        await pg.close()


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--times", type=int, default=300, help="statements per way and run")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    result = h.header(
        "pg_array_params", {"pairs": args.pairs, "times": args.times, "runs": args.runs}
    )
    url = h.pg_url("postgres").replace("postgresql+asyncpg://", "postgresql://")
    runs = [asyncio.run(one_run(url, args.pairs, args.times)) for _ in range(args.runs)]
    result["results"] = {
        way: {
            "median": h.medians([run[way] for run in runs], ("cpu_us", "wall_us")),
            "runs": [run[way] for run in runs],
        }
        for way in runs[0]
    }
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
