#!/bin/sh
# check_exports.sh NM LIBRARY HEADER
#
# The shared library may export only the public API:
#   1. every defined dynamic symbol starts with om_;
#   2. a few known public symbols are there, so that an empty or unreadable
#      symbol table cannot pass;
#   3. the exported set is exactly what HEADER (objmem.h) declares OM_API.
# Check 3 is the one that catches a visibility leak: the internal helpers
# (src/internal.h) are om_* too, so rule 1 alone would let them through
# if -fvisibility=hidden were lost.  It also catches an OM_API declaration
# that the library does not define (users would get a link error).
set -eu

if [ $# -ne 3 ]; then
    echo "usage: $0 NM LIBRARY HEADER" >&2
    exit 2
fi
nm=$1
lib=$2
header=$3

if [ -z "$nm" ] || ! command -v "$nm" >/dev/null 2>&1; then
    echo "FAIL: nm not found ('$nm'; Debian: binutils)" >&2
    exit 1
fi
[ -f "$lib" ] || { echo "FAIL: no library at $lib" >&2; exit 1; }
[ -f "$header" ] || { echo "FAIL: no header at $header" >&2; exit 1; }

# Symbol names only (the last field of "VALUE TYPE NAME"), without a
# symbol-version suffix (name@@VERSION) should a version script appear.
exported=$("$nm" -D --defined-only "$lib" | awk 'NF >= 2 { print $NF }' |
           sed 's/@.*//' | sort -u)
[ -n "$exported" ] || { echo "FAIL: $nm -D --defined-only $lib listed nothing" >&2; exit 1; }

status=0

# 1. The om_ namespace.
offenders=
for sym in $exported; do
    case $sym in
        om_*) ;;
        # Defined by the linker, not by objmem's code; some linkers export
        # them from every shared library.
        _init|_fini|_edata|_end|__bss_start) ;;
        # AddressSanitizer's ODR-violation indicators for our exported
        # globals (gcc: __odr_asan.NAME, clang: __odr_asan_gen_NAME), present
        # only in OBJMEM_SANITIZE=address builds.
        __odr_asan.om_*|__odr_asan_gen_om_*) ;;
        *) offenders="$offenders $sym" ;;
    esac
done
if [ -n "$offenders" ]; then
    echo "FAIL: $lib exports symbols outside the om_ namespace:" >&2
    for sym in $offenders; do echo "    $sym" >&2; done
    status=1
fi

# 2. Known public symbols.
for sym in om_new om_decref om_runtime_new om_list_type; do
    if ! printf '%s\n' "$exported" | grep -qx "$sym"; then
        echo "FAIL: $lib does not export $sym" >&2
        status=1
    fi
done

# 3. Exported == declared.  Every public declaration in objmem.h is one line
# starting with "OM_API"; its name is the last identifier before the first
# "(" (functions) or ";" (objects such as om_list_type).
declared=$(awk '/^OM_API / {
                    s = $0; sub(/[(;].*/, "", s)
                    n = split(s, word, /[^A-Za-z0-9_]+/); print word[n]
                }' "$header" | sort -u)
[ -n "$declared" ] || { echo "FAIL: found no OM_API declarations in $header" >&2; exit 1; }
om_exported=$(printf '%s\n' "$exported" | grep '^om_' || true)
extra=$(printf '%s\n' "$om_exported" | grep -vxF "$declared" || true)
absent=$(printf '%s\n' "$declared" | grep -vxF "$om_exported" || true)
if [ -n "$extra" ]; then
    echo "FAIL: $lib exports om_ symbols that $header does not declare OM_API" >&2
    echo "(internal helpers leaking: is -fvisibility=hidden still in effect?):" >&2
    printf '%s\n' "$extra" | sed 's/^/    /' >&2
    status=1
fi
if [ -n "$absent" ]; then
    echo "FAIL: $header declares OM_API symbols that $lib does not export:" >&2
    printf '%s\n' "$absent" | sed 's/^/    /' >&2
    status=1
fi

count=$(printf '%s\n' "$exported" | wc -l)
[ $status -eq 0 ] && echo "exports: OK, $count symbols, all om_*, exactly the OM_API declarations of $(basename "$header")"
exit $status
