#!/usr/bin/env bash
# Runs the seed tour (examples/tour) and checks each program: exit status 0, nothing on
# stderr, and its stdout equal to tests/examples/tour/<name>.expected once the lines
# marked as varying ("~ ": timings, ports, stacks) are dropped.
# A few lines compare timings (tasks overlapped: "done in about 2 seed seconds, not 3");
# a machine stalled by other jobs can lose such a race by a tenth of a second, so a
# program that fails is run once more, and the first failure is printed either way.
#
#     tour_test.sh [--show] EXPECTED_DIR PROGRAM...
#     tour_test.sh [--show] EXPECTED_DIR BINDIR    (runs BINDIR/<name> for every <name>.expected)
#     --show   also print each program's whole output (make examples)
#     UPDATE=1 rewrites the .expected files from this run instead of comparing.
# The fetch examples serve https (examples/tour/tour_tls.hpp) with a CA and a localhost
# certificate made here for the run: WEFT_TOUR_CERTS names their directory, SSL_CERT_FILE
# makes the CA the one OpenSSL's default store trusts (so the seeds' plain ClientSession()
# verifies it). No key outlives the run.
set -uo pipefail
show=0
[ "${1:-}" = "--show" ] && { show=1; shift; }
expected_dir=$1
shift
if [ $# = 1 ] && [ -d "$1" ]; then
  bindir=$1
  set --
  for e in "$expected_dir"/*.expected; do set -- "$@" "$bindir/$(basename "$e" .expected)"; done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$(dirname "$0")/../common/make_test_certs.sh" "$work/certs" >/dev/null 2>&1 ||
  { echo "tour: could not make the test certificates (is the openssl tool installed?)"; exit 1; }
export WEFT_TOUR_CERTS="$work/certs" SSL_CERT_FILE="$work/certs/ca.pem"
failed=0 total_start=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
run_one() {  # run_one PROGRAM NAME: sets problem and took; leaves the diff in $work/diff
  local start=$EPOCHREALTIME status
  timeout 60 "$1" >"$work/out" 2>"$work/err"
  status=$?
  took=$(elapsed "$start")
  grep -v '^~ ' "$work/out" >"$work/stable"
  problem=""
  [ $status = 0 ] || problem="exit status $status"
  [ -s "$work/err" ] && problem="${problem:+$problem; }wrote to stderr"
  rm -f "$work/diff"
  if [ "${UPDATE:-0}" = 1 ]; then
    cp "$work/stable" "$expected_dir/$2.expected"
  elif ! diff -u "$expected_dir/$2.expected" "$work/stable" >"$work/diff"; then
    problem="${problem:+$problem; }output differs"
  fi
}
report_failure() {  # report_failure LABEL
  echo "$1"
  cat "$work/diff" 2>/dev/null
  sed 's/^/  stderr: /' "$work/err"
}
for program in "$@"; do
  name=$(basename "$program")
  run_one "$program" "$name"
  if [ -n "$problem" ]; then
    report_failure "FIRST RUN FAILED $name ($problem, ${took} s); running it again"
    run_one "$program" "$name"
  fi
  if [ $show = 1 ]; then
    echo "===== $name"
    cat "$work/out"
  fi
  if [ -n "$problem" ]; then
    failed=$((failed + 1))
    report_failure "FAIL $name ($problem, ${took} s)"
  else
    printf 'ok   %-28s %5s s\n' "$name" "$took"
  fi
done
echo "tour: $# programs, $failed failed, $(elapsed "$total_start") s"
[ $failed = 0 ]
