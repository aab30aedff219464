#!/bin/sh
# install_consumers.sh — install the build tree the way a packager does
# (DESTDIR staging plus a prefix), check exactly which files land, then
# prove that a program outside the tree can use the staged install both
# through find_package(objmem) and through pkg-config, linking the shared
# library or the static one.
#
# Run by ctest, which passes everything through the environment:
#   OM_BUILD_DIR     the objmem build tree to install
#   OM_SOURCE_DIR    the objmem source tree (for the header comparison)
#   OM_WORK_DIR      scratch directory, wiped first (inside the build tree)
#   OM_CONSUMER_DIR  tests/hygiene/consumer (CMakeLists.txt + main.c)
#   OM_CMAKE         the cmake executable
#   OM_GENERATOR     CMake generator for the consumer (the build's own)
#   OM_MAKE_PROGRAM  its make program (may be empty)
#   OM_CC            the C compiler the library was built with
#   OM_LIBDIR, OM_INCLUDEDIR  CMAKE_INSTALL_LIBDIR / _INCLUDEDIR of the build
#   OM_VERSION       the project version, MAJOR.MINOR.PATCH
#   OM_PKG_CONFIG    pkg-config found at configure time (may be empty)
#   OM_EXTRA_FLAGS   compile+link flags consumers need (sanitizers; may be
#                    empty): a sanitized libobjmem.so links only into
#                    sanitized programs
#   OM_BINDIR, OM_MANDIR  CMAKE_INSTALL_BINDIR / _MANDIR of the build
#   OM_TOOLS         1 when objmem-trace is built (OBJMEM_BUILD_TOOLS)
set -eu

fail() { echo "install_consumers: FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

for var in OM_BUILD_DIR OM_SOURCE_DIR OM_WORK_DIR OM_CONSUMER_DIR OM_CMAKE \
           OM_GENERATOR OM_CC OM_LIBDIR OM_INCLUDEDIR OM_VERSION; do
    eval "value=\${$var:-}"
    [ -n "$value" ] || fail "$var is not set (run this test through ctest)"
done
OM_MAKE_PROGRAM=${OM_MAKE_PROGRAM:-}
OM_PKG_CONFIG=${OM_PKG_CONFIG:-}
OM_EXTRA_FLAGS=${OM_EXTRA_FLAGS:-}
OM_BINDIR=${OM_BINDIR:-bin}
OM_MANDIR=${OM_MANDIR:-share/man}
OM_TOOLS=${OM_TOOLS:-0}

# The final prefix.  Deliberately not the build's CMAKE_INSTALL_PREFIX, so a
# file that hard-codes the configure-time prefix (objmem.pc) is caught.
prefix=/opt/objmem-hygiene
stage=$OM_WORK_DIR/stage
case $OM_LIBDIR in
    /*) final_libdir=$OM_LIBDIR ;;
    *) final_libdir=$prefix/$OM_LIBDIR ;;
esac
case $OM_INCLUDEDIR in
    /*) final_incdir=$OM_INCLUDEDIR ;;
    *) final_incdir=$prefix/$OM_INCLUDEDIR ;;
esac
libdir=$stage$final_libdir   # where the files really are
incdir=$stage$final_incdir
cmakedir=$final_libdir/cmake/objmem
case $OM_BINDIR in
    /*) final_bindir=$OM_BINDIR ;;
    *) final_bindir=$prefix/$OM_BINDIR ;;
esac
case $OM_MANDIR in
    /*) final_mandir=$OM_MANDIR ;;
    *) final_mandir=$prefix/$OM_MANDIR ;;
esac
major=${OM_VERSION%%.*}
minor=${OM_VERSION#*.}
minor=${minor%%.*}
ld_path=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

case $OM_WORK_DIR in
    /*/*) ;;
    *) fail "refusing to wipe OM_WORK_DIR='$OM_WORK_DIR'" ;;
esac
rm -rf "$OM_WORK_DIR"
mkdir -p "$OM_WORK_DIR"

