"""Lease operations per second on Redis, through ``RedisPresence`` (the adapter the server uses).

Figure (issue 4, "Figures"): lease acquire/renew on Redis, bar ≥ 5 000 operations/s.

Against the Redis at ``--url`` (default ``redis://127.0.0.1:6379/0``, the shared development
server), under a fresh key prefix ``bw-bench-<random>`` whose keys are deleted afterwards (never a
flush). One process, one event loop (uvloop if installed), one connection pool; ``--workers``
(32) coroutines each keep one request in flight, as the request handlers of a server do.

Per run, three timed phases of ``--seconds`` (2) each:

* ``acquire``: every operation claims a fresh lease name (a grant: INCR of the epoch, the lease
  hash, the deadline set, all in one Lua script);
* ``renew``: each worker renews the leases it was granted, round-robin (the steady state: every
  holder renews every 15 s);
* ``refused``: every worker claims the same 16 names, held by others (the refusal path, as a
  cloned node or a second bridge would).

Each operation's latency is measured too. redis-py parses replies with hiredis when it is installed
(``redis[hiredis]``): measured here, that doubles acquire (4 500 → 9 500 ops/s); ``parser`` in
the JSON line says which one ran. Medians over ``--runs`` (3) runs. Prints ONE JSON line
(progress on stderr):

    .venv/bin/python bench/bench_leases_redis.py
    .venv/bin/python bench/bench_leases_redis.py --workers 64 --seconds 5 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.utils import HIREDIS_AVAILABLE

import _harness as h
from beamwarden.fleet.leases import Grant, Holder, LeaseRefusal
from beamwarden.server.presence.redis import RedisPresence

BAR_OPS_PER_S = 5_000
TTL = timedelta(seconds=45)
CONTENDED = 16


def now() -> datetime:
    return datetime.now(UTC)


async def phase(
    workers: int, seconds: float, op: Callable[[int, int], Awaitable[None]]
) -> dict[str, Any]:
    """Run ``op(worker, i)`` in ``workers`` loops for ``seconds``; ops/s and latency."""
    latencies: list[list[float]] = [[] for _ in range(workers)]
    deadline = time.perf_counter() + seconds

    async def loop(w: int) -> None:
        mine = latencies[w]
        for i in itertools.count():
            started = time.perf_counter()
            if started >= deadline:
                return
            await op(w, i)
            mine.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    elapsed = time.perf_counter() - started
    every = sorted(x for lat in latencies for x in lat)
    return {
        "ops": len(every),
        "ops_per_s": round(len(every) / elapsed, 1),
        "p50_ms": round(statistics.median(every) * 1000, 3),
        "p99_ms": round(every[int(len(every) * 0.99)] * 1000, 3),
    }


async def one_run(store: RedisPresence, run: int, workers: int, seconds: float) -> dict[str, Any]:
    holders = [Holder(f"bench-{run}-{w}", "bench-host", "127.0.0.1") for w in range(workers)]
    held: list[list[str]] = [[] for _ in range(workers)]
    names = itertools.count()

    async def acquire(w: int, i: int) -> None:
        name = f"r{run}:lease-{next(names)}"
        result = await store.try_acquire(name, holders[w], TTL, now())
        assert isinstance(result, Grant)
        assert result.new
        held[w].append(name)

    async def renew(w: int, i: int) -> None:
        name = held[w][i % len(held[w])]
        assert await store.renew(name, holders[w].holder_id, now()) is not None

    owner = Holder(f"owner-{run}")
    for c in range(CONTENDED):
        await store.try_acquire(f"r{run}:contended-{c}", owner, TTL, now())

    async def refused(w: int, i: int) -> None:
        result = await store.try_acquire(
            f"r{run}:contended-{i % CONTENDED}", holders[w], TTL, now()
        )
        assert isinstance(result, LeaseRefusal)

    out = {"acquire": await phase(workers, seconds, acquire)}
    out["renew"] = await phase(workers, seconds, renew)
    out["refused"] = await phase(workers, seconds, refused)
    return out


async def delete_prefix(client: aioredis.Redis, prefix: str) -> int:
    count = 0
    batch: list[str] = []
    async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            count += await client.unlink(*batch)
            batch = []
    if batch:
        count += await client.unlink(*batch)
    return count


async def bench(url: str, workers: int, seconds: float, runs: int) -> dict[str, Any]:
    prefix = f"bw-bench-{secrets.token_hex(6)}"
    client = aioredis.Redis.from_url(url, decode_responses=True, max_connections=workers + 4)
    store = RedisPresence(client, prefix)
    try:
        info = await client.info("server")
        results = []
        for run in range(runs):
            results.append(await one_run(store, run, workers, seconds))
            print(f"run {run + 1}/{runs}: {results[-1]}", file=sys.stderr)
    finally:
        deleted = await delete_prefix(client, prefix)
        print(f"deleted {deleted} keys under {{{prefix}}}", file=sys.stderr)
        await client.aclose()
    median = {
        kind: h.medians([r[kind] for r in results], ["ops_per_s", "p50_ms", "p99_ms"])
        for kind in ("acquire", "renew", "refused")
    }
    slowest = min(m["ops_per_s"] or 0.0 for m in (median["acquire"], median["renew"]))
    return {
        "redis_version": info.get("redis_version"),
        "runs": results,
        "median": median,
        "bar_ops_per_s": BAR_OPS_PER_S,
        "meets_bar": slowest >= BAR_OPS_PER_S,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=32, help="operations in flight")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each timed phase")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        loop = "asyncio"
        run = asyncio.run
    else:
        loop = "uvloop"
        run = uvloop.run
    result = h.header(
        "leases_redis",
        {
            "workers": args.workers,
            "seconds": args.seconds,
            "runs": args.runs,
            "loop": loop,
            "parser": "hiredis" if HIREDIS_AVAILABLE else "python",
        },
    )
    result["results"] = {"redis": run(bench(args.url, args.workers, args.seconds, args.runs))}
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
