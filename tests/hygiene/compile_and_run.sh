#!/bin/sh
# compile_and_run.sh EXE COMPILER [ARGS...]
#
# Builds EXE with `COMPILER ARGS... -o EXE`, then runs it.  Used by tests
# whose point is that something compiles and links at test time (a failed
# compile must fail the test, not break the build of everything else), and
# whose program then checks what it linked against.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 EXE COMPILER [ARGS...]" >&2
    exit 2
fi
exe=$1
shift

rm -f "$exe"
echo "+ $* -o $exe"
"$@" -o "$exe" || { echo "FAIL: compile/link failed" >&2; exit 1; }
"$exe" || { echo "FAIL: $exe exited with status $?" >&2; exit 1; }
