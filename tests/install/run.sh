#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/install/run.sh: prove that an installed goc works for projects
# outside the tree.
#
#   1. configure and build goc (no tests, benchmarks or examples) in a
#      temporary directory, and `cmake --install` it into <tmp>/prefix;
#   2. check the installed files, and that the shared library exports goc_go
#      but no goc__* (internal) symbol;
#   3. build consumer.c with the flags `pkg-config --cflags --libs goc`
#      gives, and run it;
#   4. build the CMake project in this directory, which uses
#      find_package(goc 0.1 REQUIRED) and goc::goc / goc::goc_static, and
#      run both programs.
#
# Environment: CC (compiler for the pkg-config build; default cc), JOBS
# (build parallelism; default 2), GOC_INSTALL_KEEP=1 to keep the temporary
# directory for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}
jobs=${JOBS:-2}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/goc-install.XXXXXX")
cleanup() {
    if [[ ${GOC_INSTALL_KEEP:-0} == 1 ]]; then
        echo "install test: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

say() { printf '\n--- install test: %s\n' "$*"; }
die() {
    printf 'install test: FAILED: %s\n' "$*" >&2
    exit 1
}

# The version the tree declares, e.g. 0.1.0.
version=$(sed -n 's/^project(goc VERSION \([0-9][0-9.]*\).*/\1/p' \
    "$root/CMakeLists.txt")
[[ -n $version ]] || die "no 'project(goc VERSION ...)' in CMakeLists.txt"
major=${version%%.*}

prefix=$tmp/prefix

say "build goc $version"
cmake -S "$root" -B "$tmp/build" \
    -DGOC_BUILD_TESTS=OFF -DGOC_BUILD_BENCH=OFF -DGOC_BUILD_EXAMPLES=OFF
cmake --build "$tmp/build" -j "$jobs"

say "install into $prefix"
cmake --install "$tmp/build" --prefix "$prefix"

# ---------------------------------------------------------------------------
say "check the installed files"
for f in include/goc.h include/goc/common.h include/goc/runtime.h \
    include/goc/sync.h include/goc/time.h; do
    [[ -f $prefix/$f ]] || die "$f was not installed"
done

# libdir is lib/ or lib/<multiarch>/ depending on GNUInstallDirs.
pcfile=$(find "$prefix" -path '*/pkgconfig/goc.pc' | head -n 1)
[[ -n $pcfile ]] || die "goc.pc was not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
echo "libdir: $libdir"

so=$libdir/libgoc.so
[[ -L $so || -f $so ]] || die "libgoc.so is not in $libdir"
[[ -e $so.$major ]] || die "libgoc.so.$major is not in $libdir"
[[ -f $so.$version ]] || die "libgoc.so.$version is not in $libdir"
[[ -f $libdir/libgoc.a ]] || die "libgoc.a is not in $libdir"
soname=$(readelf -d "$so.$version" |
    sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[[ $soname == "libgoc.so.$major" ]] ||
    die "SONAME is '$soname', want libgoc.so.$major"
for f in gocConfig.cmake gocConfigVersion.cmake gocTargets.cmake; do
    [[ -f $libdir/cmake/goc/$f ]] || die "cmake/goc/$f was not installed"
done

say "check the exported symbols"
# Dynamic symbols the shared library defines, without version suffixes.
nm -D --defined-only "$so.$version" | awk '{ print $NF }' | sed 's/@.*//' |
    sort -u >"$tmp/exported"
echo "$(wc -l <"$tmp/exported") symbols exported"
if grep '^goc__' "$tmp/exported"; then
    die "internal goc__* symbols are exported (listed above)"
fi
grep -qx goc_go "$tmp/exported" || die "goc_go is not exported"
# Anything else that is not goc_* pollutes the user's namespace (the linker
# may define the usual section markers itself).
if grep -v -e '^goc_' -e '^_init$' -e '^_fini$' -e '^__bss_start$' \
    -e '^_edata$' -e '^_end$' "$tmp/exported"; then
    die "symbols outside the goc_ namespace are exported (listed above)"
fi
# The static library cannot hide its internal symbols, but every global one
# must still be in goc's namespace.
nm -g --defined-only "$libdir/libgoc.a" 2>/dev/null |
    awk 'NF >= 3 { print $NF }' | sort -u >"$tmp/static"
grep -qx goc_go "$tmp/static" || die "libgoc.a does not define goc_go"
if grep -v '^goc_' "$tmp/static"; then
    die "libgoc.a defines globals outside the goc_ namespace (listed above)"
fi

# Heap profiling is a library of its own: libgoc never replaces malloc,
# libgoc_heapprof does (when it was built: not under the sanitizers).
say "check libgoc_heapprof"
[[ -f $libdir/libgoc_heapprof.a ]] || die "libgoc_heapprof.a is not in $libdir"
nm -D --defined-only "$libdir/libgoc_heapprof.so" | awk '{ print $NF }' |
    sed 's/@.*//' | grep -qx malloc ||
    die "libgoc_heapprof.so does not define malloc"
if grep -qx malloc "$tmp/exported"; then
    die "libgoc.so defines malloc"
fi
pkg_requires=$(sed -n 's/^Requires.private: *//p' "$pcfile")
echo "goc.pc Requires.private: ${pkg_requires:-(none)}"

# Runs a consumer program; it must exit 0 and print "consumer ok".
run_consumer() {
    local out rc=0
    out=$(timeout 60 "$@" 2>&1) || rc=$?
    printf '%s\n' "$out"
    [[ $rc -eq 0 ]] || die "$* exited with status $rc"
    grep -qx 'consumer ok' <<<"$out" || die "$* did not print 'consumer ok'"
}

# Checks that $1 loads libgoc from the install prefix (or not at all: $2=no).
check_loads() {
    local deps
    deps=$(ldd "$1" | grep 'libgoc\.so' || true)
    if [[ ${2:-yes} == no ]]; then
        [[ -z $deps ]] || die "$1 should not need libgoc.so: $deps"
    else
        [[ $deps == *"=> $libdir/libgoc.so.$major "* ]] ||
            die "$1 does not load libgoc from $libdir: ${deps:-not found}"
    fi
}

# ---------------------------------------------------------------------------
say "pkg-config consumer"
export PKG_CONFIG_PATH=$pcdir
pc_version=$(pkg-config --modversion goc)
[[ $pc_version == "$version" ]] ||
    die "pkg-config says version $pc_version, want $version"
pc_flags=$(pkg-config --cflags --libs goc)
echo "pkg-config --cflags --libs goc: $pc_flags"
# shellcheck disable=SC2086 # the flags are meant to be split into words
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer-pc" \
    "$here/consumer.c" $pc_flags
unset PKG_CONFIG_PATH
(
    export LD_LIBRARY_PATH=$libdir
    check_loads "$tmp/consumer-pc"
    run_consumer "$tmp/consumer-pc"
)

# ---------------------------------------------------------------------------
say "CMake consumer (find_package(goc 0.1))"
cmake -S "$here" -B "$tmp/consumer-cmake" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
goc_dir=$(sed -n 's/^goc_DIR:PATH=//p' "$tmp/consumer-cmake/CMakeCache.txt")
[[ $goc_dir == "$libdir/cmake/goc" ]] ||
    die "find_package(goc) found '$goc_dir', not $libdir/cmake/goc"
cmake --build "$tmp/consumer-cmake" -j "$jobs"
(
    # goc::goc must carry the library's location: the build tree's RPATH
    # finds it without LD_LIBRARY_PATH.
    unset LD_LIBRARY_PATH
    check_loads "$tmp/consumer-cmake/consumer"
    run_consumer "$tmp/consumer-cmake/consumer"
    check_loads "$tmp/consumer-cmake/consumer_static" no
    run_consumer "$tmp/consumer-cmake/consumer_static"
)

printf '\ninstall test: ok\n'
