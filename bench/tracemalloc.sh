#!/usr/bin/env bash
# bench/tracemalloc.sh BUILD — the tracer table of `make bench`
# (docs/benchmarks.md, "Tracer benchmarks"), run by bench/run.sh after it
# has built BUILD/bench/tracemalloc_bench.
#
# objmem (bench/tracemalloc_bench.c) and the machine's python3
# (bench/py_tracemalloc.py) run the same shapes in alternating processes,
# BENCH_ROUNDS rounds of BENCH_REPS repetitions; the best of each figure is
# kept.  The issue's goals:
#   (1) one frame: the cost tracing adds to an allocation + free, at most
#       1/10 of what tracemalloc.start(1) adds in CPython;
#   (2) 16 native frames (start(rt, 16), allocations at the bottom of a
#       16-deep chain of calls): at most 1/10 of what start(25) adds in
#       CPython with a 25-deep recursion (start(16) shown too);
#   (3) at most 24 bytes of RSS per live traced block, and
#       om_tracemalloc_get_tracemalloc_memory within 10% of that RSS;
#   (4) tracing off costs nothing measurable: the same program built
#       against the commit before the tracer (BENCH_TRACER_BASE, default
#       9107966, built from `git archive` in BUILD/tracer-base) runs the
#       same loops in alternating processes; a difference is measurable
#       when this build is the slower in every round.
# A missed goal is printed, never an exit status.
#
# Environment: BENCH_TRACER_N (blocks alive in (1), (2) and (4), default
# 1000000), BENCH_TRACER_PAIR_N (one-at-a-time pairs per timing in (4),
# default 10000000), BENCH_TRACER_SIZES (live blocks for (3), default
# "100000 1000000 3000000"), BENCH_TRACER_BASE (empty: no base build),
# BENCH_TRACER_OFF_ROUNDS (rounds of (4), default 2 x BENCH_ROUNDS);
# BENCH_REPS and BENCH_ROUNDS as for every table; BENCH_COMMAND, the
# command for the docs row.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: tracemalloc.sh BUILD}
bench="$build/bench/tracemalloc_bench"
bench_base="$build/bench/tracemalloc_bench_base"
py="$root/bench/py_tracemalloc.py"
reps=${BENCH_REPS:-5}
rounds=${BENCH_ROUNDS:-3}
n=${BENCH_TRACER_N:-1000000}
pair_n=${BENCH_TRACER_PAIR_N:-10000000}
sizes_text=${BENCH_TRACER_SIZES:-100000 1000000 3000000}
base=${BENCH_TRACER_BASE-9107966}
read -r -a sizes <<<"${sizes_text//,/ }"

for count in "$n" "$pair_n" "${sizes[@]}"; do
    if ! [[ $count =~ ^[1-9][0-9]{0,8}$ ]]; then
        echo "tracemalloc.sh: BENCH_TRACER_N, _PAIR_N and _SIZES take whole numbers from 1 to 999999999, not '$count'" >&2
        exit 2
    fi
