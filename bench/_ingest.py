"""The ingest benchmarks' common driver (``bench_ingest_batch.py``, ``bench_ingest_single.py``).

For each run and each backend (in turn, so that the machine's drift over minutes spreads evenly over
the backends): a fresh throwaway database, a fresh server, a node token from the CLI, one run of the
load generator with ``--server-pid``. The JSON line has, per backend, the medians over the runs,
the bars of issue 2 and whether the medians meet them, and the individual runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import _harness as h

#: what is kept of each load-generator run
RUN_KEYS = (
    "sent_readings",
    "requests",
    "ok",
    "errors",
    "status_counts",
    "capped_by_time",
    "elapsed_s",
    "readings_per_s",
    "requests_per_s",
    "mb_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "client_cpu_util",
    "server_cpu_s",
    "server_cpu_util",
    "machine_cpu_busy_cores",
    "server_rss_mb_after",
    "server_hwm_mb",
    "loadavg_after",
)
MEDIAN_KEYS = (
    "readings_per_s",
    "requests_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "server_cpu_util",
    "machine_cpu_busy_cores",
    "client_cpu_util",
    "server_rss_mb_after",
    "server_hwm_mb",
)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


@contextlib.contextmanager
def machine_cpu(into: dict[str, Any]) -> Iterator[None]:
    """Puts the machine's busy cores during the block (all processes: server, database, load
    generator) into ``into["machine_cpu_busy_cores"]``."""
    busy0, total0 = _cpu_ticks()
    try:
        yield
    finally:
        busy1, total1 = _cpu_ticks()
        cores = os.cpu_count() or 1
        if total1 > total0:
            into["machine_cpu_busy_cores"] = round(cores * (busy1 - busy0) / (total1 - total0), 2)


def parser(description: str, readings: int, batch: int, conc: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgresql,discard", help="default: all three")
    p.add_argument("--runs", type=int, default=3, help="runs per backend (default 3; medians)")
    p.add_argument("-n", "--readings", type=int, default=readings)
    p.add_argument("-b", "--batch", type=int, default=batch, help="readings per request")
    p.add_argument("-c", "--conc", type=int, default=conc, help="connections")
    p.add_argument(
        "--no-reading-ids",
        action="store_true",
        help="send readings without reading_id (default: unique ids, the idempotent path)",
    )
    p.add_argument("--max-seconds", type=float, default=300.0, help="cap of one load run")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="BEAMWARDEN_X=V",
        help="extra server setting (repeatable), e.g. BEAMWARDEN_INGEST_WRITERS=2",
    )
    p.add_argument(
        "--commit",
        default=None,
        metavar="REV",
        help="run the server from this commit (git archive) instead of the work tree",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the server of each backend's first run with py-spy into DIR",
    )
    return p


def one_run(
    backend: str,
    args: argparse.Namespace,
    extra_env: Mapping[str, str],
    label: str,
    profile_out: Path | None,
) -> dict[str, Any]:
    with h.database(backend) as db, h.serve(db, extra_env) as server:
        token = h.node_token(server.env)
        stats: dict[str, Any] = {}
        with h.profiler(server.pid, profile_out), machine_cpu(stats):
            out = h.run_ingest_load(
                server,
                token,
                readings=args.readings,
                batch=args.batch,
                conc=args.conc,
                reading_ids=not args.no_reading_ids,
                max_seconds=args.max_seconds,
                label=label,
            )
        out.update(stats)
        if out.get("server_cpu_s") is not None and out.get("elapsed_s"):
            out["server_cpu_util"] = round(out["server_cpu_s"] / out["elapsed_s"], 3)
        if out.get("errors"):
            h.log(f"{label}: {out['errors']} failed requests; server log:\n{server.log_tail(15)}")
        return {k: out.get(k) for k in RUN_KEYS}


def meets(median: Mapping[str, float | None], bars: Mapping[str, tuple[str, float]]) -> bool | None:
    """Whether the medians meet the bars (``{"readings_per_s": (">=", 1e5), ...}``)."""
    if not bars:
        return None
    for key, (op, bound) in bars.items():
        value = median.get(key)
        if value is None:
            return False
        if (op == ">=" and value < bound) or (op == "<" and value >= bound):
            return False
    return True


def main(
    bench: str,
    description: str,
    argv: Sequence[str] | None,
    *,
    readings: int,
    batch: int,
    conc: int,
    bars: Mapping[str, Mapping[str, tuple[str, float]]],
) -> int:
    """Run an ingest benchmark; print its JSON line. ``bars``: per backend, per key."""
    h.install_signal_handlers()
    args = parser(description, readings, batch, conc).parse_args(argv)
    backends = h.parse_backends(args.backends)
    if args.commit:
        h.pin_commit(args.commit)
    extra_env = h.parse_env(args.env)
    if args.runs < 1 or args.readings < 1:
        raise SystemExit("--runs and --readings must be at least 1")
    params = {
        "readings": args.readings,
        "batch": args.batch,
        "conc": args.conc,
        "reading_ids": not args.no_reading_ids,
        "runs": args.runs,
        "server_env": extra_env,
    }
    result = h.header(bench, params)
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for i in range(args.runs):
        for backend in backends:
            label = f"{bench}:{backend}:{i + 1}"
            profile_out = None
            if args.profile is not None and i == 0:
                profile_out = args.profile / f"{bench}-{backend}.txt"
            h.log(f"{label}: {args.readings} readings, batch {args.batch}, {args.conc} connections")
            run = one_run(backend, args, extra_env, label, profile_out)
            h.log(
                f"{label}: {run['readings_per_s']} readings/s, {run['requests_per_s']} req/s, "
                f"p99 {run['p99_ms']} ms, errors {run['errors']}"
            )
            runs[backend].append(run)
    result["results"] = {}
    for backend in backends:
        med = h.medians(runs[backend], MEDIAN_KEYS)
        backend_bars = bars.get(backend, {})
        result["results"][backend] = {
            "median": med,
            "bars": {k: f"{op} {bound:g}" for k, (op, bound) in backend_bars.items()},
            "meets_bars": meets(med, backend_bars),
            "errors": sum(int(r.get("errors") or 0) for r in runs[backend]),
            "runs": runs[backend],
        }
        if args.profile is not None:
            import profile_summary

            path = args.profile / f"{bench}-{backend}.txt"
            if path.exists():
                result["results"][backend]["profile"] = profile_summary.summarize(path)
    h.emit(result)
    return 0
