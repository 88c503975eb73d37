#!/usr/bin/env bash
# port-configure.sh ZIG SCRATCH: meson's configure step for x86_64-macos and aarch64-macos
# (called by scripts/port-check.sh). Configure only — nothing is compiled or linked — against
# a scratch prefix laid out as `brew install llhttp mimalloc boost googletest openssl@3` lays
# out $(brew --prefix): the headers (Debian's, linked in; OpenSSL's from SCRATCH/openssl,
# which port-check.sh assembles), empty stand-ins for the libraries, their .pc files and
# their CMake packages (llhttp's in its older form, with only llhttp::llhttp_shared).
# openssl@3 is keg-only, as Homebrew installs it: in Cellar/openssl@3/VERSION, reached
# through opt/openssl@3, with nothing linked into include/ or lib/. Two runs per target:
#   pkg-config  the .pc files, the keg's too (as PKG_CONFIG_PATH=$(brew --prefix
#               openssl@3)/lib/pkgconfig adds them), Boost through meson's Boost finder
#               given boost_root (BOOST_ROOT);
#   cmake       no .pc files and nothing for meson's Boost finder (as on Apple-silicon
#               Homebrew, whose /opt/homebrew meson 1.0 does not search), so every library
#               must come through CMake: its CMake package, or for OpenSSL CMake's
#               FindOpenSSL given OPENSSL_ROOT_DIR=$(brew --prefix openssl@3).
# zlib is the macOS SDK's, not Homebrew's: zig's macOS headers have its zlib.h, and a stub
# libz.tbd stands in on the link path for the SDK's (zig has only libSystem's). Homebrew's
# pkg-config ships a zlib.pc for it (Library/Homebrew/os/mac/pkgconfig/VERSION), used in
# the pkg-config run; the cmake run, with no .pc files, finds it as the SDK's <zlib.h> -lz.
# Each run must end with a summary naming the expected source of each library: on this
# machine a discovery that broke would otherwise fall back silently to Debian's llhttp sources.
set -euo pipefail
cd "$(dirname "$0")/.."
zig=$1
work=$2/macos-configure
brew=$work/brew
mkdir -p "$brew/include" "$brew/lib/pkgconfig" "$work/no-pc" "$work/no-boost"

ln -s /usr/share/include/llhttp/llhttp.h /usr/include/mimalloc.h /usr/include/boost \
      /usr/include/gtest /usr/include/gmock "$brew/include/"
for lib in libllhttp.dylib libmimalloc.dylib libboost_context-mt.a libboost_context-mt.dylib \
           libgtest.a libgtest_main.a libgmock.a libgmock_main.a; do
  : >"$brew/lib/$lib"
done

pc() {  # pc NAME VERSION LIBRARY
  cat >"$brew/lib/pkgconfig/$1.pc" <<EOF
prefix=$brew
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Description: stand-in for port-check
Version: $2
Libs: -L\${libdir} -l$3
Cflags: -I\${includedir}
EOF
}
pc libllhttp 8.1.0 llhttp
# openssl@3, keg-only: its .pc files as OpenSSL's own install writes them (openssl.pc is
# libssl + libcrypto).
ssl_version=$(sed -nE 's/^# *define OPENSSL_VERSION_STR "(.*)"/\1/p' "$2/openssl/opensslv.h")
keg=$brew/Cellar/openssl@3/$ssl_version
mkdir -p "$keg/include" "$keg/lib/pkgconfig" "$brew/opt"
ln -s "$2/openssl" "$keg/include/openssl"
ln -s "../Cellar/openssl@3/$ssl_version" "$brew/opt/openssl@3"
for lib in libssl libcrypto; do
  : >"$keg/lib/$lib.3.dylib"
  ln -s "$lib.3.dylib" "$keg/lib/$lib.dylib"
  : >"$keg/lib/$lib.a"
  cat >"$keg/lib/pkgconfig/$lib.pc" <<EOF
prefix=$keg
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: OpenSSL-$lib
Description: stand-in for port-check
Version: $ssl_version
Libs: -L\${libdir} -l${lib#lib}
Cflags: -I\${includedir}
EOF
done
printf 'Name: OpenSSL\nDescription: stand-in for port-check\nVersion: %s\nRequires: libssl libcrypto\n' \
  "$ssl_version" >"$keg/lib/pkgconfig/openssl.pc"
pc mimalloc 2.0.9 mimalloc
# zlib: the SDK's library (a text stub, as the SDK's are) and Homebrew's .pc file for it.
mkdir -p "$work/sdk-lib" "$work/brew-os-mac-pkgconfig"
cat >"$work/sdk-lib/libz.tbd" <<EOF
--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, arm64-macos ]
install-name:    '/usr/lib/libz.1.dylib'
current-version: 1.2.11
exports:
  - targets:     [ x86_64-macos, arm64-macos ]
    symbols:     [ _zlibVersion, _inflate, _inflateEnd, _inflateInit2_ ]
...
EOF
printf 'libdir=/usr/lib\n\nName: zlib\nDescription: stand-in for port-check\nVersion: 1.2.11\nLibs: -L${libdir} -lz\nCflags:\n' \
  >"$work/brew-os-mac-pkgconfig/zlib.pc"
