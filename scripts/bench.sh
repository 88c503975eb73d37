#!/usr/bin/env bash
# Runs weft's Google Benchmark suites and keeps the raw JSON under bench/results/.
# QUICK=1 runs one repetition with a short minimum time.
set -euo pipefail
build=${1:-build}
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
args=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
[ "${QUICK:-0}" = 1 ] && args=(--benchmark_min_time=0.05)
for exe in "$build"/bench/*_bench; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  echo "== $name"
  "$exe" "${args[@]}" --benchmark_out="bench/results/${name}-${stamp}.json" --benchmark_out_format=json
done