# ---------------------------------------------------------------------------
step "install: DESTDIR=$stage cmake --install --prefix $prefix"
prefix_existed=no
[ -e "$prefix" ] && prefix_existed=yes
DESTDIR=$stage "$OM_CMAKE" --install "$OM_BUILD_DIR" --prefix "$prefix" ||
    fail "cmake --install failed"

# DESTDIR honoured: every file cmake says it installed (the manifest lists
# final paths) is in the stage, and nothing appeared at the real prefix.
manifest=$OM_BUILD_DIR/install_manifest.txt
[ -s "$manifest" ] || fail "cmake --install wrote no $manifest"
while IFS= read -r f; do
    [ -e "$stage$f" ] || [ -L "$stage$f" ] ||
        fail "$f is in $manifest but not under DESTDIR ($stage)"
done < "$manifest"
if [ $prefix_existed = no ] && [ -e "$prefix" ]; then
    fail "the install created $prefix outside DESTDIR"
fi

# ---------------------------------------------------------------------------
step "installed files"
# Everything installed, as final paths (the stage stripped).
installed=$(cd "$stage" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort)
echo "$installed"

unexpected=
for f in $installed; do
    case $f in
        "$final_incdir/objmem.h" | \
        "$final_libdir"/libobjmem.so* | \
        "$final_libdir/libobjmem.a" | \
        "$cmakedir/objmemConfig.cmake" | \
        "$cmakedir/objmemConfigVersion.cmake" | \
        "$cmakedir"/objmemTargets*.cmake | \
        "$final_libdir/pkgconfig/objmem.pc") ;;
        "$final_bindir/objmem-trace" | \
        "$final_libdir/objmem/libobjmem-trace.so" | \
        "$final_mandir/man1/objmem-trace.1")
            [ "$OM_TOOLS" = 1 ] || unexpected="$unexpected
    $f (objmem-trace is not built)" ;;
        *) unexpected="$unexpected
    $f" ;;
    esac
done
[ -z "$unexpected" ] || fail "unexpected installed files (if intended, list them in $0):$unexpected"

missing=
for f in "$final_incdir/objmem.h" \
         "$final_libdir/libobjmem.so" \
         "$final_libdir/libobjmem.so.$major" \
         "$final_libdir/libobjmem.so.$OM_VERSION" \
         "$final_libdir/libobjmem.a" \
         "$cmakedir/objmemConfig.cmake" \
         "$cmakedir/objmemConfigVersion.cmake" \
         "$cmakedir/objmemTargets.cmake" \
         "$final_libdir/pkgconfig/objmem.pc"; do
    # -e follows symlinks: a dangling libobjmem.so link counts as missing.
    [ -e "$stage$f" ] || missing="$missing
    $f"
done
set -- "$stage$cmakedir"/objmemTargets-*.cmake
[ -e "$1" ] || missing="$missing
    $cmakedir/objmemTargets-<config>.cmake"
if [ "$OM_TOOLS" = 1 ]; then
    for f in "$final_bindir/objmem-trace" \
             "$final_libdir/objmem/libobjmem-trace.so" \
             "$final_mandir/man1/objmem-trace.1"; do
        [ -e "$stage$f" ] || missing="$missing
    $f"
    done
fi
[ -z "$missing" ] || fail "missing installed files:$missing"

cmp "$OM_SOURCE_DIR/include/objmem.h" "$incdir/objmem.h" ||
    fail "the installed objmem.h differs from include/objmem.h"
echo "all expected files, nothing else"

# The installed command finds the installed preload library (a path
# relative to its own directory, so the staged copy finds the staged one).
if [ "$OM_TOOLS" = 1 ]; then
    step "installed objmem-trace records a program"
    trace=$OM_WORK_DIR/true.trace
    "$stage$final_bindir/objmem-trace" run -o "$trace" -- true ||
        fail "the installed objmem-trace run failed"
    "$stage$final_bindir/objmem-trace" report "$trace" >/dev/null ||
        fail "the installed objmem-trace report failed on $trace"
    echo "recorded and reported $trace"
fi

