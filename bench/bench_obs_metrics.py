"""obs: metric samples/s into SQLite.

Figure (issue 6): >= 100 000 samples/s into SQLite. Two ways, on fresh
:class:`~beamwarden.obs.SqliteStore` files:

* ``snapshot``: what the runtime does. ``--series`` series (counters, gauges and histograms with
  labels, 8/1/1 of every 10) all change, then ``registry.changed_samples()`` +
  ``store.append_samples()`` (one transaction: the history rows and the last-value upserts);
  repeated ``--rounds`` times. The bar applies to this one.
* ``append``: ``store.append_samples`` of ready-made samples, batches of 5 000.

Medians of ``--runs`` runs. Run (prints ONE JSON line)::

    .venv/bin/python bench/bench_obs_metrics.py [--series 10000] [--rounds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from beamwarden.obs import ManualClock, MetricKind, MetricRegistry, MetricSample, SqliteStore

BAR = 100_000.0
T0 = 1_800_000_000.0


def snapshot_run(series: int, rounds: int, path: Path) -> float:
    clock = ManualClock(T0)
    registry = MetricRegistry(clock=clock)
    requests = registry.counter("http_requests_total", "Requests", labels=("route", "status"))
    temps = registry.gauge("temperature_celsius", "Temperature", labels=("node",))
    latency = registry.histogram("latency_seconds", "Latency", labels=("route",))
    counters = [requests.labels(route=f"/r/{i}", status="200") for i in range(series * 8 // 10)]
    gauges = [temps.labels(node=f"n-{i}") for i in range(series // 10)]
    hists = [latency.labels(route=f"/r/{i}") for i in range(series // 10)]
    store = SqliteStore(path)
    written = 0
    elapsed = 0.0
    for r in range(rounds):
        for c in counters:
            c.inc()
        for g in gauges:
            g.set(r)
        for h in hists:
            h.observe(0.01 * r)
        clock.advance(10)
        start = time.perf_counter()
        samples = registry.changed_samples()
        store.append_samples(samples)
        elapsed += time.perf_counter() - start
        written += len(samples)
    assert store.stats().samples == written
    store.close()
    return written / elapsed


def append_run(total: int, path: Path) -> float:
    samples = [
        MetricSample(
            T0 + i, "jobs_total", MetricKind.COUNTER, (("queue", f"q{i % 500}"),), float(i)
        )
        for i in range(total)
    ]
    store = SqliteStore(path)
    start = time.perf_counter()
    for k in range(0, total, 5000):
        store.append_samples(samples[k : k + 5000])
    rate = total / (time.perf_counter() - start)
    store.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-obs-metrics-") as tmp:
        folder = Path(tmp)
        snapshot = [
            snapshot_run(args.series, args.rounds, folder / f"s{i}.db") for i in range(args.runs)
        ]
        append = [
            append_run(args.series * args.rounds, folder / f"a{i}.db") for i in range(args.runs)
        ]
    rate = statistics.median(snapshot)
    result = {
        "bench": "obs_metrics_sqlite",
        "samples": args.series * args.rounds,
        "snapshot_samples_per_s": round(rate),
        "append_samples_per_s": round(statistics.median(append)),
        "bar": {"snapshot_samples_per_s": f">= {BAR:.0f}"},
        "ok": rate >= BAR,
        "runs": {"snapshot": [round(x) for x in snapshot], "append": [round(x) for x in append]},
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
