#!/usr/bin/env bash
# bench/run.sh — the foundation benchmark (`make bench`; docs/benchmarks.md).
#
# Builds objmem (Release, OBJMEM_DEBUG=0) with the benchmark in build/bench,
# then measures objmem, glibc malloc and CPython side by side in this one run
# and prints the comparison table.  A missed goal is printed, never turned
# into a failing exit status: only a broken build or a crashed measurement
# makes this script fail.
#
# Then the allocator benchmark: om_malloc against glibc malloc, mimalloc,
# jemalloc and CPython's PyObject_Malloc (bench/alloc_bench.c), in a second
# table.  Debian's libmimalloc-dev and libjemalloc-dev are installed when
# their headers are missing; an allocator that cannot be installed, built or
# verified is reported as a missing column, never as a failed run.
#
# Environment: BENCH_N (objects, default 10000000), BENCH_REPS (timed
# repetitions per process, default 5) and BENCH_ROUNDS (processes per timing,
# default 3; the best of all is kept) shrink or grow the run.  For the
# allocator table: BENCH_ALLOC_N (malloc(32)+free pairs per timed loop,
# default 10000000), BENCH_ALLOC_MIXED (blocks of mixed sizes alive at once,
# default 1000000), BENCH_ALLOC_MIXED_ROUNDS (timed rounds of them per
# process, default 5) and BENCH_ALLOC_LIVE (32-byte blocks kept alive for
# the RSS figures, default 10000000); BENCH_REPS and BENCH_ROUNDS apply
# too.  BENCH_PARTS (default "objects alloc gc weakref tracemalloc trace")
# picks the tables to produce.
#
# Then the collector benchmark: objmem's cycle collector (bench/gc_bench.c)
# against the machine's python3 (bench/py_gc.py) on the same graph shapes,
# with Boehm GC (bench/boehm_bench.c, Debian's libgc-dev, installed when
# its header is missing) for reference, in a third table.  BENCH_GC_SIZES
# (default "100000 1000000 3000000") gives the heap sizes N; BENCH_REPS and
# BENCH_ROUNDS apply, and the young collections of (c) are timed
# 10 x BENCH_REPS times per process.  BENCH_PARTS=gc runs this table alone.
#
# And the weak-reference table (bench/weakref.sh, BENCH_PARTS=weakref):
# refs, callbacks and a weak-value-dict cache against the machine's python3.
#
# And the tracer table (bench/tracemalloc.sh, BENCH_PARTS=tracemalloc): the
# cost of om_tracemalloc_start against CPython's tracemalloc, per
# allocation with 1 and 16 frames and in RSS per traced block, and the cost
# of the tracer with tracing off against the commit before it
# (BENCH_TRACER_* variables: see that script).
#
# And the objmem-trace overhead table (bench/trace.sh, BENCH_PARTS=trace):
# an allocation-heavy C program, GNU sort and python3 run untraced, under
# objmem-trace (exact and sampled) and under heaptrack, in CPU and wall
# time and trace file size (BENCH_TRACE_* variables: see that script).
# heaptrack is installed when missing; without it, its column is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build/bench"
n=${BENCH_N:-10000000}
reps=${BENCH_REPS:-5}
rounds=${BENCH_ROUNDS:-3}
alloc_n=${BENCH_ALLOC_N:-10000000}
alloc_mixed=${BENCH_ALLOC_MIXED:-1000000}
alloc_mixed_rounds=${BENCH_ALLOC_MIXED_ROUNDS:-5}
alloc_live=${BENCH_ALLOC_LIVE:-10000000}
parts=${BENCH_PARTS:-objects alloc gc weakref tracemalloc trace}
gc_sizes_text=${BENCH_GC_SIZES:-100000 1000000 3000000}
read -r -a gc_sizes <<<"${gc_sizes_text//,/ }"

for count in "$n" "$reps" "$rounds" "$alloc_n" "$alloc_mixed" \
             "$alloc_mixed_rounds" "$alloc_live"; do
    if ! [[ $count =~ ^[1-9][0-9]{0,9}$ ]]; then
        echo "run.sh: BENCH_N, BENCH_REPS, BENCH_ROUNDS and BENCH_ALLOC_* must be positive whole numbers" >&2
        exit 2
    fi
done
if ((${#gc_sizes[@]} == 0)); then
    echo "run.sh: BENCH_GC_SIZES names no size" >&2
    exit 2
fi
for size in "${gc_sizes[@]}"; do
    if ! [[ $size =~ ^[1-9][0-9]{0,8}$ ]] || ((size < 2)); then
        echo "run.sh: BENCH_GC_SIZES takes whole numbers from 2 to 999999999, not '$size'" >&2
        exit 2
    fi
done
if ((reps > 1000 || alloc_mixed_rounds > 1000)); then
    echo "run.sh: BENCH_REPS and BENCH_ALLOC_MIXED_ROUNDS must be at most 1000" >&2
    exit 2
fi
do_objects=0
do_alloc=0
do_gc=0
do_weakref=0
do_tracemalloc=0
do_trace=0
for part in ${parts//,/ }; do
    case $part in
        objects) do_objects=1 ;;
        alloc) do_alloc=1 ;;
        gc) do_gc=1 ;;
        weakref) do_weakref=1 ;;
        tracemalloc) do_tracemalloc=1 ;;
        trace) do_trace=1 ;;
        *)
            echo "run.sh: BENCH_PARTS takes 'objects', 'alloc', 'gc', 'weakref', 'tracemalloc' and/or 'trace', not '$part'" >&2
            exit 2
            ;;
    esac