for p in gtest gtest_main gmock gmock_main; do pc $p 1.12.1 $p; done

cmake_package() {  # cmake_package DIR NAME VERSION TARGET LIBRARY
  mkdir -p "$brew/lib/cmake/$1"
  cat >"$brew/lib/cmake/$1/$2-config.cmake" <<EOF
get_filename_component(_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
add_library($4 SHARED IMPORTED)
set_target_properties($4 PROPERTIES IMPORTED_LOCATION "\${_prefix}/lib/$5"
                      INTERFACE_INCLUDE_DIRECTORIES "\${_prefix}/include")
EOF
  printf 'set(PACKAGE_VERSION %s)\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n' "$3" \
    >"$brew/lib/cmake/$1/$2-config-version.cmake"
}
cmake_package llhttp llhttp 8.1.0 llhttp::llhttp_shared libllhttp.dylib
cmake_package mimalloc mimalloc 2.0.9 mimalloc libmimalloc.dylib
cmake_package boost_context-1.74.0 boost_context 1.74.0 Boost::context libboost_context-mt.dylib

status=0
for target in x86_64-macos aarch64-macos; do
  # meson asks the compiler for its linker's version; zig's answer ("zig ld") is not one
  # meson 1.0 knows, so the wrapper answers as Apple's ld64 does (zig's Mach-O linker takes
  # ld64's flags). Every other call goes to zig unchanged.
  for lang in cc c++; do
    cat >"$work/zig-$lang-$target" <<EOF
#!/bin/sh
case " \$* " in
  *" -Wl,--version "*) echo "ld: unknown option: --version" >&2; exit 1 ;;
  *" -Wl,-v "*) echo "@(#)PROGRAM:ld  PROJECT:ld64-0 (zig ld)" >&2; exit 0 ;;
esac
exec "$zig" $lang -target $target "\$@"
EOF
    chmod +x "$work/zig-$lang-$target"
  done
  for way in pkg-config cmake; do
    pcdir="'$brew/lib/pkgconfig', '$brew/opt/openssl@3/lib/pkgconfig', '$work/brew-os-mac-pkgconfig'"
    boost_root=$brew openssl_root=
    expect=('pkg-config libllhttp' 'pkg-config mimalloc' 'meson boost finder' 'pkg-config openssl'
            'pkg-config zlib')
    if [ $way = cmake ]; then
      pcdir="'$work/no-pc'" boost_root=$work/no-boost openssl_root=$brew/opt/openssl@3
      # FindOpenSSL's result must be the keg's library, not Debian's (it asks the host's
      # pkg-config too, which knows /usr's).
      expect=('cmake llhttp' 'cmake mimalloc' 'cmake boost_context'
              "cmake OpenSSL $ssl_version \\($brew/[^)]*openssl@3/[^)]*libssl\\."
              'system <zlib.h> -lz 1\.2\.11')
    fi
    cross=$work/$target-$way.ini
    cat >"$cross" <<EOF
[binaries]
c = '$work/zig-cc-$target'
cpp = '$work/zig-c++-$target'
ar = ['$zig', 'ar']
ranlib = ['$zig', 'ranlib']
pkgconfig = 'pkg-config'
cmake = 'cmake'

[properties]
pkg_config_libdir = [$pcdir]
boost_root = '$boost_root'

[built-in options]
cmake_prefix_path = ['$brew']
c_link_args = ['-L$work/sdk-lib']
cpp_link_args = ['-L$work/sdk-lib']

[host_machine]
system = 'darwin'
cpu_family = '${target%%-*}'
cpu = '${target%%-*}'
endian = 'little'
EOF
    log=$work/$target-$way.log
    failed=0
    if ! OPENSSL_ROOT_DIR=$openssl_root meson setup "$work/build-$target-$way" \
         --cross-file "$cross" -Dbenchmarks=false >"$log" 2>&1; then
      echo "port-check: $target: meson configure ($way) failed:" >&2
      grep -E -A3 'ERROR' "$log" | head -20 >&2
      status=1
      continue
    fi
    grep -qE '^ +reactor +: kqueue$' "$log" || failed=1
    grep -qE "^ +llhttp +: ${expect[0]} " "$log" || failed=1
    grep -qE "^ +mimalloc +: ${expect[1]} " "$log" || failed=1
    grep -qE "^ +Boost.Context +: ${expect[2]} " "$log" || failed=1
    grep -qE "^ +OpenSSL +: ${expect[3]}" "$log" || failed=1
    grep -qE "^ +zlib +: ${expect[4]}" "$log" || failed=1
    if [ $failed -ne 0 ]; then
      echo "port-check: $target: meson configure ($way) expected kqueue, $(printf '%s, ' "${expect[@]}")got:" >&2
      sed -n '/^weft /,/^  User/p' "$log" >&2
      status=1
      continue
    fi
    found=$(grep -E '^ +(llhttp|mimalloc|Boost.Context|OpenSSL|zlib) +:' "$log" | sed -E 's/^ +//; s/ +: /: /' |
            paste -sd ';' | sed 's/;/; /g')
    echo "port-check: $target: meson configure ($way) passes: $found"
  done
done
exit $status
