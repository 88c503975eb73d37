#!/usr/bin/env bash
# Runs examples/http_server (one loop, then two) and examples/fetch_urls against it, and
# fetch_urls on its own (it then starts a server of its own); checks what they print, that
# fetch_urls' fetches overlap, and http_server's POST /echo and /json over raw requests.
# Then the two over https, with a CA made for the run by tests/common/make_test_certs.sh:
# trusted with --cafile, ignored with --insecure, refused without either.
set -euo pipefail
server=$1 fetch=$2
out=$(mktemp)
certs=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -f "$out"; rm -rf "$certs"' EXIT

# No URLs: five pages of known sizes from fetch_urls' own server.
got=$("$fetch" | grep -v '^fetched ' | sed 's/^.*\/page\///')
expected=$'1: 1 bytes\n10: 10 bytes\n100: 100 bytes\n1000: 1000 bytes\n10000: 10000 bytes'
[ "$got" = "$expected" ] || { echo "unexpected fetch_urls output: $got"; exit 1; }

# Each page takes 300 ms to serve: fetched one after another the five take 1.5 s at least,
# concurrently about 0.3 s. Under 1.5 s proves they overlapped, and leaves a loaded
# machine 1.2 s of slack.
took=$("$fetch" --delay 300 | sed -n 's/^fetched 5 URLs in \([0-9.]*\) s$/\1/p')
[ -n "$took" ] || { echo "fetch_urls --delay 300 printed no time"; exit 1; }
awk -v t="$took" 'BEGIN { exit !(t >= 0.3 && t < 1.5) }' ||
  { echo "fetch_urls: 5 pages of 300 ms took $took s: not concurrent (sequential is >= 1.5 s)"; exit 1; }

# request PORT RAW: sends RAW (which says Connection: close) over a new connection with
# bash's /dev/tcp and prints the whole response.
request() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf '%s' "$2" >&3
  timeout 10 cat <&3
  exec 3<&-
}
# check WHAT TEXT NEEDLE: fails unless TEXT contains NEEDLE.
check() {
  [[ "$2" == *"$3"* ]] || { echo "$1: no '$3' in:"; echo "$2"; exit 1; }
}

crlf=$'\r\n'
for loops in 1 2; do
  "$server" 0 --loops $loops > "$out" &
  pid=$!
  # Up to 30 s: a sanitizer build on a loaded CI machine can be slow to start.
  for _ in $(seq 600); do grep -q "listening on" "$out" && break; sleep 0.05; done
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\) .*$/\1/p' "$out")
  [ -n "$port" ] || { echo "server did not start"; cat "$out"; exit 1; }
  base="http://127.0.0.1:$port"
  got=$("$fetch" "$base/" "$base/json" "$base/json" | grep -v '^fetched ')
  expected="$base/: 14 bytes
$base/json: 44 bytes
$base/json: 44 bytes"
  [ "$got" = "$expected" ] || { echo "unexpected fetch_urls output ($loops loops): $got"; exit 1; }

  body='some bytes to echo'
  got=$(request "$port" "POST /echo HTTP/1.1${crlf}Host: x${crlf}Content-Type: text/x-test${crlf}Content-Length: ${#body}${crlf}Connection: close${crlf}${crlf}$body")
  check "POST /echo ($loops loops)" "$got" "HTTP/1.1 200 OK$crlf"
  check "POST /echo ($loops loops)" "$got" "${crlf}Content-Type: text/x-test$crlf"
  [ "${got#*$crlf$crlf}" = "$body" ] || { echo "POST /echo ($loops loops) answered: $got"; exit 1; }

  got=$(request "$port" "GET /json HTTP/1.1${crlf}Host: x${crlf}Connection: close${crlf}${crlf}")
  check "GET /json ($loops loops)" "$got" "HTTP/1.1 200 OK$crlf"
  check "GET /json ($loops loops)" "$got" "${crlf}Content-Type: application/json$crlf"
  check "GET /json ($loops loops)" "$got" "$crlf$crlf"'{"message": "Hello, World!", "requests": 5}'

  kill -TERM $pid
  wait $pid
  pid=
  grep -q "shut down after 5 requests" "$out" || { echo "no clean shutdown:"; cat "$out"; exit 1; }
done
# https: one loop, the test CA's localhost certificate.
"$(dirname "$0")/../common/make_test_certs.sh" "$certs" >/dev/null 2>&1
"$server" 0 --cert "$certs/server.pem" --key "$certs/server.key" > "$out" &
pid=$!
for _ in $(seq 600); do grep -q "listening on" "$out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\) (1 loop, https)$/\1/p' "$out")
[ -n "$port" ] || { echo "https server did not start"; cat "$out"; exit 1; }
got=$("$fetch" --cafile "$certs/ca.pem" "https://127.0.0.1:$port/" "https://localhost:$port/json" | grep -v '^fetched ')
expected="https://127.0.0.1:$port/: 14 bytes
https://localhost:$port/json: 44 bytes"
[ "$got" = "$expected" ] || { echo "unexpected fetch_urls --cafile output: $got"; exit 1; }
got=$("$fetch" --insecure "https://127.0.0.1:$port/" | grep -v '^fetched ')
[ "$got" = "https://127.0.0.1:$port/: 14 bytes" ] || { echo "unexpected fetch_urls --insecure output: $got"; exit 1; }
# Not trusted without --cafile: a certificate error, exit status 1.
if err=$("$fetch" "https://127.0.0.1:$port/" 2>&1); then
  echo "fetch_urls trusted the test CA without --cafile: $err"; exit 1
fi
check "fetch_urls without --cafile" "$err" "certificate verify failed"
kill -TERM $pid
wait $pid
pid=
grep -q "shut down after 3 requests" "$out" || { echo "no clean https shutdown:"; cat "$out"; exit 1; }
echo "http examples ok"
