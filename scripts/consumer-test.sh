#!/usr/bin/env bash
# Installs the built library into a scratch prefix, then builds and runs small outside
# programs against it using nothing but `pkg-config --cflags --libs weft`: one that uses
# both layers, and one whose fiber overflows its stack with a frame far bigger than the
# guard (the flags must carry -fstack-clash-protection so the abort names the fiber).
set -euo pipefail
build=${1:-build}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build" --no-rebuild --destdir "$scratch/root" >/dev/null
pcdir=$(dirname "$(find "$scratch/root" -name weft.pc | head -n1)")
export PKG_CONFIG_PATH="$pcdir"
export PKG_CONFIG_SYSROOT_DIR="$scratch/root"

cp tests/install/consumer.cpp tests/install/overflow_consumer.cpp "$scratch/"
# shellcheck disable=SC2046
${CXX:-c++} -o "$scratch/consumer" "$scratch/consumer.cpp" $(pkg-config --cflags --libs weft)
out=$("$scratch/consumer")
if [ "$out" != "consumer ok: 3 callbacks, 1 timer, 1 cross-thread, 2 fibers" ]; then
  echo "consumer-test: unexpected output: $out" >&2
  exit 1
fi
echo "consumer-test: installed libweft.a links and runs ($out)"

cflags=$(pkg-config --cflags weft)
if ! echo 'int main() {}' | ${CXX:-c++} -fstack-clash-protection -Werror -x c++ - -o /dev/null 2>/dev/null; then
  echo "consumer-test: SKIPPED the overflow consumer: ${CXX:-c++} has no -fstack-clash-protection here"
  exit 0
fi
if [[ " $cflags " != *" -fstack-clash-protection "* ]]; then
  echo "consumer-test: pkg-config --cflags weft lacks -fstack-clash-protection: $cflags" >&2
  exit 1
fi
# shellcheck disable=SC2046
${CXX:-c++} -o "$scratch/overflow_consumer" "$scratch/overflow_consumer.cpp" $(pkg-config --cflags --libs weft)
# (a group, so the shell's own "Aborted" note goes to the file too)
if { "$scratch/overflow_consumer"; } >"$scratch/overflow.out" 2>&1; then status=0; else status=$?; fi
expected="weft: fiber 'consumer-deep' overflowed its stack (guard hit); aborting"
if [ "$status" -eq 0 ] || ! grep -qF "$expected" "$scratch/overflow.out"; then
  echo "consumer-test: a 600 KiB frame was not stopped at the guard (exit $status):" >&2
  cat "$scratch/overflow.out" >&2
  exit 1
fi
echo "consumer-test: a 600 KiB frame built with weft.pc's flags stops at the guard ($expected)"