done
((${#sizes[@]})) || { echo "tracemalloc.sh: BENCH_TRACER_SIZES names no size" >&2; exit 2; }
# CPython must not be tracing already.
unset PYTHONTRACEMALLOC TRACEMALLOC_BENCH_ONLY

# ---- the commit before the tracer, for (4) ----------------------------------------
# Its source from `git archive` (no second work tree), its library built
# with the flags run.sh gives this one, and tracemalloc_bench built against
# it by the same CMake target definition as the current one.  A base that
# cannot be had (a shallow clone, a failed build) is reported as missing.
base_missing=
base_sha=
if [ -z "$base" ]; then
    base_missing="not asked for (BENCH_TRACER_BASE empty)"
elif ! base_sha=$(git -C "$root" rev-parse --verify -q "$base^{commit}" 2>/dev/null); then
    base_missing="commit $base is not in this clone"
else
    basedir="$build/tracer-base"
    log="$build/run-build-tracer-base.log"
    if ! {
        if [ "$(cat "$basedir/commit" 2>/dev/null)" != "$base_sha" ]; then
            rm -rf "$basedir" &&
                mkdir -p "$basedir/src" &&
                git -C "$root" archive "$base_sha" | tar -x -C "$basedir/src"
        fi &&
            cmake -S "$basedir/src" -B "$basedir/build" -DCMAKE_BUILD_TYPE=Release \
                -DOBJMEM_DEBUG=0 -DOBJMEM_BUILD_TESTS=OFF \
                -DOBJMEM_BUILD_EXAMPLES=OFF -DOBJMEM_BUILD_BENCH=OFF &&
            cmake --build "$basedir/build" --target objmem_static -j "$(nproc)" &&
            echo "$base_sha" >"$basedir/commit" &&
            cmake -S "$root" -B "$build" -DOM_TRACER_BASE_DIR="$basedir" &&
            cmake --build "$build" --target tracemalloc_bench_base
    } >"$log" 2>&1; then
        base_missing="build failed ($log)"
    fi
fi
base_short=${base_sha:0:7}
# The command as a reader of docs/benchmarks.md would retype it.
command=${BENCH_COMMAND:-make bench}
for var in BENCH_TRACER_OFF_ROUNDS BENCH_TRACER_BASE BENCH_TRACER_SIZES BENCH_TRACER_PAIR_N BENCH_TRACER_N; do
    if [ -n "${!var+set}" ]; then
        case ${!var} in
            *' '* | '') command="$var=\"${!var}\" $command" ;;
            *) command="$var=${!var} $command" ;;
        esac
    fi
done

declare -A v
# measure PREFIX PROGRAM ARGS...: keep the minimum of each key, renamed
# from om-/py- to PREFIX- when PREFIX is not empty.
measure() {
    local prefix=$1 out key val
    shift
    out=$("$@") || { echo "tracemalloc.sh: $* failed" >&2; exit 1; }
    while read -r key val; do
        [ -n "$prefix" ] && key="$prefix-${key#*-}"
        if [ -z "${v[$key]:-}" ] ||
            awk -v x="$val" -v y="${v[$key]}" 'BEGIN { exit !(x < y) }'; then
            v[$key]=$val
        fi
    done <<<"$out"
}

echo "measuring the tracer: $rounds rounds of best-of-$reps timings ..." >&2
for ((round = 1; round <= rounds; round++)); do
    measure "" "$bench" time "$n" "$reps"
    measure "" python3 "$py" time "$n" "$reps"
done

# (4): this build (cur) and the base in alternating processes that run the
# same loops: the pair mode, and the time mode limited to its untraced
# cases (in the processes above they run between traced passes, which
# leave other data in the cache).  Each round's figures are kept too: a
# difference counts as measurable only when this build was the slower in
# every round.
off_rounds=${BENCH_TRACER_OFF_ROUNDS:-$((2 * rounds))}
if ! [[ $off_rounds =~ ^[1-9][0-9]{0,3}$ ]]; then
    echo "tracemalloc.sh: BENCH_TRACER_OFF_ROUNDS must be a whole number from 1 to 9999" >&2
    exit 2
fi
keys4=(pair-malloc pair-new malloc-off-pair new-off-pair)
declare -A slower
for key in "${keys4[@]}"; do slower[$key]=0; done
systems=(cur)
[ -n "$base_missing" ] || systems+=(base)
echo "measuring tracing off${base_missing:+ (base missing: $base_missing)}${base_missing:- against $base_short}: $off_rounds rounds ..." >&2
for ((round = 1; round <= off_rounds; round++)); do
    declare -A this=()
    for sys in "${systems[@]}"; do
        prog=$bench
        [ $sys = base ] && prog=$bench_base
        out=$(TRACEMALLOC_BENCH_ONLY="malloc-off new-off" "$prog" time "$n" "$reps" &&
              "$prog" pair "$pair_n" "$reps") ||
            { echo "tracemalloc.sh: $prog failed" >&2; exit 1; }
        while read -r key val; do
            key="$sys-${key#om-}"
            this[$key]=$val
            if [ -z "${v[$key]:-}" ] ||
                awk -v x="$val" -v y="${v[$key]}" 'BEGIN { exit !(x < y) }'; then
                v[$key]=$val
            fi
        done <<<"$out"
    done
    for key in "${keys4[@]}"; do
        if [ -z "$base_missing" ] &&
            awk -v x="${this[cur-$key]}" -v y="${this[base-$key]}" 'BEGIN { exit !(x > y) }'; then
            slower[$key]=$((slower[$key] + 1))
        fi
    done
    unset this
done

# RSS figures do not vary from run to run: one process each.
for size in "${sizes[@]}"; do
    for trace in 0 1; do
        measure "" "$bench" rss "$size" "$trace"
        measure "" python3 "$py" rss "$size" "$trace"
    done
    for key in om-rss-off om-rss-on om-tmem om-traced py-rss-off py-rss-on py-tmem py-traced; do
        v[$size:$key]=${v[$key]}
        unset "v[$key]"
    done
done

{
    for key in "${!v[@]}"; do
        echo "$key ${v[$key]}"
    done
    for key in "${keys4[@]}"; do
        echo "slower-$key ${slower[$key]}"
    done
    echo "sizes ${sizes[*]}"
} | awk -v date="$(date +%F)" -v cmd="$command" \
        -v commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)" \
        -v cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" \
        -v ncpu="$(nproc)" -v kernel="$(uname -r)" \
        -v py="$(python3 -c 'import platform; print("CPython", platform.python_version())')" \
        -v rounds="$rounds" -v reps="$reps" -v n="$n" -v pair_n="$pair_n" \
        -v base="$base_short" -v base_missing="$base_missing" -v off_rounds="$off_rounds" '
