#!/usr/bin/env bash
# Installs the built library into a scratch prefix, then builds and runs a small outside
# program against it using nothing but `pkg-config --cflags --libs weft`.
set -euo pipefail
build=${1:-build}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build" --no-rebuild --destdir "$scratch/root" >/dev/null
pcdir=$(dirname "$(find "$scratch/root" -name weft.pc | head -n1)")
export PKG_CONFIG_PATH="$pcdir"
export PKG_CONFIG_SYSROOT_DIR="$scratch/root"

cp tests/install/consumer.cpp "$scratch/"
# shellcheck disable=SC2046
${CXX:-c++} -o "$scratch/consumer" "$scratch/consumer.cpp" $(pkg-config --cflags --libs weft)
out=$("$scratch/consumer")
if [ "$out" != "consumer ok: 3 callbacks, 1 timer, 1 cross-thread, 2 fibers" ]; then
  echo "consumer-test: unexpected output: $out" >&2
  exit 1
fi
echo "consumer-test: installed libweft.a links and runs ($out)"
