"""The dashboard's fleet page for a fleet of 10 000 nodes: server time of one page view.

Figure (issue 8, "Figures and tests"): fleet page with 10 000 nodes, server time < 300 ms, usable
(paginated). Measured: ``GET /`` (the whole page: summary "N of M online", filter choices and the
first 60 cards) and ``GET /ui/fleet`` (the cards panel the page re-fetches every few seconds),
unfiltered, filtered by status, by a search word, and a page in the middle — each over one
keep-alive connection with a logged-in session, from a client in another process. The time is
the client's (request written to response read, over loopback), which bounds the server's.

The fleet is written straight into the database (``bench_fleet_nodes.seed_fleet``: statuses
online, degraded and offline). Per backend, ``--runs`` (3) server starts, ``--queries`` (20)
timed fetches of each kind after a warm-up. Medians. Prints ONE JSON line:

    .venv/bin/python bench/bench_dashboard_fleet.py
    .venv/bin/python bench/bench_dashboard_fleet.py --backends sqlite --runs 1 --nodes 2000
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import _harness as h
from bench_fleet_nodes import seed_fleet

BAR_MS = 300.0
PASSWORD = "bench-password-1"
KINDS = {
    "page": ("/", {}),
    "panel": ("/ui/fleet", {}),
    "panel_offline": ("/ui/fleet", {"status": "offline"}),
    "panel_search": ("/ui/fleet", {"q": "pi-0999"}),
    "panel_page_80": ("/ui/fleet", {"page": "80"}),
}


def add_admin(env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "beamwarden"), "users", "add", "bench", "--admin",
         "--password-stdin"],
        env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise h.BenchError(f"users add failed: {done.stderr}")


async def log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise h.BenchError("no login form")
    r = await client.post(
        "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    if r.status_code != 303:
        raise h.BenchError(f"login failed: {r.status_code}")


async def measure(server: h.Server, queries: int, count: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        await log_in(client)
        first = await client.get("/")
        first.raise_for_status()
        if f"of {count} online" not in first.text:
            raise h.BenchError("the page does not count the whole fleet")
        result: dict[str, Any] = {}
        for kind, (path, params) in KINDS.items():
            await client.get(path, params=params)  # warm-up
            times = []
            for _ in range(queries):
                start = time.perf_counter()
                r = await client.get(path, params=params)
                times.append((time.perf_counter() - start) * 1000)
                r.raise_for_status()
            result[f"{kind}_ms"] = round(statistics.median(times), 2)
        result["page_bytes"] = len(first.content)
    return result


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    keys = [f"{k}_ms" for k in KINDS]
    with h.database(backend) as db:
        env = h.server_env(db)
        h.cli(env, "migrate")
        seed_fleet(db.url, args.nodes)
        add_admin(dict(env))
        for run in range(args.runs):
            with h.serve(db, h.parse_env(args.env)) as server:
                out = args.profile / f"fleet-page-{backend}-{run}.txt" if args.profile else None
                with h.profiler(server.pid, out):
                    result = asyncio.run(measure(server, args.queries, args.nodes))
                h.log(f"{backend} run {run + 1}: {result}")
                runs.append(result)
    summary: dict[str, Any] = h.medians(runs, keys)
    summary["meets_bar"] = all(v is not None and v < BAR_MS for v in summary.values())
    summary["runs"] = runs
    return summary


def main() -> int:
    h.install_signal_handlers()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--env", action="append", default=[], help="BEAMWARDEN_X=Y for the server")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw stacks to this dir")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = h.header(
        "dashboard_fleet_page", {"nodes": args.nodes, "runs": args.runs, "queries": args.queries}
    )
    result["bar_ms"] = BAR_MS
    for backend in h.parse_backends(args.backends, ("sqlite", "postgresql")):
        result[backend] = run_backend(backend, args)
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
