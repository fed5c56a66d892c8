"""Ours beside InfluxDB 1.x: the same ingest load, one after the other, in one sitting; the ratio.

Figure (issue 2, "Speed": "our long-run goal is to out-ingest InfluxDB on the same machine"): for
each run, the batch load (1 000 000 readings in batches of 1000 over 4 connections) and the
single-reading load (100 000 requests over 32 connections) go first to our server (a fresh
PostgreSQL and SQLite database each, unique reading ids) and right after to a throwaway InfluxDB 1.x
(``influxd`` with its data in a temporary folder, on free loopback ports, as
``../shared/bench/README.md`` shows; line protocol, ``precision=s``). Reported: medians per target
and the ratios ours / InfluxDB of readings/s (batch) and requests/s (single).

Optional: when ``influxd`` is not installed (``apt-get install influxdb``) the line says
``"skipped"`` and the script exits 0.

Run (prints ONE JSON line; progress on stderr):

    .venv/bin/python bench/bench_influxdb.py
    .venv/bin/python bench/bench_influxdb.py --modes batch --backends postgresql --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import _harness as h
import _ingest

MODES = {
    "batch": {"readings": 1_000_000, "batch": 1000, "conc": 4, "key": "readings_per_s"},
    "single": {"readings": 100_000, "batch": 1, "conc": 32, "key": "requests_per_s"},
}
CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
"""


@contextlib.contextmanager
def influxd(influxd_bin: str) -> Iterator[tuple[int, int]]:
    """A throwaway InfluxDB on loopback with database ``bench``: (http port, pid)."""
    folder = Path(tempfile.mkdtemp(prefix="bw-bench-influx-"))
    http_port, rpc_port = h.free_port(), h.free_port()
    conf = folder / "influxdb.conf"
    conf.write_text(CONFIG.format(d=folder, rpc_port=rpc_port, http_port=http_port))
    with (folder / "log").open("wb") as log_file:
        proc = subprocess.Popen(
            [influxd_bin, "run", "-config", str(conf)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        while h.http_get(f"{base}/ping", timeout=2.0) != 204:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "log").read_text(errors="replace")[-2000:]
                raise h.BenchError(f"influxd did not start:\n{tail}")
            time.sleep(0.1)
        data = urllib.parse.urlencode({"q": "CREATE DATABASE bench"}).encode()
        with urllib.request.urlopen(f"{base}/query", data=data, timeout=10) as r:
            r.read()
        yield http_port, proc.pid
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(h.STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def influx_run(influxd_bin: str, mode: dict[str, Any], label: str) -> dict[str, Any]:
    with influxd(influxd_bin) as (port, pid):
        out = h.run_json(
            [
                h.PYTHON,
                str(h.LOAD_GENERATOR),
                "--format",
                "influx",
                "--url",
                f"http://127.0.0.1:{port}/write?db=bench&precision=s",
                "-n",
                str(mode["readings"]),
                "-b",
                str(mode["batch"]),
                "-c",
                str(mode["conc"]),
                "--server-pid",
                str(pid),
                "--label",
                label,
            ],
            timeout=600,
        )
    if out.get("server_cpu_s") is not None and out.get("elapsed_s"):
        out["server_cpu_util"] = round(out["server_cpu_s"] / out["elapsed_s"], 3)
    return {k: out.get(k) for k in _ingest.RUN_KEYS}


def main(argv: Sequence[str] | None = None) -> int:
    h.install_signal_handlers()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--modes", default="batch,single", help="batch,single")
    p.add_argument("--backends", default="postgresql,sqlite", help="ours: postgresql,sqlite")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--env", action="append", default=[], metavar="BEAMWARDEN_X=V")
    p.add_argument("--commit", default=None, metavar="REV", help="run the server from REV")
    args = p.parse_args(argv)
    influxd_bin = shutil.which("influxd")
    if influxd_bin is None:
        h.emit(
            {
                "bench": "influxdb",
                "skipped": "influxd is not installed (Debian: apt-get install influxdb)",
            }
        )
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise SystemExit("--modes is a comma-separated subset of batch,single")
    backends = h.parse_backends(args.backends, ("postgresql", "sqlite"))
    extra_env = h.parse_env(args.env)
    if args.commit:
        h.pin_commit(args.commit)
    version = subprocess.run(
        [influxd_bin, "version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    result = h.header(
        "influxdb",
        {"modes": modes, "backends": backends, "runs": args.runs, "influxd": version},
    )
    targets = [*backends, "influxdb"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {t: [] for t in targets} for m in modes}
    for i in range(args.runs):
        for m in modes:
            mode = MODES[m]
            ns = argparse.Namespace(
                readings=mode["readings"],
                batch=mode["batch"],
                conc=mode["conc"],
                no_reading_ids=False,
                max_seconds=300.0,
            )
            for target in targets:
                label = f"influxdb:{m}:{target}:{i + 1}"
                if target == "influxdb":
                    run = influx_run(influxd_bin, mode, label)
                else:
                    run = _ingest.one_run(target, ns, extra_env, label, None)
                h.log(
                    f"{label}: {run['readings_per_s']} readings/s, {run['requests_per_s']} req/s,"
                    f" p99 {run['p99_ms']} ms, errors {run['errors']}"
                )
                runs[m][target].append(run)
    result["results"] = {}
    for m in modes:
        key = MODES[m]["key"]
        per: dict[str, Any] = {}
        for target in targets:
            per[target] = {
                "median": h.medians(runs[m][target], _ingest.MEDIAN_KEYS),
                "runs": runs[m][target],
            }
        theirs = per["influxdb"]["median"][key]
        per["ratio_ours_over_influxdb"] = {
            b: (
                round(per[b]["median"][key] / theirs, 3)
                if theirs and per[b]["median"][key]
                else None
            )
            for b in backends
        }
        per["ratio_of"] = key
        result["results"][m] = per
    h.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
