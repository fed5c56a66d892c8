"""Bucketed series query: 24 h of one 1 Hz sensor in 1-minute buckets, with 10 M readings stored.

Figure (issue 2, "Speed"): the time of
``GET /api/series?node_id=bench-node&sensor_id=target&field=temperature_c&since=…&until=…&bucket=60s``
for one sensor's 24 h (1440 buckets of 60 readings) through HTTP with a ``read`` user token, while
the readings table holds 10 000 000 readings; on SQLite and PostgreSQL. Bar: < 50 ms.

The data (built once, then cached): the target sensor (node ``bench-node``, sensor ``target``,
type ``climate``) at 1 Hz for 24 h = 86 400 readings, plus the rest of the N readings from 200 other
sensors on 20 other nodes, spread evenly over the same 24 h and the 24 h before, all written in time
order (so the target's rows are interleaved with the others' on disk, as a live fleet writes them).
They are written straight through the store's ``write_readings`` (the same path the server's group
commit uses) in transactions of 50 000 readings, then summarised into rollups (what the server's
rollup job does within seconds). PostgreSQL then gets ``VACUUM ANALYZE`` (what autovacuum would do
after such a load).

The cache lives under ``.bench/`` (gitignored), keyed by a layout version, a digest of the store's
schema and migrations, and N: a SQLite file ``.bench/series-<key>.sqlite``, and for PostgreSQL a
database ``bw_bench_cache_series_<digest>_<N>`` on 127.0.0.1:5432 (recorded in
``.bench/series-<key>.pg.json``) that each run copies with ``CREATE DATABASE … TEMPLATE``. Each
run queries a throwaway copy, which is dropped afterwards. ``--drop-cache`` removes every cached
database and file of this benchmark.

Per backend: a copy of the cached database, then ``--runs`` (3) server starts; in each, one warm-up
query (checked: 1440 buckets, 86 400 readings counted) then ``--queries`` (20) timed queries over a
keep-alive connection. The time of a query is the whole answer, following ``next_cursor`` if the
server pages it (``limit=1440`` is asked for; ``pages`` says how many requests it took).
``first_page_ms`` times the first request alone. Medians over queries, then over runs.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_series_query.py                    # 10 M readings, both stores
    .venv/bin/python bench/bench_series_query.py --readings 1000000 --backends sqlite
    .venv/bin/python bench/bench_series_query.py --rebuild          # ignore the cache
    .venv/bin/python bench/bench_series_query.py --drop-cache       # remove the cache and exit
    .venv/bin/python bench/bench_series_query.py --profile /tmp/prof --runs 1 --queries 100
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import math
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import _harness as h

if TYPE_CHECKING:
    from beamwarden.server.records import ReadingBatch

#: Bump when the generated data changes shape (sensors, times, values).
LAYOUT_VERSION = 2  # 2: the build rolls up
TARGET_NODE = "bench-node"
TARGET_SENSOR = "target"
SENSOR_TYPE = "climate"
FIELD = "temperature_c"
DAY_START = datetime(2026, 11, 21, tzinfo=UTC)
DAY_END = DAY_START + timedelta(hours=24)
TARGET_READINGS = 86_400
OTHER_NODES = 20
SENSORS_PER_NODE = 10
CHUNK = 50_000
BUCKETS = 1440
BAR_MS = 50.0

_US = 1_000_000
_DAY_US = 86_400 * _US


# --- the cache -----------------------------------------------------------------------------------


def store_digest() -> str:
    """A digest of the store's schema and migrations (a change of either rebuilds the cache)."""
    store = h.source_root() / "beamwarden" / "server" / "store"
    digest = hashlib.sha256(f"layout{LAYOUT_VERSION}".encode())
    files = [store / "schema.py", *sorted((store / "migrations" / "versions").glob("*.py"))]
    for f in files:
        if f.exists():
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


def cache_key(n: int) -> str:
    return f"v{LAYOUT_VERSION}-{store_digest()}-{n}"


def sqlite_cache(n: int) -> Path:
    return h.CACHE_DIR / f"series-{cache_key(n)}.sqlite"


def pg_cache_meta(n: int) -> Path:
    return h.CACHE_DIR / f"series-{cache_key(n)}.pg.json"


def pg_cache_name(n: int) -> str:
    return f"bw_bench_cache_series_{store_digest()}_{n}"


def drop_cache() -> dict[str, Any]:
    removed: list[str] = []
    for f in sorted(h.CACHE_DIR.glob("series-*")):
        f.unlink()
        removed.append(str(f))
    rows = h.pg_admin(
        "SELECT datname FROM pg_database WHERE datname LIKE 'bw\\_bench\\_cache\\_series\\_%'"
    )
    for (name,) in rows:
        h.pg_admin(f"ALTER DATABASE {h.quote_ident(name)} IS_TEMPLATE false")
        h.pg_drop(name)
        removed.append(f"postgresql:{name}")
    return {"removed": removed}