done
if ((!do_objects && !do_alloc && !do_gc && !do_weakref && !do_tracemalloc && !do_trace)); then
    echo "run.sh: BENCH_PARTS names no table" >&2
    exit 2
fi

# ---- tools ---------------------------------------------------------------
# Only what is missing gets installed, so a second run installs nothing.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
# GNU time, which the objmem-trace table reads CPU time from.
if ((do_trace)) && [ ! -x /usr/bin/time ]; then
    need+=(time)
fi
if ((${#need[@]})); then
    echo "run.sh: installing missing tools: ${need[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        echo "run.sh: need root or sudo to install ${need[*]}" >&2
        exit 2
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"
fi
if [ ! -r /proc/self/statm ]; then
    echo "run.sh: /proc/self/statm is needed for the RSS figures" >&2
    exit 2
fi

# The other allocators, for the allocator table, Boehm GC, for the
# collector table, and heaptrack, for the objmem-trace table.  Optional:
# whatever cannot be installed becomes a missing column, so this part never
# fails the run.
# The machine's python3 is the CPython measured; its headers and libpython
# come from Debian's python3-dev only when it is Debian's own python3.
has_header() {
    printf '#include <%s>\n' "$1" | cc -E -x c - >/dev/null 2>&1
}
python_embeds() {
    python3-config --embed --ldflags >/dev/null 2>&1 &&
        [ -r "$(python3 -c 'import sysconfig
print(sysconfig.get_paths()["include"])' 2>/dev/null)/Python.h" ]
}
opt=()
# Boehm GC, for the collector table.
if ((do_gc)) && ! { has_header gc.h && has_header gc/gc.h; }; then
    opt+=(libgc-dev)
fi
if ((do_alloc)); then
    has_header mimalloc.h || opt+=(libmimalloc-dev)
    has_header jemalloc/jemalloc.h || opt+=(libjemalloc-dev)
    if ! python_embeds; then
        py_exe=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
        case $py_exe in
            /usr/bin/*) opt+=(python3-dev) ;;
            *) echo "run.sh: $py_exe cannot be embedded (no python3-config --embed or Python.h); the pymalloc column may be missing" >&2 ;;
        esac
    fi
fi
if ((do_trace)) && ! command -v heaptrack >/dev/null; then
    opt+=(heaptrack)
fi
if ((${#opt[@]})); then
    echo "run.sh: installing for the allocator, collector and objmem-trace benchmarks: ${opt[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo -n)
    else
        sudo=(false)
    fi
    if ! { "${sudo[@]}" apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${opt[@]}"; } \
           >"${TMPDIR:-/tmp}/objmem-bench-apt.log" 2>&1; then
        echo "run.sh: could not install ${opt[*]} (log: ${TMPDIR:-/tmp}/objmem-bench-apt.log); their columns will be missing" >&2
    fi
fi

# ---- build -----------------------------------------------------------------
# The log is shown only when something fails, so the table stays readable.
mkdir -p "$build"
log="$build/run-build.log"
# OBJMEM_DEBUG is passed explicitly: a higher level cached by an earlier
# configure would otherwise make the figures meaningless.
# Python3_EXECUTABLE: the pymalloc variant embeds the machine's python3,
# not whichever other CPython CMake would find first.
py_exe=$(python3 -c 'import sys; print(sys.executable)')
targets=(om_bench alloc_bench_om gc_bench weakref_bench tracemalloc_bench)
# The tracer and its preload library only when their table is asked for:
# they take longer to build than all the benchmark programs together.
if ((do_trace)); then
    targets+=(objmem-trace trace_workload)
fi
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
           -DOBJMEM_BUILD_BENCH=ON -DOBJMEM_BUILD_TESTS=OFF \
           -DOBJMEM_BUILD_EXAMPLES=OFF -DOBJMEM_BUILD_TOOLS=ON -DOBJMEM_DEBUG=0 \
           -DPython3_EXECUTABLE="$py_exe" &&
       cmake --build "$build" --target "${targets[@]}" -j "$(nproc)"; } >"$log" 2>&1
then
    cat "$log" >&2
    echo "run.sh: build failed (log: $log)" >&2
    exit 1
fi
om_bench="$build/bench/om_bench"
py_objects="$root/bench/py_objects.py"
gc_bench="$build/bench/gc_bench"
py_gc="$root/bench/py_gc.py"
boehm_bench="$build/bench/boehm_bench"

# The other allocators' variants: each is built on its own, and one that
# was not configured (library not found) or does not build is a missing
# column, with the reason in the table.
allocs=(om glibc mimalloc jemalloc pymalloc)
declare -A missing
if ((do_alloc)); then
    configured=" $(cat "$build/bench/alloc_variants.txt" 2>/dev/null || true) "
    for alloc in "${allocs[@]:1}"; do
        if [[ $configured != *" $alloc "* ]]; then
            missing[$alloc]="not found at configure time"
        elif ! cmake --build "$build" --target "alloc_bench_$alloc" \
                 >"$build/run-build-$alloc.log" 2>&1; then
            missing[$alloc]="build failed ($build/run-build-$alloc.log)"
        fi
    done
fi
# Boehm GC, the collector table's reference column: missing (with the
# reason) when libgc was not found or its program does not build.
boehm_missing=
if ((do_gc)); then
    if [ "$(cat "$build/bench/boehm_configured.txt" 2>/dev/null)" != yes ]; then
        boehm_missing="libgc not found at configure time"
    elif ! cmake --build "$build" --target boehm_bench \
             >"$build/run-build-boehm.log" 2>&1; then
        boehm_missing="build failed ($build/run-build-boehm.log)"
    fi
fi

# ---- measurements -------------------------------------------------------------
# Every figure comes from a fresh process, so that no measurement inherits
# another's heap (which would skew both time and RSS).  Timings run in
# BENCH_ROUNDS interleaved rounds and keep the minimum: on a shared or
# virtual machine a burst of interference lasts seconds, long enough to
# spoil every repetition inside one process, but rarely every round.
declare -A v
measure() {
    local out key val
    out=$("$@")
    while read -r key val; do
        if [ -z "${v[$key]:-}" ] ||
            awk -v a="$val" -v b="${v[$key]}" 'BEGIN { exit !(a < b) }'; then
            v[$key]=$val
        fi
    done <<<"$out"
}

# ---- the machine, for both tables ------------------------------------------------
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
# The compiler CMake chose, which need not be the one `cc` names.
shopt -s nullglob
ccinfo=("$build"/CMakeFiles/*/CMakeCCompiler.cmake)
shopt -u nullglob
compiler=unknown
if ((${#ccinfo[@]})); then
    compiler=$(sed -n 's/^set(CMAKE_C_COMPILER_\(ID\|VERSION\) "\(.*\)")$/\2/p' \
                   "${ccinfo[0]}" | paste -sd ' ' -)
fi
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# The object table (its code left unindented inside this test, as it was).
if ((do_objects)); then
echo "measuring: $n objects, $rounds rounds of best-of-$reps timings ..." >&2
for ((round = 1; round <= rounds; round++)); do
    measure "$om_bench" objmem-time "$n" "$reps"
    measure "$om_bench" objmem-held "$n" "$reps"
    measure "$om_bench" malloc-time "$n" "$reps"
    measure python3 "$py_objects" time "$n" "$reps"
done
# The net CPython figure is recomputed from the two minima rather than kept
# as the smallest per-process difference, which would pair a lucky call
# loop with an unlucky empty loop.
v[py-net]=$(awk -v g="${v[py-gross]}" -v l="${v[py-loop]}" \
                'BEGIN { printf "%.3f", g - l }')
measure "$om_bench" objmem-rss "$n"
measure "$om_bench" malloc-rss "$n"
measure python3 "$py_objects" rss "$n"

for key in objmem-time objmem-held malloc-time py-gross py-loop py-net \
           objmem-rss malloc-rss py-rss; do
    if [ -z "${v[$key]:-}" ]; then
        echo "run.sh: measurement '$key' produced no figure" >&2
        exit 1
    fi
done

# ---- report ---------------------------------------------------------------------
python=$(python3 -c 'import platform
print(platform.python_implementation(), platform.python_version())')
# The command as a reader of docs/benchmarks.md would retype it.
command="make bench"
for var in BENCH_ROUNDS BENCH_REPS BENCH_N; do
    if [ -n "${!var:-}" ]; then
        command="$var=${!var} $command"
    fi
done

awk -v n="$n" -v reps="$reps" -v rounds="$rounds" -v date="$(date +%F)" \
    -v cpu="${cpu:-unknown CPU}" -v ncpu="$(nproc)" -v kernel="$(uname -r)" \
    -v cc="$compiler" -v py="$python" -v commit="$commit" -v cmd="$command" \
    -v ot="${v[objmem-time]}" -v oh="${v[objmem-held]}" \
    -v mt="${v[malloc-time]}" -v pg="${v[py-gross]}" -v pl="${v[py-loop]}" \
    -v pn="${v[py-net]}" -v orss="${v[objmem-rss]}" -v mrss="${v[malloc-rss]}" \
    -v prss="${v[py-rss]}" '
function row(label, t, r) {
    printf "  %-44s %14s %18s\n", label, t, r
}
function f(x) { return sprintf("%.2f", x) }
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
BEGIN {
    printf "objmem foundation benchmark: %d objects; times are the best of %d x %d repetitions\n", n, rounds, reps
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; %s; %s\n\n", date, commit, cpu, ncpu, kernel, cc, py
    row("", "ns per pair", "B per object")
    row("", "(create+drop)", "(" (n == 10000000 ? "10^7" : n) " alive)")
    row("objmem   om_new + om_decref, 32 B object", f(ot), f(orss))
    row("objmem   same, one object held (diagnostic)", f(oh), "-")
    row("glibc    malloc(32) + free", f(mt), f(mrss))
    row("CPython  P(), net of the empty loop", f(pn), f(prss))
    row("CPython  P(), gross (loop included)", f(pg), "-")
    row("CPython  the empty loop alone", f(pl), "-")
    print ""
    row("ratio objmem / CPython (net)", ratio(ot, pn), ratio(orss, prss))
    row("ratio objmem / CPython (gross)", ratio(ot, pg), "-")
    row("ratio objmem / glibc", ratio(ot, mt), ratio(orss, mrss))
    print ""

    limit = pn / 5
    time_ok = ot <= limit
    verdict = time_ok ? "MET" : sprintf("MISSED (%.2fx the limit)", ot / limit)
    printf "  goal: time <= 1/5 of CPython (net)  %6.2f ns, limit %6.2f ns  %s\n", ot, limit, verdict
    rss_ok = orss <= 32
    verdict = rss_ok ? "MET" : sprintf("MISSED by %.2f B (%.2f%%)", orss - 32, (orss - 32) / 32 * 100)
    printf "  goal: RSS <= 32 B per object         %6.2f B,  limit  32.00 B   %s\n", orss, verdict
    print ""

    print "row for docs/benchmarks.md (append it, never replace a row):"
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s | %s, %s", date, commit, cmd, cpu, ncpu, kernel, cc, py
    printf " | %s | %s | %s (%s) | %s | %s | %s", f(ot), f(mt), f(pn), f(pg), f(orss), f(mrss), f(prss)
    printf " | %s | %s | time %s, RSS %s |\n", ratio(ot, pn), ratio(orss, prss), \
        time_ok ? "met" : "missed", rss_ok ? "met" : "missed"
}'
fi

# ---- the allocator benchmark ---------------------------------------------------------
# bench/alloc_bench.c built once per allocator: (i) malloc(32)+free pairs,
# (ii) mixed sizes alive at once and freed in random order, (iii) RSS per
# live 32-byte block and (iv) RSS kept after freeing them.  As above, every
# figure comes from a fresh process, the timings from BENCH_ROUNDS
# interleaved rounds, and the minimum is kept.  (Its code is left
# unindented inside this test, as the object table's is.)
if ((do_alloc)); then

declare -A a info
# alloc_measure ALLOC MODE ARGS...: run one process; keep the minimum of
# each key as a[ALLOC:key].  Exit status 3 means the allocator is not what
# it should be (or could not be set up): its column becomes missing.
alloc_measure() {
    local alloc=$1 out rc key val
    shift
    [ -z "${missing[$alloc]:-}" ] || return 0
    rc=0
    out=$("$build/bench/alloc_bench_$alloc" "$@" 2>"$build/run-$alloc.err") || rc=$?
    if ((rc == 3)) && [ "$alloc" != om ]; then
        missing[$alloc]="unavailable: $(tail -n 1 "$build/run-$alloc.err")"
        return 0
    elif ((rc != 0)); then
        cat "$build/run-$alloc.err" >&2
        echo "run.sh: alloc_bench_$alloc $* failed (status $rc)" >&2
        exit 1
    fi
    cat "$build/run-$alloc.err" >&2
    while read -r key val; do
        if [ "$key" = info ]; then
            info[$alloc]=$val
        elif [ -z "${a[$alloc:$key]:-}" ] ||
            awk -v x="$val" -v y="${a[$alloc:$key]}" 'BEGIN { exit !(x < y) }'; then
            a[$alloc:$key]=$val
        fi
    done <<<"$out"
}

for alloc in "${allocs[@]}"; do
    alloc_measure "$alloc" info
done
echo "measuring allocators: ${allocs[*]}; $rounds rounds ..." >&2
for ((round = 1; round <= rounds; round++)); do
    for alloc in "${allocs[@]}"; do
        alloc_measure "$alloc" pair "$alloc_n" "$reps"
    done
    for alloc in "${allocs[@]}"; do
        alloc_measure "$alloc" mixed "$alloc_mixed" "$alloc_mixed_rounds"
    done
    # The machine's price of a page fault, which (ii) pays for every page
    # an allocator takes back from the OS (64 MiB of fresh pages).
    alloc_measure om faults 16384
done
for alloc in "${allocs[@]}"; do
    alloc_measure "$alloc" live "$alloc_live"
done
keys=(pair mixed-best mixed-mean mixed-faults live-bytes kept-mib)
for alloc in "${allocs[@]}"; do
    [ -z "${missing[$alloc]:-}" ] || continue
    for key in "${keys[@]}"; do
        if [ -z "${a[$alloc:$key]:-}" ]; then
            echo "run.sh: alloc_bench_$alloc produced no '$key' figure" >&2
            exit 1
        fi
    done
done

command="make bench"
for var in BENCH_PARTS BENCH_ALLOC_LIVE BENCH_ALLOC_MIXED_ROUNDS \
           BENCH_ALLOC_MIXED BENCH_ALLOC_N BENCH_ROUNDS BENCH_REPS; do
    if [ -n "${!var:-}" ]; then
        command="$var=${!var} $command"
    fi
done
# The figures go to awk as lines "ALLOC KEY VALUE"; an empty value is a
# missing figure, a "missing" line says why a column is missing.
for alloc in "${allocs[@]}"; do
    echo "$alloc missing ${missing[$alloc]:-}"
    echo "$alloc info ${info[$alloc]:-}"
    for key in "${keys[@]}"; do
        echo "$alloc $key ${a[$alloc:$key]:-}"
    done
done | awk -v np="$alloc_n" -v nm="$alloc_mixed" -v mr="$alloc_mixed_rounds" \
    -v nl="$alloc_live" -v reps="$reps" -v rounds="$rounds" \
    -v fault="${a[om:fault-ns]}" \
    -v date="$(date +%F)" -v cpu="${cpu:-unknown CPU}" -v ncpu="$(nproc)" \
    -v kernel="$(uname -r)" -v cc="$compiler" -v commit="$commit" \
    -v cmd="$command" '
{
    name = $1; key = $2
    val = $0; sub(/^[^ ]+ [^ ]+ ?/, "", val)
    V[name, key] = val
}
function pow10(x) { return x == 10000000 ? "10^7" : x == 1000000 ? "10^6" : x }
function f(x, d) { return x == "" ? "-" : sprintf("%." d "f", x) }
function have(name) { return V[name, "missing"] == "" }
function ratio(x, y) {
    return (x == "" || y == "" || y + 0 <= 0) ? "n/a" : sprintf("%.2f", x / y)
}
# The smallest figure of key among the measured allocators other than
# objmem; the allocator is left in best_name.
function best_other(key,    i, name, b) {
    b = ""; best_name = "-"
    for (i = 2; i <= 5; i++) {
        name = A[i]
        if (have(name) && V[name, key] != "" && (b == "" || V[name, key] + 0 < b + 0)) {
            b = V[name, key]; best_name = name
        }
    }
    return b
}
function row(label, c1, c2, c3, c4, c5) {
    printf "  %-34s %9s %20s %9s %10s %9s\n", label, c1, c2, c3, c4, c5
}
END {
    # The goals of the allocator issue.  "(iv) stays within a few MiB like
    # pymalloc" is read as at most KEEP_LIMIT MiB.
    LIVE_LIMIT = 32.2; KEEP_LIMIT = 4
    split("om glibc mimalloc jemalloc pymalloc", A, " ")
    LABEL["om"] = "objmem    om_malloc"
    LABEL["glibc"] = "glibc     malloc"
    LABEL["mimalloc"] = "mimalloc  mi_malloc"
    LABEL["jemalloc"] = "jemalloc  malloc"
    LABEL["pymalloc"] = "pymalloc  PyObject_Malloc"

    printf "\nallocator benchmark: (i) %s malloc(32)+free pairs, best of %d x %d;", pow10(np), rounds, reps
    printf " (ii) %s blocks of 16..512 B alive, freed in random order, best (mean) of %d x %d rounds;", pow10(nm), rounds, mr
    printf " (iii)-(iv) %s blocks of 32 B alive\n", pow10(nl)
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; %s\n", date, commit, cpu, ncpu, kernel, cc
    printf "a page fault (first touch of a fresh page) costs %s ns on this machine now\n\n", f(fault, 0)
    row("", "(i) ns", "(ii) ns per block", "(ii) page", "(iii) B per", "(iv) MiB")
    row("", "per pair", "best (mean)", "faults", "live block", "kept")
    for (i = 1; i <= 5; i++) {
        name = A[i]
        label = LABEL[name] (V[name, "info"] != "" ? " " V[name, "info"] : "")
        if (!have(name)) {
            printf "  %-34s missing: %s\n", label, V[name, "missing"]
            continue
        }
        row(label, f(V[name, "pair"], 2),
            f(V[name, "mixed-best"], 1) " (" f(V[name, "mixed-mean"], 1) ")",
            f(V[name, "mixed-faults"], 0),
            f(V[name, "live-bytes"], 2), f(V[name, "kept-mib"], 2))
    }
    bp = best_other("pair"); np_ = best_name
    bm = best_other("mixed-best"); nm_ = best_name
    bmm = best_other("mixed-mean"); nmm_ = best_name
    bf = best_other("mixed-faults"); nf_ = best_name
    bl = best_other("live-bytes"); nl_ = best_name
    bk = best_other("kept-mib"); nk_ = best_name
    print ""
    row("best of the others", np_, nm_ " (" nmm_ ")", nf_, nl_, nk_)
    row("", f(bp, 2), f(bm, 1) " (" f(bmm, 1) ")", f(bf, 0), f(bl, 2), f(bk, 2))
    row("ratio objmem / best of the others", ratio(V["om", "pair"], bp),
        ratio(V["om", "mixed-best"], bm) " (" ratio(V["om", "mixed-mean"], bmm) ")",
        ratio(V["om", "mixed-faults"], bf),
        ratio(V["om", "live-bytes"], bl), ratio(V["om", "kept-mib"], bk))
    print ""

    # Goals: a missed one is printed with its margin, never turned into an
    # exit status.
    ot = V["om", "pair"]
    if (bp == "") { g = "n/a (no other allocator measured)"; v1 = "n/a" }
    else if (ot + 0 <= bp + 0) { g = "MET"; v1 = "met" }
    else { g = sprintf("MISSED by %.2f ns (%.2fx)", ot - bp, ot / bp); v1 = "missed" }
    printf "  goal (i)   time <= the fastest other (%s, %s ns): %s ns  %s\n", np_, f(bp, 2), f(ot, 2), g

    o2 = V["om", "mixed-best"]; m2 = V["mimalloc", "mixed-best"]
    if (!have("mimalloc") || m2 == "") { g = "n/a (mimalloc missing)"; v2 = "n/a" }
    else if (o2 + 0 <= m2 + 0) { g = "MET"; v2 = "met" }
    else { g = sprintf("MISSED by %.1f ns (%.2fx)", o2 - m2, o2 / m2); v2 = "missed" }
    printf "  goal (ii)  time <= mimalloc (%s ns, best of rounds): %s ns  %s\n", f(m2, 1), f(o2, 1), g

    o3 = V["om", "live-bytes"]
    if (o3 + 0 <= LIVE_LIMIT) { g = "MET"; v3 = "met" }
    else { g = sprintf("MISSED by %.2f B (%.2f%%)", o3 - LIVE_LIMIT, (o3 - LIVE_LIMIT) / LIVE_LIMIT * 100); v3 = "missed" }
    printf "  goal (iii) RSS <= %.1f B per live block: %s B  %s\n", LIVE_LIMIT, f(o3, 2), g

    o4 = V["om", "kept-mib"]
    if (o4 + 0 <= KEEP_LIMIT) { g = "MET"; v4 = "met" }
    else { g = sprintf("MISSED by %.2f MiB (%.1fx)", o4 - KEEP_LIMIT, o4 / KEEP_LIMIT); v4 = "missed" }
    printf "  goal (iv)  RSS kept after freeing all <= %d MiB (\"a few MiB\"): %s MiB  %s\n", KEEP_LIMIT, f(o4, 2), g
    print ""

    # The docs row: each figure cell lists objmem / glibc / mimalloc /
    # jemalloc / pymalloc, "-" for a missing one.
    tool = cc
    for (i = 2; i <= 5; i++) {
        name = A[i]
        tool = tool (i == 2 ? "; " : ", ") (name == "pymalloc" ? "CPython" : name) " " \
            (have(name) && V[name, "info"] != "" ? V[name, "info"] : "missing")
    }
    for (i = 1; i <= 5; i++) {
        name = A[i]; sep = i == 1 ? "" : " / "
        c1 = c1 sep (have(name) ? f(V[name, "pair"], 2) : "-")
        c2 = c2 sep (have(name) ? f(V[name, "mixed-best"], 1) " (" f(V[name, "mixed-mean"], 1) ")" : "-")
        c3 = c3 sep (have(name) ? f(V[name, "mixed-faults"], 0) : "-")
        c4 = c4 sep (have(name) ? f(V[name, "live-bytes"], 2) : "-")
        c5 = c5 sep (have(name) ? f(V[name, "kept-mib"], 2) : "-")
    }
    print "row for the allocator table of docs/benchmarks.md (append it, never replace a row):"
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s | %s", date, commit, cmd, cpu, ncpu, kernel, tool
    printf " | %s | %s | %s | %s | %s | %s", c1, c2, c3, c4, c5, f(fault, 0)
    printf " | (i) %s, (ii) %s, (iii) %s, (iv) %s |\n", v1, v2, v3, v4
}'
fi

# ---- the collector benchmark -------------------------------------------------------
# objmem's collector (bench/gc_bench.c) against CPython (bench/py_gc.py) on
# the same shapes at each N of BENCH_GC_SIZES, and Boehm GC
# (bench/boehm_bench.c, one marker) on (a) and (b) for reference.  As above,
# every figure comes from a fresh process, one per (system, measurement,
# N); the timings run in BENCH_ROUNDS interleaved rounds and the minimum is
# kept.  (Its code is left unindented inside this test too.)
# The weak-reference table has a script of its own.
if ((do_weakref)); then
    BENCH_REPS=$reps BENCH_ROUNDS=$rounds \
        BENCH_COMMAND="${BENCH_PARTS:+BENCH_PARTS=\"$BENCH_PARTS\" }make bench" \
        bash "$root/bench/weakref.sh" "$build"
fi
# The tracer table too.
if ((do_tracemalloc)); then
    BENCH_REPS=$reps BENCH_ROUNDS=$rounds \
        BENCH_COMMAND="${BENCH_PARTS:+BENCH_PARTS=\"$BENCH_PARTS\" }make bench" \
        bash "$root/bench/tracemalloc.sh" "$build"
fi
# And the objmem-trace overhead table.
if ((do_trace)); then
    BENCH_COMMAND="${BENCH_PARTS:+BENCH_PARTS=\"$BENCH_PARTS\" }make bench" \
        bash "$root/bench/trace.sh" "$build"
fi
((do_gc)) || exit 0

declare -A g
boehm_info=
# gc_measure SYSTEM N PROGRAM ARGS...: run one process; keep the minimum of
# each key as g[N:key].  Boehm's exit status 3 (one marker could not be
# had) makes its column missing; any other failure fails the run.
gc_measure() {
    local sys=$1 size=$2 out rc key val err="$build/run-gc-$1.err"
    shift 2
    if [ "$sys" = boehm ] && [ -n "$boehm_missing" ]; then
        return 0
    fi
    rc=0
    out=$("$@" 2>"$err") || rc=$?
    if ((rc == 3)) && [ "$sys" = boehm ]; then
        boehm_missing="unavailable: $(tail -n 1 "$err")"
        return 0
    elif ((rc != 0)); then
        cat "$err" >&2
        echo "run.sh: $* failed (status $rc)" >&2
        exit 1
    fi
    cat "$err" >&2
    while read -r key val; do
        if [ "$key" = info ]; then
            boehm_info=$val
        elif [ -z "${g[$size:$key]:-}" ] ||
            awk -v x="$val" -v y="${g[$size:$key]}" 'BEGIN { exit !(x < y) }'; then
            g[$size:$key]=$val
        fi
    done <<<"$out"
}

gc_measure boehm 0 "$boehm_bench" info
young_reps=$((reps * 10 > 1000 ? 1000 : reps * 10))
echo "measuring the collector: N = ${gc_sizes[*]}; $rounds rounds ..." >&2
for ((round = 1; round <= rounds; round++)); do
    for size in "${gc_sizes[@]}"; do
        for mode in cycles live; do
            gc_measure om "$size" "$gc_bench" "$mode" "$size" "$reps"
            gc_measure py "$size" python3 "$py_gc" "$mode" "$size" "$reps"
            gc_measure boehm "$size" "$boehm_bench" "$mode" "$size" "$reps"
        done
        gc_measure om "$size" "$gc_bench" young "$size" "$young_reps"
        gc_measure py "$size" python3 "$py_gc" young "$size" "$young_reps"
        gc_measure om "$size" "$gc_bench" drop "$size" "$reps"
        gc_measure py "$size" python3 "$py_gc" drop "$size" "$reps"
    done
done
for size in "${gc_sizes[@]}"; do
    gc_measure om "$size" "$gc_bench" rss "$size"
    gc_measure py "$size" python3 "$py_gc" rss "$size"
done
gc_keys=(om-a om-a-first om-b om-b-first om-b-transient om-c om-c-median
         om-d om-e py-a py-b py-c py-c-median py-d py-e)
[ -n "$boehm_missing" ] || gc_keys+=(gc-a gc-b)
for size in "${gc_sizes[@]}"; do
    for key in "${gc_keys[@]}"; do
        if [ -z "${g[$size:$key]:-}" ]; then
            echo "run.sh: the collector benchmark produced no '$key' figure for N = $size" >&2
            exit 1
        fi
    done
done

python=$(python3 -c 'import platform
print(platform.python_implementation(), platform.python_version())')
command="make bench"
for var in BENCH_GC_SIZES BENCH_PARTS BENCH_ROUNDS BENCH_REPS; do
    if [[ ${!var:-} == *" "* ]]; then
        command="$var=\"${!var}\" $command"
    elif [ -n "${!var:-}" ]; then
        command="$var=${!var} $command"
    fi
done
# The figures go to awk as lines "N KEY VALUE".
{
    echo "0 boehm-missing $boehm_missing"
    echo "0 boehm-info $boehm_info"
    for size in "${gc_sizes[@]}"; do
        for key in "${gc_keys[@]}"; do
            echo "$size $key ${g[$size:$key]}"
        done
    done
} | awk -v sizes="${gc_sizes[*]}" -v reps="$reps" -v rounds="$rounds" \
    -v yreps="$young_reps" -v date="$(date +%F)" -v cpu="${cpu:-unknown CPU}" \
    -v ncpu="$(nproc)" -v kernel="$(uname -r)" -v cc="$compiler" \
    -v py="$python" -v commit="$commit" -v cmd="$command" '
{
    size = $1; key = $2
    val = $0; sub(/^[^ ]+ [^ ]+ ?/, "", val)
    V[size, key] = val
}
# 100000 -> 10^5, 3000000 -> 3*10^6; other numbers as they are.
function pn(x,    k, d) {
    if (x !~ /^[1-9]0+$/ || length(x) < 4) return x
    d = substr(x, 1, 1); k = length(x) - 1
    return (d == "1" ? "" : d "*") "10^" k
}
function f(x, d) { return x == "" ? "-" : sprintf("%." d "f", x) }
function ratio(x, y) {
    return (x == "" || y == "" || y + 0 <= 0) ? "n/a" : sprintf("%.2f", x / y)
}
# A row: one figure of key (d decimals) per N.
function row(label, key, d,    i, line) {
    line = sprintf("  %-54s", label)
    for (i = 1; i <= ns; i++) line = line sprintf(" %9s", f(V[S[i], key], d))
    print line
}
# A row of ratios key1 / key2, one per N.
function rrow(label, k1, k2,    i, line) {
    line = sprintf("  %-54s", label)
    for (i = 1; i <= ns; i++) line = line sprintf(" %9s", ratio(V[S[i], k1], V[S[i], k2]))
    print line
}
# The same ratios as a docs cell, "0.49, 0.48, 0.95".
function rcell(k1, k2,    i, c) {
    c = ""
    for (i = 1; i <= ns; i++) c = c (i > 1 ? ", " : "") ratio(V[S[i], k1], V[S[i], k2])
    return c
}
# A docs cell of figures: "objmem / CPython [/ Boehm]" per N, "; " between.
function cell(k1, k2, k3, d,    i, c) {
    c = ""
    for (i = 1; i <= ns; i++) {
        c = c (i > 1 ? "; " : "") f(V[S[i], k1], d) " / " f(V[S[i], k2], d)
        if (k3 != "") c = c " / " (have_boehm ? f(V[S[i], k3], d) : "-")
    }
    return c
}
# Judge max over N of k1 / k2 against limit; print the verdict, return
# "met", "missed" or "n/a".
function goal(label, k1, k2, limit,    i, r, w, ws, verdict) {
    w = ""
    for (i = 1; i <= ns; i++) {
        if (V[S[i], k1] == "" || V[S[i], k2] == "" || V[S[i], k2] + 0 <= 0) continue
        r = V[S[i], k1] / V[S[i], k2]
        if (w == "" || r > w) { w = r; ws = S[i] }
    }
    if (w == "") {
        printf "  goal %-40s n/a\n", label
        return "n/a"
    }
    verdict = w <= limit ? "MET" : sprintf("MISSED (%.2fx the limit)", w / limit)
    printf "  goal %-40s worst %.2f at N = %s, limit %.2f  %s\n", label, w, pn(ws), limit, verdict
    return w <= limit ? "met" : "missed"
}
END {
    ns = split(sizes, S, " ")
    have_boehm = V[0, "boehm-missing"] == ""
    big = S[1]
    for (i = 2; i <= ns; i++) if (S[i] + 0 > big + 0) big = S[i]
    nlist = ""
    for (i = 1; i <= ns; i++) nlist = nlist (i > 1 ? ", " : "") pn(S[i])
    boehm = have_boehm ? "Boehm GC " V[0, "boehm-info"] : "Boehm GC missing: " V[0, "boehm-missing"]

    printf "\ncollector benchmark: N = %s; times are the best of %d rounds x %d repetitions ((c): x %d collections)\n", nlist, rounds, reps, yreps
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; %s; %s; %s\n\n", date, commit, cpu, ncpu, kernel, cc, py, boehm
    line = sprintf("  %-54s", "")
    for (i = 1; i <= ns; i++) line = line sprintf(" %9s", "N=" pn(S[i]))
    print line
    print "  (a) N/2 unreachable 2-cycles, full collection: ns per object"
    row("objmem   om_gc_collect(rt, 2)", "om-a", 2)
    row("CPython  gc.collect(2)", "py-a", 2)
    if (have_boehm) row("Boehm    GC_gcollect() (reference; lazy sweep)", "gc-a", 2)
    else printf "  %-54s missing: %s\n", "Boehm    GC_gcollect()", V[0, "boehm-missing"]
    rrow("ratio objmem / CPython", "om-a", "py-a")
    row("objmem, first collection of the process (diagnostic)", "om-a-first", 2)
    print "  (b) N reachable (a chain), nothing to free, full collection: ns per object"
    row("objmem   om_gc_collect(rt, 2)", "om-b", 2)
    row("CPython  gc.collect(2)", "py-b", 2)
    if (have_boehm) row("Boehm    GC_gcollect(), one marker", "gc-b", 2)
    else printf "  %-54s missing: %s\n", "Boehm    GC_gcollect(), one marker", V[0, "boehm-missing"]
    rrow("ratio objmem / CPython", "om-b", "py-b")
    if (have_boehm) rrow("ratio objmem / Boehm", "om-b", "gc-b")
    row("objmem, first collection of the process (diagnostic)", "om-b-first", 2)
    row("objmem, its peak RSS over the heap, B per object (diag.)", "om-b-transient", 2)
    print "  (c) generation-0 collection, 1000 young objects over N old: us per collection"
    row("objmem   om_gc_collect(rt, 0), best", "om-c", 2)
    row("objmem   median", "om-c-median", 2)
    row("CPython  gc.collect(0), best", "py-c", 2)
    row("CPython  median", "py-c-median", 2)
    rrow("ratio objmem / CPython (best)", "om-c", "py-c")
    print "  (d) dropping the head of an N-node chain: ns per object"
    row("objmem   om_decref(head)", "om-d", 2)
    row("CPython  del head", "py-d", 2)
    rrow("ratio objmem / CPython", "om-d", "py-d")
    print "  (e) RSS per 2-slot collectable object, an N-node chain alive: bytes"
    row("objmem", "om-e", 2)
    row("CPython", "py-e", 2)
    rrow("ratio objmem / CPython", "om-e", "py-e")
    print ""

    # Goals: a missed one is printed with its margin, never turned into an
    # exit status.  Ratios are judged at every N (the worst one counts).
    ga = goal("(a) <= 1/3 of CPython", "om-a", "py-a", 1 / 3)
    gb = goal("(b) <= 1/3 of CPython", "om-b", "py-b", 1 / 3)
    gbb = have_boehm ? goal("(b) <= 1.5x Boehm (one marker)", "om-b", "gc-b", 1.5) : "n/a"
    if (!have_boehm) printf "  goal %-40s n/a (Boehm missing)\n", "(b) <= 1.5x Boehm (one marker)"
    gc_ = goal("(c) <= 1/3 of CPython", "om-c", "py-c", 1 / 3)
    lo = ""; hi = ""
    for (i = 1; i <= ns; i++) {
        x = V[S[i], "om-c"] + 0
        if (lo == "" || x < lo) lo = x
        if (hi == "" || x > hi) hi = x
    }
    plo = ""; phi = ""
    for (i = 1; i <= ns; i++) {
        x = V[S[i], "py-c"] + 0
        if (plo == "" || x < plo) plo = x
        if (phi == "" || x > phi) phi = x
    }
    flat = lo > 0 ? hi / lo : 0
    pflat = plo > 0 ? phi / plo : 0
    if (ns < 2) { gflat = "n/a"; verdict = "n/a (one N)" }
    else if (flat <= 1.2) { gflat = "met"; verdict = "MET" }
    else { gflat = "missed"; verdict = sprintf("MISSED (%.3fx the limit)", flat / 1.2) }
    printf "  goal %-40s slowest / fastest over N %.3f (CPython %.3f), limit 1.2  %s\n", "(c) flat in N", flat, pflat, verdict
    gd = goal("(d) <= 1/2 of CPython", "om-d", "py-d", 1 / 2)
    e = V[big, "om-e"] + 0
    if (e <= 32) { ge = "met"; verdict = "MET" }
    else { ge = "missed"; verdict = sprintf("MISSED by %.2f B (%.2f%%)", e - 32, (e - 32) / 32 * 100) }
    printf "  goal %-40s %.2f B at N = %s (the largest N; smaller N read RSS less precisely), limit 32  %s\n", "(e) RSS <= 32 B per object", e, pn(big), verdict
    print ""

    print "row for the collector table of docs/benchmarks.md (append it, never replace a row):"
    tool = cc "; " py "; " (have_boehm ? V[0, "boehm-info"] : "Boehm missing")
    nl = ""
    for (i = 1; i <= ns; i++) nl = nl (i > 1 ? "; " : "") pn(S[i])
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s | %s | %s", date, commit, cmd, cpu, ncpu, kernel, tool, nl
    printf " | %s | %s", cell("om-a", "py-a", "gc-a", 1), cell("om-b", "py-b", "gc-b", 1)
    printf " | %s | %s | %s", cell("om-c", "py-c", "", 1), cell("om-d", "py-d", "", 1), cell("om-e", "py-e", "", 2)
    printf " | (a) %s; (b) %s, Boehm %s; (c) %s, flat %.2f; (d) %s; (e) %s", \
        rcell("om-a", "py-a"), rcell("om-b", "py-b"), have_boehm ? rcell("om-b", "gc-b") : "n/a", \
        rcell("om-c", "py-c"), flat, rcell("om-d", "py-d"), rcell("om-e", "py-e")
    printf " | (a) %s, (b) %s, (b) Boehm %s, (c) %s, (c) flat %s, (d) %s, (e) %s |\n", ga, gb, gbb, gc_, gflat, gd, ge
}'
