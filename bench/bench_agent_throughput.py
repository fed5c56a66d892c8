"""Agent throughput: readings/s from the drivers through the durable queue to the server.

Figure (issue 3, "Throughput"): >= 20 000 readings/s on this machine, drivers → queue → server.
One ``pi-log run`` process with simulator drivers producing more than the bar (``--offered``
readings/s, split over two drivers), a ``beamwarden serve`` on a throwaway SQLite database (or
PostgreSQL with ``--backend postgresql``), both on loopback and sharing the machine's cores. The
figure is what the server acknowledged (the queue's ``acked_total``) over a steady window after a
warm-up; the agent's CPU and RSS are sampled meanwhile. Medians of ``--runs`` runs.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_agent_throughput.py                  # 3 runs of 20 s
    .venv/bin/python bench/bench_agent_throughput.py --runs 1 --seconds 10 --offered 30000
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

import _harness as h

PI_LOG = str(h.VENV_BIN / "pi-log")
BAR = 20_000.0
WARMUP_S = 3.0


def queue_stats(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PI_LOG, "queue", "stats", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def write_config(folder: Path, url: str, token: str, offered: int, batch: int) -> Path:
    # two drivers, each reading every 50 ms: offered/2 readings per second each
    per_read = max(1, offered // 2 // 20)
    config = folder / "pi-log.toml"
    config.write_text(
        f"""
device_id = "bench-agent"
api_url = "{url}"
device_token = "{token}"
state_dir = "{folder / "state"}"
heartbeat_interval_s = 5

[push]
batch_max = {batch}
batch_age_s = 0.2
backlog_rate = 10000000

[[sensor]]
type = "geiger"
driver = "simulator"
interval_ms = 50
per_read = {per_read}

[[sensor]]
type = "climate"
driver = "simulator"
values = "climate"
interval_ms = 50
per_read = {per_read}
"""
    )
    return config


def one_run(backend: str, seconds: float, offered: int, batch: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-agent-"))
    try:
        with h.database(backend) as db, h.serve(db) as server:
            token = h.node_token(server.env, "bench-agent", "pi-log")
            config = write_config(folder, server.base_url, token, offered, batch)
            log_path = folder / "agent.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [PI_LOG, "run", str(config), "--log-level", "WARNING"],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            try:
                agent = psutil.Process(proc.pid)
                time.sleep(WARMUP_S)
                first = queue_stats(config)
                cpu0, t0 = agent.cpu_times(), time.monotonic()
                rss: list[int] = []
                while time.monotonic() - t0 < seconds:
                    time.sleep(0.5)
                    rss.append(agent.memory_info().rss)
                last = queue_stats(config)
                cpu1, t1 = agent.cpu_times(), time.monotonic()
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            elapsed = t1 - t0
            acked = last["acked_total"] - first["acked_total"]
            produced = last["last_seq"] - first["last_seq"]
            cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
            return {
                "readings_per_s": round(acked / elapsed, 1),
                "queued_per_s": round(produced / elapsed, 1),
                "queue_depth_end": last["readings"],
                "dropped": last["dropped_total"],
                "agent_cpu_cores": round(cpu_s / elapsed, 3),
                "agent_rss_mb": round(max(rss) / 2**20, 1) if rss else None,
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql", "discard"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--offered", type=int, default=30_000, help="readings/s the drivers make")
    parser.add_argument("--batch", type=int, default=5000, help="push batch_max")
    args = parser.parse_args()
    h.install_signal_handlers()
    params = vars(args)
    runs = []
    for number in range(1, args.runs + 1):
        h.log(
            f"run {number}/{args.runs}: {args.backend}, {args.offered}/s offered, {args.seconds:g} s"
        )
        runs.append(one_run(args.backend, args.seconds, args.offered, args.batch))
        h.log(f"  {runs[-1]}")
    keys = ["readings_per_s", "queued_per_s", "agent_cpu_cores", "agent_rss_mb"]
    result = {**h.header("agent_throughput", params), "median": h.medians(runs, keys), "runs": runs}
    figure = result["median"]["readings_per_s"] or 0.0
    result["bar"] = {"readings_per_s": [">=", BAR], "met": figure >= BAR}
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
