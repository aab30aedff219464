#!/usr/bin/env bash
# bench/weakref.sh BUILD — the weak-reference table of `make bench`
# (docs/benchmarks.md, "Weak-reference benchmarks"), run by bench/run.sh
# after it has built BUILD/bench/weakref_bench.
#
# objmem (bench/weakref_bench.c) and the machine's python3
# (bench/py_weakref.py) do the same operations in alternating processes,
# BENCH_ROUNDS rounds of BENCH_REPS repetitions; the best of each figure is
# kept.  The goal of the issue is at most 1/5 of CPython's time for each
# operation.  CPython's per-operation loops also pay for the interpreter's
# loop: the table gives both CPython's gross figure and its net one (the
# empty loop subtracted), and judges the goal against the net one, the
# stricter reading.  A missed goal is printed, never an exit status.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: weakref.sh BUILD}
bench="$build/bench/weakref_bench"
py="$root/bench/py_weakref.py"
reps=${BENCH_REPS:-5}
rounds=${BENCH_ROUNDS:-3}
n=${BENCH_WEAKREF_N:-1000000}

declare -A v
measure() {   # measure PROGRAM ARGS...: keep the minimum of each key
    local out key val
    out=$("$@") || { echo "weakref.sh: $* failed" >&2; exit 1; }
    while read -r key val; do
        if [ -z "${v[$key]:-}" ] ||
            awk -v x="$val" -v y="${v[$key]}" 'BEGIN { exit !(x < y) }'; then
            v[$key]=$val
        fi
    done <<<"$out"
}

echo "measuring weak references: $rounds rounds ..." >&2
for ((round = 1; round <= rounds; round++)); do
    measure "$bench" "$n" "$reps"
    measure python3 "$py" "$n" "$reps"
done

keys=(create get death1 death10 death100 cache)
{
    for key in "${keys[@]}"; do
        for sys in om py; do
            [ -n "${v[$sys-$key]:-}" ] || {
                echo "weakref.sh: no '$sys-$key' figure" >&2
                exit 1
            }
            echo "$sys-$key ${v[$sys-$key]}"
        done
    done
    echo "py-loop ${v[py-loop]}"
} | awk -v date="$(date +%F)" -v cmd="${BENCH_COMMAND:-make bench}" \
        -v commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)" \
        -v cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" \
        -v ncpu="$(nproc)" -v kernel="$(uname -r)" \
        -v py="$(python3 -c 'import platform; print("CPython", platform.python_version())')" \
        -v rounds="$rounds" -v reps="$reps" -v n="$n" '
{ V[$1] = $2 }
END {
    split("create get death1 death10 death100 cache", K, " ")
    L["create"] = "create + drop a ref (no callback)"
    L["get"] = "get on a live ref"
    L["death1"] = "death of an object with 1 ref (callback each)"
    L["death10"] = "... with 10 refs"
    L["death100"] = "... with 100 refs"
    L["cache"] = "weak-value-dict cache hit (str key)"
    # The death figures are one C-level clear() in CPython: no loop to take off.
    loop["create"] = loop["get"] = loop["cache"] = V["py-loop"]
    printf "\nweak-reference benchmark: ns per operation, best of %d rounds x %d repetitions, N = %d\n", rounds, reps, n
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; %s\n\n", date, commit, cpu, ncpu, kernel, py
    printf "  %-48s %9s %9s %9s %8s %8s\n", "", "objmem", "CPython", "CPy net", "ratio", "net"
    all = "met"; row = ""; verdicts = ""
    for (i = 1; i <= 6; i++) {
        k = K[i]; om = V["om-" k]; pg = V["py-" k]; pn = pg - loop[k]
        rg = om / pg; rn = pn > 0 ? om / pn : 99
        verdict = rn <= 0.2 ? "met" : "missed"
        if (verdict == "missed") all = "missed"
        printf "  %-48s %9.2f %9.2f %9.2f %8.3f %8.3f  %s\n", L[k], om, pg, pn, rg, rn, toupper(verdict)
        row = row sprintf(" %.1f / %.1f (%.1f net) |", om, pg, pn)
        verdicts = verdicts (i > 1 ? ", " : "") k " " sprintf("%.2f", rn) " " verdict
    }
    printf "  (CPython loop alone: %.2f ns; goal: objmem <= 1/5 of CPython net for each)\n\n", V["py-loop"]
    print "row for the weak-reference table of docs/benchmarks.md (append it, never replace a row):"
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s | %s |%s %s |\n", date, commit, cmd, cpu, ncpu, kernel, py, row, verdicts
}'
