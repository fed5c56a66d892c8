"""Agent through a server outage: at 10 readings/s, everything arrives afterwards, original
timestamps kept.

Figure (issue 3): a server outage at 10 readings/s (``--outage`` seconds: 120 by default, 600 for
the issue's ten minutes) — after the server is back, every reading the agent made is on the server
exactly once, stamped with the time it was made, not the time it arrived. A ``pi-log run`` with a
numbered simulator (``sample_no`` 1, 2, … at 10/s) pushes to ``beamwarden serve`` on a throwaway
SQLite database on a fixed loopback port; the server is killed (SIGKILL) after a warm-up and
started again on the same port and database after the outage. The script then waits for the
agent's queue to drain, stops the agent and reads every reading back through the API.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_agent_outage.py                 # a 2-minute outage
    .venv/bin/python bench/bench_agent_outage.py --outage 600    # the issue's 10 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _harness as h

PI_LOG = str(h.VENV_BIN / "pi-log")
RATE = 10  # readings per second
NODE = "outage-agent"


class RestartableServer:
    """``beamwarden serve`` on one fixed port, killed and started again at will."""

    def __init__(self, env: dict[str, str], port: int, folder: Path) -> None:
        self.env, self.port, self.folder = env, port, folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        with (self.folder / "server.log").open("ab") as log_file:
            self.proc = subprocess.Popen(
                [h.BEAMWARDEN, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while h.http_get(f"{self.url}/api/health/ready", timeout=2.0) != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise h.BenchError("the server did not start; see server.log")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def queue_stats(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PI_LOG, "queue", "stats", str(config), "--json"], capture_output=True, check=True
    )
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def all_readings(url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"node_id": NODE, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        request = urllib.request.Request(
            f"{url}/api/readings?{urlencode(params)}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            page = json.loads(answer.read())
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def write_config(folder: Path, url: str, token: str) -> Path:
    config = folder / "pi-log.toml"
    config.write_text(
        f"""
device_id = "{NODE}"
api_url = "{url}"
device_token = "{token}"
state_dir = "{folder / "state"}"
heartbeat_interval_s = 5

[push]
backoff_max_s = 5

[[sensor]]
type = "sim"
driver = "simulator"
numbered = true
interval_ms = {1000 // RATE}
"""
    )
    return config


def run(outage_s: float, warmup_s: float, drain_within_s: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-outage-"))
    server: RestartableServer | None = None
    agent: subprocess.Popen[bytes] | None = None
    try:
        with h.database("sqlite") as db:
            port = h.free_port()
            env = h.server_env(db, {"BEAMWARDEN_PORT": str(port)})
            h.cli(env, "migrate")
            server = RestartableServer(env, port, folder)
            server.start()
            token = h.node_token(env, NODE, "pi-log")
            reader = h.user_token(env, "read")
            config = write_config(folder, server.url, token)
            with (folder / "agent.log").open("wb") as log_file:
                agent = subprocess.Popen(
                    [PI_LOG, "run", str(config)], stdout=log_file, stderr=subprocess.STDOUT
                )
            time.sleep(warmup_s)
            h.log(f"server down for {outage_s:g} s")
            server.kill()
            down_at = time.time()
            time.sleep(outage_s)
            queued = queue_stats(config)["readings"]
            server.start()
            up_at, up_mono = time.time(), time.monotonic()
            h.log(f"server back; {queued} readings wait in the agent's queue")
            deadline = up_mono + drain_within_s
            while (stats := queue_stats(config))["readings"] > RATE:  # only live ones left
                if time.monotonic() > deadline:
                    raise h.BenchError(f"the queue did not drain within {drain_within_s:g} s")
                time.sleep(0.5)
            drained_s = time.monotonic() - up_mono
            agent.send_signal(signal.SIGTERM)
            agent.wait(60)
            stats = queue_stats(config)
            stored = all_readings(server.url, reader)
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait(10)
        if server is not None:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    numbers = Counter(r["payload"]["sample_no"] for r in stored)
    made = max(numbers) if numbers else 0
    during = [
        r for r in stored if down_at <= datetime.fromisoformat(r["timestamp"]).timestamp() <= up_at
    ]
    kept_time = all(
        datetime.fromisoformat(r["received_at"]).timestamp() >= up_at
        and r["timestamp_source"] == "node"
        for r in during
    )
    return {
        "outage_s": outage_s,
        "made": made,
        "stored": len(stored),
        "missing": sum(1 for n in range(1, made + 1) if n not in numbers),
        "duplicates": sum(c - 1 for c in numbers.values() if c > 1),
        "made_during_outage": len(during),
        "queued_at_restart": queued,
        "original_timestamps_kept": kept_time and len(during) > 0,
        "drained_s": round(drained_s, 1),
        "queue_left": stats["readings"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outage", type=float, default=120.0, help="seconds the server is down")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--drain-within", type=float, default=300.0)
    args = parser.parse_args()
    h.install_signal_handlers()
    figure = run(args.outage, args.warmup, args.drain_within)
    h.log(f"  {figure}")
    result = {**h.header("agent_outage", vars(args)), "result": figure}
    result["bar"] = {
        "missing": ["==", 0],
        "duplicates": ["==", 0],
        "met": figure["missing"] == 0
        and figure["duplicates"] == 0
        and figure["original_timestamps_kept"],
    }
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
