#!/usr/bin/env bash
# Runs examples/echo_server and examples/echo_client against each other on loopback.
set -euo pipefail
server=$1 client=$2
out=$(mktemp)
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
"$server" 0 --once > "$out" &
pid=$!
# Up to 30 s: a sanitizer build on a loaded CI machine can be slow to start.
for _ in $(seq 600); do grep -q "listening on" "$out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "server did not start"; cat "$out"; exit 1; }
got=$("$client" "$port" hello weft)
expected=$'echo: hello\necho: weft'
[ "$got" = "$expected" ] || { echo "unexpected client output: $got"; exit 1; }
wait $pid  # --once: the server exits after the client leaves
grep -q "left" "$out"
# A bad port is a usage error (exit 2, the usage on stderr), not an uncaught exception.
for bad in "$server x" "$client 99999 hi" "$client -1 hi"; do
  set +e; err=$($bad 2>&1 >/dev/null); status=$?; set -e
  [ $status = 2 ] && grep -q "^usage: " <<< "$err" || { echo "'$bad': status $status, stderr: $err"; exit 1; }
done
echo "echo example ok"
