"""Agent footprint: CPU and memory of ``pi-log run`` with five drivers at 1 Hz.

Figure (issue 3, "Footprint"): with five drivers at 1 Hz — Geiger and climate simulators, system,
tcp_json and http_poll — **< 1 % of one core and < 60 MB RSS**, measured over minutes. The agent
pushes to a ``beamwarden serve`` on a throwaway SQLite database; this script runs the TCP JSON
line source (one line a second per connection) and the HTTP JSON endpoint the two network drivers
read, in threads of its own (their CPU is not the agent's). After a warm-up (imports, enrolment,
first heartbeats) the agent's CPU time is taken over ``--seconds`` (default 180) and its RSS
sampled every 2 s; the figure is CPU seconds / wall seconds, in % of one core.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_agent_footprint.py                  # 3 minutes
    .venv/bin/python bench/bench_agent_footprint.py --seconds 900    # 15 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import random
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

import _harness as h

PI_LOG = str(h.VENV_BIN / "pi-log")
BAR_CPU_PERCENT = 1.0
BAR_RSS_MB = 60.0


class JsonLines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while True:
            line = {"temperature_c": round(20 + random.random(), 2), "humidity_pct": 41.0}
            try:
                self.wfile.write(json.dumps(line).encode() + b"\n")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(1.0)


class JsonEndpoint(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real device or service answers

    def do_GET(self) -> None:
        body = json.dumps({"main": {"temp": round(18 + random.random(), 2), "humidity": 55}})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingTcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def sources() -> Iterator[tuple[int, int]]:
    """The TCP JSON line source and the HTTP JSON endpoint, on loopback: (tcp port, http port)."""
    tcp = ThreadingTcp(("127.0.0.1", 0), JsonLines)
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonEndpoint)
    web.daemon_threads = True
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (tcp, web)]
    for t in threads:
        t.start()
    try:
        yield tcp.server_address[1], web.server_address[1]
    finally:
        for s in (tcp, web):
            s.shutdown()
            s.server_close()


def write_config(folder: Path, url: str, token: str, tcp_port: int, http_port: int) -> Path:
    config = folder / "pi-log.toml"
    config.write_text(
        f"""
device_id = "footprint-agent"
api_url = "{url}"
device_token = "{token}"
state_dir = "{folder / "state"}"

[[sensor]]
type = "geiger"
driver = "simulator"
interval_ms = 1000

[[sensor]]
type = "climate"
id = "sim-climate"
driver = "simulator"
values = "climate"
interval_ms = 1000

[[sensor]]
type = "system"
driver = "system"
interval_ms = 1000

[[sensor]]
type = "climate"
id = "tcp-climate"
driver = "tcp_json"
host = "127.0.0.1"
port = {tcp_port}
interval_ms = 1000

[[sensor]]
type = "climate"
id = "http-climate"
driver = "http_poll"
url = "http://127.0.0.1:{http_port}/"
fields = {{ temperature_c = "main.temp", humidity_pct = "main.humidity" }}
interval_ms = 1000
"""
    )
    return config


def queue_stats(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PI_LOG, "queue", "stats", str(config), "--json"], capture_output=True, check=True
    )
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def one_run(seconds: float, warmup: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-footprint-"))
    try:
        with h.database("sqlite") as db, h.serve(db) as server, sources() as (tcp, web):
            token = h.node_token(server.env, "footprint-agent", "pi-log")
            config = write_config(folder, server.base_url, token, tcp, web)
            with (folder / "agent.log").open("wb") as log_file:
                proc = subprocess.Popen(
                    [PI_LOG, "run", str(config)], stdout=log_file, stderr=subprocess.STDOUT
                )
            try:
                agent = psutil.Process(proc.pid)
                time.sleep(warmup)
                first = queue_stats(config)
                cpu0, t0 = agent.cpu_times(), time.monotonic()
                rss: list[int] = []
                while time.monotonic() - t0 < seconds:
                    rss.append(agent.memory_info().rss)
                    time.sleep(2.0)
                cpu1, t1 = agent.cpu_times(), time.monotonic()
                last = queue_stats(config)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            elapsed = t1 - t0
            cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
            # a stalled push (a queue left at the end) must say why: the log is deleted below
            problems = [
                line
                for line in (folder / "agent.log").read_text(errors="replace").splitlines()
                if " WARNING " in line or " ERROR " in line
            ]
            for line in problems[:10]:
                h.log(f"  agent: {line}")
            return {
                "cpu_percent_of_core": round(100 * cpu_s / elapsed, 3),
                "rss_mb_max": round(max(rss) / 2**20, 1),
                "rss_mb_median": round(sorted(rss)[len(rss) // 2] / 2**20, 1),
                "readings_per_s": round((last["acked_total"] - first["acked_total"]) / elapsed, 2),
                "queue_depth_end": last["readings"],
                "agent_warnings": len(problems),
                "seconds": round(elapsed, 1),
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    h.install_signal_handlers()
    runs = []
    for number in range(1, args.runs + 1):
        h.log(f"run {number}/{args.runs}: five drivers at 1 Hz, measured {args.seconds:g} s")
        runs.append(one_run(args.seconds, args.warmup))
        h.log(f"  {runs[-1]}")
    keys = ["cpu_percent_of_core", "rss_mb_max", "rss_mb_median", "readings_per_s"]
    result = {**h.header("agent_footprint", vars(args)), "median": h.medians(runs, keys)}
    result["runs"] = runs
    cpu, rss = result["median"]["cpu_percent_of_core"], result["median"]["rss_mb_max"]
    result["bar"] = {
        "cpu_percent_of_core": ["<", BAR_CPU_PERCENT],
        "rss_mb": ["<", BAR_RSS_MB],
        "met": cpu is not None and rss is not None and cpu < BAR_CPU_PERCENT and rss < BAR_RSS_MB,
    }
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
