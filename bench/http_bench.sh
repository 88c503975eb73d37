#!/usr/bin/env bash
# http_hello: wrk against examples/http_server's "/" with 1 and 2 loops, and against a
# libuv + llhttp server answering the same bytes (bench/http_uv_server.c), in one run.
# Prints one line per server: requests/s and latency (avg, p50, p99). Not part of make test.
#
#     bench/http_bench.sh [build-dir]      (DURATION=10 CONNECTIONS=64 THREADS=1 to change the load)
#
# wrk runs on the same machine, so on a 2-core VM it takes a core from the server:
# compare the rows with each other, not with published figures.
set -euo pipefail
build=${1:-build}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-1}
here=$(cd "$(dirname "$0")" && pwd)

weft_server=$build/examples/http_server
[ -x "$weft_server" ] || { echo "http_bench: build $weft_server first (meson compile -C $build)"; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "http_bench: wrk is not installed (apt-get install wrk): skipped"
  exit 0
fi

uv_server=$build/bench/http_uv_server
if pkg-config --exists libuv && [ -f /usr/share/llhttp/llhttp.c ]; then
  mkdir -p "$(dirname "$uv_server")"
  cc -O2 -o "$uv_server" "$here/http_uv_server.c" /usr/share/llhttp/{api,http,llhttp}.c \
     -I/usr/share/include/llhttp $(pkg-config --cflags --libs libuv) -pthread
else
  echo "note: libuv1-dev (or node-llhttp) is not installed: the libuv peer is skipped"
  uv_server=
fi

out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -f "$out"' EXIT

# run NAME SERVER ARGS...: start the server on a free port, load it, print one line.
run() {
  local name=$1; shift
  "$@" 0 > "$out" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.05; done
  local port
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*$/\1/p' "$out")
  [ -n "$port" ] || { echo "$name: server did not start"; cat "$out"; return 1; }
  wrk -t1 -c4 -d1s "http://127.0.0.1:$port/" > /dev/null  # warm-up
  local report
  report=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/")
  kill -TERM $pid; wait $pid || true; pid=
  local rps avg p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<< "$report")
  avg=$(awk '$1 == "Latency" {print $2; exit}' <<< "$report")
  p50=$(awk '$1 == "50%" {print $2}' <<< "$report")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$report")
  errors=$(grep -E 'Socket errors|Non-2xx' <<< "$report" | tr -s ' ' | paste -sd';' || true)
  printf "http_hello %-16s %8s req/s  latency avg %-8s p50 %-8s p99 %-8s %s\n" \
    "$name" "$rps" "$avg" "$p50" "$p99" "$errors"
}

echo "wrk -t$threads -c$connections -d${duration}s --latency http://127.0.0.1:PORT/  ($(nproc) cores)"
run weft-1-loop "$weft_server" --loops 1
run weft-2-loops "$weft_server" --loops 2
if [ -n "$uv_server" ]; then
  run libuv-1-loop "$uv_server" --loops 1
  run libuv-2-loops "$uv_server" --loops 2
fi
