#!/usr/bin/env bash
# Run every benchmark of bench/ (each prints ONE JSON line) and keep the lines.
#
#   bench/run_all.sh                 # all of them, defaults (medians of 3 runs; 10 M for series)
#   bench/run_all.sh --quick         # small sizes and 1 run: checks that everything works
#
# The JSON lines go to stdout and are appended to .bench/results.jsonl; progress goes to stderr.
# `make bench` runs the same scripts with their defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .bench
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
for b in bench/bench_*.py; do
  echo "# $b" >&2
  args=()
  if (( quick )); then
    case "$b" in
      *series_query*) args=(--readings 300000 --runs 1 --queries 5) ;;
      *influxdb*) args=(--runs 1 --modes batch --backends postgresql) ;;
      *ingest_batch*) args=(--runs 1 -n 200000) ;;
      *ingest_single*) args=(--runs 1 -n 20000) ;;
      *sqlite_commit_size*) args=(--rows 40000) ;;
      *sqlite_tail_table*) args=(--rows 40000 --moves 0,10000) ;;
      *rollup_lock*) args=(--sensors 200 --minutes 4 --limits 100) ;;
      *pg_array_params*) args=(--runs 1 --times 50) ;;
    esac
  fi
  "$PY" "$b" "${args[@]}" | tee -a .bench/results.jsonl
done
