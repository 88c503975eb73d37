#!/usr/bin/env bash
# Runs examples/http_server (one loop, then two) and examples/fetch_urls against it, and
# fetch_urls on its own (it then starts a server of its own); checks what they print.
set -euo pipefail
server=$1 fetch=$2
out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -f "$out"' EXIT

# No arguments: five pages of known sizes from fetch_urls' own server.
got=$("$fetch" | sed 's/^.*\/page\///')
expected=$'1: 1 bytes\n10: 10 bytes\n100: 100 bytes\n1000: 1000 bytes\n10000: 10000 bytes'
[ "$got" = "$expected" ] || { echo "unexpected fetch_urls output: $got"; exit 1; }

for loops in 1 2; do
  "$server" 0 --loops $loops > "$out" &
  pid=$!
  # Up to 30 s: a sanitizer build on a loaded CI machine can be slow to start.
  for _ in $(seq 600); do grep -q "listening on" "$out" && break; sleep 0.05; done
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\) .*$/\1/p' "$out")
  [ -n "$port" ] || { echo "server did not start"; cat "$out"; exit 1; }
  base="http://127.0.0.1:$port"
  got=$("$fetch" "$base/" "$base/json" "$base/json")
  expected="$base/: 14 bytes
$base/json: 44 bytes
$base/json: 44 bytes"
  [ "$got" = "$expected" ] || { echo "unexpected fetch_urls output ($loops loops): $got"; exit 1; }
  kill -TERM $pid
  wait $pid
  pid=
  grep -q "shut down after 3 requests" "$out" || { echo "no clean shutdown:"; cat "$out"; exit 1; }
done
echo "http examples ok"