# --- building the data ---------------------------------------------------------------------------


def other_sensor(k: int) -> tuple[str, str]:
    """(node, sensor) of other sensor number ``k``."""
    return f"fleet-{k // SENSORS_PER_NODE:02d}", f"s{k % SENSORS_PER_NODE}"


class DataPlan:
    """The N readings as chunks of batches, in time order. Chunk ``c`` holds the other sensors'
    readings ``[c*CHUNK, (c+1)*CHUNK)`` and the target's readings in the same time span."""

    def __init__(self, n: int):
        if n < TARGET_READINGS + OTHER_NODES * SENSORS_PER_NODE:
            raise SystemExit(f"--readings must be at least {TARGET_READINGS + 200}")
        self.n = n
        self.others = n - TARGET_READINGS
        self.sensors = OTHER_NODES * SENSORS_PER_NODE
        self.t0_us = _us(DAY_START) - _DAY_US
        self.step_us = 2 * _DAY_US / self.others
        self.chunks = math.ceil(self.others / CHUNK)
        self.day_us = _us(DAY_START)

    def other_ts(self, g: int) -> int:
        return self.t0_us + int(g * self.step_us)

    def chunk(self, c: int) -> list[ReadingBatch]:
        from beamwarden.protocol import Reading
        from beamwarden.server.records import ReadingBatch, from_us

        lo, hi = c * CHUNK, min(self.others, (c + 1) * CHUNK)
        span_lo = self.other_ts(lo)
        span_hi = self.other_ts(hi) if hi < self.others else _us(DAY_END)
        by_node: dict[str, tuple[list[Reading], list[int]]] = {}
        names = [other_sensor(k) for k in range(self.sensors)]
        for g in range(lo, hi):
            k = g % self.sensors
            node, sensor = names[k]
            ts = self.other_ts(g)
            payload = {"temperature_c": 15.0 + (g % 173) / 10.0, "humidity_pct": 30.0 + k / 10.0}
            entry = by_node.get(node)
            if entry is None:
                entry = by_node[node] = ([], [])
            entry[0].append(Reading(node, sensor, SENSOR_TYPE, payload, from_us(ts), None))
            entry[1].append(ts)
        # the target's readings in [span_lo, span_hi)
        first = max(0, -(-(span_lo - self.day_us) // _US))
        last = min(TARGET_READINGS, -(-(span_hi - self.day_us) // _US))
        if first < last:
            readings: list[Reading] = []
            stamps: list[int] = []
            for i in range(first, last):
                ts = self.day_us + i * _US
                payload = {
                    "temperature_c": 20.0 + (i % 600) / 100.0,
                    "humidity_pct": 40.0 + (i % 300) / 10.0,
                }
                readings.append(
                    Reading(TARGET_NODE, TARGET_SENSOR, SENSOR_TYPE, payload, from_us(ts), None)
                )
                stamps.append(ts)
            by_node[TARGET_NODE] = (readings, stamps)
        received = span_hi + _US
        return [
            ReadingBatch(node, received, readings, stamps, [0] * len(readings), "bench-build")
            for node, (readings, stamps) in by_node.items()
        ]


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


async def _fill(url: str, plan: DataPlan) -> int:
    """Write the plan's readings into the (migrated) database at ``url``; return rows written."""
    from beamwarden.server.store import StoreConfig, open_store

    config = StoreConfig(url, pool_size=2, query_timeout=600.0)
    if url.startswith("sqlite"):
        config = StoreConfig(url, pool_size=2, query_timeout=600.0, sqlite_synchronous="OFF")
    store = await open_store(config)
    written = 0
    try:
        now = _us(datetime.now(UTC))
        for node in [TARGET_NODE, *(f"fleet-{i:02d}" for i in range(OTHER_NODES))]:
            await store.create_node(node, "bench", now)
        started = time.perf_counter()
        next_chunk = asyncio.create_task(asyncio.to_thread(plan.chunk, 0))
        writing: asyncio.Task[Any] | None = None
        reported = 0
        for c in range(plan.chunks):
            batches = await next_chunk
            if c + 1 < plan.chunks:
                next_chunk = asyncio.create_task(asyncio.to_thread(plan.chunk, c + 1))
            if writing is not None:
                await writing
            writing = asyncio.create_task(store.write_readings(batches))
            written += sum(len(b.readings) for b in batches)
            if written - reported >= plan.n // 10:
                reported = written
                rate = written / (time.perf_counter() - started)
                h.log(f"  {written:,} readings written ({rate:,.0f}/s)")
        if writing is not None:
            await writing
        # what the server's rollup job does within seconds of such writes (a store without
        # rollups has no ``roll_up``: a --commit from before them)
        roll_up = getattr(store, "roll_up", None)
        if roll_up is not None:
            later = _us(datetime(2100, 1, 1, tzinfo=UTC))
            minutes = 0
            while step := await roll_up(later, 20_000):
                minutes += step
            h.log(f"  {minutes:,} minutes rolled up")
    finally:
        await store.close()
    return written


def build(url: str, n: int) -> dict[str, Any]:
    """Migrate and fill the database at ``url`` in a subprocess (which imports the store from the
    source the server runs: the work tree or the pinned commit); return what it took."""
    return h.run_json(
        [h.PYTHON, __file__, "--build-into", url, "--readings", str(n)], 3 * 3600, show_stderr=True
    )


def build_here(url: str, n: int) -> dict[str, Any]:
    """Migrate and fill the database at ``url`` with this process's ``beamwarden``."""
    from beamwarden.server.store import upgrade

    plan = DataPlan(n)
    started = time.perf_counter()
    upgrade(url)
    written = asyncio.run(_fill(url, plan))
    if written != n:
        raise h.BenchError(f"wrote {written} readings, not {n}")
    fill_s = time.perf_counter() - started
    return {"readings": n, "fill_s": round(fill_s, 1), "readings_per_s": round(n / fill_s)}


def ensure_sqlite(n: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    path = sqlite_cache(n)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not rebuild:
        return path, {**json.loads(meta_path.read_text()), "cached": True}
    h.CACHE_DIR.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    for f in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), path, meta_path):
        f.unlink(missing_ok=True)
    h.log(f"building the SQLite series database ({n:,} readings) into {path}")
    try:
        info = build(f"sqlite:///{partial}", n)
        with sqlite3.connect(partial) as conn:  # fold the WAL into the file before it is copied
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        Path(f"{partial}-wal").unlink(missing_ok=True)
        Path(f"{partial}-shm").unlink(missing_ok=True)
        info["size_mb"] = round(partial.stat().st_size / 1e6)
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    meta_path.write_text(json.dumps(info))
    return path, {**info, "cached": False}


def ensure_postgres(n: int, rebuild: bool) -> tuple[str, dict[str, Any]]:
    name = pg_cache_name(n)
    meta_path = pg_cache_meta(n)
    if meta_path.exists() and not rebuild and h.pg_database_exists(name):
        return name, {**json.loads(meta_path.read_text()), "cached": True}
    h.CACHE_DIR.mkdir(exist_ok=True)
    meta_path.unlink(missing_ok=True)
    if h.pg_database_exists(name):
        h.pg_admin(f"ALTER DATABASE {h.quote_ident(name)} IS_TEMPLATE false")
        h.pg_drop(name)
    tmp = f"bw_bench_build_{os.getpid()}"
    h.pg_drop(tmp)
    h.pg_admin(f"CREATE DATABASE {h.quote_ident(tmp)}")
    h.log(f"building the PostgreSQL series database ({n:,} readings) as {name}")
    try:
        h.pg_admin(f"ALTER DATABASE {h.quote_ident(tmp)} SET synchronous_commit = off")
        info = build(h.pg_url(tmp), n)
        started = time.perf_counter()
        _vacuum(h.pg_url(tmp))
        info["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
        info["size_mb"] = round(h.pg_admin(f"SELECT pg_database_size('{tmp}')")[0][0] / 1e6)
        h.pg_admin(
            f"ALTER DATABASE {h.quote_ident(tmp)} RESET synchronous_commit",
            f"ALTER DATABASE {h.quote_ident(tmp)} RENAME TO {h.quote_ident(name)}",
            f"ALTER DATABASE {h.quote_ident(name)} IS_TEMPLATE true",
        )
    finally:
        h.pg_drop(tmp)
    meta_path.write_text(json.dumps({**info, "database": name}))
    return name, {**info, "database": name, "cached": False}


def _vacuum(url: str) -> None:
    async def run() -> None:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute("VACUUM ANALYZE", timeout=1800)
        finally:
            await conn.close()

    asyncio.run(run())


# --- querying ------------------------------------------------------------------------------------


def series_path(cursor: str | None = None) -> str:
    params = {
        "node_id": TARGET_NODE,
        "sensor_id": TARGET_SENSOR,
        "field": FIELD,
        "since": DAY_START.isoformat().replace("+00:00", "Z"),
        "until": DAY_END.isoformat().replace("+00:00", "Z"),
        "bucket": "60s",
        "limit": str(BUCKETS),
    }
    if cursor is not None:
        params["cursor"] = cursor
    return "/api/series?" + urlencode(params)


def fetch_series(
    conn: http.client.HTTPConnection, token: str
) -> tuple[float, float, list[dict[str, Any]], int]:
    """One whole series answer: (total ms, first page ms, buckets, pages)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    first_ms = 0.0
    started = time.perf_counter()
    while True:
        conn.request("GET", series_path(cursor), headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise h.BenchError(f"/api/series answered {response.status}: {body[:500]!r}")
        page = json.loads(body)
        pages += 1
        if pages == 1:
            first_ms = (time.perf_counter() - started) * 1000
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            break
        if pages > BUCKETS:  # bounded: never more pages than buckets
            raise h.BenchError("the series answer does not end")
    return (time.perf_counter() - started) * 1000, first_ms, items, pages


def check_answer(items: list[dict[str, Any]]) -> None:
    counted = sum(int(i.get("count") or 0) for i in items)
    if len(items) != BUCKETS or counted != TARGET_READINGS:
        raise h.BenchError(
            f"wrong series answer: {len(items)} buckets (want {BUCKETS}), {counted} readings "
            f"counted (want {TARGET_READINGS})"
        )


def query_run(server: h.Server, token: str, queries: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        _, _, items, pages = fetch_series(conn, token)  # warm-up, checked
        check_answer(items)
        totals: list[float] = []
        firsts: list[float] = []
        for _ in range(queries):
            total, first, _, _ = fetch_series(conn, token)
            totals.append(total)
            firsts.append(first)
    finally:
        conn.close()
    totals.sort()
    return {
        "median_ms": round(statistics.median(totals), 2),
        "min_ms": round(totals[0], 2),
        "p90_ms": round(totals[min(len(totals) - 1, int(0.9 * len(totals)))], 2),
        "max_ms": round(totals[-1], 2),
        "first_page_median_ms": round(statistics.median(firsts), 2),
        "pages": pages,
        "buckets": len(items),
    }


def bench_backend(
    backend: str, n: int, args: argparse.Namespace, extra_env: dict[str, str]
) -> dict[str, Any]:
    if backend == "sqlite":
        path, build_info = ensure_sqlite(n, args.rebuild)
        template = str(path)
    else:
        template, build_info = ensure_postgres(n, args.rebuild)
    runs: list[dict[str, Any]] = []
    with h.database(backend, template=template) as db:
        token: str | None = None
        for i in range(args.runs):
            with h.serve(db, extra_env) as server:
                if token is None:
                    token = h.user_token(server.env, "read")
                out = None
                if args.profile is not None and i == 0:
                    out = args.profile / f"series_query-{backend}.txt"
                with h.profiler(server.pid, out):
                    run = query_run(server, token, args.queries)
            h.log(f"series:{backend}:{i + 1}: median {run['median_ms']} ms ({run['pages']} pages)")
            runs.append(run)
    med = h.medians(runs, ("median_ms", "p90_ms", "max_ms", "first_page_median_ms"))
    profile: dict[str, Any] = {}
    if args.profile is not None:
        import profile_summary

        path = args.profile / f"series_query-{backend}.txt"
        if path.exists():
            profile = {"profile": profile_summary.summarize(path)}
    return {
        **profile,
        "median": med,
        "bars": {"median_ms": f"< {BAR_MS:g}"},
        "meets_bars": med["median_ms"] is not None and med["median_ms"] < BAR_MS,
        "build": build_info,
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    h.install_signal_handlers()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--readings", type=int, default=10_000_000, help="readings stored (10 M)")
    p.add_argument("--runs", type=int, default=3, help="server starts per backend (medians)")
    p.add_argument("--queries", type=int, default=20, help="timed queries per run (>= 20)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached databases")
    p.add_argument("--drop-cache", action="store_true", help="remove the cache and exit")
    p.add_argument("--env", action="append", default=[], metavar="BEAMWARDEN_X=V")
    p.add_argument("--commit", default=None, metavar="REV", help="run the server from REV")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the server's first run with py-spy into DIR",
    )
    p.add_argument("--build-into", default=None, help=argparse.SUPPRESS)  # internal: see build()
    args = p.parse_args(argv)
    if args.build_into:
        h.emit(build_here(args.build_into, args.readings))
        return 0
    if args.drop_cache:
        h.emit(drop_cache())
        return 0
    if args.runs < 1 or args.queries < 1:
        raise SystemExit("--runs and --queries must be at least 1")
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    extra_env = h.parse_env(args.env)
    if args.commit:
        h.pin_commit(args.commit)
    result = h.header(
        "series_query",
        {
            "readings": args.readings,
            "target_readings": TARGET_READINGS,
            "buckets": BUCKETS,
            "bucket": "60s",
            "queries": args.queries,
            "runs": args.runs,
            "server_env": extra_env,
        },
    )
    result["results"] = {b: bench_backend(b, args.readings, args, extra_env) for b in backends}
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