$1 == "sizes" { for (i = 2; i <= NF; i++) S[++ns] = $i; next }
{ V[$1] = $2 }
function need(k) {
    if (!(k in V)) { printf "tracemalloc.sh: no %s figure\n", k > "/dev/stderr"; bad = 1; exit 1 }
    return V[k] + 0
}
function pn(x) {
    if (x == 100000) return "10^5"
    if (x == 1000000) return "10^6"
    if (x == 3000000) return "3*10^6"
    if (x == 10000000) return "10^7"
    return x
}
function verdict(ok, x, limit, unit) {
    return ok ? "MET" : sprintf("MISSED (%.2fx the limit)", x / limit)
}
# One row of (1)/(2): off and traced pair, the added cost and its parts.
function trow(label, off, on) {
    a = need(on "-alloc") - need(off "-alloc")
    f = need(on "-free") - need(off "-free")
    printf "  %-52s %8.1f %9.1f %9.1f  (%.1f + %.1f)\n", label, need(off "-pair"), need(on "-pair"), need(on "-pair") - need(off "-pair"), a, f
    return need(on "-pair") - need(off "-pair")
}
END {
    if (bad) exit 1
    printf "\ntracer benchmark: N = %s blocks alive; times are the best of %d rounds x %d repetitions\n", pn(n), rounds, reps
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; %s\n\n", date, commit, cpu, ncpu, kernel, py
    printf "  %-52s %8s %9s %9s  %s\n", "ns per allocation + free", "off", "traced", "added", "(alloc + free)"
    print "  (1) one frame: N allocated into an array, then freed"
    am = trow("objmem   om_malloc(rt, 32) / om_free, start(rt, 1)", "om-malloc-off", "om-malloc-t1")
    an = trow("objmem   om_new (32 B pair) / om_decref, start(rt, 1)", "om-new-off", "om-new-t1")
    ap = trow("CPython  lst[i] = P() / lst[i] = None, start(1)", "py-off", "py-t1")
    printf "  %-52s %s / %s ns\n", "objmem, first traced pass (table growing; diag.)", f1(need("om-malloc-t1-cold-pair")), f1(need("om-new-t1-cold-pair"))
    r1m = ap > 0 ? am / ap : 99; r1n = ap > 0 ? an / ap : 99
    printf "  %-52s om_malloc %.3f, om_new %.3f\n", "ratio of added costs objmem / CPython", r1m, r1n
    print "  (2) deep stacks: the same at the bottom of a call chain"
    dm = trow("objmem   om_malloc, 16-deep C chain, start(rt, 16)", "om-malloc-deep-off", "om-malloc-t16")
    dn = trow("objmem   om_new, 16-deep C chain, start(rt, 16)", "om-new-deep-off", "om-new-t16")
    d25 = trow("CPython  25-deep recursion, start(25)", "py-deep-off", "py-t25")
    d16 = trow("CPython  25-deep recursion, start(16)", "py-deep-off", "py-t16")
    printf "  %-52s %s / %s ns\n", "objmem, first traced pass (diag.)", f1(need("om-malloc-t16-cold-pair")), f1(need("om-new-t16-cold-pair"))
    printf "  %-52s objmem %d of %d deep, CPython %d and %d of %d deep\n", "frames kept by a traceback at the bottom", need("om-t16-frames"), need("om-t16-total"), need("py-t25-frames"), need("py-t16-frames"), need("py-t25-depth")
    r2m = d25 > 0 ? dm / d25 : 99; r2n = d25 > 0 ? dn / d25 : 99
    printf "  %-52s om_malloc %.3f, om_new %.3f (vs start(16): %.3f, %.3f)\n", "ratio of added costs objmem / CPython start(25)", r2m, r2n, (d16 > 0 ? dm / d16 : 99), (d16 > 0 ? dn / d16 : 99)
    print "  (3) memory per live traced block: bytes per block"
    printf "  %-20s %-8s %10s %10s %10s %12s %12s\n", "", "", "RSS added", "self-rep.", "self/RSS", "RSS off", "RSS traced"
    g3 = "met"; g3a = "met"; worst = 0; worsta = 0
    for (i = 1; i <= ns; i++) {
        s = S[i]
        for (k = 0; k < 2; k++) {
            sys = k ? "py" : "om"
            off = need(s ":" sys "-rss-off"); on = need(s ":" sys "-rss-on"); tm = need(s ":" sys "-tmem")
            added = (on - off) / s
            agree = on > off ? tm / (on - off) : 0
            printf "  %-20s %-8s %10.2f %10.2f %10.3f %12.2f %12.2f\n", (k ? "" : "N = " pn(s)), (k ? "CPython" : "objmem"), added, tm / s, agree, off / s, on / s
            if (!k) {
                RA[s] = added; AG[s] = agree; TM[s] = tm / s
                if (added > 24) g3 = "missed"
                if (added > worst) worst = added
                if (agree < 0.9 || agree > 1.1) g3a = "missed"
                d = agree > 1 ? agree - 1 : 1 - agree
                if (d > worsta) worsta = d
            } else { PA[s] = added; PT[s] = tm / s }
        }
    }
    print "  (4) tracing off: ns per pair, this build against " (base_missing ? "the base (missing: " base_missing ")" : "the commit before the tracer, " base ", alternating processes")
    printf "  %-52s %8s %9s %9s\n", "", "this", "base", "diff"
    split("pair-malloc pair-new malloc-off-pair new-off-pair", K4, " ")
    L4["pair-malloc"] = "om_malloc(rt, 32) + om_free, one at a time"
    L4["pair-new"] = "om_new + om_decref, one at a time"
    L4["malloc-off-pair"] = "om_malloc + om_free, N alive (as (1))"
    L4["new-off-pair"] = "om_new + om_decref, N alive (as (1))"
    g4 = base_missing ? "n/a" : "met"; worst4 = 0; c4 = ""
    for (i = 1; i <= 4; i++) {
        k = K4[i]
        if (base_missing) { cur = need("cur-" k); printf "  %-52s %8.2f %9s\n", L4[k], cur, "-"; c4 = c4 (i > 1 ? "; " : "") f2(cur) " / -"; continue }
        cur = need("cur-" k); b = need("base-" k); pct = (cur - b) / b * 100; sl = need("slower-" k)
        printf "  %-52s %8.2f %9.2f %+8.2f (%+.1f%%)  slower in %d of %d rounds\n", L4[k], cur, b, cur - b, pct, sl, off_rounds
        if (pct > worst4) worst4 = pct
        if (sl == off_rounds && off_rounds > 1) g4 = "missed"
        c4 = c4 (i > 1 ? "; " : "") f2(cur) " / " f2(b)
    }
    print ""
    g1 = (r1m <= 0.1 && r1n <= 0.1) ? "met" : "missed"
    mx = r1m > r1n ? r1m : r1n
    printf "  goal (1) added cost <= 1/10 of CPython start(1)    worst ratio %.3f  %s\n", mx, verdict(g1 == "met", mx, 0.1)
    g2 = (r2m <= 0.1 && r2n <= 0.1) ? "met" : "missed"
    mx = r2m > r2n ? r2m : r2n
    printf "  goal (2) added cost <= 1/10 of CPython start(25)   worst ratio %.3f  %s\n", mx, verdict(g2 == "met", mx, 0.1)
    printf "  goal (3) RSS <= 24 B per traced block              worst %.2f B  %s\n", worst, verdict(g3 == "met", worst, 24)
    printf "  goal (3) self-reported within 10%% of RSS           worst %.1f%% off  %s\n", worsta * 100, g3a == "met" ? "MET" : "MISSED"
    if (base_missing) printf "  goal (4) tracing off costs nothing measurable      n/a (base missing)\n"
    else printf "  goal (4) tracing off costs nothing measurable      worst %+.1f%% against %s; measurable: slower in all %d rounds  %s\n", worst4, base, off_rounds, toupper(g4)
    print ""
    print "row for the tracer table of docs/benchmarks.md (append it, never replace a row):"
    c3 = ""; c3a = ""
    for (i = 1; i <= ns; i++) {
        c3 = c3 (i > 1 ? "; " : "") f2(RA[S[i]]) " / " f2(PA[S[i]])
        c3a = c3a (i > 1 ? "; " : "") f2(TM[S[i]]) " (" sprintf("%.2f", AG[S[i]]) ") / " f2(PT[S[i]])
    }
    nl = ""
    for (i = 1; i <= ns; i++) nl = nl (i > 1 ? "; " : "") pn(S[i])
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s | %s | %s; sizes %s |", date, commit, cmd, cpu, ncpu, kernel, py, pn(n), nl
    printf " %s / %s / %s |", f1(am), f1(an), f1(ap)
    printf " %s / %s / %s (%s) |", f1(dm), f1(dn), f1(d25), f1(d16)
    printf " %s | %s |", c3, c3a
    printf " %s |", base_missing ? "base missing" : c4 " (" base ")"
    printf " (1) %.3f, %.3f; (2) %.3f, %.3f |", r1m, r1n, r2m, r2n
    printf " (1) %s, (2) %s, (3) RSS %s, (3) self-reported %s, (4) %s |\n", g1, g2, g3, g3a, g4
}
function f1(x) { return sprintf("%.1f", x) }
function f2(x) { return sprintf("%.2f", x) }
'
