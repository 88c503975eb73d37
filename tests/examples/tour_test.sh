#!/usr/bin/env bash
# Runs the seed tour (examples/tour) and checks each program: exit status 0, nothing on
# stderr, and its stdout equal to tests/examples/tour/<name>.expected once the lines
# marked as varying ("~ ": timings, ports, stacks) are dropped.
#
#     tour_test.sh [--show] EXPECTED_DIR PROGRAM...
#     tour_test.sh [--show] EXPECTED_DIR BINDIR    (runs BINDIR/<name> for every <name>.expected)
#     --show   also print each program's whole output (make examples)
#     UPDATE=1 rewrites the .expected files from this run instead of comparing.
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
failed=0 total_start=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
for program in "$@"; do
  name=$(basename "$program")
  start=$EPOCHREALTIME
  timeout 60 "$program" >"$work/out" 2>"$work/err"
  status=$?
  took=$(elapsed "$start")
  if [ $show = 1 ]; then
    echo "===== $name"
    cat "$work/out"
  fi
  grep -v '^~ ' "$work/out" >"$work/stable"
  problem=""
  [ $status = 0 ] || problem="exit status $status"
  [ -s "$work/err" ] && problem="${problem:+$problem; }wrote to stderr"
  if [ "${UPDATE:-0}" = 1 ]; then
    cp "$work/stable" "$expected_dir/$name.expected"
  elif ! diff -u "$expected_dir/$name.expected" "$work/stable" >"$work/diff"; then
    problem="${problem:+$problem; }output differs"
  fi
  if [ -n "$problem" ]; then
    failed=$((failed + 1))
    echo "FAIL $name ($problem, ${took} s)"
    cat "$work/diff" 2>/dev/null
    sed 's/^/  stderr: /' "$work/err"
    rm -f "$work/diff"
  else
    printf 'ok   %-28s %5s s\n' "$name" "$took"
  fi
done
echo "tour: $# programs, $failed failed, $(elapsed "$total_start") s"
[ $failed = 0 ]
