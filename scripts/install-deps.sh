#!/usr/bin/env bash
# Installs what weft needs to build and test, or says how to. Safe to run again.
set -euo pipefail

case "$(uname -s)" in
  Darwin)
    prefix=$(brew --prefix 2>/dev/null || true)
    command -v meson >/dev/null && [ -d "$prefix/include/boost/context" ] && [ -f "$prefix/include/llhttp.h" ] && exit 0
    echo "weft needs: brew install meson ninja pkg-config cmake openssl@3 boost mimalloc llhttp googletest google-benchmark" >&2
    # openssl@3 is keg-only: meson finds it through its .pc files once they are on the path.
    echo "and then:   export PKG_CONFIG_PATH=\"\$(brew --prefix openssl@3)/lib/pkgconfig:\$PKG_CONFIG_PATH\"" >&2
    exit 1 ;;
  FreeBSD)
    command -v meson >/dev/null && [ -d /usr/local/include/boost/context ] && [ -f /usr/local/include/llhttp.h ] && exit 0
    echo "weft needs: pkg install meson ninja pkgconf cmake openssl boost-libs mimalloc llhttp googletest benchmark" >&2
    exit 1 ;;
esac

# libssl-dev: OpenSSL 3 for TLS; the openssl tool makes the test certificates and is a TLS
# peer in the tests, as are curl and python3. zlib1g-dev: gzip for the HTTP client.
# curl and python3: the third-party peers of the HTTP tests (tests/net/http_peer_test.cpp
# skips, loudly, without them). gdb: the test of gdb/weft-gdb.py (tests/gdb).
packages="meson ninja-build pkg-config cmake g++ libboost-context-dev libmimalloc-dev libgtest-dev libgmock-dev libbenchmark-dev node-llhttp libssl-dev zlib1g-dev openssl curl python3 gdb"
# --bench: also the peers the benchmarks compare against (optional for make test), and wrk
# for the HTTP benchmark (bench/http_bench.sh).
[ "${1:-}" = "--bench" ] && packages="$packages libuv1-dev libboost-fiber-dev libboost-coroutine-dev \
  libconcurrentqueue-dev python3-uvloop golang-go cargo librust-tokio-dev gnuplot-nox wrk"
# --instr: valgrind (callgrind) and strace for `make bench-instr` (scripts/bench_instr.py:
# instructions and syscalls per operation), with the C++ peers it compares against.
[ "${1:-}" = "--instr" ] && packages="$packages valgrind strace libuv1-dev libboost-fiber-dev \
  libboost-coroutine-dev libconcurrentqueue-dev"
# --fuzz: clang 16 and its runtimes (clang 14 lacks std::source_location, which weft uses).
[ "${1:-}" = "--fuzz" ] && packages="$packages clang-16 libclang-rt-16-dev"
# --docs: Doxygen for `make docs`.
[ "${1:-}" = "--docs" ] && packages="$packages doxygen"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "weft needs these Debian packages:$missing" >&2
  echo "run as root:  $cmd" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends $missing >/dev/null
