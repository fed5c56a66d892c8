"""Server CPU while 10 000 simulated nodes heartbeat every 30 s (about 333 heartbeats/s).

Figure (issue 4, "Figures"): server CPU < 15 % of one core.

The fleet (``fleet-00000``…) is written straight into the database (``bench_fleet_nodes.
seed_fleet``); one relay node token (``beamwarden nodes add … --relay``) sends every node's
telemetry, as a hub would, so that 10 000 tokens need not be made. Each heartbeat carries an
``instance_id`` and ``state`` (``active``), so the server also holds each node's lease
(``node:<id>``, in the presence store) and runs the instance state machine: a node's first
heartbeat is a new instance (a lease grant and an ``instance_started`` event, both written), the
following ones renew. Unless ``--no-warmup``, every node first sends one heartbeat (as fast as
the server takes them, not measured: a server start with a live fleet; again, up to 4 passes,
until a pass takes less than one interval, so that no lease has run out when the paced load
reaches its node), then the load is paced:
heartbeat ``k`` is due at ``k / rate`` seconds, node ``k mod N``, for ``--seconds`` (60).

The load generator is a raw HTTP/1.1 client (``_rawhttp.py``: asyncio streams, 32 keep-alive
connections, one request in flight on each, bodies by orjson): with httpx the generator was the
limit at ~160 heartbeats/s. Its own CPU is reported (``client_cpu_pct``).

Measured: the server process's CPU time (user + system, with its children: the SQLite writer
process) over the whole run, as a percentage of one core, and over the second half alone
(``steady_cpu_pct``: every node has started by then when ``seconds ≥ 2 × 30``); the answers
(202s, errors) and latency percentiles. ``--presence redis`` runs it on the shared Redis under a
fresh prefix (its keys are deleted afterwards). Prints ONE JSON line (progress on stderr):

    .venv/bin/python bench/bench_fleet_heartbeats.py                          # 60 s, both stores
    .venv/bin/python bench/bench_fleet_heartbeats.py --seconds 20 --backends sqlite
    .venv/bin/python bench/bench_fleet_heartbeats.py --presence redis
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

import _harness as h
from _rawhttp import RawHttpPool, request_bytes
from bench_fleet_nodes import seed_fleet

BAR_CPU_PCT = 15.0
#: keep-alive connections of the load generator (a heartbeat takes ~1 ms: 32 is plenty)
CONNECTIONS = 32
#: at most this many warm-up passes over the fleet
WARMUP_PASSES = 4
REDIS_URL = "redis://127.0.0.1:6379/0"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (alive ones)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def body(node_id: str) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "role": "pi-log",
        "timestamp": datetime.now(UTC).isoformat(),
        "uptime_seconds": 3600.0,
        "software_version": "2.0.1",
        "ip_address": "10.0.0.2",
        "interval_seconds": 30,
        "instance_id": node_id.replace("fleet-", "inst-"),  # the instance seed_fleet stored
        "state": "active",
        "metrics": {"queue_depth": 0, "cpu_percent": 3.5},
    }


async def load(
    server: h.Server,
    token: str,
    ids: list[str],
    rate: float,
    seconds: float,
    warmup: bool,
    profile: Path | None = None,
    interval: float = 30.0,
) -> dict[str, Any]:
    """The warm-up, then ``seconds`` of paced load (profiled into ``profile`` if given)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }
    host = f"127.0.0.1:{server.port}"
    latencies: list[float] = []
    codes: dict[str, int] = {}
    pending: set[asyncio.Task[None]] = set()

    def request(node_id: str) -> bytes:
        return request_bytes("POST", "/api/telemetry", host, orjson.dumps(body(node_id)), headers)

    async with RawHttpPool("127.0.0.1", server.port, conns=CONNECTIONS) as pool:

        async def send(node_id: str, due: float | None = None) -> None:
            status, ms = await pool.send(request(node_id), due)
            latencies.append(ms)
            codes[str(status)] = codes.get(str(status), 0) + 1

        if warmup:
            # one heartbeat per node, as fast as the server takes them: the first grants each
            # node's lease (events written). Until a pass takes less than one interval, leases of
            # the pass's first nodes may have run out (TTL: 3 intervals) before the paced load
            # reaches them, and the measured part would be re-granting them: pass again.
            for number in range(1, WARMUP_PASSES + 1):
                start = time.perf_counter()
                await asyncio.gather(*(send(node_id) for node_id in ids))
                took = time.perf_counter() - start
                h.log(f"warm-up pass {number}: {len(ids)} heartbeats in {took:.1f} s, {codes}")
                if took < interval:
                    break
            latencies.clear()
            codes.clear()
        profiling = h.profiler(server.pid, profile)
        profiling.__enter__()
        begin = time.perf_counter()
        client_begin = time.process_time()
        cpu_begin = cpu_seconds(server.proc.pid)
        cpu_half: float | None = None
        sent = 0
        total = int(rate * seconds)
        while sent < total:
            now = time.perf_counter() - begin
            if cpu_half is None and now >= seconds / 2:
                cpu_half = cpu_seconds(server.proc.pid)
            due = min(total, int(now * rate) + 1)
            while sent < due:
                task = asyncio.create_task(send(ids[sent % len(ids)], begin + sent / rate))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(max(0.0, (sent / rate) - (time.perf_counter() - begin)))
        if pending:
            await asyncio.wait(pending)
        elapsed = time.perf_counter() - begin
        cpu_end = cpu_seconds(server.proc.pid)
        client_cpu = time.process_time() - client_begin
        profiling.__exit__(None, None, None)
    half = cpu_half if cpu_half is not None else cpu_begin
    ordered = sorted(latencies)
    return {
        "sent": sent,
        "elapsed_s": round(elapsed, 2),
        "rate_per_s": round(sent / elapsed, 1),
        "cpu_pct": round(100 * (cpu_end - cpu_begin) / elapsed, 2),
        "steady_cpu_pct": round(100 * (cpu_end - half) / (elapsed - seconds / 2), 2),
        "cpu_ms_per_heartbeat": round(1000 * (cpu_end - cpu_begin) / max(sent, 1), 3),
        "client_cpu_pct": round(100 * client_cpu / elapsed, 2),
        "codes": codes,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2) if ordered else None,
    }


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    extra = h.parse_env(args.env)
    if args.presence == "redis":
        extra["BEAMWARDEN_PRESENCE_URL"] = REDIS_URL
        extra["BEAMWARDEN_PRESENCE_PREFIX"] = prefix = f"bw-bench-{secrets.token_hex(6)}"
    with h.database(backend) as db:
        h.cli(h.server_env(db), "migrate")
        # every node heard just now: none is offline when the server starts, so the alert
        # evaluator's built-in offline rule has nothing to fire and resolve (10 000 events
        # that a fleet in its steady state does not write)
        ids = seed_fleet(db.url, args.nodes, spread_s=0)
        relay = h.find_token(
            h.cli(h.server_env(db), "nodes", "add", "hub", "--role", "hub", "--relay")
        )
        try:
            with h.serve(db, extra) as server:
                out = args.profile / f"heartbeats-{backend}.txt" if args.profile else None
                result = asyncio.run(
                    load(
                        server,
                        relay,
                        ids,
                        args.nodes / args.interval,
                        args.seconds,
                        args.warmup,
                        out,
                        args.interval,
                    )
                )
        finally:
            if args.presence == "redis":
                asyncio.run(forget_prefix(prefix))
    result["meets_bar"] = result["cpu_pct"] < BAR_CPU_PCT and set(result["codes"]) == {"202"}
    h.log(f"{backend}: {result}")
    return result


async def forget_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main() -> int:
    h.install_signal_handlers()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=30.0, help="each node's heartbeat (s)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--presence", choices=("memory", "redis"), default="memory")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="measure from a cold start (every node's first heartbeat grants its lease)",
    )
    parser.add_argument("--env", action="append", default=[], help="BEAMWARDEN_X=Y for the server")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw stacks to this dir")
    parser.add_argument("--commit", default=None, metavar="REV", help="run the server from REV")
    args = parser.parse_args()
    if args.commit:
        h.pin_commit(args.commit)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    backends = h.parse_backends(args.backends, ("sqlite", "postgresql"))
    result = h.header(
        "fleet_heartbeats_cpu",
        {
            "nodes": args.nodes,
            "interval_s": args.interval,
            "seconds": args.seconds,
            "presence": args.presence,
            "warmup": args.warmup,
        },
    )
    result["bar_cpu_pct"] = BAR_CPU_PCT
    for backend in backends:
        result[backend] = run_backend(backend, args)
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
