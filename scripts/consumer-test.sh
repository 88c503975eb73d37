#!/usr/bin/env bash
# Installs the built library into a scratch prefix, then builds and runs a small outside
# program (tests/install/consumer.cpp, which makes a TLS context too, so OpenSSL must be
# on each link line) against it three ways, as its users would: with
# nothing but `pkg-config --cflags --libs weft`, with CMake's find_package(weft) and the
# weft::weft target, and with meson's dependency('weft'); then one whose fiber overflows
# its stack with a frame far bigger than the guard (the flags must carry
# -fstack-clash-protection so the abort names the fiber).
set -euo pipefail
build=${1:-build}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
expected="consumer ok: 3 callbacks, 1 timer, 1 cross-thread, 2 fibers, 1 TLS client"

meson install -C "$build" --no-rebuild --destdir "$scratch/root" >/dev/null
pcdir=$(dirname "$(find "$scratch/root" -name weft.pc | head -n1)")
export PKG_CONFIG_PATH="$pcdir"
export PKG_CONFIG_SYSROOT_DIR="$scratch/root"
cmakedir=$(dirname "$(find "$scratch/root" -name weftConfig.cmake | head -n1)")

check() {  # check HOW PROGRAM
  local out
  out=$("$2")
  if [ "$out" != "$expected" ]; then
    echo "consumer-test ($1): unexpected output: $out" >&2
    exit 1
  fi
  echo "consumer-test: installed libweft.a links and runs through $1 ($out)"
}

mkdir "$scratch/plain"
cp tests/install/consumer.cpp "$scratch/plain/"
# shellcheck disable=SC2046
${CXX:-c++} -o "$scratch/plain/consumer" "$scratch/plain/consumer.cpp" $(pkg-config --cflags --libs weft)
check pkg-config "$scratch/plain/consumer"

mkdir "$scratch/cmake"
cp tests/install/consumer.cpp tests/install/CMakeLists.txt "$scratch/cmake/"
cmake -S "$scratch/cmake" -B "$scratch/cmake/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dweft_DIR="$cmakedir" >"$scratch/cmake.log" 2>&1 &&
  cmake --build "$scratch/cmake/build" >>"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log" >&2; echo "consumer-test: the CMake build failed" >&2; exit 1; }
check "CMake find_package" "$scratch/cmake/build/consumer"
# The target carries weft.pc's compile options too (fiber frames are the program's code).
for flag in $(pkg-config --cflags-only-other weft); do
  [ "$flag" = "-std=c++20" ] && continue  # the target says cxx_std_20 instead
  grep -qe "$flag" "$scratch/cmake/build/build.ninja" ||
    { echo "consumer-test: weft::weft does not carry $flag" >&2; exit 1; }
done

mkdir "$scratch/meson"
cp tests/install/consumer.cpp tests/install/meson.build "$scratch/meson/"
meson setup "$scratch/meson/build" "$scratch/meson" >"$scratch/meson.log" 2>&1 &&
  meson compile -C "$scratch/meson/build" >>"$scratch/meson.log" 2>&1 ||
  { cat "$scratch/meson.log" >&2; echo "consumer-test: the meson build failed" >&2; exit 1; }
check "meson dependency()" "$scratch/meson/build/consumer"

cp tests/install/overflow_consumer.cpp "$scratch/"
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
