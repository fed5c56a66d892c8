"""Turn the benchmarks' JSON lines into the Markdown table of ``docs/benchmarks.md``.

Not a figure of its own. Give it files holding JSON lines (``.bench/results.jsonl`` from
``bench/run_all.sh``, or the saved output of single scripts); it prints one table row per backend
(medians; ``yes``/``no`` for the bars), in the order the lines come:

    .venv/bin/python bench/report.py .bench/results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{round(value):,}".replace(",", " ")
    return f"{value:.{digits}f}"


def _bar(meets: Any) -> str:
    return {True: "yes", False: "**no**"}.get(meets, "–")


def rows(line: dict[str, Any]) -> list[str]:
    bench = line.get("bench")
    date = str(line.get("date", ""))[:16].replace("T", " ")
    server = line.get("server", {})
    rev = server.get("commit") or line.get("git", "")
    out: list[str] = []
    if bench in ("ingest_batch", "ingest_single"):
        for backend, r in line["results"].items():
            m = r["median"]
            out.append(
                f"| {bench} | {backend} | {_n(m['readings_per_s'])} readings/s, "
                f"{_n(m['requests_per_s'])} req/s | p50 {_n(m['p50_ms'], 1)} / "
                f"p99 {_n(m['p99_ms'], 1)} ms | {_n(m['server_cpu_util'], 2)} "
                f"({_n(m['machine_cpu_busy_cores'], 2)}) | {_n(m['server_hwm_mb'])} MB | "
                f"{', '.join(r['bars'].values()) or '–'}: {_bar(r['meets_bars'])} | {date} {rev} |"
            )
    elif bench == "series_query":
        for backend, r in line["results"].items():
            m = r["median"]
            pages = r["runs"][0]["pages"] if r.get("runs") else "?"
            out.append(
                f"| series_query | {backend} | {_n(line['params']['readings'])} stored, "
                f"{pages} page(s) | median {_n(m['median_ms'], 1)} ms (first page "
                f"{_n(m['first_page_median_ms'], 1)}), p90 {_n(m['p90_ms'], 1)} ms | – | – | "
                f"< 50 ms: {_bar(r['meets_bars'])} | {date} {rev} |"
            )
    elif bench == "influxdb" and "results" in line:
        for mode, per in line["results"].items():
            key = per["ratio_of"]
            theirs = per["influxdb"]["median"]
            for backend, ratio in per["ratio_ours_over_influxdb"].items():
                ours = per[backend]["median"]
                out.append(
                    f"| influxdb ({mode}) | {backend} vs InfluxDB | {_n(ours[key])} vs "
                    f"{_n(theirs[key])} {key.replace('_per_s', '/s')} | p99 "
                    f"{_n(ours['p99_ms'], 1)} vs {_n(theirs['p99_ms'], 1)} ms | – | – | "
                    f"ratio {ratio} | {date} {rev} |"
                )
    return out


HEADER = (
    "| figure | backend | throughput (median) | latency (median of runs) "
    "| server CPU, cores (machine busy) | server RSS peak | bar: met? | date (UTC), server commit |\n"
    "|---|---|---|---|---|---|---|---|"
)


def main(paths: list[str]) -> int:
    print(HEADER)
    for path in paths:
        for text in Path(path).read_text().splitlines():
            if text.startswith("{"):
                for row in rows(json.loads(text)):
                    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