# A consumer must load the staged libobjmem.so, not a system one or the
# build tree's, and must not have linked the static library instead.
check_loads_staged() {
    if ! command -v ldd >/dev/null 2>&1; then
        echo "(ldd not found: not checking which libobjmem.so $1 loads)"
        return 0
    fi
    line=$(LD_LIBRARY_PATH=$ld_path ldd "$1" | grep libobjmem || true)
    case $line in
        *"=> $libdir/libobjmem.so.$major "*) echo "$1 loads $libdir/libobjmem.so.$major" ;;
        *) fail "$1 does not load the installed libobjmem.so.$major: ${line:-no libobjmem in ldd output}" ;;
    esac
}

# A statically linked consumer must not load libobjmem.so at all.
check_loads_no_objmem() {
    if ! command -v ldd >/dev/null 2>&1; then
        echo "(ldd not found: not checking that $1 is linked statically)"
        return 0
    fi
    if LD_LIBRARY_PATH=$ld_path ldd "$1" | grep -q libobjmem; then
        fail "$1 loads libobjmem.so, but was to link libobjmem.a"
    fi
    echo "$1 links libobjmem.a"
}

# The consumer must print OK (main.c checks the version, refcounts, leaks).
run_consumer() {
    out=$(LD_LIBRARY_PATH=$ld_path "$1") || fail "$1 failed: $out"
    echo "$out"
    case $out in
        OK*) ;;
        *) fail "$1 did not print OK" ;;
    esac
}

# configure_consumer BUILD_DIR [CMAKE ARGS...]: configure consumer/ against
# the staged install only (no package registry).
configure_consumer() {
    dir=$1
    shift
    "$OM_CMAKE" -S "$OM_CONSUMER_DIR" -B "$dir" -G "$OM_GENERATOR" \
        ${OM_MAKE_PROGRAM:+"-DCMAKE_MAKE_PROGRAM=$OM_MAKE_PROGRAM"} \
        "-DCMAKE_C_COMPILER=$OM_CC" \
        -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_C_FLAGS=$OM_EXTRA_FLAGS" \
        "-DCMAKE_EXE_LINKER_FLAGS=$OM_EXTRA_FLAGS" \
        "-DCMAKE_PREFIX_PATH=$stage$prefix" \
        -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
        -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON \
        "$@"
}

# ---------------------------------------------------------------------------
step "CMake consumer: find_package(objmem REQUIRED), objmem::objmem"
cbuild=$OM_WORK_DIR/cmake-consumer
configure_consumer "$cbuild" || fail "configuring the CMake consumer failed"
found=$(sed -n 's/^objmem_DIR:PATH=//p' "$cbuild/CMakeCache.txt")
[ "$found" = "$libdir/cmake/objmem" ] ||
    fail "find_package found objmem in '$found', not in the install ($libdir/cmake/objmem)"
"$OM_CMAKE" --build "$cbuild" --config Release || fail "building the CMake consumer failed"
exe=$cbuild/objmem_consumer
[ -x "$exe" ] || exe=$cbuild/Release/objmem_consumer   # multi-config generators
check_loads_staged "$exe"
run_consumer "$exe"

# The static library passes on its private dependencies (threads, libdw
# or -ldl): objmemConfig.cmake must find them for objmem::objmem_static.
step "CMake consumer: objmem::objmem_static"
sbuild=$OM_WORK_DIR/cmake-static-consumer
configure_consumer "$sbuild" -DOBJMEM_CONSUMER_STATIC=ON ||
    fail "configuring the static CMake consumer failed"
"$OM_CMAKE" --build "$sbuild" --config Release ||
    fail "building the static CMake consumer failed"
exe=$sbuild/objmem_consumer
[ -x "$exe" ] || exe=$sbuild/Release/objmem_consumer
check_loads_no_objmem "$exe"
run_consumer "$exe"

step "CMake consumer: find_package(objmem $major.$minor REQUIRED)"
configure_consumer "$OM_WORK_DIR/cmake-version-ok" \
    "-DOBJMEM_REQUEST_VERSION=$major.$minor" ||
    fail "find_package(objmem $major.$minor) rejected objmem $OM_VERSION"

