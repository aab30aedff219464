#!/bin/sh
# check_version.sh VERSION_EXE LIBRARY READELF OBJDUMP
#
# VERSION_EXE (version.c, linked against the shared library) checks
# om_version() and om_version_string() against the header's macros and
# prints the header's major version and version string.  Here they are
# compared with the shared library itself: its SONAME must be
# libobjmem.so.<OM_VERSION_MAJOR> and its real file
# libobjmem.so.<OM_VERSION_STRING>.  CMake derives both from the header; this
# catches the build reading the header wrongly, or a hand-set VERSION.
# READELF or OBJDUMP may be empty or missing; one of them must work.
set -eu

if [ $# -ne 4 ]; then
    echo "usage: $0 VERSION_EXE LIBRARY READELF OBJDUMP" >&2
    exit 2
fi
exe=$1
lib=$2
readelf=$3
objdump=$4

out=$("$exe") || { echo "$out"; echo "FAIL: $exe reported a version mismatch" >&2; exit 1; }
echo "$out"
major=$(printf '%s\n' "$out" | sed -n 's/^major=//p')
string=$(printf '%s\n' "$out" | sed -n 's/^string=//p')
if [ -z "$major" ] || [ -z "$string" ]; then
    echo "FAIL: no major=/string= lines from $exe" >&2
    exit 1
fi

# The SONAME, from the dynamic section.
if [ -n "$readelf" ] && command -v "$readelf" >/dev/null 2>&1; then
    # "0x...e (SONAME)  Library soname: [libobjmem.so.0]"
    soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
elif [ -n "$objdump" ] && command -v "$objdump" >/dev/null 2>&1; then
    # "  SONAME               libobjmem.so.0"
    soname=$("$objdump" -p "$lib" | awk '$1 == "SONAME" { print $2 }')
else
    echo "FAIL: neither readelf nor objdump found (Debian: binutils)" >&2
    exit 1
fi

status=0
if [ "$soname" != "libobjmem.so.$major" ]; then
    echo "FAIL: SONAME of $lib is '$soname', expected libobjmem.so.$major" >&2
    status=1
fi
base=$(basename "$lib")
if [ "$base" != "libobjmem.so.$string" ]; then
    echo "FAIL: shared library file is $base, expected libobjmem.so.$string" >&2
    status=1
fi
[ $status -eq 0 ] && echo "version: OK, SONAME $soname, file $base"
exit $status
