#!/usr/bin/env bash
# make bench: builds the Go and Tokio peers (when their toolchains are installed), runs weft's
# Google Benchmark suites and every peer's same workloads in interleaved rounds
# (scripts/bench_run.py) and prints one table (scripts/bench_table.py). Raw results and the
# summary go to bench/results/<stamp>/, the chart to bench/results/latest.svg. Then the HTTP
# benchmark (bench/http_bench.sh: wrk against the weft and libuv + llhttp servers), whose
# lines go to bench/results/<stamp>/http.txt; skipped, saying so, without wrk.
# The TLS rows (issue 16: handshakes with `openssl s_time`, TLS echo, OpenSSL's floor) run
# inside bench_run.py (scripts/bench_tls.py); the Go peer's binary carries its TLS server.
# QUICK=1: one short round; TLS_ONLY=1: the TLS rows and the plain echo of the same servers
# (no HTTP benchmark).
# Usage: scripts/bench.sh BUILD_DIR (already compiled by meson).
set -euo pipefail
build=${1:-build-bench}
abs=$(cd "$build" && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/$stamp
mkdir -p "$out" "$abs/peers"
python=/usr/bin/python3  # where Debian's python3-uvloop is installed
[ -x "$python" ] || python=python3

if command -v go >/dev/null; then
  (cd bench/peers/go && go build -o "$abs/peers/go-peer" .) || echo "bench: the Go peer did not build; skipped"
else
  echo "bench: go not installed (golang-go); the Go peer is skipped"
fi

# Tokio from Debian's librust-tokio-dev, offline (bench/peers/tokio/.cargo/config.toml).
cargo=$(command -v /usr/bin/cargo || command -v cargo || true)
if [ "${TLS_ONLY:-0}" = 1 ]; then
  :  # no TLS peer in Rust here
elif [ -n "$cargo" ] && ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1; then
  rustc=rustc
  [ "$cargo" = /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && rustc=/usr/bin/rustc
  (cd bench/peers/tokio && RUSTC=$rustc "$cargo" build --release -q -j "${JOBS:-2}" --target-dir "$abs/cargo") \
    || echo "bench: the Tokio peer did not build; skipped"
else
  echo "bench: cargo or librust-tokio-dev not installed; the Tokio peer is skipped"
fi

quick=
[ "${QUICK:-0}" = 1 ] && quick=--quick
only=
[ "${TLS_ONLY:-0}" = 1 ] && only=--tls-only
"$python" scripts/bench_run.py "$build" "$out" $quick $only
"$python" scripts/bench_table.py "$out" --chart bench/results/latest.svg
# README shows docs/bench.svg: a full run (not QUICK) renews it; commit it with the figures.
if [ -z "$quick$only" ] && [ -s bench/results/latest.svg ]; then
  cp bench/results/latest.svg docs/bench.svg && echo "chart: docs/bench.svg (README's) renewed"
fi

# Four servers, each loaded for this long after a 1 s warm-up: about 25 s in all (QUICK: 12).
if [ -n "$only" ]; then
  echo "raw results: $out/"
  exit 0
fi
http_duration=5
[ "${QUICK:-0}" = 1 ] && http_duration=2
if command -v wrk >/dev/null; then
  DURATION=$http_duration bench/http_bench.sh "$build" | tee "$out/http.txt" \
    || echo "bench: bench/http_bench.sh failed; what it printed is in $out/http.txt"
else
  echo "bench: wrk not installed (apt-get install wrk, or scripts/install-deps.sh --bench): the HTTP benchmark is skipped" \
    | tee "$out/http.txt"
fi
echo "raw results: $out/"
