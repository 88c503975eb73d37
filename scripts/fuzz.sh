#!/usr/bin/env bash
# Runs every libFuzzer target in <build>/tests/fuzz for <seconds> each, starting from the
# seed corpus in tests/fuzz/corpus/<target>/. New inputs go to a scratch directory, not
# into the repository; a crash leaves its input in <build>/fuzz-artifacts/ and fails.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-60}
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
found=0
for exe in "$build"/tests/fuzz/*_fuzz; do
  [ -x "$exe" ] || continue
  found=$((found + 1))
  name=$(basename "$exe" _fuzz)
  scratch=$(mktemp -d)
  echo "== fuzz $name for ${seconds}s"
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/$name-" "$scratch" "tests/fuzz/corpus/$name" \
       > "$build/fuzz-$name.log" 2>&1; then
    echo "fuzz $name: FAILED (log: $build/fuzz-$name.log)"; tail -40 "$build/fuzz-$name.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/fuzz-$name.log" | tr '\n' ' '
    echo
  fi
  rm -rf "$scratch"
done
# No target at all means a misconfigured build (fuzzing off, wrong directory): a run that
# fuzzed nothing must not pass as a clean one.
if [ "$found" -eq 0 ]; then
  echo "fuzz: no *_fuzz targets in $build/tests/fuzz (configure with -Dfuzzing=true)" >&2
  exit 1
fi
exit $status