# The version file must really be consulted: another major is refused.
bad=$((major + 1)).0
step "CMake consumer: find_package(objmem $bad) must be refused"
if out=$(configure_consumer "$OM_WORK_DIR/cmake-version-bad" \
             "-DOBJMEM_REQUEST_VERSION=$bad" 2>&1); then
    fail "find_package(objmem $bad REQUIRED) accepted objmem $OM_VERSION"
fi
case $out in
    *"$OM_VERSION"*) echo "refused, as it should be" ;;
    *) fail "configuring with find_package(objmem $bad) failed, but not by rejecting version $OM_VERSION:
$out" ;;
esac

# ---------------------------------------------------------------------------
step "pkg-config consumer"
pc=$OM_PKG_CONFIG
if [ -z "$pc" ] || ! command -v "$pc" >/dev/null 2>&1; then
    pc=$(command -v pkg-config || command -v pkgconf || true)
fi
[ -n "$pc" ] || fail "pkg-config is not installed, and this test needs it (Debian/Ubuntu: apt-get install pkgconf)"
echo "using $pc"

PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
unset PKG_CONFIG_SYSROOT_DIR

# objmem.pc names the final paths, so its prefix is the one installed to.
pc_prefix=$("$pc" --variable=prefix objmem) || fail "$pc cannot read objmem.pc in $PKG_CONFIG_PATH"
[ "$pc_prefix" = "$prefix" ] ||
    fail "objmem.pc says prefix=$pc_prefix, but it was installed with --prefix $prefix"
pc_version=$("$pc" --modversion objmem)
[ "$pc_version" = "$OM_VERSION" ] ||
    fail "objmem.pc says version $pc_version, the project is $OM_VERSION"

# The files are still in the stage: PKG_CONFIG_SYSROOT_DIR prefixes the
# -I/-L paths with it, as for any DESTDIR or sysroot.
flags=$(PKG_CONFIG_SYSROOT_DIR=$stage "$pc" --cflags --libs objmem) ||
    fail "$pc --cflags --libs objmem failed"
echo "pkg-config --cflags --libs objmem: $flags"
case " $flags " in
    *" -I$incdir "*) ;;
    *) fail "pkg-config flags lack -I$incdir" ;;
esac
case " $flags " in
    *" -L$libdir "*) ;;
    *) fail "pkg-config flags lack -L$libdir" ;;
esac

exe=$OM_WORK_DIR/pkg-config-consumer
# $OM_EXTRA_FLAGS and $flags are unquoted on purpose: lists of flags.
# shellcheck disable=SC2086
"$OM_CC" -std=c11 -Wall -Wextra -Werror -pedantic $OM_EXTRA_FLAGS \
    "$OM_CONSUMER_DIR/main.c" -o "$exe" $flags ||
    fail "building main.c with the pkg-config flags failed"
check_loads_staged "$exe"
run_consumer "$exe"

# Static: --static adds Requires.private and Libs.private, which linking
# libobjmem.a needs; -Bstatic makes -lobjmem pick the archive.
step "pkg-config consumer, static"
static_flags=$(PKG_CONFIG_SYSROOT_DIR=$stage "$pc" --static --cflags --libs objmem) ||
    fail "$pc --static --cflags --libs objmem failed"
echo "pkg-config --static --cflags --libs objmem: $static_flags"
static_flags=$(printf '%s\n' "$static_flags" |
               sed 's/-lobjmem/-Wl,-Bstatic -lobjmem -Wl,-Bdynamic/')
exe=$OM_WORK_DIR/pkg-config-static-consumer
# shellcheck disable=SC2086
"$OM_CC" -std=c11 -Wall -Wextra -Werror -pedantic $OM_EXTRA_FLAGS \
    "$OM_CONSUMER_DIR/main.c" -o "$exe" $static_flags ||
    fail "building main.c against libobjmem.a with the pkg-config --static flags failed"
check_loads_no_objmem "$exe"
run_consumer "$exe"

echo
echo "install_consumers: OK"
